//! Receiving credit notices from Kafka in batches, validating each chunk of a batch on the
//! blocking pool as soon as it is received.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jinfu_platform::kafka::{self, KafkaSettings};
use jinfu_platform::retry::Failure;
use jinfu_platform::signing::VerifyingKey;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::field::Empty;
use tracing::{warn, Span};

use super::registry::{load_registry_with_retry, RegistryData};
use super::validate::validate_all;
use super::{IngestContext, Record};
use crate::notice::{CreditNotice, Refusal, Registry};

/// A batch received from Kafka and validated, ready to apply.
pub struct PreparedBatch {
    pub number: u64,
    pub records: Vec<Record>,
    /// One `receive_credit_notice` span per record (see [`receive_span`]), in record order.
    pub spans: Vec<Span>,
    /// Each record's validation (size, signature, JSON, schema, registered account and centre),
    /// in record order.
    pub validated: Vec<Result<CreditNotice, Refusal>>,
    /// The batch's own span, a trace of its own: its records come from many banks' traces.
    pub span: Span,
    pub received_at: Instant,
    /// The collection accounts and centres `validated` was checked against, loaded when the
    /// batch's first record arrived; the batch transaction re-reads them and validates again if
    /// they changed since (a bank account registered or its signing key changed meanwhile).
    pub registry: Arc<RegistryData>,
    pub keys: Arc<HashMap<String, VerifyingKey>>,
}

/// Records are validated in chunks of this many, each on the blocking pool as soon as it is
/// received, so validation runs on every core while the batch before is in PostgreSQL.
const VALIDATION_CHUNK: usize = 256;

type Validated = (Vec<Record>, Vec<Result<CreditNotice, Refusal>>);

/// A batch as [`receive_batch`] returns it.
pub(super) struct Received {
    records: Vec<Record>,
    validated: Vec<Result<CreditNotice, Refusal>>,
    received_at: Instant,
    registry: Arc<RegistryData>,
    keys: Arc<HashMap<String, VerifyingKey>>,
}

/// How large a batch may grow and how long it waits for more records.
#[derive(Clone, Copy)]
pub(super) struct BatchLimits {
    pub records_max: usize,
    pub wait: Duration,
}

/// Receives and validates the next batch. Waits for a first record (or for `shutdown`:
/// `Ok(None)`); then goes on receiving until the batch holds `records_max` records, or until
/// `wait` has passed since the first record and `previous_done` is true (the batch before has
/// committed). So under load a batch grows while its predecessor is in the database (fewer,
/// larger transactions), and under light load it closes after `wait` (low latency). Fails only
/// if the registry cannot be loaded (permanently, or transiently until shutdown).
///
/// While waiting for a first record, a partition found stalled on a record the client cannot
/// fetch ([`jinfu_platform::consumer::Stall`]) has that record dead-lettered by its coordinates
/// (`unfetchable`) and is moved past it, once every record before it is applied and no batch is
/// in flight.
// The consumer's own handles (consumer, pool, Kafka settings, group) and the batch's: grouping
// them in a struct would only move the list.
#[allow(clippy::too_many_arguments)]
pub(super) async fn receive_batch(
    consumer: &StreamConsumer<IngestContext>,
    pool: &PgPool,
    kafka: &KafkaSettings,
    group_id: &str,
    keys: &Arc<HashMap<String, VerifyingKey>>,
    shutdown: &mut watch::Receiver<bool>,
    previous_done: watch::Receiver<bool>,
    limits: BatchLimits,
) -> Result<Option<Received>, Failure> {
    let first = loop {
        let received = tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            received = consumer.recv() => received,
            stalls = consumer.context().stalls() => {
                // Only with no batch in flight: a record the batch before holds must be applied
                // (or not) before its partition's stored offset can say what was skipped. A
                // lasting stall is reported again at the next statistics report.
                if !*previous_done.borrow() {
                    continue;
                }
                for stall in &stalls {
                    if let Err(error) = jinfu_platform::consumer::dead_letter_unfetchable(pool, consumer, kafka, group_id, stall).await {
                        warn!(error = %format!("{error:#}"), topic = %stall.topic, partition = stall.partition, offset = stall.offset, "dead-lettering an unfetchable record failed; tried again at the next statistics report");
                    }
                }
                continue;
            }
        };
        match received {
            Ok(message) => break Record::from_message(&message),
            Err(error) => warn!(error = %error, "consumer error"),
        }
    };
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limits.wait;
    let registry = Arc::new(load_registry_with_retry(pool, shutdown).await?);
    let validator = ChunkValidator { registry: Arc::clone(&registry), keys: Arc::clone(keys) };
    let chunks = receive_chunks(consumer, first, &validator, previous_done, limits.records_max, deadline).await;
    let mut records = Vec::new();
    let mut validated = Vec::new();
    for chunk in chunks {
        let (chunk_records, chunk_validated) = chunk.await.expect("validating records does not panic");
        records.extend(chunk_records);
        validated.extend(chunk_validated);
    }
    Ok(Some(Received { records, validated, received_at: started, registry, keys: Arc::clone(keys) }))
}

