//! Consuming Kafka exactly once into PostgreSQL, for every service: each record is applied in
//! a transaction together with its partition's next offset (table `consumer_offsets` in the
//! service's schema), so a redelivered record is a no-op; a refused record goes to
//! `<topic>.dlq` through the outbox (with the reason in its headers) and is kept in
//! `dead_letters`. Kafka's committed offsets are only a copy. The records already buffered when
//! one arrives (at most [`BATCH_MAX`]) share its transaction — each under its own savepoint, each
//! partition's offset locked and stored once — so a quiet topic costs one transaction per record
//! and a busy one a fraction of that. The ledger's credit-notice path batches on its own with the
//! same [`Record`] and [`IngestContext`].
//!
//! Records of the platform's own event topics ([`SIGNED_EVENT_TOPICS`]) are signed by the
//! publishing service's outbox relay; their consumer must wrap its handler in [`Verified`],
//! which checks the signature against the publisher's trusted public keys before the handler
//! runs and dead-letters what fails (`missing_signature`, `unknown_signing_key`,
//! `bad_signature`). [`run`] refuses to start a consumer of those topics without it.
//! `trading.events` comes from the e-trading system, not a Jinfu service, and is not signed.
//!
//! Each record is applied in a `consume_record` span, a child of the trace context in its
//! headers, so what a handler writes to the outbox continues the producer's trace.
//!
//! Record sizes (issue 12): consumers fetch records of up to [`kafka::CONSUMER_RECORD_MAX_BYTES`]
//! (16 MiB) and their handlers refuse what is over their topic's limit (`oversized`). A record
//! the client cannot fetch at all — larger than that, or one the broker stores but does not serve
//! (tansu 0.6.0 serves nothing of 5 MiB or more, silently) — would stop its partition without a
//! word: [`IngestContext`] watches librdkafka's statistics for a partition whose fetch position
//! stays behind the high watermark with nothing buffered ([`STALL_AFTER`]), logs it and counts
//! it, and the consumer loops dead-letter that record by its coordinates
//! ([`dead_letter_unfetchable`], reason `unfetchable`) and go on after it.
//!
//! Failures (see [`crate::retry`]): a transient one (the database unavailable) retries the same
//! records (the whole transaction) until they pass or the service shuts down; a permanent one
//! (an invariant violation, a bug) stops the consumer at once with a [`RecordFailed`] naming
//! topic, partition and offset of the record it happened on. The failed record's offset is neither stored nor committed, so after the fix it is
//! applied exactly once; it is never skipped and never retried in a loop.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Deserialize;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

use crate::kafka::{self, KafkaSettings};
use crate::metrics::DLQ_MESSAGES;
use crate::outbox::OutboxRows;
use crate::retry::{self, Failure};
use crate::signing::EventVerifier;
use crate::topics;

mod apply;

pub use apply::BATCH_MAX;
use apply::{apply_batch, AtRecord};

/// The topics Jinfu services publish through their outbox, signed: every consumer of one
/// verifies the publisher's signature ([`Verified`]). Not `trading.events` (the e-trading
/// system's) nor the banks' topics (checked by their own handlers against bank keys).
pub const SIGNED_EVENT_TOPICS: [&str; 5] =
    [topics::LEDGER_EVENTS, topics::GUARANTEE_EVENTS, topics::LOAN_EVENTS, topics::CONTRACT_EVENTS, topics::CREDIT_EVENTS];

/// How a service's consumers get their partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    /// Partitions shared by the replicas of a consumer group.
    #[default]
    Group,
    /// This one process reads every partition itself, resuming from the offsets stored in the
    /// database, with no group coordinator involved (one replica only).
    Manual,
}

/// What a consumer needs besides its topic, group and handler.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub kafka: KafkaSettings,
    pub assignment: Assignment,
    /// Static group membership id (the pod name); each consumer appends its topic.
    pub instance_id: Option<String>,
}

/// One consumed record, owned so that a batch outlives the consumer's buffers.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<DateTime<Utc>>,
}

impl Record {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Record {
        Record {
            partition: message.partition(),
            offset: message.offset(),
            value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: kafka::header_pairs(message.headers()),
            timestamp: message.timestamp().to_millis().and_then(DateTime::from_timestamp_millis),
        }
    }

