//! The transactional outbox every service shares: rows written in the same PostgreSQL
//! transaction as the change they announce (table `outbox` in the service's schema), and the
//! relay that publishes them to Kafka, then marks them published. Delivery is at-least-once (a
//! crash between the send and the mark re-sends); every event carries an `event_id` for
//! consumers to deduplicate on. A row that can never be published is parked with its reason
//! (`jinfu_outbox_parked_total`, alert `JinfuOutboxRowParked`) and the rows after it go on. `FOR UPDATE SKIP LOCKED` lets
//! several replicas of a service relay side by side without sending a row twice in the normal case.
//!
//! Tracing: a row stores the trace context of the span that wrote it (for a posted notice, its
//! `post_credit_notice` span). The relay sends each row in an `outbox.publish` span, a child of
//! that context, and puts the publish span's `traceparent` in the record's headers, so a
//! consumer that adopts the header continues the writer's trace. A forwarded record (a dead
//! letter) keeps its original headers, trace context included, as docs/bank-integration.md
//! promises; its publish span still joins the original trace.
//!
//! Signing (DESIGN.md §7, "Our own events are signed"): the relay signs every record it sends
//! with the service's own key ([`Signer`]) over the exact value bytes, in the headers banks use
//! (`jinfu-signature`, `jinfu-signing-key` = the service's key reference), just before sending,
//! so no writer can forget it and the private key lives only in the relay. Two kinds of row are
//! sent as written:
//! - a dead-letter copy (a `jinfu-dlq-reason` header): it keeps the original record's
//!   signature headers, which still say who signed the original value (or that nobody did), so
//!   an operator can check them; it is evidence, not an event of this service, and it is never
//!   signed as one. Nothing may consume a `.dlq` topic as events.
//! - a row that already carries `jinfu-signature`: a payment order, signed by the ledger with
//!   the key the bank registered for orders (docs/bank-integration.md); re-signing it with the
//!   service key would make the bank refuse it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sqlx::{PgPool, Row};
use sqlx::{Postgres, Transaction};
use tokio::sync::watch;
use tracing::field::Empty;
use tracing::{warn, Instrument};

use crate::kafka;
use crate::signing::{Signer, SIGNATURE_HEADER};

pub use crate::metrics::OUTBOX_PARKED as PARKED;

/// How long a relay round may go on once the service is stopping: a broker that does not answer
/// must not hold the process past its termination grace period. Rows a cut-off round did not
/// mark stay unpublished and go out after the next start (at least once: consumers deduplicate
/// on `event_id`).
pub const STOPPING_ROUND_MAX: Duration = Duration::from_secs(5);