/// Validates chunks of records on the blocking pool against one registry.
struct ChunkValidator {
    registry: Arc<RegistryData>,
    keys: Arc<HashMap<String, VerifyingKey>>,
}

impl ChunkValidator {
    fn spawn(&self, chunk: Vec<Record>) -> JoinHandle<Validated> {
        let registry = Arc::clone(&self.registry);
        let keys = Arc::clone(&self.keys);
        tokio::task::spawn_blocking(move || {
            let registry = Registry { accounts: &registry.0, centres: &registry.1, keys: &keys };
            let validated = validate_all(&chunk, &registry);
            (chunk, validated)
        })
    }
}

/// Receives records after `first` until the batch is full, or `deadline` has passed and the
/// batch before has committed; each full chunk goes to validation at once.
async fn receive_chunks(
    consumer: &StreamConsumer<IngestContext>,
    first: Record,
    validator: &ChunkValidator,
    mut previous_done: watch::Receiver<bool>,
    records_max: usize,
    deadline: tokio::time::Instant,
) -> Vec<JoinHandle<Validated>> {
    let mut chunks = Vec::new();
    let mut pending: Vec<Record> = Vec::with_capacity(VALIDATION_CHUNK);
    pending.push(first);
    let mut count = 1;
    while count < records_max {
        let waited = tokio::time::Instant::now() >= deadline;
        if waited && *previous_done.borrow_and_update() {
            break;
        }
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => {
                    pending.push(Record::from_message(&message));
                    count += 1;
                    if pending.len() == VALIDATION_CHUNK {
                        chunks.push(validator.spawn(std::mem::replace(&mut pending, Vec::with_capacity(VALIDATION_CHUNK))));
                    }
                }
                Err(error) => warn!(error = %error, "consumer error"),
            },
            () = tokio::time::sleep_until(deadline), if !waited => {}
            changed = previous_done.changed(), if waited => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    if !pending.is_empty() {
        chunks.push(validator.spawn(pending));
    }
    chunks
}

/// Opens the spans of a received batch.
pub(super) fn prepared(topic: &str, number: u64, received: Received) -> PreparedBatch {
    let Received { records, validated, received_at, registry, keys } = received;
    let span = tracing::info_span!(parent: None, "apply_credit_notice_batch", batch = number, records = records.len());
    let spans = records.iter().map(|record| receive_span(topic, record, &span)).collect();
    PreparedBatch { number, records, spans, validated, span, received_at, registry, keys }
}

/// The span of one consumed credit notice: a child of the trace context in the record's
/// headers (the bank's span), or, for a record without one (`traceparent` is optional for
/// banks), the root of a new trace; either way linked to the batch it was applied in. In log
/// lines it sits under the batch span. The `outcome` field is filled in when the batch decides.
pub fn receive_span(topic: &str, record: &Record, batch: &Span) -> Span {
    let span = tracing::info_span!(
        parent: batch,
        "receive_credit_notice",
        otel.kind = "consumer",
        messaging.destination.name = topic,
        messaging.kafka.partition = record.partition,
        messaging.kafka.offset = record.offset,
        outcome = Empty,
    );
    if !kafka::adopt_trace_context_from_pairs(&span, &record.headers) {
        kafka::start_new_trace(&span);
    }
    span.follows_from(batch);
    span
}