    /// A header's value as UTF-8 text, if present and valid.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.iter().find(|(name, _)| name == key).and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// How long a partition's fetcher may stay at one offset, with the broker's high watermark
/// ahead and nothing buffered for the service, before the record there counts as unfetchable
/// (larger than [`kafka::CONSUMER_RECORD_MAX_BYTES`], or not served by the broker at all) and is
/// dead-lettered by its coordinates. Checked every [`kafka::CONSUMER_STATISTICS_INTERVAL`].
pub const STALL_AFTER: Duration = Duration::from_secs(20);

/// A partition whose fetcher stopped at `offset` although the broker holds records up to
/// `high_watermark`: the record at `offset` cannot be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub low_watermark: i64,
    pub high_watermark: i64,
}

/// A partition behind its high watermark, as the stall detector last saw it.
struct Watched {
    /// The fetch position.
    offset: i64,
    /// Since when the position has not moved.
    since: Instant,
    /// Whether the stall was logged and counted already.
    reported: bool,
}

/// Notes rebalances, so the consumer re-checks newly assigned partitions against the offsets
/// stored in the database; and watches librdkafka's statistics for stalled partitions
/// ([`Stall`], [`STALL_AFTER`]), which the consumer loops take with [`IngestContext::stalls`].
#[derive(Default)]
pub struct IngestContext {
    assigned: std::sync::Mutex<Vec<i32>>,
    /// Per (topic, partition) behind its high watermark: the fetch position, since when it has
    /// not moved, and whether the stall was reported already.
    watched: std::sync::Mutex<HashMap<(String, i32), Watched>>,
    stalls: std::sync::Mutex<Vec<Stall>>,
    stalled: tokio::sync::Notify,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let stalls = self.note_statistics(&statistics, Instant::now());
        if stalls.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.stalls.lock() {
            *pending = stalls;
        }
        self.stalled.notify_one();
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let code = error.rdkafka_error_code().map(|code| format!("{code:?}")).unwrap_or_else(|| "other".into());
        metrics::counter!(crate::metrics::CONSUMER_ERRORS, "code" => code).increment(1);
        tracing::error!(error = %error, reason, "Kafka consumer error");
    }
}

impl IngestContext {
    /// Reads one statistics report; returns the partitions stalled for [`STALL_AFTER`] or more.
    /// A partition is watched while its fetcher is active, nothing of it waits in the client's
    /// queue and the broker's high watermark is beyond its fetch position; it stalls when that
    /// position has not moved for [`STALL_AFTER`]. A slow service does not stall its partitions
    /// (their records wait in the queue), nor does a busy one (the position moves).
    fn note_statistics(&self, statistics: &rdkafka::Statistics, now: Instant) -> Vec<Stall> {
        let Ok(mut watched) = self.watched.lock() else { return Vec::new() };
        let mut behind = HashSet::new();
        let mut stalls = Vec::new();
        for (topic, topic_statistics) in &statistics.topics {
            for (partition, stats) in &topic_statistics.partitions {
                let waiting = stats.fetch_state == "active" && stats.next_offset >= 0 && stats.hi_offset > stats.next_offset && stats.fetchq_cnt == 0;
                if *partition < 0 || !waiting {
                    continue;
                }
                let key = (topic.clone(), *partition);
                behind.insert(key.clone());
                let fresh = Watched { offset: stats.next_offset, since: now, reported: false };
                let entry = watched.entry(key).or_insert(fresh);
                if entry.offset != stats.next_offset {
                    *entry = Watched { offset: stats.next_offset, since: now, reported: false };
                    continue;
                }
                if now.duration_since(entry.since) < STALL_AFTER {
                    continue;
                }
                if !entry.reported {
                    entry.reported = true;
                    metrics::counter!(crate::metrics::CONSUMER_STALLS, "topic" => topic.clone()).increment(1);
                    tracing::error!(
                        topic = %topic,
                        partition,
                        offset = stats.next_offset,
                        high_watermark = stats.hi_offset,
                        fetch_max_bytes = kafka::CONSUMER_RECORD_MAX_BYTES,
                        "a partition is stalled: the broker holds records beyond this offset but serves none; the record there is larger than the consumer fetches, or the broker does not serve it; unless a fresh client is served it, it is dead-lettered as unfetchable"
                    );
                }
                stalls.push(Stall {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: stats.next_offset,
                    low_watermark: stats.lo_offset,
                    high_watermark: stats.hi_offset,
                });
            }
        }
        watched.retain(|key, _| behind.contains(key));
        stalls
    }

