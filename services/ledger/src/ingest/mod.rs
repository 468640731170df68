//! Ingestion of bank credit notices: the hot path.
//!
//! Records are consumed in batches ([`receive`]). A batch is first validated ([`validate`]:
//! size, signature, JSON, schema, registered account and centre; on every core, while the batch
//! before it is in PostgreSQL), then applied in ONE PostgreSQL transaction ([`post`]) that locks
//! the batch's partition offsets, skips records applied before, stores new notices (unique per
//! bank + serial), matches them, appends balanced entries to each centre's hash chain, updates
//! balances (aggregated per batch, so the centre's bank account row is written once per batch,
//! not once per notice), records collusion leads, writes outbox rows (events and dead letters),
//! and stores the next offsets. A crash anywhere before the commit applies nothing; after it,
//! the stored offsets make every redelivered record a no-op. Kafka's own committed offsets are
//! only a copy, written after the database commit.
//!
//! Failures ([`jinfu_platform::retry`]): a transient one (the database unavailable) retries the
//! same batch until it passes or the service shuts down. A permanent one — an invariant
//! violation such as an entry that does not balance or a balance the database refuses, or a
//! bug — stops ingestion at once: [`run_consumer`] returns a [`BatchFailed`] naming topic,
//! partitions and offsets, centre, and the account and record where known, and the service's
//! supervisor takes the process out of service. The failed batch is neither applied, nor
//! stored, nor committed, nor retried; after the fix it is applied exactly once.
//!
//! Tracing: every record gets its own `receive_credit_notice` span, a child of the W3C trace
//! context in the record's headers (the bank's span), and every new notice a
//! `post_credit_notice` span under it, whose context its outbox events carry. So one notice is
//! one trace, from the bank through posting to the relay and on to consumers of
//! `ledger.events`. The batch span `apply_credit_notice_batch` is a trace of its own; each
//! notice's receive span links to it (an OpenTelemetry span link, "follows from").

mod failure;
mod post;
mod receive;
mod registry;
mod validate;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::kafka;
use jinfu_platform::retry::Failure;
use jinfu_platform::signing::VerifyingKey;
use jinfu_platform::topics;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{error, info, warn, Instrument};

pub use failure::{BatchFailed, OffsetRanges};
pub use jinfu_platform::consumer::{IngestContext, Record};
pub(crate) use post::post_notices;
pub use post::{apply_batch, apply_batch_with_retry};
pub use receive::{receive_span, PreparedBatch};
pub use registry::RegistryData;
pub(crate) use writer::BatchWriter;

use crate::settings::{FaultSettings, Settings};
use receive::{prepared, receive_batch, BatchLimits, Received};

/// Topic names and settings a batch needs.
pub struct BatchContext<'a> {
    pub group_id: &'a str,
    pub topic: &'a str,
    pub dead_letter_topic: &'a str,
    pub events_topic: &'a str,
    pub fault: &'a FaultSettings,
    pub batch_number: u64,
    /// Partitions whose position has not been checked against the stored offset since they
    /// were assigned. Only for these can a record beyond the stored offset mean "the consumer
    /// started too far"; afterwards gaps are normal (compaction, transaction markers).
    pub unchecked_partitions: &'a HashSet<i32>,
}

/// What one batch did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct BatchReport {
    /// Records at or after the stored offset, i.e. not already applied.
    pub considered: usize,
    /// Records below the stored offset, skipped because they were applied before.
    pub already_applied: usize,
    pub new_notices: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub dead_lettered: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Dead-lettered records by refusal code.
    pub dead_letter_reasons: BTreeMap<&'static str, usize>,
    /// Partitions whose first record lies beyond the stored offset: the consumer must seek back.
    pub rewinds: Vec<(i32, i64)>,
    /// Partitions checked against the stored offset in this batch.
    pub checked_partitions: Vec<i32>,
    /// Next offset per partition after this batch.
    pub next_offsets: BTreeMap<i32, i64>,
}

/// What the credit-notice consumer works with, set up once.
struct Ingest {
    pool: PgPool,
    settings: Settings,
    consumer: StreamConsumer<IngestContext>,
    topic: String,
    dead_letter_topic: String,
    events_topic: String,
    keys: Arc<HashMap<String, VerifyingKey>>,
    limits: BatchLimits,
}

