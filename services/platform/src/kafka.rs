//! Kafka helpers: clients built from one settings block, explicit topic creation, W3C trace
//! context carried in message headers, and dead-letter records.
//!
//! Nothing here depends on the broker being tansu: these are plain Kafka-protocol clients.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Every topic of DESIGN.md §4. Each has a `.dlq` twin.
pub const TOPICS: [&str; 11] = crate::topics::ALL;

/// The largest record a Jinfu producer sends, in bytes (key, value and headers; librdkafka's
/// `message.max.bytes`, set explicitly). Kafka brokers accept 1,048,588 by default, so whatever
/// the producer accepts the broker takes. An outbox row larger than this is parked, not sent
/// (`outbox::relay_once`); banks must keep their records under it too (docs/bank-integration.md).
pub const MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The largest record a Jinfu consumer fetches, in bytes (key, value and headers): librdkafka's
/// `fetch.max.bytes`, set explicitly. A record up to this size is fetched and then refused by
/// the service's own size check (`oversized`, dead-lettered with a bounded copy). Kafka brokers
/// return the first record batch of a fetch even when it is larger than this (KIP-74), but the
/// response must still fit [`CONSUMER_RECEIVE_MAX_BYTES`]; a record beyond that, or one the
/// broker does not serve at all (tansu 0.6.0 serves no record of 5 MiB or more: every fetch is
/// capped at 5 MiB and comes back empty, without an error), stops its partition's fetcher, and
/// [`crate::consumer::IngestContext`] detects the stall and dead-letters the record by its
/// coordinates as `unfetchable`. Kafka's default limits (broker `message.max.bytes`, topic
/// `max.message.bytes`: 1,048,588 bytes) refuse such records at produce time; keep them so on
/// Jinfu's topics. Producers' limits per topic: docs/bank-integration.md, "Record size limits".
pub const CONSUMER_RECORD_MAX_BYTES: usize = 16 * 1024 * 1024;

/// librdkafka's `max.partition.fetch.bytes` (alias `fetch.message.max.bytes`): what a consumer
/// first asks for per partition in one fetch. Above [`MESSAGE_MAX_BYTES`], so any record a
/// Jinfu producer sends fits at once; librdkafka grows it by itself for a larger record, up to
/// [`CONSUMER_RECORD_MAX_BYTES`].
pub const CONSUMER_PARTITION_FETCH_BYTES: usize = 1024 * 1024;

/// librdkafka's `receive.message.max.bytes`: the largest protocol response a consumer accepts,
/// [`CONSUMER_RECORD_MAX_BYTES`] plus 1 MiB of framing (librdkafka needs at least
/// `fetch.max.bytes` + 512). A larger response is refused by the client with an error
/// ("Invalid response size ... receive.message.max.bytes"), logged and counted as a consumer
/// error; it bounds what one fetch can make the service allocate.
pub const CONSUMER_RECEIVE_MAX_BYTES: usize = CONSUMER_RECORD_MAX_BYTES + 1024 * 1024;

