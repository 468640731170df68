//! Tender events applied, each recorded once per source, centre and event id
//! (`crate::domain::tender_events`).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// An applied event as recorded.
pub struct AppliedEvent<'a> {
    /// `Source::code()`: `kafka:<topic>` or `grpc:<party>@<centre>`.
    pub source: &'a str,
    pub centre_id: &'a str,
    pub event_id: &'a str,
    pub section_id: &'a str,
    pub event_type: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// The record as received.
    pub payload: &'a [u8],
    /// SHA-256 of the event's canonical content.
    pub content_hash: &'a [u8],
    /// What applying it did, in a sentence that names no bidder.
    pub effect: &'a str,
}

/// The content hash of the event recorded under `event_id` for `source` and `centre_id` (or
/// before sources were kept, `legacy`): `None` when there is none, `Some(None)` for a legacy
/// row without a hash.
pub async fn recorded_hash(
    transaction: &mut Transaction<'_, Postgres>,
    source: &str,
    centre_id: &str,
    event_id: &str,
) -> Result<Option<Option<Vec<u8>>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT content_hash FROM trading_events WHERE centre_id = $1 AND event_id = $2 AND source IN ($3, 'legacy')
         ORDER BY source = 'legacy' LIMIT 1",
    )
    .bind(centre_id)
    .bind(event_id)
    .bind(source)
    .fetch_optional(&mut **transaction)
    .await
}

/// Records an applied event.
pub async fn record(transaction: &mut Transaction<'_, Postgres>, event: &AppliedEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trading_events (source, centre_id, event_id, section_id, type, occurred_at, payload, content_hash, effect)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.source)
    .bind(event.centre_id)
    .bind(event.event_id)
    .bind(event.section_id)
    .bind(event.event_type)
    .bind(event.occurred_at)
    .bind(event.payload)
    .bind(event.content_hash)
    .bind(event.effect)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