    /// Waits until a statistics report finds stalled partitions and returns them. Cancel-safe
    /// (for `tokio::select!`): a report not yet taken stays for the next call.
    pub async fn stalls(&self) -> Vec<Stall> {
        loop {
            self.stalled.notified().await;
            let stalls = self.stalls.lock().map(|mut stalls| std::mem::take(&mut *stalls)).unwrap_or_default();
            if !stalls.is_empty() {
                return stalls;
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        info!(?rebalance, "consumer group rebalanced");
        if let rdkafka::consumer::Rebalance::Assign(partitions) = rebalance {
            if let Ok(mut assigned) = self.assigned.lock() {
                assigned.extend(partitions.elements().iter().map(|element| element.partition()));
            }
        }
    }
}

impl IngestContext {
    /// Partitions assigned since the last call.
    pub fn take_assigned(&self) -> Vec<i32> {
        self.assigned.lock().map(|mut assigned| std::mem::take(&mut *assigned)).unwrap_or_default()
    }
}

/// Joins the consumer group, or (assignment `manual`) assigns every partition of `topic` at the
/// offsets stored in the database.
pub async fn subscribe_or_assign<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    pool: &PgPool,
    assignment: Assignment,
    group_id: &str,
    topic: &str,
) -> anyhow::Result<()> {
    if assignment == Assignment::Group {
        consumer.subscribe(&[topic])?;
        return Ok(());
    }
    let stored: std::collections::HashMap<i32, i64> =
        sqlx::query_as::<_, (i32, i64)>("SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2")
            .bind(group_id)
            .bind(topic)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let offset = match stored.get(&partition.id()) {
            Some(next) if *next >= 0 => Offset::Offset(*next),
            _ => Offset::Beginning,
        };
        assignment.add_partition_offset(topic, partition.id(), offset)?;
    }
    anyhow::ensure!(assignment.count() > 0, "topic {topic} has no partitions");
    consumer.assign(&assignment)?;
    info!(topic, partitions = assignment.count(), "assigned every partition (manual assignment)");
    Ok(())
}

/// Why a record was refused; `0` is the published reason code, `1` the sentence.
#[derive(Debug)]
pub struct Refused(pub &'static str, pub String);

/// A handler's refusal of one record, with its published reason code.
pub fn refused(code: &'static str, sentence: impl Into<String>) -> anyhow::Result<Handled> {
    Ok(Handled::Refused(Refused(code, sentence.into())))
}

/// What a handler decided about one record.
pub enum Handled {
    Applied,
    Refused(Refused),
}

/// Applies one record inside its transaction.
pub trait RecordHandler: Send + Sync {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>>;

    /// The verifier checked before this handler sees a record, if any ([`Verified`]).
    fn verifier(&self) -> Option<&EventVerifier> {
        None
    }
}

/// A handler that sees only records signed by a key its consumer trusts for the publisher: the
/// signature over the exact value bytes is checked first, and a record that does not verify is
/// refused — dead-lettered with `missing_signature`, `unknown_signing_key` or `bad_signature` —
/// without the handler running. Dead-lettering is the consumer's usual path, so a forged record
/// never stops the consumer and never reaches the domain.
pub struct Verified<H> {
    verifier: EventVerifier,
    handler: H,
}

impl<H: RecordHandler> Verified<H> {
    pub fn new(verifier: EventVerifier, handler: H) -> Verified<H> {
        if verifier.key_count() == 0 {
            warn!(publisher = verifier.publisher(), "no trusted public key configured for this publisher: every record of it is dead-lettered");
        }
        Verified { verifier, handler }
    }
}

impl<H: RecordHandler> RecordHandler for Verified<H> {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(async move {
            if let Err(unverified) = self.verifier.verify(&record.value, &record.headers) {
                return Ok(Handled::Refused(Refused(unverified.code, unverified.sentence)));
            }
            self.handler.handle(transaction, record).await
        })
    }

    fn verifier(&self) -> Option<&EventVerifier> {
        Some(&self.verifier)
    }
}