/// Publishes until `shutdown` turns true, then drains what is already due (each round cut off
/// [`STOPPING_ROUND_MAX`] after the shutdown signal); every record is signed with `signer` (see
/// the module documentation for the two exceptions).
pub async fn run_relay(pool: PgPool, producer: FutureProducer, signer: Arc<Signer>, batch_max: i64, mut shutdown: watch::Receiver<bool>) {
    loop {
        let round = {
            let mut stopping = shutdown.clone();
            let cut_off = async move {
                while !*stopping.borrow_and_update() {
                    if stopping.changed().await.is_err() {
                        break;
                    }
                }
                tokio::time::sleep(STOPPING_ROUND_MAX).await;
            };
            tokio::select! {
                round = relay_once(&pool, &producer, &signer, batch_max) => round,
                () = cut_off => {
                    warn!(wait_ms = STOPPING_ROUND_MAX.as_millis(), "stopping: the broker did not take the outbox rows in time; they stay unpublished for the next start");
                    break;
                }
            }
        };
        match round {
            Ok(round) if round.published > 0 || round.parked > 0 => continue,
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

/// What one relay round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Rows the broker acknowledged, now marked published.
    pub published: usize,
    /// Rows that can never be published, now parked with their reason.
    pub parked: usize,
    /// Rows whose send failed for a reason that may pass; left for the next round.
    pub retried: usize,
}

/// One unpublished row, read for sending.
struct Pending {
    id: i64,
    topic: String,
    key: String,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    span: tracing::Span,
}

/// Publishes up to `batch_max` unpublished rows in id order. Each row's fate is its own: rows
/// the broker acknowledged are marked published, rows that can never be published (larger than
/// the producer's `message.max.bytes`, refused by the broker as too large or invalid, or
/// unreadable) are parked with their reason, and rows whose send failed for a reason that may
/// pass (a timeout, a broker away) stay for the next round. So one bad row never holds back the
/// rows behind it, and what was acknowledged is never sent again because another row failed.
/// Each record is signed with `signer` as it is read for sending (dead-letter copies and rows
/// already signed excepted; see the module documentation).
pub async fn relay_once(pool: &PgPool, producer: &FutureProducer, signer: &Signer, batch_max: i64) -> anyhow::Result<Round> {
    let mut transaction = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, topic, message_key, payload, headers::text FROM outbox
         WHERE published_at IS NULL AND parked_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch_max)
    .fetch_all(&mut *transaction)
    .await?;
    if rows.is_empty() {
        return Ok(Round::default());
    }
    let limit = kafka::MESSAGE_MAX_BYTES;
    let mut parked: Vec<(i64, String, String)> = Vec::new();
    let mut pending = Vec::with_capacity(rows.len());
    for row in &rows {
        let (id, topic) = (row.get::<i64, _>(0), row.get::<String, _>(1));
        match read_pending(row, signer, limit) {
            Ok(message) => pending.push(message),
            Err(reason) => parked.push((id, topic, reason)),
        }
    }
    let sends = pending.iter().map(|message| {
        let record = FutureRecord::to(&message.topic).key(&message.key).payload(&message.payload).headers(kafka::owned_headers(&message.headers));
        producer.send(record, Timeout::After(Duration::from_secs(30))).instrument(message.span.clone())
    });
    let results = join_all(sends).await;
    let mut published = Vec::with_capacity(pending.len());
    let mut retried = 0;
    for (result, message) in results.into_iter().zip(&pending) {
        match result {
            Ok(_) => published.push(message.id),
            Err((error, _)) => {
                message.span.record("otel.status_code", "ERROR");
                match kafka::permanent_produce_error(&error) {
                    Some(code) => parked.push((message.id, message.topic.clone(), format!("{code}: the broker refused the record: {error}"))),
                    None => {
                        retried += 1;
                        warn!(outbox_id = message.id, topic = %message.topic, error = %error, "publishing an outbox row failed; it is sent again next round");
                    }
                }
            }
        }
    }
    mark(&mut transaction, &published, &parked).await?;
    transaction.commit().await?;
    Ok(Round { published: published.len(), parked: parked.len(), retried })
}

/// Reads a row for sending, signed, or the reason it can never be sent.
fn read_pending(row: &sqlx::postgres::PgRow, signer: &Signer, limit: usize) -> Result<Pending, String> {
    let (id, topic, key, payload) = (row.get::<i64, _>(0), row.get::<String, _>(1), row.get::<String, _>(2), row.get::<Vec<u8>, _>(3));
    let mut headers = decode_headers(row.get::<&str, _>(4)).map_err(|error| format!("unreadable_headers: the stored headers do not decode: {error}"))?;
    let forwarded = headers.iter().any(|(name, _)| name == kafka::DLQ_REASON_HEADER);
    let header_bytes = |headers: &[(String, Vec<u8>)]| headers.iter().map(|(name, value)| name.len() + value.len()).sum::<usize>();
    let size = key.len() + payload.len() + header_bytes(&headers);
    if size > limit {
        return Err(format!("too_large: the record is {size} bytes, over the producer's limit of {limit} bytes (message.max.bytes)"));
    }
    if !forwarded && !headers.iter().any(|(name, _)| name == SIGNATURE_HEADER) {
        signer.sign_record(&payload, &mut headers);
    }
    // The limit counts the signature headers too.
    let signed_size = key.len() + payload.len() + header_bytes(&headers);
    if signed_size > limit {
        return Err(format!(
            "too_large: the record is {signed_size} bytes with its signature headers ({size} without), over the producer's limit of {limit} bytes (message.max.bytes)"
        ));
    }
    let span = publish_span(&topic, id, &headers);
    if !forwarded {
        span.in_scope(|| kafka::replace_trace_context(&mut headers));
    }
    Ok(Pending { id, topic, key, payload, headers, span })
}

fn decode_headers(text: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text)?;
    Ok(pairs.into_iter().map(|(name, value)| base64::engine::general_purpose::STANDARD.decode(value).map(|value| (name, value))).collect::<Result<_, _>>()?)
}

/// Marks acknowledged rows published and parks the rows that cannot be published, counting and
/// logging each parked row.
async fn mark(transaction: &mut Transaction<'_, Postgres>, published: &[i64], parked: &[(i64, String, String)]) -> anyhow::Result<()> {
    if !published.is_empty() {
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)").bind(published).execute(&mut **transaction).await?;
    }
    for (id, topic, reason) in parked {
        sqlx::query("UPDATE outbox SET parked_at = now(), park_reason = $2 WHERE id = $1").bind(id).bind(reason).execute(&mut **transaction).await?;
        let code = reason.split(':').next().unwrap_or("unknown").to_owned();
        metrics::counter!(PARKED, "topic" => topic.clone(), "reason" => code).increment(1);
        tracing::error!(outbox_id = id, topic = %topic, reason = %reason, "outbox row parked: it cannot be published; the rows after it go on");
    }
    Ok(())
}

/// A parked row, as operators list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRow {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload_bytes: i64,
    pub reason: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

/// Parked rows, oldest first, at most `limit`.
pub async fn parked(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<ParkedRow>> {
    let rows = sqlx::query(
        "SELECT id, topic, message_key, octet_length(payload)::bigint, park_reason, created_at, parked_at FROM outbox
         WHERE parked_at IS NOT NULL AND published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| ParkedRow {
            id: row.get(0),
            topic: row.get(1),
            key: row.get(2),
            payload_bytes: row.get(3),
            reason: row.get::<Option<String>, _>(4).unwrap_or_default(),
            created_at: row.get(5),
            parked_at: row.get(6),
        })
        .collect())
}

/// Returns a parked row to the relay (after its cause was fixed, e.g. the broker's limit raised);
/// false if no parked row has that id.
pub async fn unpark(pool: &PgPool, id: i64) -> anyhow::Result<bool> {
    let changed = sqlx::query("UPDATE outbox SET parked_at = NULL, park_reason = NULL WHERE id = $1 AND parked_at IS NOT NULL AND published_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(changed == 1)
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
