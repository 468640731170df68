{{/* vim: set filetype=mustache: */}}
{{/*
Expand the name of the chart.
*/}}
{{- define "jinfu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A default fully qualified app name, at most 63 characters (some Kubernetes name fields are
limited to that by the DNS naming spec). If the release name contains the chart name it is
used as the full name.
*/}}
{{- define "jinfu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, as used by the chart label.
*/}}
{{- define "jinfu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of one service's resources: <fullname>-<service>, at most 63 characters (or `max`).
Call with (dict "root" $ "name" $serviceName [ "max" 52 ]).
*/}}
{{- define "jinfu.serviceFullname" -}}
{{- $max := int (default 63 .max) -}}
{{- printf "%s-%s" (include "jinfu.fullname" .root | trunc (int (sub (sub $max 1) (len .name))) | trimSuffix "-") .name | trunc $max | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of one service's workload: a StatefulSet's name is at most 52 characters (its pods'
controller-revision-hash label adds 11). Call with (dict "root" $ "name" $name "svc" $svc).
*/}}
{{- define "jinfu.workloadName" -}}
{{- include "jinfu.serviceFullname" (dict "root" .root "name" .name "max" (ternary 52 63 (eq .svc.kind "StatefulSet"))) -}}
{{- end -}}

{{/*
The prefix of every verification CronJob's name (and so of its Jobs' names), at most
42 characters so that CronJob names stay under 52. The PrometheusRule matches Jobs on it.
*/}}
{{- define "jinfu.verifyPrefix" -}}
{{- printf "%s-verify" (include "jinfu.fullname" . | trunc 35 | trimSuffix "-") -}}
{{- end -}}

{{/*
The name of one service's verification CronJob: <verifyPrefix>-<service>, at most 52
characters. Call with (dict "root" $ "name" $serviceName).
*/}}
{{- define "jinfu.verifyCronJobName" -}}
{{- printf "%s-%s" (include "jinfu.verifyPrefix" .root) .name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/*
The longest interval, in seconds, between two runs of a cron schedule, for the schedules whose
interval is plain: `@hourly`, `@daily` (`@midnight`), `@weekly`, `M * * * *` (hourly),
every N minutes (minute field `*` `/N`, the rest `*`), every N hours at minute M (hour field
`*` `/N`), `M H * * *` (daily) and `M H * * D` (weekly). Any other schedule fails the render,
naming `.what`. (Spaced out above because a star and a slash would end this comment.)
Call with (dict "schedule" $schedule "what" "services.<name>.verify.schedule").
*/}}
{{- define "jinfu.cronIntervalSeconds" -}}
{{- $s := trim .schedule -}}
{{- $f := regexSplit "\\s+" $s -1 -}}
{{- $n := "^[0-9]+$" -}}
{{- $every := "^\\*/[1-9][0-9]*$" -}}
{{- $seconds := 0 -}}
{{- if eq $s "@hourly" -}}
{{- $seconds = 3600 -}}
{{- else if or (eq $s "@daily") (eq $s "@midnight") -}}
{{- $seconds = 86400 -}}
{{- else if eq $s "@weekly" -}}
{{- $seconds = 604800 -}}
{{- else if eq (len $f) 5 -}}
{{- $m := index $f 0 -}}
{{- $h := index $f 1 -}}
{{- if and (eq (index $f 2) "*") (eq (index $f 3) "*") (eq (index $f 4) "*") -}}
{{- if and (regexMatch $n $m) (eq $h "*") -}}
{{- $seconds = 3600 -}}
{{- else if and (regexMatch $every $m) (eq $h "*") -}}
{{- $seconds = mul 60 (atoi (trimPrefix "*/" $m)) -}}
{{- else if and (regexMatch $n $m) (regexMatch $every $h) -}}
{{- $seconds = mul 3600 (atoi (trimPrefix "*/" $h)) -}}
{{- else if and (regexMatch $n $m) (regexMatch $n $h) -}}
{{- $seconds = 86400 -}}
{{- end -}}
{{- else if and (regexMatch $n $m) (regexMatch $n $h) (eq (index $f 2) "*") (eq (index $f 3) "*") (regexMatch "^[0-7]$" (index $f 4)) -}}
{{- $seconds = 604800 -}}
{{- end -}}
{{- end -}}
{{- if not $seconds -}}
{{- fail (printf "%s %q: the verify alert needs the interval between runs, which the chart derives only from @hourly, @daily, @weekly, \"M * * * *\", \"*/N * * * *\", \"M */N * * *\", \"M H * * *\" or \"M H * * D\"; use one of those forms (with prometheusRule.enabled)" .what .schedule) -}}
{{- end -}}
{{- $seconds -}}
{{- end -}}

