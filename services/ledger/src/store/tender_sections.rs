//! What tender events change on a section, and the forfeiture marks they record
//! (`crate::trading`). Every function runs in the event's transaction.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

/// A section as a tender event finds it, locked for the event's transaction.
pub struct LockedSection {
    pub regime: String,
    pub deposit_deadline: DateTime<Utc>,
    pub winner_uscc: Option<String>,
    pub bid_opening_time: DateTime<Utc>,
}

/// Locks the section (`FOR UPDATE`), or `None` when it is not registered. Two deliveries of one
/// event that both find it new cannot both apply: the second one's insert of the event violates
/// its key and its transaction rolls back.
pub async fn lock(transaction: &mut Transaction<'static, Postgres>, centre_id: &str, section_id: &str) -> sqlx::Result<Option<LockedSection>> {
    let row = sqlx::query("SELECT regime, deposit_deadline, winner_uscc, bid_opening_time FROM sections WHERE centre_id = $1 AND section_id = $2 FOR UPDATE")
        .bind(centre_id)
        .bind(section_id)
        .fetch_optional(&mut **transaction)
        .await?;
    Ok(row.map(|row| LockedSection { regime: row.get(0), deposit_deadline: row.get(1), winner_uscc: row.get(2), bid_opening_time: row.get(3) }))
}

/// `section.changed`: the new deadline and opening, each only when given.
pub async fn reschedule(
    transaction: &mut Transaction<'static, Postgres>,
    centre_id: &str,
    section_id: &str,
    deadline: Option<DateTime<Utc>>,
    opening: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sections SET deposit_deadline = coalesce($3, deposit_deadline), bid_opening_time = coalesce($4, bid_opening_time)
         WHERE centre_id = $1 AND section_id = $2",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(deadline)
    .bind(opening)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// `bids.opened`: the fact that ends sealing.
pub async fn mark_opened(transaction: &mut Transaction<'static, Postgres>, centre_id: &str, section_id: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE sections SET bids_opened_at = $3 WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// `award.announced`.
pub async fn record_award(
    transaction: &mut Transaction<'static, Postgres>,
    centre_id: &str,
    section_id: &str,
    winner: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sections SET winner_uscc = $3, awarded_at = $4 WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .bind(winner)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// `contract.signed`; the winner is kept if an award named one already.
pub async fn record_contract(
    transaction: &mut Transaction<'static, Postgres>,
    centre_id: &str,
    section_id: &str,
    winner: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE sections SET winner_uscc = coalesce(winner_uscc, $3), contract_signed_at = $4 WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .bind(winner)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// `tender.terminated` or `tender.failed`: the section takes no more money.
pub async fn close(transaction: &mut Transaction<'static, Postgres>, centre_id: &str, section_id: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sections SET open = false, closed_reason = $3 WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .bind(reason)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// A forfeiture mark as `deposit.forfeiture_marked` records it.
pub struct ForfeitureMark<'a> {
    pub centre_id: &'a str,
    pub section_id: &'a str,
    pub bidder_uscc: &'a str,
    pub reason: &'a str,
    pub evidence_ref: &'a str,
    pub event_id: &'a str,
    pub marked_at: DateTime<Utc>,
}

/// Records the mark (once) and returns the status the bidder's refund had, if any.
pub async fn mark_forfeiture(transaction: &mut Transaction<'static, Postgres>, mark: &ForfeitureMark<'_>) -> sqlx::Result<Option<String>> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM refunds WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3")
        .bind(mark.centre_id)
        .bind(mark.section_id)
        .bind(mark.bidder_uscc)
        .fetch_optional(&mut **transaction)
        .await?;
    sqlx::query(
        "INSERT INTO forfeiture_marks (centre_id, section_id, bidder_uscc, reason, evidence_ref, event_id, marked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(mark.centre_id)
    .bind(mark.section_id)
    .bind(mark.bidder_uscc)
    .bind(mark.reason)
    .bind(mark.evidence_ref)
    .bind(mark.event_id)
    .bind(mark.marked_at)
    .execute(&mut **transaction)
    .await?;
    Ok(status)
}
