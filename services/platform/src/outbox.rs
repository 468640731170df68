//! The transactional outbox every service shares: rows written in the same PostgreSQL
//! transaction as the change they announce (table `outbox` in the service's schema), and the
//! relay that publishes them to Kafka, then marks them published. Delivery is at-least-once (a crash between the send and the mark re-sends); every
//! event carries an `event_id` for consumers to deduplicate on. `FOR UPDATE SKIP LOCKED` lets
//! several replicas of a service relay side by side without sending a row twice in the normal case.
//!
//! Tracing: a row stores the trace context of the span that wrote it (for a posted notice, its
//! `post_credit_notice` span). The relay sends each row in an `outbox.publish` span, a child of
//! that context, and puts the publish span's `traceparent` in the record's headers, so a
//! consumer that adopts the header continues the writer's trace. A forwarded record (a dead
//! letter) keeps its original headers, trace context included, as docs/bank-integration.md
//! promises; its publish span still joins the original trace.

use std::time::Duration;

use base64::Engine;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use sqlx::{Postgres, Transaction};
use tracing::field::Empty;
use tracing::{warn, Instrument};

use crate::kafka;

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
        let id = row.get::<i64, _>(0);
        ids.push(id);
        let headers: Vec<(String, String)> = serde_json::from_str(row.get::<&str, _>(4))?;
        let mut headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(k, v)| base64::engine::general_purpose::STANDARD.decode(v).map(|v| (k, v)))
            .collect::<Result<_, _>>()?;
        let topic = row.get::<String, _>(1);
        let span = publish_span(&topic, id, &headers);
        if !headers.iter().any(|(name, _)| name == kafka::DLQ_REASON_HEADER) {
            span.in_scope(|| kafka::replace_trace_context(&mut headers));
        }
        messages.push((topic, row.get::<String, _>(2), row.get::<Vec<u8>, _>(3), headers, span));
    }
    let sends = messages.iter().map(|(topic, key, payload, headers, span)| {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(kafka::owned_headers(headers));
        producer.send(record, Timeout::After(Duration::from_secs(30))).instrument(span.clone())
    });
    let results = join_all(sends).await;
    for (result, (topic, .., span)) in results.into_iter().zip(&messages) {
        if let Err((error, _)) = result {
            span.record("otel.status_code", "ERROR");
            anyhow::bail!("publishing an outbox row to {topic} failed: {error}");
        }
    }
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(ids.len())
}

/// The span of sending one outbox row: a child of the trace context stored with the row, or a
/// new trace when the row was written outside any traced span.
fn publish_span(topic: &str, id: i64, headers: &[(String, Vec<u8>)]) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "outbox.publish",
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.destination.name = topic,
        outbox_id = id,
    );
    kafka::adopt_trace_context_from_pairs(&span, headers);
    span
}

/// Outbox rows: topic, key, payload, headers (JSON array of `[name, base64 value]`, so binary
/// header values survive exactly).
#[derive(Default)]
pub struct OutboxRows {
    pub topic: Vec<String>,
    pub key: Vec<String>,
    pub payload: Vec<Vec<u8>>,
    pub headers: Vec<String>,
}

/// The envelope of every platform event (`ledger.events`, `guarantee.events`, …; see
/// docs/schemas/): schema version, a fresh event id consumers deduplicate on, type, centre and
/// the time it occurred.
pub fn event_envelope(event_type: &str, centre_id: &str, data: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema_version": 1,
        "event_id": uuid::Uuid::now_v7(),
        "type": event_type,
        "centre_id": centre_id,
        "occurred_at": chrono::Utc::now(),
        "data": data,
    }))
    .expect("events serialise")
}

impl OutboxRows {
    /// Queues an event in the platform envelope, carrying the current trace context.
    pub fn push_event(&mut self, topic: &str, key: &str, event_type: &str, centre_id: &str, data: serde_json::Value) {
        self.push(topic, key, event_envelope(event_type, centre_id, data), &trace_headers());
    }

    pub fn push(&mut self, topic: &str, key: &str, payload: Vec<u8>, headers: &[(String, Vec<u8>)]) {
        use base64::Engine;
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                // PostgreSQL's jsonb cannot hold NUL; a header name never legitimately has one.
                let name: String = k.chars().map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect();
                (name, base64::engine::general_purpose::STANDARD.encode(v))
            })
            .collect();
        self.topic.push(topic.to_owned());
        self.key.push(key.to_owned());
        self.payload.push(payload);
        self.headers.push(serde_json::to_string(&pairs).expect("header pairs serialise"));
    }

    pub async fn insert(&self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        if self.topic.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (topic, message_key, payload, headers)
             SELECT topic, message_key, payload, headers::jsonb
             FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::text[]) WITH ORDINALITY
                  AS o(topic, message_key, payload, headers, position)
             ORDER BY position",
        )
        .bind(&self.topic)
        .bind(&self.key)
        .bind(&self.payload)
        .bind(&self.headers)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}

/// The current trace context as outbox headers.
pub fn trace_headers() -> Vec<(String, Vec<u8>)> {
    kafka::current_trace_headers().into_iter().map(|(k, v)| (k, v.into_bytes())).collect()
}

