//! Sections (标段): their terms, state and the collection account they collect at.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::domain::sections::SectionTerms;

/// A section as an operator creates it.
pub struct NewSection<'a> {
    pub centre_id: &'a str,
    pub section_id: &'a str,
    pub name: &'a str,
    pub regime: &'a str,
    pub terms: SectionTerms,
    pub bank: &'a str,
    pub account_number: &'a str,
    pub basic_account_required: bool,
}

/// Inserts a section. Returns false when the centre already has one with this id.
pub async fn insert(pool: &PgPool, section: &NewSection<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO sections (centre_id, section_id, name, regime, required_deposit_fen, deposit_deadline,
             bid_opening_time, bank, account_number, basic_account_required)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(section.centre_id)
    .bind(section.section_id)
    .bind(section.name)
    .bind(section.regime)
    .bind(section.terms.required_deposit_fen())
    .bind(section.terms.deposit_deadline())
    .bind(section.terms.bid_opening_time())
    .bind(section.bank)
    .bind(section.account_number)
    .bind(section.basic_account_required)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// Closes a section with the reason. Returns false when the centre has no such section.
pub async fn close(pool: &PgPool, centre_id: &str, section_id: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query("UPDATE sections SET open = false, closed_reason = $3 WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(updated.rows_affected() > 0)
}

/// When the bids.opened event says the section's bids were opened (`Some(None)`: not yet), if
/// the centre has the section.
pub async fn bids_opened_at(pool: &PgPool, centre_id: &str, section_id: &str) -> Result<Option<Option<DateTime<Utc>>>, sqlx::Error> {
    sqlx::query_scalar("SELECT bids_opened_at FROM sections WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .fetch_optional(pool)
        .await
}

/// A section as stored.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub regime: String,
    pub required_deposit_fen: i64,
    pub deposit_deadline: DateTime<Utc>,
    pub bid_opening_time: DateTime<Utc>,
    pub open: bool,
    pub bids_opened_at: Option<DateTime<Utc>>,
    pub winner_uscc: Option<String>,
    pub contract_signed_at: Option<DateTime<Utc>>,
}

/// One section of a centre.
pub async fn get(pool: &PgPool, centre_id: &str, section_id: &str) -> Result<Option<Section>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT name, regime, required_deposit_fen, deposit_deadline, bid_opening_time, open, bids_opened_at, winner_uscc, contract_signed_at
         FROM sections WHERE centre_id = $1 AND section_id = $2",
    )
    .bind(centre_id)
    .bind(section_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| Section {
        name: row.get(0),
        regime: row.get(1),
        required_deposit_fen: row.get(2),
        deposit_deadline: row.get(3),
        bid_opening_time: row.get(4),
        open: row.get(5),
        bids_opened_at: row.get(6),
        winner_uscc: row.get(7),
        contract_signed_at: row.get(8),
    }))
}
