//! Tender events applied, recorded once each per source, centre and event id
//! (`crate::domain::tender_events`).

use super::Tx;

/// An applied event as recorded.
pub struct AppliedEvent<'a> {
    /// `kafka:<topic>`.
    pub source: &'a str,
    pub centre_id: &'a str,
    pub event_id: &'a str,
    pub section_id: &'a str,
    pub event_type: &'a str,
    /// SHA-256 of the event's canonical content.
    pub content_hash: &'a [u8],
}

/// The content hash of the event recorded under `event_id` for `source` and `centre_id` (or,
/// before sources were kept, `legacy`): `None` when there is none, `Some(None)` for a legacy
/// row without a hash.
pub async fn recorded_hash(transaction: &mut Tx, source: &str, centre_id: &str, event_id: &str) -> anyhow::Result<Option<Option<Vec<u8>>>> {
    let hash = sqlx::query_scalar(
        "SELECT content_hash FROM trading_events WHERE centre_id = $1 AND event_id = $2 AND source IN ($3, 'legacy')
         ORDER BY source = 'legacy' LIMIT 1",
    )
    .bind(centre_id)
    .bind(event_id)
    .bind(source)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(hash)
}

/// Records the event; `false` when it was recorded before (a concurrent delivery).
pub async fn record(transaction: &mut Tx, event: &AppliedEvent<'_>) -> anyhow::Result<bool> {
    let first = sqlx::query(
        "INSERT INTO trading_events (source, centre_id, event_id, section_id, event_type, content_hash) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(event.source)
    .bind(event.centre_id)
    .bind(event.event_id)
    .bind(event.section_id)
    .bind(event.event_type)
    .bind(event.content_hash)
    .execute(&mut **transaction)
    .await?
    .rows_affected()
        > 0;
    Ok(first)
}