{{/*
Selector labels: stable for the release's lifetime, so never the chart version.
*/}}
{{- define "jinfu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jinfu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Common labels.
*/}}
{{- define "jinfu.labels" -}}
helm.sh/chart: {{ include "jinfu.chart" . }}
{{ include "jinfu.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jinfu
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels of one service's pods. Call with (dict "root" $ "name" $serviceName).
*/}}
{{- define "jinfu.serviceSelectorLabels" -}}
{{ include "jinfu.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/*
Labels of one service's resources. Call with (dict "root" $ "name" $serviceName).
*/}}
{{- define "jinfu.serviceLabels" -}}
{{ include "jinfu.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/*
The image of a service. Call with (dict "root" $ "image" $imageValues).
*/}}
{{- define "jinfu.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag | toString) -}}
{{- end -}}

{{/*
The ServiceAccount name of one service. Call with (dict "root" $ "name" $name "svc" $svc).
*/}}
{{- define "jinfu.serviceAccountName" -}}
{{- if .svc.serviceAccount.create -}}
{{- default (include "jinfu.serviceFullname" (dict "root" .root "name" .name)) .svc.serviceAccount.name -}}
{{- else -}}
{{- default "default" .svc.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The environment every container of one service gets: the shared settings of `.Values.config`
that the service asks for in `services.<name>.config`, the service's own keys (`signing`,
`trustedPublishers`; the notification service's `smtp`, `sms`, `quietHours`), then its `env`.
Call with (dict "root" $ "name" $name "svc" $svc).
*/}}
{{- define "jinfu.env" -}}
{{- $root := .root -}}
{{- $c := $root.Values.config -}}
{{- $uses := .svc.config -}}
- name: JINFU_GRPC__LISTEN
  value: {{ printf "0.0.0.0:%d" (int .svc.ports.grpc) | quote }}
- name: JINFU_METRICS__LISTEN
  value: {{ printf "0.0.0.0:%d" (int .svc.ports.metrics) | quote }}
- name: JINFU_TELEMETRY__LOG_FORMAT
  value: {{ $c.telemetry.logFormat | quote }}
{{- with $c.telemetry.otlpEndpoint }}
- name: JINFU_TELEMETRY__OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: RUST_LOG
  value: {{ default $c.rustLog .svc.rustLog | quote }}
{{- if $uses.database }}
- name: JINFU_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ $c.database.existingSecret | quote }}
      key: {{ $c.database.key | quote }}
{{- end }}
{{- if $uses.kafka }}
- name: JINFU_KAFKA__BROKERS
  value: {{ $c.kafka.brokers | quote }}
- name: JINFU_KAFKA__PARTITIONS
  value: {{ int $c.kafka.partitions | quote }}
- name: JINFU_KAFKA__SESSION_TIMEOUT_MS
  value: {{ $c.kafka.sessionTimeoutMs | default (mul (add (default 30 .svc.terminationGracePeriodSeconds) (default 30 $c.kafka.startupAllowanceSeconds)) 1000) | int | quote }}
{{- with $c.kafka.securityProtocol }}
- name: JINFU_KAFKA__SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with $c.kafka.saslMechanism }}
- name: JINFU_KAFKA__SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- if $c.kafka.ca.existingSecret }}
- name: JINFU_KAFKA__SSL_CA_PEM
  valueFrom:
    secretKeyRef:
      name: {{ $c.kafka.ca.existingSecret | quote }}
      key: {{ $c.kafka.ca.key | quote }}
{{- end }}
{{- if and $c.kafka.users.enabled .svc.kafkaAcls }}
{{- $user := include "jinfu.serviceFullname" (dict "root" $root "name" .name) }}
- name: JINFU_KAFKA__SASL_USERNAME
  value: {{ $user | quote }}
- name: JINFU_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $user | quote }}
      key: password
{{- end }}
{{- end }}
{{- with .svc.signing }}
- name: JINFU_SIGNING__KEY_REF
  value: {{ .keyRef | quote }}