/// A record whose handling failed permanently (an invariant violation or a bug): the consumer
/// stopped on it, with its offset neither stored nor committed. `Display` gives the
/// coordinates; the cause follows in the error chain (`{:#}`).
#[derive(Debug, thiserror::Error)]
#[error("consuming {topic} stopped at partition {partition}, offset {offset}, centre {}", .centre.as_deref().unwrap_or("unknown"))]
pub struct RecordFailed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's `centre_id`, if its value is a JSON object that names one.
    pub centre: Option<String>,
    #[source]
    pub source: anyhow::Error,
}

/// Consumes `topic` with `group_id`, calling `handler` for every record inside the transaction
/// of the records received with it. A transient failure retries the same records; a permanent one stops the consumer
/// with a [`RecordFailed`]. Nothing is skipped. A consumer of one of [`SIGNED_EVENT_TOPICS`]
/// whose handler does not verify signatures ([`Verified`]) is refused at start.
pub async fn run(
    pool: PgPool,
    settings: ConsumerSettings,
    topic: String,
    group_id: String,
    handler: impl RecordHandler,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let signed = SIGNED_EVENT_TOPICS.iter().any(|name| settings.kafka.topic(name) == topic);
    anyhow::ensure!(
        !signed || handler.verifier().is_some(),
        "the consumer of {topic} must verify its publisher's signatures (wrap the handler in consumer::Verified)"
    );
    // A static member id must be unique per consumer, not only per group: derive one per topic.
    let instance_id = settings.instance_id.as_ref().map(|id| format!("{id}-{topic}"));
    let consumer: StreamConsumer<IngestContext> = settings.kafka.consumer(&group_id, instance_id.as_deref(), IngestContext::default())?;
    subscribe_or_assign(&consumer, &pool, settings.assignment, &group_id, &topic).await?;
    info!(topic = %topic, group = %group_id, "consumer started");
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            received = consumer.recv() => received,
            stalls = consumer.context().stalls() => {
                for stall in stalls.iter().filter(|stall| stall.topic == topic) {
                    if let Err(error) = dead_letter_unfetchable(&pool, &consumer, &settings.kafka, &group_id, stall).await {
                        warn!(error = %format!("{error:#}"), topic = %topic, partition = stall.partition, offset = stall.offset, "dead-lettering an unfetchable record failed; tried again at the next statistics report");
                    }
                }
                continue;
            }
        };
        let first = match message {
            Ok(message) => Record::from_message(&message),
            Err(error) => {
                warn!(error = %error, topic = %topic, "consumer error");
                continue;
            }
        };
        // What else is already buffered joins the first record's transaction (at most
        // BATCH_MAX): one commit and one offset update per partition for the lot.
        let mut records = vec![first];
        while records.len() < BATCH_MAX {
            match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                Ok(Ok(message)) => records.push(Record::from_message(&message)),
                Ok(Err(error)) => {
                    warn!(error = %error, topic = %topic, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        let span = tracing::info_span!(
            parent: None,
            "consume_batch",
            messaging.destination.name = %topic,
            messaging.batch.message_count = records.len(),
        );
        // The span names the topic in each retry's warning.
        let mut retry_shutdown = shutdown.clone();
        let applied = retry::until_ok("applying records", &mut retry_shutdown, || apply_batch(&pool, &topic, &group_id, &records, &handler))
            .instrument(span.clone())
            .await;
        let refusals = match applied {
            Ok(refusals) => refusals,
            // Shutting down while the database is unavailable: the records stay unapplied and
            // are received again after the restart.
            Err(Failure::Transient(_)) => break,
            Err(Failure::Permanent(source)) => {
                let at = source.downcast_ref::<AtRecord>().map_or((records[0].partition, records[0].offset), |at| (at.partition, at.offset));
                let record = records.iter().find(|record| (record.partition, record.offset) == at).unwrap_or(&records[0]);
                let centre = record_centre(&record.value);
                let failed = anyhow::Error::new(RecordFailed { topic: topic.clone(), partition: at.0, offset: at.1, centre, source });
                tracing::error!(parent: &span, error = %format!("{failed:#}"), "a record failed permanently; the consumer stops");
                return Err(failed);
            }
        };
        // Counted after the commit, so a retried record is counted once.
        for code in refusals.into_iter().flatten() {
            metrics::counter!(DLQ_MESSAGES, "topic" => topic.clone(), "reason" => code).increment(1);
        }
        let mut offsets = TopicPartitionList::new();
        let mut next: HashMap<i32, i64> = HashMap::new();
        for record in &records {
            let entry = next.entry(record.partition).or_insert(record.offset + 1);
            *entry = (*entry).max(record.offset + 1);
        }
        for (partition, offset) in next {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
        }
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            warn!(error = %error, "committing the offset copy to Kafka failed; the database holds the truth");
        }
    }
    info!(topic = %topic, "consumer stopped");
    Ok(())
}

