//! Awards seen on `trading.events` and the tender events applied (deduplicated by source,
//! centre and event id).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;

/// An award as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Award {
    pub winner_uscc: String,
    pub awarded_at: DateTime<Utc>,
    pub closed_reason: Option<String>,
}

pub async fn get(executor: impl PgExecutor<'_>, centre_id: &str, section_id: &str) -> sqlx::Result<Option<Award>> {
    sqlx::query_as("SELECT winner_uscc, awarded_at, closed_reason FROM awards WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .fetch_optional(executor)
        .await
}

/// The content hash stored for an event id of `source` and `centre_id`, if it was applied.
pub async fn recorded_hash(transaction: &mut Tx, source: &str, centre_id: &str, event_id: &str) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT content_hash FROM trading_events WHERE source = $1 AND centre_id = $2 AND event_id = $3")
        .bind(source)
        .bind(centre_id)
        .bind(event_id)
        .fetch_optional(&mut **transaction)
        .await
}

pub async fn record_event(transaction: &mut Tx, source: &str, centre_id: &str, event_id: &str, event_type: &str, hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO trading_events (source, centre_id, event_id, event_type, content_hash) VALUES ($1, $2, $3, $4, $5)")
        .bind(source)
        .bind(centre_id)
        .bind(event_id)
        .bind(event_type)
        .bind(hash)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Records (or, for a later award of the same section — a runner-up after the winner
/// declined — replaces) the award; `false` when an award at least as recent was recorded.
pub async fn record(transaction: &mut Tx, centre_id: &str, section_id: &str, winner: &str, awarded_at: DateTime<Utc>, event_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO awards (centre_id, section_id, winner_uscc, awarded_at, event_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (centre_id, section_id) DO UPDATE SET winner_uscc = $3, awarded_at = $4, event_id = $5, closed_reason = NULL
         WHERE awards.awarded_at <= $4",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(winner)
    .bind(awarded_at)
    .bind(event_id)
    .execute(&mut **transaction)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stops the award's signing clock (`closed_reason`: the tender ended, or the e-trading system
/// reported the contract signed).
pub async fn close(transaction: &mut Tx, centre_id: &str, section_id: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE awards SET closed_reason = $3 WHERE centre_id = $1 AND section_id = $2 AND closed_reason IS NULL")
        .bind(centre_id)
        .bind(section_id)
        .bind(reason)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// An award with no contract drafted for it, still open: its signing clock runs here.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Undrafted {
    pub centre_id: String,
    pub section_id: String,
    pub winner_uscc: String,
    pub awarded_at: DateTime<Utc>,
}

/// Open awards awarded before `before` with no contract for their section.
pub async fn undrafted(executor: impl PgExecutor<'_>, before: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Undrafted>> {
    sqlx::query_as(
        "SELECT a.centre_id, a.section_id, a.winner_uscc, a.awarded_at FROM awards a
         WHERE a.closed_reason IS NULL AND a.awarded_at < $1
           AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.centre_id = a.centre_id AND c.section_id = a.section_id AND c.status <> 'terminated')
         ORDER BY a.awarded_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(executor)
    .await
}