/// How often librdkafka reports a consumer's statistics (`statistics.interval.ms`), which the
/// stall detector reads ([`crate::consumer::STALL_AFTER`]).
pub const CONSUMER_STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// The W3C trace-context headers (what the global propagator injects and extracts).
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Headers Jinfu sets on dead-lettered records, beside the original headers.
pub const DLQ_REASON_HEADER: &str = "jinfu-dlq-reason";
pub const DLQ_TOPIC_HEADER: &str = "jinfu-dlq-original-topic";
pub const DLQ_PARTITION_HEADER: &str = "jinfu-dlq-original-partition";
pub const DLQ_OFFSET_HEADER: &str = "jinfu-dlq-original-offset";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    /// Prepended to every topic name. Empty in production; tests use it to isolate runs.
    #[serde(default)]
    pub topic_prefix: String,
    /// Partitions for topics this service creates when they are missing.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// librdkafka's `security.protocol`: `plaintext` (its default, local and tests), `ssl`,
    /// `sasl_plaintext` or `sasl_ssl` (production: TLS with SASL/SCRAM). Unset: not passed.
    #[serde(default)]
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`, e.g. `SCRAM-SHA-512` (what a Strimzi `KafkaUser` with
    /// `authentication: scram-sha-512` gets). Needs `sasl_username` and `sasl_password`.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// From the Kubernetes Secret Strimzi's user operator writes (key `password`).
    #[serde(default)]
    pub sasl_password: Option<SecretString>,
    /// PEM file of the CA that signed the brokers' certificates (`ssl.ca.location`), e.g. the
    /// mounted `<cluster>-cluster-ca-cert` Secret. Unset: the system's CA store.
    #[serde(default)]
    pub ssl_ca_location: Option<String>,
    /// The same CA certificate as PEM text (`ssl.ca.pem`), e.g. from a Secret through an
    /// environment variable, so no volume is needed.
    #[serde(default)]
    pub ssl_ca_pem: Option<String>,
    /// Consumer group session timeout (`session.timeout.ms`, `JINFU_KAFKA__SESSION_TIMEOUT_MS`).
    /// With static membership a replaced pod keeps its partitions only if it is back within
    /// this: set it longer than the pod's termination grace plus its start-up (the chart
    /// derives it so). Unset: [`DEFAULT_SESSION_TIMEOUT_MS`], for local runs and tests, where
    /// a process that died should lose its partitions quickly. The broker bounds it by its
    /// `group.min/max.session.timeout.ms` (Kafka: 6 s to 30 min).
    #[serde(default)]
    pub session_timeout_ms: Option<u64>,
}

/// The session timeout when none is set.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 10_000;

fn default_partitions() -> i32 {
    3
}

impl KafkaSettings {
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.topic_prefix, name)
    }

    /// The settings every client shares: brokers and, when set, TLS and SASL. librdkafka must be
    /// built with SSL (and, for GSSAPI only, Cyrus SASL) for the secure protocols; a build
    /// without it refuses the configuration when the client is created, naming the property.
    fn base(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (name, value) in self.security_config()? {
            config.set(name, value);
        }
        Ok(config)
    }

    /// The security properties passed to librdkafka (only those set), checked for consistency.
    pub fn security_config(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let mut properties = Vec::new();
        if let Some(protocol) = &self.security_protocol {
            let protocol = protocol.to_ascii_lowercase();
            anyhow::ensure!(
                ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&protocol.as_str()),
                "kafka.security_protocol {protocol:?} is not plaintext, ssl, sasl_plaintext or sasl_ssl"
            );
            properties.push(("security.protocol", protocol));
        }
        let sasl = self.security_protocol.as_deref().is_some_and(|protocol| protocol.to_ascii_lowercase().starts_with("sasl_"));
        if let Some(mechanism) = &self.sasl_mechanism {
            anyhow::ensure!(sasl, "kafka.sasl_mechanism is set but kafka.security_protocol is not sasl_ssl or sasl_plaintext");
            properties.push(("sasl.mechanism", mechanism.clone()));
        }
        if sasl && self.sasl_mechanism.as_deref().is_some_and(|mechanism| mechanism.to_ascii_uppercase().starts_with("SCRAM-") || mechanism == "PLAIN") {
            anyhow::ensure!(
                self.sasl_username.is_some() && self.sasl_password.is_some(),
                "kafka.sasl_username and kafka.sasl_password are required for SASL/SCRAM"
            );
        }
        if let Some(username) = &self.sasl_username {
            properties.push(("sasl.username", username.clone()));
        }
        if let Some(password) = &self.sasl_password {
            properties.push(("sasl.password", password.expose_secret().to_owned()));
        }
        if let Some(location) = &self.ssl_ca_location {
            properties.push(("ssl.ca.location", location.clone()));
        }
        if let Some(pem) = self.ssl_ca_pem.as_ref().filter(|pem| !pem.trim().is_empty()) {
            properties.push(("ssl.ca.pem", pem.clone()));
        }
        Ok(properties)
    }

    /// An idempotent producer that waits for all in-sync replicas.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        Ok(self
            .base()?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000")
            .set("message.max.bytes", MESSAGE_MAX_BYTES.to_string())
            .create()?)
    }

    /// A group consumer that never commits by itself: offsets are committed by the service,
    /// after (and as a copy of) the offsets stored in its database.
    /// `instance_id` turns on static membership (KIP-345): a restarted replica with the same id
    /// (a StatefulSet pod name) takes its partitions back at once instead of waiting for the
    /// group to notice the old process died.
    pub fn consumer<C: ConsumerContext + 'static>(&self, group_id: &str, instance_id: Option<&str>, context: C) -> anyhow::Result<StreamConsumer<C>> {
        let mut config = self.base()?;
        if let Some(instance_id) = instance_id {
            config.set("group.instance.id", instance_id);
        }
        Ok(config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.session_timeout_ms.unwrap_or(DEFAULT_SESSION_TIMEOUT_MS).to_string())
            // How long the broker may hold a fetch that has no new data. A broker that holds
            // it for the whole time even when records arrive (tansu 0.6 does) adds up to this
            // to every record's latency: 50 ms made half of the ledger's steady-load latency.
            // 10 ms costs at most 100 empty fetches a second per broker connection when idle.
            .set("fetch.wait.max.ms", "10")
            // Record size limits, consistent with each other (see the constants).
            .set("max.partition.fetch.bytes", CONSUMER_PARTITION_FETCH_BYTES.to_string())
            .set("fetch.max.bytes", CONSUMER_RECORD_MAX_BYTES.to_string())
            .set("receive.message.max.bytes", CONSUMER_RECEIVE_MAX_BYTES.to_string())
            // Per-partition fetch positions, watermarks and queue depths for the stall detector.
            .set("statistics.interval.ms", CONSUMER_STATISTICS_INTERVAL.as_millis().to_string())
            .create_with_context(context)?)
    }

    /// A consumer outside any consumer group with the consumers' own fetch limits, to check
    /// whether a fresh client is served a record a consumer stalled on
    /// ([`crate::consumer::dead_letter_unfetchable`]).
    pub fn probe_consumer(&self) -> anyhow::Result<BaseConsumer> {
        Ok(self
            .base()?
            // librdkafka's assign needs a group id; the probe never joins it nor commits.
            .set("group.id", "jinfu-stall-probe")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "100")
            .set("max.partition.fetch.bytes", CONSUMER_PARTITION_FETCH_BYTES.to_string())
            .set("fetch.max.bytes", CONSUMER_RECORD_MAX_BYTES.to_string())
            .set("receive.message.max.bytes", CONSUMER_RECEIVE_MAX_BYTES.to_string())
            .create()?)
    }

    /// A consumer outside any consumer group, for metadata and watermark queries only.
    pub fn metadata_consumer(&self) -> anyhow::Result<BaseConsumer> {
        Ok(self.base()?.set("enable.auto.commit", "false").create()?)
    }

    /// Creates each topic and its `.dlq` twin (prefixed) that the cluster's metadata does not
    /// list yet, tolerating a topic created meanwhile. Existing topics are not asked for again:
    /// some brokers (tansu on SQLite) take seconds per existing topic to refuse it.
    pub async fn create_topics(&self, names: &[&str], partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.base()?.create()?;
        let wanted: Vec<String> = names.iter().flat_map(|name| [self.topic(name), dlq_topic(&self.topic(name))]).collect();
        // One metadata request per topic (a broker may hold thousands); librdkafka's metadata
        // call blocks, so off the async threads. A topic whose metadata cannot be read is asked
        // for as before.
        let (admin, full_names) = tokio::task::spawn_blocking(move || {
            let missing: Vec<String> = wanted
                .into_iter()
                .filter(|topic| match admin.inner().fetch_metadata(Some(topic), Duration::from_secs(10)) {
                    Ok(metadata) => !metadata.topics().iter().any(|found| found.name() == topic && found.error().is_none() && !found.partitions().is_empty()),
                    Err(_) => true,
                })
                .collect();
            (admin, missing)
        })
        .await?;
        if full_names.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic<'_>> = full_names.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1))).collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(new_topics.iter(), &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                // In production topics come from KafkaTopic resources and the services' Kafka
                // users may not create topics (docs/kubernetes.md, Kafka users and ACLs):
                // producing or consuming then says whether the topic is there.
                Err((topic, RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed)) => {
                    tracing::info!(topic = %topic, "not allowed to create topics; expecting the topic to be managed outside the service");
                }
                Err((topic, code)) => anyhow::bail!("creating topic {topic} failed: {code}"),
            }
        }
        Ok(())
    }
}

pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

struct HeaderInjector(Vec<(String, String)>);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// The current span's W3C trace context (`traceparent`, `tracestate`) as header pairs.
pub fn current_trace_headers() -> Vec<(String, String)> {
    let context = tracing::Span::current().context();
    let mut injector = HeaderInjector(Vec::new());
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut injector));
    injector.0
}

/// Adds the current trace context to a record's headers.
pub fn with_trace_context(mut headers: OwnedHeaders) -> OwnedHeaders {
    for (key, value) in current_trace_headers() {
        headers = headers.insert(Header { key: &key, value: Some(value.as_bytes()) });
    }
    headers
}

struct HeaderExtractor<'a>(&'a BorrowedHeaders);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|header| header.key == key).and_then(|header| header.value).and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// Makes `span` a child of the trace context carried by a consumed record, if any.
pub fn adopt_trace_context(span: &tracing::Span, headers: Option<&BorrowedHeaders>) {
    if let Some(headers) = headers {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
        let _ = span.set_parent(parent);
    }
}

struct PairExtractor<'a>(&'a [(String, Vec<u8>)]);

impl Extractor for PairExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name == key).and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// Makes `span` a child of the trace context carried by owned header pairs (a consumed record
/// kept for a batch, or a stored outbox row). Returns whether the pairs carried a valid context;
/// if not, `span` keeps its own parent. Call it before the span is entered or its context read:
/// afterwards the OpenTelemetry span has started and its parent can no longer change.
pub fn adopt_trace_context_from_pairs(span: &tracing::Span, pairs: &[(String, Vec<u8>)]) -> bool {
    if !pairs.iter().any(|(name, _)| name == TRACE_HEADERS[0]) {
        return false;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&PairExtractor(pairs)));
    if !parent.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(parent).is_ok()
}

/// Makes `span` the root of a new trace, whatever its `tracing` parent (which log lines keep
/// showing). For a record that arrived without trace context but must still be a trace of its
/// own rather than part of its batch's. Call it before the span is entered or its context read.
pub fn start_new_trace(span: &tracing::Span) {
    let _ = span.set_parent(opentelemetry::Context::new());
}

/// Replaces the trace-context headers of `pairs` with the current span's, so the record names
/// the span that sends it. Without an exporting tracer the current span has no context; then
/// the pairs are left as they are.
pub fn replace_trace_context(pairs: &mut Vec<(String, Vec<u8>)>) {
    let current = current_trace_headers();
    if current.is_empty() {
        return;
    }
    pairs.retain(|(name, _)| !TRACE_HEADERS.contains(&name.as_str()));
    pairs.extend(current.into_iter().map(|(name, value)| (name, value.into_bytes())));
}

/// Reads one header as UTF-8.
pub fn header_text<'a>(headers: Option<&'a BorrowedHeaders>, key: &str) -> Option<&'a str> {
    headers?.iter().find(|header| header.key == key).and_then(|header| header.value).and_then(|value| std::str::from_utf8(value).ok())
}

/// All headers of a consumed record as owned pairs, to be stored or forwarded.
pub fn header_pairs(headers: Option<&BorrowedHeaders>) -> Vec<(String, Vec<u8>)> {
    headers
        .map(|headers| headers.iter().map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
        .unwrap_or_default()
}

/// The most of an original record's value a dead-letter record carries, in bytes.
pub const DLQ_VALUE_MAX_BYTES: usize = 64 * 1024;
/// The most of an original record's headers a dead-letter record carries, in bytes (names and
/// values); beyond it only the trace-context headers are kept.
pub const DLQ_HEADERS_MAX_BYTES: usize = 16 * 1024;
/// The longest reason, in characters: the stable code first, the sentence cut at a word.
pub const DLQ_REASON_MAX_CHARS: usize = 1000;
/// The original value's length in bytes (decimal).
pub const DLQ_ORIGINAL_LENGTH_HEADER: &str = "jinfu-dlq-original-length";
/// SHA-256 of the whole original value (64 lower-case hex digits).
pub const DLQ_ORIGINAL_SHA256_HEADER: &str = "jinfu-dlq-original-sha256";
/// `true` when the value is only a prefix of the original, `false` when it is all of it.
pub const DLQ_TRUNCATED_HEADER: &str = "jinfu-dlq-truncated";

/// A dead-letter record: at most [`DLQ_VALUE_MAX_BYTES`] of the original value, the original
/// headers (up to [`DLQ_HEADERS_MAX_BYTES`]), the reason and the original coordinates, the
/// original length and SHA-256. Bounded whatever the original's size, so it always fits under
/// [`MESSAGE_MAX_BYTES`] and the relay can always publish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where a refused record came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Builds the dead-letter record of a refused record; see [`DeadLetter`].
pub fn dead_letter(value: &[u8], original_headers: &[(String, Vec<u8>)], reason: &str, origin: Origin<'_>) -> DeadLetter {
    let kept: Vec<(String, Vec<u8>)> = original_headers.iter().filter(|(key, _)| !key.starts_with("jinfu-dlq-")).cloned().collect();
    let kept_bytes: usize = kept.iter().map(|(key, value)| key.len() + value.len()).sum();
    let mut headers = if kept_bytes <= DLQ_HEADERS_MAX_BYTES {
        kept
    } else {
        kept.into_iter().filter(|(key, value)| TRACE_HEADERS.contains(&key.as_str()) && value.len() <= 512).collect()
    };
    let truncated = value.len() > DLQ_VALUE_MAX_BYTES;
    headers.push((DLQ_REASON_HEADER.into(), crate::fields::clip(reason, DLQ_REASON_MAX_CHARS).into_bytes()));
    headers.push((DLQ_TOPIC_HEADER.into(), origin.topic.as_bytes().to_vec()));
    headers.push((DLQ_PARTITION_HEADER.into(), origin.partition.to_string().into_bytes()));
    headers.push((DLQ_OFFSET_HEADER.into(), origin.offset.to_string().into_bytes()));
    headers.push((DLQ_ORIGINAL_LENGTH_HEADER.into(), value.len().to_string().into_bytes()));
    headers.push((DLQ_ORIGINAL_SHA256_HEADER.into(), hex::encode(jinfu_ledger::chain::sha256(value)).into_bytes()));
    headers.push((DLQ_TRUNCATED_HEADER.into(), truncated.to_string().into_bytes()));
    DeadLetter { value: value[..value.len().min(DLQ_VALUE_MAX_BYTES)].to_vec(), headers }
}

pub fn owned_headers(pairs: &[(String, Vec<u8>)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new_with_capacity(pairs.len()), |headers, (key, value)| headers.insert(Header { key, value: Some(value.as_slice()) }))
}

/// The broker's or the client's refusal of a record that sending again cannot change (too large,
/// invalid, not allowed), as a stable code; `None` for failures that may pass (timeouts, a broker
/// away, a leader moving), which are retried.
pub fn permanent_produce_error(error: &rdkafka::error::KafkaError) -> Option<&'static str> {
    let code = error.rdkafka_error_code()?;
    Some(match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge | RDKafkaErrorCode::InvalidMessageSize => "too_large",
        RDKafkaErrorCode::InvalidMessage | RDKafkaErrorCode::InvalidRecord => "invalid_record",
        RDKafkaErrorCode::InvalidTopic => "invalid_topic",
        RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed => "not_authorised",
        RDKafkaErrorCode::PolicyViolation => "policy_violation",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_settings_reach_librdkafka_only_when_set_and_scram_needs_credentials() {
        let plain = KafkaSettings { brokers: "127.0.0.1:9092".into(), ..KafkaSettings::default() };
        assert!(plain.security_config().unwrap().is_empty());
        let scram = KafkaSettings {
            security_protocol: Some("SASL_SSL".into()),
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("jinfu-ledger".into()),
            sasl_password: Some(SecretString::from("s3cret")),
            ssl_ca_location: Some("/etc/kafka-ca/ca.crt".into()),
            ..plain.clone()
        };
        let names: Vec<&str> = scram.security_config().unwrap().iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["security.protocol", "sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location"]);
        assert!(!format!("{scram:?}").contains("s3cret"), "the password never prints");
        let no_password = KafkaSettings { sasl_password: None, ..scram.clone() };
        assert!(no_password.security_config().is_err());
        let mechanism_without_sasl = KafkaSettings { security_protocol: Some("ssl".into()), ..scram.clone() };
        assert!(mechanism_without_sasl.security_config().is_err());
        let unknown = KafkaSettings { security_protocol: Some("tls".into()), ..plain };
        assert!(unknown.security_config().is_err());
    }
}