- name: JINFU_SIGNING__SCHEME
  value: {{ .scheme | quote }}
- name: JINFU_SIGNING__PRIVATE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- range $publisher, $keys := .svc.trustedPublishers }}
{{- range $keys }}
- name: {{ printf "JINFU_TRUSTED_PUBLISHERS__%s__%s__SCHEME" (upper $publisher) (upper .keyRef) }}
  value: {{ .scheme | quote }}
- name: {{ printf "JINFU_TRUSTED_PUBLISHERS__%s__%s__PUBLIC_KEY" (upper $publisher) (upper .keyRef) }}
  value: {{ .publicKey | quote }}
{{- end }}
{{- end }}
{{- if $uses.auth }}
- name: JINFU_AUTH__TOKEN_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $c.auth.existingSecret | quote }}
      key: {{ $c.auth.key | quote }}
{{- end }}
{{- if $uses.banks }}
{{- range $ref, $bank := $c.banks }}
- name: {{ printf "JINFU_BANKS__%s__SCHEME" (upper $ref) }}
  value: {{ $bank.scheme | quote }}
- name: {{ printf "JINFU_BANKS__%s__PUBLIC_KEY" (upper $ref) }}
  value: {{ $bank.publicKey | quote }}
{{- end }}
{{- end }}
{{- if $uses.refundSigning }}
- name: JINFU_REFUNDS__SIGNING__SCHEME
  value: {{ $c.refunds.signing.scheme | quote }}
- name: JINFU_REFUNDS__SIGNING__KEY_REF
  value: {{ $c.refunds.signing.keyRef | quote }}
- name: JINFU_REFUNDS__SIGNING__PRIVATE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $c.refunds.signing.existingSecret | quote }}
      key: {{ $c.refunds.signing.key | quote }}
{{- end }}
{{- if $uses.ingestInstanceId }}
- name: JINFU_INGEST__INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- with .svc.smtp }}
{{- if .host }}
- name: JINFU_SMTP__HOST
  value: {{ .host | quote }}
- name: JINFU_SMTP__PORT
  value: {{ int (default 25 .port) | quote }}
- name: JINFU_SMTP__FROM
  value: {{ .from | quote }}
{{- with .username }}
- name: JINFU_SMTP__USERNAME
  value: {{ . | quote }}
{{- end }}
{{- with .password }}
{{- if .existingSecret }}
- name: JINFU_SMTP__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- end }}
{{- with .timeoutSeconds }}
- name: JINFU_SMTP__TIMEOUT_SECONDS
  value: {{ int . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .svc.sms }}
{{- if .endpoint }}
- name: JINFU_SMS__ENDPOINT
  value: {{ .endpoint | quote }}
- name: JINFU_SMS__SIGN_NAME
  value: {{ .signName | quote }}
- name: JINFU_SMS__ACCESS_KEY_ID
  value: {{ .accessKeyId | quote }}
- name: JINFU_SMS__ACCESS_KEY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .accessKeySecret.existingSecret | quote }}
      key: {{ .accessKeySecret.key | quote }}
{{- with .timeoutSeconds }}
- name: JINFU_SMS__TIMEOUT_SECONDS
  value: {{ int . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .svc.quietHours }}
- name: JINFU_QUIET_HOURS__START
  value: {{ .start | quote }}
- name: JINFU_QUIET_HOURS__END
  value: {{ .end | quote }}
{{- end }}
{{- with .svc.env }}
{{ tpl (toYaml .) $root }}
{{- end }}
{{- end -}}

{{/*
The pod-level parts shared by a service's workload and its Jobs: image pull secrets,
security context, scheduling. Call with (dict "root" $ "svc" $svc).
*/}}
{{- define "jinfu.podScheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The writable scratch volume every container gets (the root filesystem is read-only).
*/}}
{{- define "jinfu.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpVolume.sizeLimit | quote }}
{{- end -}}

{{- define "jinfu.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
The gRPC ports of the enabled services, as a JSON array without duplicates.
*/}}
{{- define "jinfu.grpcPorts" -}}
{{- $ports := list -}}
{{- range $name, $svc := .Values.services -}}
{{- if $svc.enabled -}}
{{- $ports = append $ports (int $svc.ports.grpc) -}}
{{- end -}}
{{- end -}}
{{- $ports | uniq | toJson -}}
{{- end -}}
