//! Applying a batch of consumed records in one transaction: each under its own savepoint and
//! span, refused ones dead-lettered, each partition's offset locked and stored once.

use std::collections::HashMap;

use sqlx::{PgPool, Postgres, Transaction};
use tracing::{warn, Instrument};

use super::{lock_next_offset, Handled, Record, RecordHandler, Refused};
use crate::kafka;
use crate::outbox::OutboxRows;

/// Records applied in one transaction at most: those already buffered when the first arrives.
pub const BATCH_MAX: usize = 200;

/// The record a permanent failure happened on (context of the error).
#[derive(Debug)]
pub(super) struct AtRecord {
    pub(super) partition: i32,
    pub(super) offset: i64,
}

impl std::fmt::Display for AtRecord {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "applying the record at partition {}, offset {}", self.partition, self.offset)
    }
}

/// Applies `records` in one transaction: each partition's stored offset locked once, records
/// below it skipped (applied before), each record under a savepoint in its own span (a child of
/// the trace context in its headers), a refused one rolled back and dead-lettered, and each
/// partition's next offset stored once. Returns each record's refusal code, if refused.
pub(super) async fn apply_batch(
    pool: &PgPool,
    topic: &str,
    group_id: &str,
    records: &[Record],
    handler: &impl RecordHandler,
) -> anyhow::Result<Vec<Option<&'static str>>> {
    let mut transaction = pool.begin().await?;
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut refusals = Vec::with_capacity(records.len());
    for record in records {
        let stored = match next.get(&record.partition) {
            Some(stored) => *stored,
            None => {
                let stored = lock_next_offset(&mut transaction, group_id, topic, record.partition).await?;
                next.insert(record.partition, stored);
                stored
            }
        };
        if record.offset < stored {
            refusals.push(None);
            continue;
        }
        let span = tracing::info_span!(
            parent: None,
            "consume_record",
            otel.kind = "consumer",
            messaging.destination.name = %topic,
            messaging.kafka.partition = record.partition,
            messaging.kafka.offset = record.offset,
        );
        kafka::adopt_trace_context_from_pairs(&span, &record.headers);
        let refusal = apply_one(&mut transaction, topic, record, handler)
            .instrument(span)
            .await
            .map_err(|error| error.context(AtRecord { partition: record.partition, offset: record.offset }))?;
        refusals.push(refusal);
        next.insert(record.partition, record.offset + 1);
    }
    for (partition, offset) in &next {
        sqlx::query("UPDATE consumer_offsets SET next_offset = $4 WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 AND next_offset < $4")
            .bind(group_id)
            .bind(topic)
            .bind(partition)
            .bind(offset)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(refusals)
}

/// Applies one record inside the batch's transaction; its refusal code, if refused.
async fn apply_one(
    transaction: &mut Transaction<'static, Postgres>,
    topic: &str,
    record: &Record,
    handler: &impl RecordHandler,
) -> anyhow::Result<Option<&'static str>> {
    let mut refusal = None;
    // A refused record changes nothing: whatever the handler wrote before refusing is undone
    // (a savepoint), and only the dead letter and the offset are committed.
    sqlx::query("SAVEPOINT jinfu_record").execute(&mut **transaction).await?;
    let handled = handler.handle(transaction, record).await?;
    let verb = if matches!(handled, Handled::Refused(_)) { "ROLLBACK TO SAVEPOINT jinfu_record" } else { "RELEASE SAVEPOINT jinfu_record" };
    sqlx::query(verb).execute(&mut **transaction).await?;
    if let Handled::Refused(Refused(code, sentence)) = handled {
        refusal = Some(code);
        let reason = format!("{code}: {sentence}");
        warn!(topic, offset = record.offset, reason = %reason, "record refused; sent to the dead-letter topic");
        let origin = kafka::Origin { topic, partition: record.partition, offset: record.offset };
        let dead = kafka::dead_letter(&record.value, &record.headers, &reason, origin);
        let mut outbox = OutboxRows::default();
        outbox.push(&kafka::dlq_topic(topic), &format!("{}:{}", record.partition, record.offset), dead.value, &dead.headers);
        outbox.insert(transaction).await?;
        sqlx::query(
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
        )
        .bind(topic)
        .bind(record.partition)
        .bind(record.offset)
        .bind(&reason)
        .bind(&record.value)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(refusal)
}
