//! Claims on guarantees.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{parsed, Tx};
use crate::domain::{ClaimReason, ClaimState};

/// A claim as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub claim_id: Uuid,
    pub centre_id: String,
    pub guarantee_no: String,
    pub reason: ClaimReason,
    pub evidence_ref: String,
    pub amount_fen: i64,
    pub state: ClaimState,
    pub decision_reason: Option<String>,
    pub paid_fen: Option<i64>,
    pub payment_serial: Option<String>,
    pub submitted_at: DateTime<Utc>,
}

/// A claim with what an issuer's act on it needs to know of its guarantee.
#[derive(Debug, Clone)]
pub struct ClaimOnGuarantee {
    pub claim: Claim,
    pub issuer_code: String,
    pub section_id: String,
    pub province_id: String,
}

/// What submitting a claim writes.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub claim_id: Uuid,
    pub guarantee_no: &'a str,
    pub centre_id: &'a str,
    pub reason: ClaimReason,
    pub evidence_ref: &'a str,
    pub amount_fen: i64,
    /// `role:party` of the submitter.
    pub submitted_by: String,
}

fn claim(row: &PgRow) -> anyhow::Result<Claim> {
    Ok(Claim {
        claim_id: row.try_get("claim_id")?,
        centre_id: row.try_get("centre_id")?,
        guarantee_no: row.try_get("guarantee_no")?,
        reason: parsed("claim reason", row.try_get("reason")?, ClaimReason::parse)?,
        evidence_ref: row.try_get("evidence_ref")?,
        amount_fen: row.try_get("amount_fen")?,
        state: parsed("claim status", row.try_get("status")?, ClaimState::parse)?,
        decision_reason: row.try_get("decision_reason")?,
        paid_fen: row.try_get("paid_fen")?,
        payment_serial: row.try_get("payment_serial")?,
        submitted_at: row.try_get("submitted_at")?,
    })
}

pub async fn insert(transaction: &mut Tx, new: &NewClaim<'_>) -> anyhow::Result<Claim> {
    let row = sqlx::query(
        "INSERT INTO claims (claim_id, guarantee_no, centre_id, reason, evidence_ref, amount_fen, status, submitted_by)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING *",
    )
    .bind(new.claim_id)
    .bind(new.guarantee_no)
    .bind(new.centre_id)
    .bind(new.reason.code())
    .bind(new.evidence_ref)
    .bind(new.amount_fen)
    .bind(&new.submitted_by)
    .fetch_one(&mut **transaction)
    .await?;
    claim(&row)
}

/// The claim with its guarantee's issuer, section and province, locked for the rest of the
/// transaction.
pub async fn lock(transaction: &mut Tx, claim_id: Uuid, centre_id: &str) -> anyhow::Result<Option<ClaimOnGuarantee>> {
    let row = sqlx::query(
        "SELECT c.*, g.issuer_code, g.section_id, a.province_id FROM claims c JOIN guarantees g USING (guarantee_no)
         JOIN applications a ON a.application_id = g.application_id
         WHERE c.claim_id = $1 AND c.centre_id = $2 FOR UPDATE OF c",
    )
    .bind(claim_id)
    .bind(centre_id)
    .fetch_optional(&mut **transaction)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ClaimOnGuarantee {
        claim: claim(&row)?,
        issuer_code: row.try_get("issuer_code")?,
        section_id: row.try_get("section_id")?,
        province_id: row.try_get("province_id")?,
    }))
}

pub async fn decide(transaction: &mut Tx, claim_id: Uuid, state: ClaimState, reason: &str) -> anyhow::Result<Claim> {
    let row = sqlx::query("UPDATE claims SET status = $2, decision_reason = $3, decided_at = now() WHERE claim_id = $1 RETURNING *")
        .bind(claim_id)
        .bind(state.code())
        .bind(reason)
        .fetch_one(&mut **transaction)
        .await?;
    claim(&row)
}

pub async fn pay(transaction: &mut Tx, claim_id: Uuid, paid_fen: i64, payment_serial: &str) -> anyhow::Result<Claim> {
    let row = sqlx::query("UPDATE claims SET status = 'paid', paid_fen = $2, payment_serial = $3, paid_at = now() WHERE claim_id = $1 RETURNING *")
        .bind(claim_id)
        .bind(paid_fen)
        .bind(payment_serial)
        .fetch_one(&mut **transaction)
        .await?;
    claim(&row)
}

/// The centre's claims, newest first (at most 1000); of one guarantee when `guarantee_no` is
/// not empty, of one issuer's guarantees when `issuer_code` is given.
pub async fn list(pool: &PgPool, centre_id: &str, guarantee_no: &str, issuer_code: Option<&str>) -> anyhow::Result<Vec<Claim>> {
    let rows = sqlx::query(
        "SELECT c.* FROM claims c JOIN guarantees g USING (guarantee_no)
         WHERE c.centre_id = $1 AND ($2 = '' OR c.guarantee_no = $2) AND ($3::text IS NULL OR g.issuer_code = $3)
         ORDER BY c.submitted_at DESC LIMIT 1000",
    )
    .bind(centre_id)
    .bind(guarantee_no)
    .bind(issuer_code)
    .fetch_all(pool)
    .await?;
    rows.iter().map(claim).collect()
}
