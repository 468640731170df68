//! Bid guarantees that stand in for a bidder's deposit (recorded from `guarantee.events`).

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

/// Whether the centre has the section.
pub async fn section_exists(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, section_id: &str) -> Result<bool, sqlx::Error> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sections WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .fetch_optional(&mut **transaction)
        .await?;
    Ok(known.is_some())
}

/// An issued bid guarantee covering a bidder's deposit.
pub struct Cover<'a> {
    pub centre_id: &'a str,
    pub section_id: &'a str,
    pub bidder_uscc: &'a str,
    pub guarantee_no: &'a str,
    pub amount_fen: i64,
    pub valid_to: NaiveDate,
    pub event_id: &'a str,
}

/// Records the cover once (a replayed event changes nothing).
pub async fn insert(transaction: &mut Transaction<'_, Postgres>, cover: &Cover<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO guarantee_covers (centre_id, section_id, bidder_uscc, guarantee_no, amount_fen, valid_to, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(cover.centre_id)
    .bind(cover.section_id)
    .bind(cover.bidder_uscc)
    .bind(cover.guarantee_no)
    .bind(cover.amount_fen)
    .bind(cover.valid_to)
    .bind(cover.event_id)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Marks the guarantee's cover ended by `reason` (the first end is kept).
pub async fn end(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, guarantee_no: &str, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE guarantee_covers SET ended_at = now(), ended_reason = $3
         WHERE centre_id = $1 AND guarantee_no = $2 AND ended_at IS NULL",
    )
    .bind(centre_id)
    .bind(guarantee_no)
    .bind(reason)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
