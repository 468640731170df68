//! Deliveries: recorded before they are sent, claimed by the dispatcher with a lease, finished
//! with the channel's answer. The inbox is the deliveries of channel `inbox`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::Tx;

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub recipient: &'a str,
    pub channel: &'a str,
    pub centre_id: &'a str,
    pub category: &'a str,
    pub template: &'a str,
    pub legal: bool,
    pub destination: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub sms_template: Option<&'a str>,
    pub sms_params: Option<Value>,
    pub traceparent: Option<&'a str>,
    pub cancel_key: Option<&'a str>,
    pub next_attempt_at: DateTime<Utc>,
}

/// The delivery id of (event, recipient, channel): derived, not drawn, so an event consumed
/// again after a lost commit records the same id — the channels' idempotency key — and a
/// gateway that honours it sends the message once (RFC 9562 version 8, from SHA-256).
pub fn delivery_id(event_id: &str, recipient: &str, channel: &str) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event_id}\n{recipient}\n{channel}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Records a message's deliveries (one per channel) in one statement; returns the channels
/// recorded — one already recorded for the same (event, recipient, channel) is not.
pub async fn insert_all(transaction: &mut Tx, batch: &[NewDelivery<'_>], now: DateTime<Utc>) -> sqlx::Result<Vec<String>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&NewDelivery<'_>) -> String| batch.iter().map(f).collect::<Vec<String>>();
    let ids: Vec<Uuid> = batch.iter().map(|delivery| delivery_id(delivery.event_id, delivery.recipient, delivery.channel)).collect();
    let inbox: Vec<bool> = batch.iter().map(|delivery| delivery.channel == "inbox").collect();
    let first = &batch[0];
    sqlx::query_scalar(
        "INSERT INTO deliveries (id, event_id, recipient, channel, centre_id, category, template, legal, destination, subject, body,
             sms_template, sms_params, state, next_attempt_at, provider_id, traceparent, cancel_key, created_at, sent_at)
         SELECT u.id, $2, $3, u.channel, $4, $5, $6, $7, u.destination, $8, u.body, u.sms_template, u.sms_params,
                CASE WHEN u.inbox THEN 'sent' ELSE 'pending' END, u.next_attempt_at, CASE WHEN u.inbox THEN u.id::text END,
                $9, $10, $11, CASE WHEN u.inbox THEN $11 END
         FROM unnest($1::uuid[], $12::text[], $13::text[], $14::text[], $15::text[], $16::jsonb[], $17::timestamptz[], $18::bool[])
              AS u(id, channel, destination, body, sms_template, sms_params, next_attempt_at, inbox)
         ON CONFLICT (event_id, recipient, channel) DO NOTHING
         RETURNING channel",
    )
    .bind(&ids)
    .bind(first.event_id)
    .bind(first.recipient)
    .bind(first.centre_id)
    .bind(first.category)
    .bind(first.template)
    .bind(first.legal)
    .bind(first.subject)
    .bind(first.traceparent)
    .bind(first.cancel_key)
    .bind(now)
    .bind(column(&|delivery| delivery.channel.to_owned()))
    .bind(column(&|delivery| delivery.destination.to_owned()))
    .bind(column(&|delivery| delivery.body.to_owned()))
    .bind(batch.iter().map(|delivery| delivery.sms_template.map(str::to_owned)).collect::<Vec<Option<String>>>())
    .bind(batch.iter().map(|delivery| delivery.sms_params.clone()).collect::<Vec<Option<Value>>>())
    .bind(batch.iter().map(|delivery| delivery.next_attempt_at).collect::<Vec<DateTime<Utc>>>())
    .bind(&inbox)
    .fetch_all(&mut **transaction)
    .await
}

/// Cancels the pending deliveries of reminders whose fact (`cancel_key`) happened.
pub async fn cancel(transaction: &mut Tx, cancel_key: &str) -> sqlx::Result<u64> {
    let result = sqlx::query("UPDATE deliveries SET state = 'cancelled' WHERE cancel_key = $1 AND state = 'pending'")
        .bind(cancel_key)
        .execute(&mut **transaction)
        .await?;
    Ok(result.rows_affected())
}

