#!/usr/bin/env bash
# Offline checks of the Kubernetes delivery files: the Helm chart (charts/jinfu) and the raw
# manifests (k8s/). No cluster, no helm binary, no network after the first install.
#
#  (a) lint the chart strictly (warnings fail) with its defaults and every ci/*-values.yaml;
#  (b) render it (like `helm template --include-crds`) for the same values, plus once with the
#      longest release name Helm allows;
#  (c) validate every rendered document and every file under k8s/ against the Kubernetes JSON
#      schemas of $KUBE_VERSION, strict (unknown fields fail); TradingCentre resources against
#      the openAPIV3Schema of our CRD (made strict the same way), KafkaTopic, KafkaUser, PrometheusRule and
#      ServiceMonitor against the subset schemas of scripts/schemas/;
#  (d) make sure values.schema.json rejects a misspelt key;
#  and that charts/jinfu/crds/ and k8s/crds/ hold the same CRD bytes.
#
# Tools (pinned) go into a virtualenv under .stack/chart-tools: helm-python-sdk (Helm 4's Go
# SDK as a shared library in the wheel), kubernetes-validate (bundled Kubernetes schemas) and
# jsonschema.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
TOOLS="$STACK_DIR/chart-tools"
KUBE_VERSION="${KUBE_VERSION:-1.30}"
CHECK_START=$(date +%s)

# Every package of the virtualenv, transitive ones included.
REQUIREMENTS="helm-python-sdk==0.2.2
kubernetes-validate==1.37.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
referencing==0.37.0
rpds-py==2026.9.1
attrs==26.1.0
PyYAML==6.0.3
importlib_resources==7.1.0
packaging==26.3
typing_extensions==4.16.0"

if [[ ! -x "$TOOLS/bin/python" ]] || ! cmp -s <(printf '%s\n' "$REQUIREMENTS") "$TOOLS/requirements.txt"; then
  echo "[check-chart] installing the chart tools into $TOOLS"
  rm -rf "$TOOLS"
  python3 -m venv "$TOOLS"
  printf '%s\n' "$REQUIREMENTS" >"$TOOLS/requirements.in"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$TOOLS/requirements.in"
  "$TOOLS/bin/pip" check >/dev/null
  mv "$TOOLS/requirements.in" "$TOOLS/requirements.txt"
fi

echo "[check-chart] CRD copies"
cmp charts/jinfu/crds/tradingcentres.jinfu.io.yaml k8s/crds/tradingcentres.jinfu.io.yaml || {
  echo "check-chart: charts/jinfu/crds/tradingcentres.jinfu.io.yaml differs from k8s/crds/tradingcentres.jinfu.io.yaml"
  exit 1
}
echo "  charts/jinfu/crds/tradingcentres.jinfu.io.yaml == k8s/crds/tradingcentres.jinfu.io.yaml"

KUBE_VERSION="$KUBE_VERSION" CHECK_START="$CHECK_START" "$TOOLS/bin/python" - <<'PY'
import copy
import glob
import json
import os
import re
import sys
import time

import helm_python as helm
import jsonschema
import kubernetes_validate
from kubernetes_validate.version import __version__ as kubernetes_validate_version
import yaml

CHART = "charts/jinfu"
KUBE_VERSION = os.environ["KUBE_VERSION"]
RELEASE, NAMESPACE = "jinfu", "jinfu"
failures = []


def fail(message):
    failures.append(message)
    print("  FAIL " + message)


def load_all(text, origin):
    try:
        return [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as e:
        fail(f"{origin}: not YAML: {e}")
        return []


# Scenarios: the defaults and every ci/*-values.yaml.
scenarios = [("defaults", {})]
for path in sorted(glob.glob(f"{CHART}/ci/*-values.yaml")):
    with open(path) as f:
        scenarios.append((path, helm.values_from_yaml(f.read())))

print(f"[check-chart] helm lint --strict (Helm SDK {helm.helm_sdk_version()}, helm-python-sdk {helm.__version__})")
for origin, values in scenarios:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"path": "", "error": e} for e in report["errors"]]
    for p in problems:
        fail(f"lint {origin}: {p['path']}: {p['error'].strip()}")
    if not problems:
        print(f"  {origin}: ok")