/// The `centre_id` a JSON record names (every message of DESIGN.md §4 has one), for error
/// coordinates.
fn record_centre(value: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(value).ok()?;
    value.get("centre_id")?.as_str().map(str::to_owned)
}

/// The partition's stored next offset (-1 when nothing was stored yet), locked for the
/// transaction so that no other consumer of the group applies the same record meanwhile.
async fn lock_next_offset(transaction: &mut Transaction<'static, Postgres>, group_id: &str, topic: &str, partition: i32) -> sqlx::Result<i64> {
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) VALUES ($1, $2, $3, -1)
         ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(topic)
    .bind(partition)
    .execute(&mut **transaction)
    .await?;
    sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 FOR UPDATE")
        .bind(group_id)
        .bind(topic)
        .bind(partition)
        .fetch_one(&mut **transaction)
        .await
}

/// How long a fresh client may take to be served the record a consumer stalled on before the
/// record counts as unfetchable ([`dead_letter_unfetchable`]).
pub const PROBE_WAIT: Duration = Duration::from_secs(10);

/// Dead-letters the record a partition stalled on ([`Stall`]) by its coordinates — its bytes
/// were never received — with reason `unfetchable`, stores the next offset and moves the
/// consumer past it. Only when every record before it is applied (the stored next offset is the
/// stall's offset; for a partition never consumed, its first offset): otherwise nothing is done
/// and the next statistics report tries again. And only when a fresh client with the same fetch
/// limits is not served the record within [`PROBE_WAIT`] either: if it is, the consumer itself
/// was stuck, not the record; it is sought back to the record to fetch it again, and nothing is
/// skipped. Returns whether the record was dead-lettered. For every consumer of the platform:
/// [`run`] and the ledger's credit-notice ingestion.
pub async fn dead_letter_unfetchable<C: ConsumerContext + 'static>(
    pool: &PgPool,
    consumer: &StreamConsumer<C>,
    kafka: &KafkaSettings,
    group_id: &str,
    stall: &Stall,
) -> anyhow::Result<bool> {
    let topic = stall.topic.as_str();
    if !next_to_apply(pool, group_id, stall).await? {
        return Ok(false);
    }
    let probe = kafka.probe_consumer()?;
    let probed = stall.clone();
    if tokio::task::spawn_blocking(move || probe_served(&probe, &probed)).await?? {
        warn!(topic, partition = stall.partition, offset = stall.offset, "a stalled partition's record is served to a fresh client: fetching it again");
        consumer.seek(topic, stall.partition, Offset::Offset(stall.offset), Duration::from_secs(10))?;
        return Ok(false);
    }
    let mut transaction = pool.begin().await?;
    let next = lock_next_offset(&mut transaction, group_id, topic, stall.partition).await?;
    let expected = if next >= 0 { next } else { stall.low_watermark };
    if expected != stall.offset {
        info!(
            topic,
            partition = stall.partition,
            offset = stall.offset,
            stored_next_offset = next,
            "a stalled partition still has records before the stall to apply; waiting"
        );
        return Ok(false);
    }
    let reason = format!(
        "unfetchable: the record at partition {}, offset {} was not served within {} s although the broker holds records up to offset {}: it is larger than the consumer fetches ({} bytes) or than the broker serves",
        stall.partition,
        stall.offset,
        STALL_AFTER.as_secs(),
        stall.high_watermark,
        kafka::CONSUMER_RECORD_MAX_BYTES,
    );
    let origin = kafka::Origin { topic, partition: stall.partition, offset: stall.offset };
    let dead = kafka::dead_letter(&[], &[], &reason, origin);
    let mut outbox = OutboxRows::default();
    outbox.push(&kafka::dlq_topic(topic), &format!("{}:{}", stall.partition, stall.offset), dead.value, &dead.headers);
    outbox.insert(&mut transaction).await?;
    sqlx::query(
        "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload) VALUES ($1, $2, $3, $4, '')
         ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
    )
    .bind(topic)
    .bind(stall.partition)
    .bind(stall.offset)
    .bind(&reason)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("UPDATE consumer_offsets SET next_offset = $4 WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3")
        .bind(group_id)
        .bind(topic)
        .bind(stall.partition)
        .bind(stall.offset + 1)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    metrics::counter!(DLQ_MESSAGES, "topic" => topic.to_owned(), "reason" => "unfetchable").increment(1);
    tracing::error!(topic, partition = stall.partition, offset = stall.offset, reason = %reason, "unfetchable record dead-lettered; the consumer goes on after it");
    consumer.seek(topic, stall.partition, Offset::Offset(stall.offset + 1), Duration::from_secs(10))?;
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, stall.partition, Offset::Offset(stall.offset + 1))?;
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        warn!(error = %error, "committing the offset copy to Kafka failed; the database holds the truth");
    }
    Ok(true)
}

