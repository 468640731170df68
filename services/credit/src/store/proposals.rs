//! Proposals: facts awaiting a supervisor's decision.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProposalRow {
    pub centre_id: String,
    pub proposal_id: String,
    pub subject_uscc: String,
    pub behaviour: String,
    pub source: String,
    pub evidence_refs: Vec<String>,
    pub summary: String,
    pub regime: Option<String>,
    pub proposed_by: String,
    pub proposed_at: DateTime<Utc>,
    pub content_hash: Vec<u8>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    pub record_id: Option<String>,
}

const COLUMNS: &str = "centre_id, proposal_id, subject_uscc, behaviour, source, evidence_refs, summary, regime, proposed_by, proposed_at, content_hash, status,
    decided_by, decided_at, decision_reason, record_id";

pub async fn lock(transaction: &mut Tx, centre_id: &str, proposal_id: &str) -> sqlx::Result<Option<ProposalRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM proposals WHERE centre_id = $1 AND proposal_id = $2 FOR UPDATE"))
        .bind(centre_id)
        .bind(proposal_id)
        .fetch_optional(&mut **transaction)
        .await
}

pub async fn list(executor: impl PgExecutor<'_>, centre_id: &str, status: Option<&str>) -> sqlx::Result<Vec<ProposalRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM proposals WHERE centre_id = $1 AND ($2::text IS NULL OR status = $2)
         ORDER BY status <> 'pending', proposed_at DESC LIMIT 500"
    ))
    .bind(centre_id)
    .bind(status)
    .fetch_all(executor)
    .await
}

/// Records the decision (`confirmed` with its record, or `dismissed`).
pub async fn decide(
    transaction: &mut Tx,
    row: &ProposalRow,
    status: &str,
    by: &str,
    at: DateTime<Utc>,
    reason: &str,
    record_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE proposals SET status = $3, decided_by = $4, decided_at = $5, decision_reason = $6, record_id = $7 WHERE centre_id = $1 AND proposal_id = $2",
    )
    .bind(&row.centre_id)
    .bind(&row.proposal_id)
    .bind(status)
    .bind(by)
    .bind(at)
    .bind(reason)
    .bind(record_id)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Stores `row` unless a proposal with its id exists in its centre (the API locked and compared
/// it first; a consumer relies on this); `true` when stored.
pub async fn insert_new(transaction: &mut Tx, row: &ProposalRow) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO proposals (centre_id, proposal_id, subject_uscc, behaviour, source, evidence_refs, summary, regime, proposed_by, proposed_at, content_hash, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending') ON CONFLICT DO NOTHING",
    )
    .bind(&row.centre_id)
    .bind(&row.proposal_id)
    .bind(&row.subject_uscc)
    .bind(&row.behaviour)
    .bind(&row.source)
    .bind(&row.evidence_refs)
    .bind(&row.summary)
    .bind(&row.regime)
    .bind(&row.proposed_by)
    .bind(row.proposed_at)
    .bind(&row.content_hash)
    .execute(&mut **transaction)
    .await?;
    Ok(done.rows_affected() == 1)
}