/// Consumes `bank.credit-notices` until `shutdown` turns true, finishing the batch in hand.
///
/// Pipelined: while batch N is in its PostgreSQL transaction, batch N+1 is received and
/// validated (signatures on every core). Batches still commit one after another, in order, so
/// exactly-once holds as before; only the CPU work of the next batch overlaps the database work
/// of this one. If batch N finds a partition that must be re-read from its stored offset (after
/// an assignment), batch N+1 is dropped unapplied and its partitions are sought back.
///
/// Returns a [`BatchFailed`] (inside the `anyhow::Error`) when a batch fails permanently.
pub async fn run_consumer(pool: PgPool, settings: Settings, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let ingest = Ingest::start(pool, settings).await?;
    let topic = &ingest.topic;
    let mut unchecked_partitions: HashSet<i32> = HashSet::new();
    // Nothing is in flight before the first batch.
    let (_idle, idle) = watch::channel(true);
    let mut next = match ingest.receive(&mut shutdown, idle.clone(), 1).await {
        Ok(next) => next,
        Err(failure) => return ingest.stopped(failure),
    };
    while let Some(batch) = next.take() {
        unchecked_partitions.extend(ingest.consumer.context().take_assigned());
        let (applied, following) = ingest.apply_while_receiving(&batch, &unchecked_partitions, &mut shutdown).await;
        let report = match applied {
            Ok(report) => report,
            Err(Failure::Transient(_)) => {
                info!(batch = batch.number, "credit-notice consumer stopped while the database was unavailable; the batch is received again after the restart");
                return Ok(());
            }
            Err(Failure::Permanent(source)) => {
                let failed = anyhow::Error::new(failure::batch_failed(topic, &batch, source));
                error!(error = %format!("{failed:#}"), "a credit-notice batch failed permanently; ingestion stops");
                return Err(failed);
            }
        };
        for partition in &report.checked_partitions {
            unchecked_partitions.remove(partition);
        }
        next = match following {
            Ok(received) => received.map(|received| prepared(topic, batch.number + 1, received)),
            Err(failure) => return ingest.stopped(failure),
        };
        if report.rewinds.is_empty() {
            continue;
        }
        if let Some(stale) = next.take() {
            // Received while the seek happened: some of it lies beyond the stored offset.
            seek_back(&ingest.consumer, topic, &stale, &report.rewinds);
            // Checked again against the stored offsets, so that a seek that failed cannot
            // leave a gap: the next batch's first record of each is compared and rewound.
            unchecked_partitions.extend(stale.records.iter().map(|record| record.partition));
            next = match ingest.receive(&mut shutdown, idle.clone(), stale.number).await {
                Ok(next) => next,
                Err(failure) => return ingest.stopped(failure),
            };
        }
    }
    info!("credit-notice consumer stopped after finishing its batch");
    Ok(())
}

impl Ingest {
    async fn start(pool: PgPool, settings: Settings) -> anyhow::Result<Ingest> {
        let topic = settings.kafka.topic(topics::BANK_CREDIT_NOTICES);
        let dead_letter_topic = kafka::dlq_topic(&topic);
        let events_topic = settings.kafka.topic(topics::LEDGER_EVENTS);
        let keys = Arc::new(settings.bank_keys()?);
        let ingest_settings = &settings.ingest;
        let consumer: StreamConsumer<IngestContext> =
            settings.kafka.consumer(&ingest_settings.group_id, ingest_settings.instance_id.as_deref(), IngestContext::default())?;
        jinfu_platform::consumer::subscribe_or_assign(&consumer, &pool, ingest_settings.assignment, &ingest_settings.group_id, &topic).await?;
        if ingest_settings.assignment == jinfu_platform::consumer::Assignment::Manual {
            // Positions come from the database; nothing to re-check.
            consumer.context().take_assigned();
        }
        info!(topic = %topic, group = %ingest_settings.group_id, "credit-notice consumer started");
        let limits = BatchLimits { records_max: ingest_settings.batch_size_max, wait: Duration::from_millis(ingest_settings.batch_wait_ms) };
        Ok(Ingest { pool, settings, consumer, topic, dead_letter_topic, events_topic, keys, limits })
    }

