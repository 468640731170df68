//! Issued guarantees. The signed terms are sealed; the state, amount and validity are plain so
//! the lifecycle and the figures can work without opening them.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{parsed, Tx};
use crate::domain::{GuaranteeState, GuaranteeType};

/// A guarantee as stored (its terms still sealed).
#[derive(Debug, Clone)]
pub struct Guarantee {
    pub guarantee_no: String,
    pub centre_id: String,
    pub section_id: String,
    pub issuer_code: String,
    pub kind: GuaranteeType,
    pub state: GuaranteeState,
    pub sealed: Vec<u8>,
    pub issued_at: DateTime<Utc>,
    /// The issuer's province, where the query joins the application.
    pub province_id: Option<String>,
}

/// What issuing writes.
#[derive(Debug, Clone)]
pub struct NewGuarantee<'a> {
    pub guarantee_no: &'a str,
    pub application_id: Uuid,
    pub centre_id: &'a str,
    pub section_id: &'a str,
    pub issuer_code: &'a str,
    pub kind: GuaranteeType,
    pub sealed: Vec<u8>,
    pub amount_fen: i64,
    pub valid_to: NaiveDate,
}

/// A guarantee whose state a tender event or the sweeper changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub guarantee_no: String,
    pub centre_id: String,
    pub section_id: String,
    pub valid_to: Option<NaiveDate>,
}

fn guarantee(row: &PgRow) -> anyhow::Result<Guarantee> {
    Ok(Guarantee {
        guarantee_no: row.try_get("guarantee_no")?,
        centre_id: row.try_get("centre_id")?,
        section_id: row.try_get("section_id")?,
        issuer_code: row.try_get("issuer_code")?,
        kind: parsed("guarantee kind", row.try_get("kind")?, GuaranteeType::parse)?,
        state: parsed("guarantee state", row.try_get("state")?, GuaranteeState::parse)?,
        sealed: row.try_get("sealed")?,
        issued_at: row.try_get("issued_at")?,
        province_id: row.try_get("province_id").ok(),
    })
}

/// Inserts the guarantee and marks its application issued; `None` (and nothing written) when
/// the number is already used.
pub async fn issue(transaction: &mut Tx, new: &NewGuarantee<'_>) -> anyhow::Result<Option<DateTime<Utc>>> {
    let issued_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "INSERT INTO guarantees (guarantee_no, application_id, centre_id, section_id, issuer_code, kind, sealed, amount_fen, valid_to)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (guarantee_no) DO NOTHING RETURNING issued_at",
    )
    .bind(new.guarantee_no)
    .bind(new.application_id)
    .bind(new.centre_id)
    .bind(new.section_id)
    .bind(new.issuer_code)
    .bind(new.kind.code())
    .bind(&new.sealed)
    .bind(new.amount_fen)
    .bind(new.valid_to)
    .fetch_optional(&mut **transaction)
    .await?;
    if issued_at.is_some() {
        sqlx::query("UPDATE applications SET status = 'issued', decided_at = now() WHERE application_id = $1")
            .bind(new.application_id)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(issued_at)
}

/// The guarantee of the centre by number, with its issuer's province.
pub async fn by_number(pool: &PgPool, centre_id: &str, guarantee_no: &str) -> anyhow::Result<Option<Guarantee>> {
    let row =
        sqlx::query("SELECT g.*, a.province_id FROM guarantees g JOIN applications a USING (application_id) WHERE g.guarantee_no = $1 AND g.centre_id = $2")
            .bind(guarantee_no)
            .bind(centre_id)
            .fetch_optional(pool)
            .await?;
    row.as_ref().map(guarantee).transpose()
}

