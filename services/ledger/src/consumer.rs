//! A consumer for the ledger's low-volume topics (tender events, bank payment results): one
//! record per PostgreSQL transaction, its offset stored in the same transaction as its effect,
//! a refused record sent to `<topic>.dlq` through the outbox. Exactly once, like the
//! credit-notice path, without its batching.
//!
//! Each record is applied in a `consume_record` span, a child of the trace context in its
//! headers, so what a handler writes to the outbox continues the producer's trace.

use std::time::Duration;

use futures::future::BoxFuture;

use jinfu_platform::kafka::{self, dead_letter_headers};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;
use jinfu_platform::metrics::DLQ_MESSAGES;
use tracing::{info, warn, Instrument};

use crate::ingest::{IngestContext, Record};
use crate::outbox::OutboxRows;
use crate::settings::{Assignment, Settings};

/// Joins the consumer group, or (assignment `manual`) assigns every partition of `topic` at the
/// offsets stored in the database.
pub async fn subscribe_or_assign<C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    pool: &PgPool,
    settings: &Settings,
    group_id: &str,
    topic: &str,
) -> anyhow::Result<()> {
    if settings.ingest.assignment == Assignment::Group {
        consumer.subscribe(&[topic])?;
        return Ok(());
    }
    let stored: std::collections::HashMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
    )
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
}

/// Consumes `topic` with `group_id`, calling `handler` for every record inside the record's
/// transaction. A database error retries the same record; nothing is skipped.
pub async fn run(
    pool: PgPool,
    settings: Settings,
    topic: String,
    group_id: String,
    handler: impl RecordHandler,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // A static member id must be unique per consumer, not only per group: derive one per topic.
    let instance_id = settings.ingest.instance_id.as_ref().map(|id| format!("{id}-{topic}"));
    let consumer: StreamConsumer<IngestContext> = settings.kafka.consumer(&group_id, instance_id.as_deref(), IngestContext::default())?;
    subscribe_or_assign(&consumer, &pool, &settings, &group_id, &topic).await?;
    info!(topic = %topic, group = %group_id, "consumer started");
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            received = consumer.recv() => received,
        };
        let record = match message {
            Ok(message) => Record::from_message(&message),
            Err(error) => {
                warn!(error = %error, topic = %topic, "consumer error");
                continue;
            }
        };
        let span = tracing::info_span!(
            parent: None,
            "consume_record",
            otel.kind = "consumer",
            messaging.destination.name = %topic,
            messaging.kafka.partition = record.partition,
            messaging.kafka.offset = record.offset,
        );
        kafka::adopt_trace_context_from_pairs(&span, &record.headers);
        let mut attempt: u32 = 0;
        loop {
            match apply_one(&pool, &topic, &group_id, &record, &handler).instrument(span.clone()).await {
                Ok(refusal) => {
                    // Counted after the commit, so a retried record is counted once.
                    if let Some(code) = refusal {
                        metrics::counter!(DLQ_MESSAGES, "topic" => topic.clone(), "reason" => code).increment(1);
                    }
                    break;
                }
                Err(error) => {
                    attempt += 1;
                    warn!(error = %error, topic = %topic, offset = record.offset, attempt, "applying a record failed; retrying it");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(50)))).await;
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&topic, record.partition, Offset::Offset(record.offset + 1))?;
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            warn!(error = %error, "committing the offset copy to Kafka failed; the database holds the truth");
        }
    }
    info!(topic = %topic, "consumer stopped");
    Ok(())
}

/// Applies one record in its transaction; returns the refusal code if it was dead-lettered now.
async fn apply_one(pool: &PgPool, topic: &str, group_id: &str, record: &Record, handler: &impl RecordHandler) -> anyhow::Result<Option<&'static str>> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) VALUES ($1, $2, $3, -1)
         ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(topic)
    .bind(record.partition)
    .execute(&mut *transaction)
    .await?;
    let next: i64 = sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 FOR UPDATE",
    )
    .bind(group_id)
    .bind(topic)
    .bind(record.partition)
    .fetch_one(&mut *transaction)
    .await?;
    if record.offset < next {
        return Ok(None);
    }
    let mut refusal = None;
    if let Handled::Refused(Refused(code, sentence)) = handler.handle(&mut transaction, record).await? {
        refusal = Some(code);
        let reason = format!("{code}: {sentence}");
        warn!(topic, offset = record.offset, reason = %reason, "record refused; sent to the dead-letter topic");
        let headers = dead_letter_headers(&record.headers, &reason, topic, record.partition, record.offset);
        let mut outbox = OutboxRows::default();
        outbox.push(&kafka::dlq_topic(topic), &format!("{}:{}", record.partition, record.offset), record.value.clone(), &headers);
        outbox.insert(&mut transaction).await?;
        sqlx::query(
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
        )
        .bind(topic)
        .bind(record.partition)
        .bind(record.offset)
        .bind(&reason)
        .bind(&record.value)
        .execute(&mut *transaction)
        .await?;
    }
    sqlx::query("UPDATE consumer_offsets SET next_offset = $4 WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3")
        .bind(group_id)
        .bind(topic)
        .bind(record.partition)
        .bind(record.offset + 1)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(refusal)
}