print("[check-chart] helm template --include-crds")
chart = helm.Chart.load(CHART)
documents = []  # (origin, document)
for origin, values in scenarios + [("defaults, release name of 53 characters", {})]:
    release = RELEASE if not origin.startswith("defaults, release") else "j" * 53
    try:
        rendered = chart.render(values=values, name=release, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        fail(f"render {origin}: {e}")
        continue
    docs = []
    for crd in chart.crds:
        docs += [(f"{origin}: {crd['name']}", d) for d in load_all(crd["data"], crd["name"])]
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            if "{{" in text or not text.strip():
                fail(f"render {origin}: NOTES.txt is empty or unrendered")
            continue
        docs += [(f"{origin}: {template}", d) for d in load_all(text, template)]
    kinds = sorted({d["kind"] for _, d in docs})
    print(f"  {origin}: {len(docs)} documents ({', '.join(kinds)})")
    documents += docs

for path in sorted(glob.glob("k8s/**/*.yaml", recursive=True)):
    with open(path) as f:
        documents += [(path, d) for d in load_all(f.read(), path)]
print(f"  k8s/: {sum(1 for o, _ in documents if o.startswith('k8s/'))} documents")

# Schemas of the custom resources.
with open("k8s/crds/tradingcentres.jinfu.io.yaml") as f:
    crd = yaml.safe_load(f)


def strict(schema):
    """Reject unknown fields, as the API server's strict field validation does."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


custom = {}
for version in crd["spec"]["versions"]:
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema.setdefault("properties", {}).update({
        "apiVersion": {"const": f"{crd['spec']['group']}/{version['name']}"},
        "kind": {"const": crd["spec"]["names"]["kind"]},
        "metadata": {"type": "object"},
    })
    schema.setdefault("required", []).extend(["apiVersion", "kind", "metadata"])
    custom[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = ("k8s/crds (openAPIV3Schema)", schema)
for path in sorted(glob.glob("scripts/schemas/*.json")):
    with open(path) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    custom[(schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])] = (path, schema)

print(f"[check-chart] kubernetes-validate {kubernetes_validate_version} --strict against Kubernetes {KUBE_VERSION}; custom resources against their schemas")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
counts = {}
for origin, doc in documents:
    kind, name = doc.get("kind", "?"), doc.get("metadata", {}).get("name", "?")
    where = f"{origin}: {kind}/{name}"
    key = (doc.get("apiVersion"), kind)
    if key in custom:
        source, schema = custom[key]
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        for e in errors:
            fail(f"{where}: {'.'.join(map(str, e.path))}: {e.message} ({source})")
    else:
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            fail(f"{where}: no schema: {e.message}")
    # Names: DNS-1123, at most 63 characters (52 for a CronJob, whose Jobs add 11, and for a
    # StatefulSet, whose pods' controller-revision-hash label adds 11).
    limit = 52 if kind in ("CronJob", "StatefulSet") else 63
    if not DNS_SUBDOMAIN.match(name) or (len(name) > limit and kind != "CustomResourceDefinition"):
        fail(f"{where}: name is not a DNS-1123 name of at most {limit} characters")
    # Selectors never carry the chart or app version (they are immutable).
    selector = (doc.get("spec") or {}).get("selector")
    if isinstance(selector, dict):
        labels = selector.get("matchLabels", selector)
        for bad in ("helm.sh/chart", "app.kubernetes.io/version"):
            if bad in labels:
                fail(f"{where}: selector carries {bad}")
    counts[kind] = counts.get(kind, 0) + 1
print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

print("[check-chart] values.schema.json rejects a misspelt key (--set services.ledger.replicaCont=2)")
typo = helm.parse_set_string("services.ledger.replicaCont=2")
try:
    chart.render(values=typo, name=RELEASE, namespace=NAMESPACE, is_install=True)
    fail("rendering with services.ledger.replicaCont=2 succeeded")
except helm.HelmValuesError as e:
    if "replicaCont" not in str(e):
        fail(f"rendering with the typo failed for another reason: {e}")
    else:
        print("  rejected: " + str(e).strip().splitlines()[-1].strip())
if not helm.lint(CHART, typo, strict=True)["errors"]:
    fail("lint with services.ledger.replicaCont=2 passed")
chart.close()

if failures:
    print(f"check-chart: {len(failures)} failures")
    sys.exit(1)
print(f"[check-chart] took {int(time.time()) - int(os.environ['CHECK_START'])} s")
print(f"check-chart: ok ({len(documents)} documents)")
PY
