//! Records and their repair.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

use super::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordRow {
    pub record_id: String,
    pub centre_id: String,
    pub subject_uscc: String,
    pub behaviour: String,
    pub kind: String,
    pub legal_basis: String,
    pub authority: String,
    pub decided_on: NaiveDate,
    pub evidence_refs: Vec<String>,
    pub fine_fen: i64,
    pub debarred_from: Option<DateTime<Utc>>,
    pub debarred_until: Option<DateTime<Utc>>,
    pub province_wide: bool,
    pub regime: Option<String>,
    pub listed_at: DateTime<Utc>,
    pub proposal_id: String,
    pub confirmed_by: String,
    pub repair: String,
    pub repair_reason: Option<String>,
    pub repair_applied_at: Option<DateTime<Utc>>,
    pub repair_decided_by: Option<String>,
    pub repaired_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "record_id, centre_id, subject_uscc, behaviour, kind, legal_basis, authority, decided_on, evidence_refs, fine_fen, debarred_from,
    debarred_until, province_wide, regime, listed_at, proposal_id, confirmed_by, repair, repair_reason, repair_applied_at, repair_decided_by, repaired_at";

pub async fn insert(transaction: &mut Tx, row: &RecordRow) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO records ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 'none', NULL, NULL, NULL, NULL)"
    ))
    .bind(&row.record_id)
    .bind(&row.centre_id)
    .bind(&row.subject_uscc)
    .bind(&row.behaviour)
    .bind(&row.kind)
    .bind(&row.legal_basis)
    .bind(&row.authority)
    .bind(row.decided_on)
    .bind(&row.evidence_refs)
    .bind(row.fine_fen)
    .bind(row.debarred_from)
    .bind(row.debarred_until)
    .bind(row.province_wide)
    .bind(&row.regime)
    .bind(row.listed_at)
    .bind(&row.proposal_id)
    .bind(&row.confirmed_by)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn get(executor: impl PgExecutor<'_>, record_id: &str) -> sqlx::Result<Option<RecordRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM records WHERE record_id = $1")).bind(record_id).fetch_optional(executor).await
}

pub async fn lock(transaction: &mut Tx, record_id: &str) -> sqlx::Result<Option<RecordRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM records WHERE record_id = $1 FOR UPDATE")).bind(record_id).fetch_optional(&mut **transaction).await
}

/// A subject's records, newest first; within a province (its centres' and the province's).
pub async fn of_subject(executor: impl PgExecutor<'_>, subject: &str, province_prefix: &str) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM records WHERE subject_uscc = $1 AND left(centre_id, 2) = $2 ORDER BY listed_at DESC LIMIT 500"))
        .bind(subject)
        .bind(province_prefix)
        .fetch_all(executor)
        .await
}

/// A centre's records, newest first.
pub async fn of_centre(executor: impl PgExecutor<'_>, centre_id: &str) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM records WHERE centre_id = $1 ORDER BY listed_at DESC LIMIT 500")).bind(centre_id).fetch_all(executor).await
}

/// The subject's shared bans (not repaired) holding at `at`, within the province of the asking
/// centre; the caller filters the scope.
pub async fn bans_at(executor: impl PgExecutor<'_>, subject: &str, province_prefix: &str, at: DateTime<Utc>) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM records WHERE subject_uscc = $1 AND left(centre_id, 2) = $2 AND repair <> 'approved'
           AND debarred_from <= $3 AND debarred_until > $3 ORDER BY debarred_until DESC"
    ))
    .bind(subject)
    .bind(province_prefix)
    .bind(at)
    .fetch_all(executor)
    .await
}

pub async fn apply_for_repair(transaction: &mut Tx, record_id: &str, reason: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE records SET repair = 'applied', repair_reason = $2, repair_applied_at = $3 WHERE record_id = $1")
        .bind(record_id)
        .bind(reason)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

pub async fn decide_repair(transaction: &mut Tx, record_id: &str, approve: bool, by: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE records SET repair = $2, repair_decided_by = $3, repaired_at = CASE WHEN $2 = 'approved' THEN $4 END WHERE record_id = $1")
        .bind(record_id)
        .bind(if approve { "approved" } else { "refused" })
        .bind(by)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}
