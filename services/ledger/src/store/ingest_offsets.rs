//! The credit-notice consumer's stored Kafka offsets (`consumer_offsets`): locked at the start
//! of a batch's transaction, advanced at its end, so a batch and its offsets commit together.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Postgres, Row, Transaction};

/// Creates the missing offset rows of `partitions` and locks them; returns the next offset to
/// apply per partition (`-1`: nothing applied yet).
pub async fn lock_offsets(
    transaction: &mut Transaction<'_, Postgres>,
    group_id: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, sqlx::Error> {
    // Create missing rows (in partition order, so concurrent instances lock in one order), then
    // lock them: a second instance that got the same partition during a rebalance waits here
    // and then sees the offsets this batch stored.
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset)
         SELECT $1, $2, partition, -1 FROM UNNEST($3::int4[]) AS partition ORDER BY partition
         ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(topic)
    .bind(partitions)
    .execute(&mut **transaction)
    .await?;
    let rows = sqlx::query(
        "SELECT kafka_partition, next_offset FROM consumer_offsets
         WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3)
         ORDER BY kafka_partition FOR UPDATE",
    )
    .bind(group_id)
    .bind(topic)
    .bind(partitions)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| (row.get::<i32, _>(0), row.get::<i64, _>(1))).collect())
}

/// Stores the next offset to apply per partition (rows locked by [`lock_offsets`]).
pub async fn store_offsets(transaction: &mut Transaction<'_, Postgres>, group_id: &str, topic: &str, next: &BTreeMap<i32, i64>) -> Result<(), sqlx::Error> {
    let partitions: Vec<i32> = next.keys().copied().collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    sqlx::query(
        "UPDATE consumer_offsets o SET next_offset = n.next_offset
         FROM UNNEST($3::int4[], $4::int8[]) AS n(kafka_partition, next_offset)
         WHERE o.consumer_group = $1 AND o.topic = $2 AND o.kafka_partition = n.kafka_partition",
    )
    .bind(group_id)
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
