//! The outbox relay: publishes rows written in ledger transactions to Kafka, then marks them
//! published. Delivery is at-least-once (a crash between the send and the mark re-sends); every
//! event carries an `event_id` for consumers to deduplicate on. `FOR UPDATE SKIP LOCKED` lets
//! several ledger replicas relay side by side without sending a row twice in the normal case.

use std::time::Duration;

use base64::Engine;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tracing::warn;

/// Publishes until `shutdown` turns true, then drains what is already due.
pub async fn run_relay(pool: PgPool, producer: FutureProducer, batch_max: i64, mut shutdown: watch::Receiver<bool>) {
    loop {
        match relay_once(&pool, &producer, batch_max).await {
            Ok(published) if published > 0 => continue,
            Ok(_) => {}
            Err(error) => warn!(error = %error, "outbox relay round failed; rows stay unpublished and are retried"),
        }
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => {},
            () = tokio::time::sleep(Duration::from_millis(50)) => {},
        }
    }
}

/// Publishes up to `batch_max` unpublished rows in id order; returns how many.
pub async fn relay_once(pool: &PgPool, producer: &FutureProducer, batch_max: i64) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, topic, message_key, payload, headers::text FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch_max)
    .fetch_all(&mut *transaction)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.get::<i64, _>(0));
        let headers: Vec<(String, String)> = serde_json::from_str(row.get::<&str, _>(4))?;
        let headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(k, v)| base64::engine::general_purpose::STANDARD.decode(v).map(|v| (k, v)))
            .collect::<Result<_, _>>()?;
        messages.push((row.get::<String, _>(1), row.get::<String, _>(2), row.get::<Vec<u8>, _>(3), headers));
    }
    let sends = messages.iter().map(|(topic, key, payload, headers)| {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(jinfu_platform::kafka::owned_headers(headers));
        producer.send(record, Timeout::After(Duration::from_secs(30)))
    });
    for result in join_all(sends).await {
        if let Err((error, _)) = result {
            anyhow::bail!("publishing an outbox row failed: {error}");
        }
    }
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(ids.len())
}