/// The bidder's bid guarantee for the section in force if any, else its latest; with its
/// issuer's province.
pub async fn bid_of_bidder(pool: &PgPool, centre_id: &str, section_id: &str, bidder_tag: &[u8]) -> anyhow::Result<Option<Guarantee>> {
    let row = sqlx::query(
        "SELECT g.*, a.province_id FROM guarantees g JOIN applications a USING (application_id)
         WHERE a.centre_id = $1 AND a.section_id = $2 AND a.bidder_tag = $3 AND a.kind = 'bid' AND a.status = 'issued'
         ORDER BY (g.state IN ('issued', 'claimed')) DESC, g.issued_at DESC LIMIT 1",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(bidder_tag)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(guarantee).transpose()
}

/// The section's guarantees by number.
pub async fn of_section(pool: &PgPool, centre_id: &str, section_id: &str) -> anyhow::Result<Vec<Guarantee>> {
    let rows = sqlx::query("SELECT * FROM guarantees WHERE centre_id = $1 AND section_id = $2 ORDER BY guarantee_no")
        .bind(centre_id)
        .bind(section_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(guarantee).collect()
}

/// The guarantee, locked for the rest of the transaction.
pub async fn lock(transaction: &mut Tx, centre_id: &str, guarantee_no: &str) -> anyhow::Result<Option<Guarantee>> {
    let row = sqlx::query("SELECT * FROM guarantees WHERE guarantee_no = $1 AND centre_id = $2 FOR UPDATE")
        .bind(guarantee_no)
        .bind(centre_id)
        .fetch_optional(&mut **transaction)
        .await?;
    row.as_ref().map(guarantee).transpose()
}

pub async fn set_state(transaction: &mut Tx, guarantee_no: &str, state: GuaranteeState, reason: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE guarantees SET state = $2, state_reason = $3, state_changed_at = now() WHERE guarantee_no = $1")
        .bind(guarantee_no)
        .bind(state.code())
        .bind(reason)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The trading event that ended the tender of a bid guarantee's section, if any.
pub async fn tender_end(transaction: &mut Tx, guarantee_no: &str) -> anyhow::Result<Option<String>> {
    let ended = sqlx::query_scalar(
        "SELECT t.event_type FROM trading_events t JOIN guarantees g ON g.centre_id = t.centre_id AND g.section_id = t.section_id
         WHERE g.guarantee_no = $1 AND g.kind = 'bid' AND t.event_type IN ('contract.signed', 'tender.terminated', 'tender.failed') LIMIT 1",
    )
    .bind(guarantee_no)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(ended)
}

fn changed(row: &PgRow) -> anyhow::Result<Changed> {
    Ok(Changed {
        guarantee_no: row.try_get("guarantee_no")?,
        centre_id: row.try_get("centre_id")?,
        section_id: row.try_get("section_id")?,
        valid_to: row.try_get("valid_to")?,
    })
}

/// Surrenders the bidder's bid guarantees of the section in force.
pub async fn surrender_bids_of(
    transaction: &mut Tx,
    centre_id: &str,
    section_id: &str,
    bidder_tag: &[u8],
    reason: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Changed>> {
    let rows = sqlx::query(
        "UPDATE guarantees g SET state = 'surrendered', state_reason = $4, state_changed_at = $5
         FROM applications a
         WHERE a.application_id = g.application_id AND g.centre_id = $1 AND g.section_id = $2 AND a.bidder_tag = $3
           AND g.kind = 'bid' AND g.state = 'issued'
         RETURNING g.guarantee_no, g.centre_id, g.section_id, g.valid_to",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(bidder_tag)
    .bind(reason)
    .bind(at)
    .fetch_all(&mut **transaction)
    .await?;
    rows.iter().map(changed).collect()
}

/// Releases every bid guarantee of the section in force.
pub async fn release_bids(transaction: &mut Tx, centre_id: &str, section_id: &str, reason: &str, at: DateTime<Utc>) -> anyhow::Result<Vec<Changed>> {
    let rows = sqlx::query(
        "UPDATE guarantees SET state = 'released', state_reason = $3, state_changed_at = $4
         WHERE centre_id = $1 AND section_id = $2 AND kind = 'bid' AND state = 'issued'
         RETURNING guarantee_no, centre_id, section_id, valid_to",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(reason)
    .bind(at)
    .fetch_all(&mut **transaction)
    .await?;
    rows.iter().map(changed).collect()
}

/// Expires the guarantees in force whose validity ended before today's Beijing date.
pub async fn expire(transaction: &mut Tx) -> anyhow::Result<Vec<Changed>> {
    let rows = sqlx::query(
        "UPDATE guarantees SET state = 'expired', state_reason = 'validity ended', state_changed_at = now()
         WHERE state = 'issued' AND valid_to < (now() AT TIME ZONE 'Asia/Shanghai')::date
         RETURNING guarantee_no, centre_id, section_id, valid_to",
    )
    .fetch_all(&mut **transaction)
    .await?;
    rows.iter().map(changed).collect()
}