/// Whether the stall's offset is the next record of its partition to apply (every record
/// before it is applied; for a partition never consumed, its first offset).
async fn next_to_apply(pool: &PgPool, group_id: &str, stall: &Stall) -> anyhow::Result<bool> {
    let next: Option<i64> = sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3")
        .bind(group_id)
        .bind(&stall.topic)
        .bind(stall.partition)
        .fetch_optional(pool)
        .await?;
    let expected = next.filter(|next| *next >= 0).unwrap_or(stall.low_watermark);
    Ok(expected == stall.offset)
}

/// Whether a fresh client is served the record at the stall's coordinates (or, the offset being
/// a gap, any record after it) within [`PROBE_WAIT`]. Blocking.
fn probe_served(probe: &rdkafka::consumer::BaseConsumer, stall: &Stall) -> anyhow::Result<bool> {
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition_offset(&stall.topic, stall.partition, Offset::Offset(stall.offset))?;
    probe.assign(&partitions)?;
    let deadline = Instant::now() + PROBE_WAIT;
    while Instant::now() < deadline {
        match probe.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if message.offset() >= stall.offset => return Ok(true),
            Some(Ok(_)) | None => {}
            Some(Err(error)) => warn!(error = %error, topic = %stall.topic, partition = stall.partition, "probing a stalled partition"),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod stall_tests {
    use super::*;

    fn statistics(next_offset: i64, hi_offset: i64, fetchq_cnt: i64) -> rdkafka::Statistics {
        let partition = rdkafka::statistics::Partition {
            partition: 0,
            fetch_state: "active".into(),
            next_offset,
            lo_offset: 0,
            hi_offset,
            fetchq_cnt,
            ..Default::default()
        };
        let topic = rdkafka::statistics::Topic { topic: "t.trading.events".into(), partitions: HashMap::from([(0, partition)]), ..Default::default() };
        rdkafka::Statistics { topics: HashMap::from([("t.trading.events".to_owned(), topic)]), ..Default::default() }
    }

    #[test]
    fn a_partition_stalls_only_when_its_fetch_position_stays_behind_the_high_watermark_with_nothing_queued() {
        let context = IngestContext::default();
        let start = Instant::now();
        let later = start + STALL_AFTER;
        // Behind, nothing queued, not moving: a stall once STALL_AFTER has passed.
        assert!(context.note_statistics(&statistics(5, 7, 0), start).is_empty());
        assert!(context.note_statistics(&statistics(5, 7, 0), start + STALL_AFTER / 2).is_empty());
        let stalls = context.note_statistics(&statistics(5, 7, 0), later);
        assert_eq!(stalls, vec![Stall { topic: "t.trading.events".into(), partition: 0, offset: 5, low_watermark: 0, high_watermark: 7 }]);
        // Reported again while it lasts (the consumer may not have been able to act yet).
        assert_eq!(context.note_statistics(&statistics(5, 7, 0), later + STALL_AFTER).len(), 1);
        // Moving: the clock starts again.
        assert!(context.note_statistics(&statistics(6, 7, 0), later + STALL_AFTER * 2).is_empty());
        // Records waiting in the client's queue (a slow service) or none beyond the position
        // (caught up): never a stall.
        let quiet = IngestContext::default();
        for (stats, at) in
            [(statistics(5, 7, 3), start), (statistics(5, 7, 3), later), (statistics(7, 7, 0), later), (statistics(7, 7, 0), later + STALL_AFTER)]
        {
            assert!(quiet.note_statistics(&stats, at).is_empty());
        }
    }
}