/// A delivery claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub event_id: String,
    pub recipient: String,
    pub channel: String,
    pub centre_id: String,
    pub category: String,
    pub template: String,
    pub legal: bool,
    pub destination: String,
    pub subject: String,
    pub body: String,
    pub sms_template: Option<String>,
    pub sms_params: Option<Value>,
    pub attempts: i32,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` deliveries that are due (pending, or sending with an expired lease:
/// their sender died), marking them sending with a new lease and one more attempt.
pub async fn claim_due(pool: &PgPool, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, next_attempt_at = $2
         WHERE id IN (SELECT id FROM deliveries WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1
                      ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, event_id, recipient, channel, centre_id, category, template, legal, destination, subject, body, sms_template,
                   sms_params, attempts, traceparent, created_at",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Records the channels' acceptance of a round's deliveries — (id, attempt, provider id) — in
/// one statement; returns the channel of each one recorded (a claim lost to a later attempt is
/// skipped). Committed without waiting for the WAL flush: an acceptance lost in a PostgreSQL
/// crash leaves its delivery `sending`, and it is sent again after its lease with the same
/// idempotency key.
pub async fn mark_sent(pool: &PgPool, sent: &[(Uuid, i32, String)], now: DateTime<Utc>) -> sqlx::Result<Vec<String>> {
    let ids: Vec<Uuid> = sent.iter().map(|(id, _, _)| *id).collect();
    let attempts: Vec<i32> = sent.iter().map(|(_, attempts, _)| *attempts).collect();
    let providers: Vec<String> = sent.iter().map(|(_, _, provider)| provider.clone()).collect();
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *transaction).await?;
    let channels = sqlx::query_scalar(
        "UPDATE deliveries d SET state = 'sent', provider_id = u.provider, sent_at = $4, last_error = NULL
         FROM unnest($1::uuid[], $2::int[], $3::text[]) AS u(id, attempts, provider)
         WHERE d.id = u.id AND d.attempts = u.attempts AND d.state = 'sending'
         RETURNING d.channel",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&providers)
    .bind(now)
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(channels)
}

/// Records a failure: `retry_at` Some for another attempt then, None for the dead-letter state.
pub async fn mark_failed(pool: &PgPool, id: Uuid, attempts: i32, error: &str, retry_at: Option<DateTime<Utc>>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE deliveries SET state = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END, last_error = $3,
                next_attempt_at = COALESCE($4, next_attempt_at)
         WHERE id = $1 AND attempts = $2 AND state = 'sending'",
    )
    .bind(id)
    .bind(attempts)
    .bind(error)
    .bind(retry_at)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A delivery as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: String,
    pub recipient: String,
    pub channel: String,
    pub centre_id: String,
    pub category: String,
    pub template: String,
    pub legal: bool,
    pub destination: String,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub attempts: i32,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, event_id, recipient, channel, centre_id, category, template, legal, destination, subject, body, state, attempts, provider_id, last_error, next_attempt_at, created_at, sent_at, read_at";

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1")).bind(id).fetch_optional(pool).await
}

/// What a listing filters on; `after` is the last (created_at, id) of the previous page.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub centres: Vec<String>,
    /// Staff listings: leave out what a bidder was told about its deposit or guarantee
    /// (sealed before bid opening; the service does not know when a section opens).
    pub sealed_hidden: bool,
    pub state: Option<String>,
    pub event_id: Option<String>,
    pub recipient: Option<String>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

pub async fn list(pool: &PgPool, filter: &Filter, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    let (after_at, after_id) = filter.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE centre_id = ANY($1) AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR event_id = $3)
           AND ($4::text IS NULL OR recipient = $4) AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
           AND NOT ($8 AND category IN ('deposit', 'guarantee') AND recipient NOT LIKE 'operators:%')
         ORDER BY created_at DESC, id DESC LIMIT $7"
    ))
    .bind(&filter.centres)
    .bind(&filter.state)
    .bind(&filter.event_id)
    .bind(&filter.recipient)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(filter.sealed_hidden)
    .fetch_all(pool)
    .await
}

/// Whether staff may see a delivery: not a bidder's deposit or guarantee message.
pub fn staff_may_see(row: &DeliveryRow) -> bool {
    !matches!(row.category.as_str(), "deposit" | "guarantee") || row.recipient.starts_with("operators:")
}

/// A party's inbox, newest first.
pub async fn inbox(pool: &PgPool, party: &str, unread_only: bool, after: Option<(DateTime<Utc>, Uuid)>, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    let (after_at, after_id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE channel = 'inbox' AND recipient = $1 AND (NOT $2 OR read_at IS NULL) AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(party)
    .bind(unread_only)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn mark_read(pool: &PgPool, party: &str, ids: &[Uuid], now: DateTime<Utc>) -> sqlx::Result<u64> {
    let result = sqlx::query("UPDATE deliveries SET read_at = $3 WHERE channel = 'inbox' AND recipient = $1 AND id = ANY($2) AND read_at IS NULL")
        .bind(party)
        .bind(ids)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

pub async fn unread(pool: &PgPool, party: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE channel = 'inbox' AND recipient = $1 AND read_at IS NULL").bind(party).fetch_one(pool).await
}

/// Puts a dead delivery back to pending, with a new round of attempts, to the recipient's
/// current contact for its channel (if it still has one); `false` if it was not dead.
pub async fn retry(pool: &PgPool, id: Uuid, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE deliveries d SET state = 'pending', attempts = 0, next_attempt_at = $2,
                destination = COALESCE((SELECT CASE d.channel WHEN 'email' THEN c.email WHEN 'sms' THEN c.phone WHEN 'webhook' THEN c.webhook_url END
                                        FROM contacts c WHERE c.party = d.recipient), d.destination)
         WHERE d.id = $1 AND d.state = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deliveries waiting (pending or sending), by channel: the backlog gauge.
pub async fn backlog(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT channel, count(*) FROM deliveries WHERE state IN ('pending', 'sending') GROUP BY channel").fetch_all(pool).await
}