    /// Receives the next batch, numbered `number`.
    async fn receive(&self, shutdown: &mut watch::Receiver<bool>, previous_done: watch::Receiver<bool>, number: u64) -> Result<Option<PreparedBatch>, Failure> {
        let received =
            receive_batch(&self.consumer, &self.pool, &self.settings.kafka, &self.settings.ingest.group_id, &self.keys, shutdown, previous_done, self.limits)
                .await?;
        Ok(received.map(|received| prepared(&self.topic, number, received)))
    }

    /// Applies `batch` (then notes its offsets in Kafka) while the next batch is received. If
    /// the batch fails, the next one is abandoned half-received: nothing of it was applied.
    async fn apply_while_receiving(
        &self,
        batch: &PreparedBatch,
        unchecked_partitions: &HashSet<i32>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> (Result<BatchReport, Failure>, Result<Option<Received>, Failure>) {
        let context = BatchContext {
            group_id: &self.settings.ingest.group_id,
            topic: &self.topic,
            dead_letter_topic: &self.dead_letter_topic,
            events_topic: &self.events_topic,
            fault: &self.settings.fault,
            batch_number: batch.number,
            unchecked_partitions,
        };
        let (done_sender, done) = watch::channel(false);
        let mut retry_shutdown = shutdown.clone();
        let mut applying = pin!(async {
            let applied = apply_batch_with_retry(&self.pool, &context, batch, &mut retry_shutdown).instrument(batch.span.clone()).await;
            if let Ok(report) = &applied {
                finish_batch(&self.consumer, &self.topic, batch, report);
                // The receiver may have dropped its end already (shutdown): nothing to tell then.
                let _ = done_sender.send(true);
            }
            applied
        });
        let mut receiving =
            pin!(receive_batch(&self.consumer, &self.pool, &self.settings.kafka, &self.settings.ingest.group_id, &self.keys, shutdown, done, self.limits));
        let mut following = None;
        let applied = loop {
            tokio::select! {
                applied = &mut applying => break applied,
                received = &mut receiving, if following.is_none() => following = Some(received),
            }
        };
        if applied.is_err() {
            return (applied, Ok(None));
        }
        let following = match following {
            Some(following) => following,
            None => receiving.await,
        };
        (applied, following)
    }

    /// The end of the consumer after `failure` outside a batch (loading the registry).
    fn stopped(&self, failure: Failure) -> anyhow::Result<()> {
        match failure {
            Failure::Transient(_) => {
                info!("credit-notice consumer stopped while the database was unavailable");
                Ok(())
            }
            Failure::Permanent(error) => {
                error!(error = %format!("{error:#}"), topic = %self.topic, "loading the collection accounts failed permanently; ingestion stops");
                Err(error.context(format!("receiving credit notices from {}", self.topic)))
            }
        }
    }
}

/// After a batch committed: metrics, seeks back for partitions that started too far, and the
/// copy of the offsets in Kafka.
fn finish_batch(consumer: &StreamConsumer<IngestContext>, topic: &str, batch: &PreparedBatch, report: &BatchReport) {
    crate::observe::record_batch(topic, batch.records.len(), batch.received_at.elapsed(), report);
    tracing::debug!(?report, "batch applied");
    for (partition, offset) in &report.rewinds {
        if let Err(error) = consumer.seek(topic, *partition, Offset::Offset(*offset), Duration::from_secs(10)) {
            warn!(error = %error, partition, offset, "seek back to the stored offset failed");
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in &report.next_offsets {
        if let Err(error) = offsets.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
            warn!(error = %error, partition, "could not note the offset copy for Kafka");
        }
    }
    if offsets.count() > 0 {
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            warn!(error = %error, "committing the offset copy to Kafka failed; the database holds the truth");
        }
    }
}

/// Puts every partition of a batch that will not be applied back where the batch began (for a
/// partition just rewound, at the stored offset), so its records are received again.
fn seek_back(consumer: &StreamConsumer<IngestContext>, topic: &str, batch: &PreparedBatch, rewinds: &[(i32, i64)]) {
    let mut starts: BTreeMap<i32, i64> = BTreeMap::new();
    for record in &batch.records {
        let start = starts.entry(record.partition).or_insert(record.offset);
        *start = (*start).min(record.offset);
    }
    for (partition, offset) in rewinds {
        starts.insert(*partition, *offset);
    }
    for (partition, offset) in starts {
        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10)) {
            warn!(error = %error, partition, offset, "seek back before an unapplied batch failed");
        }
    }
}
