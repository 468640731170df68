//! Proposals to the credit service, kept until it has them (delivered by the sweeper).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;
use crate::peers::Proposal;

/// Attempts before a proposal the credit service keeps refusing is left for a human (the
/// `jinfu_loans_proposals_undelivered` gauge and the runbook): with the backoff, about 14 hours.
pub const ATTEMPTS_MAX: i32 = 20;

/// Stores `proposal` once (a repeat with the same id changes nothing).
pub async fn insert(transaction: &mut Tx, loan_id: &str, proposal: &Proposal, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO credit_proposals (centre_id, proposal_id, loan_id, subject_uscc, behaviour, evidence_refs, summary, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&proposal.centre_id)
    .bind(&proposal.proposal_id)
    .bind(loan_id)
    .bind(&proposal.subject_uscc)
    .bind(&proposal.behaviour)
    .bind(&proposal.evidence_refs)
    .bind(&proposal.summary)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Proposals not delivered yet whose next attempt is due at `now`, oldest first.
pub async fn undelivered(executor: impl PgExecutor<'_>, now: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Proposal>> {
    let rows: Vec<(String, String, String, String, Vec<String>, String)> = sqlx::query_as(
        "SELECT centre_id, proposal_id, subject_uscc, behaviour, evidence_refs, summary FROM credit_proposals
         WHERE sent_at IS NULL AND attempts < $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $3) ORDER BY created_at LIMIT $2",
    )
    .bind(ATTEMPTS_MAX)
    .bind(limit)
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(centre_id, proposal_id, subject_uscc, behaviour, evidence_refs, summary)| Proposal {
            centre_id,
            proposal_id,
            subject_uscc,
            behaviour,
            evidence_refs,
            summary,
        })
        .collect())
}

/// Records the outcome of one delivery attempt; a failed one is tried again after 30 s doubled
/// per attempt, at most an hour later.
pub async fn attempted(executor: impl PgExecutor<'_>, proposal: &Proposal, error: Option<&str>, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE credit_proposals SET attempts = attempts + 1, sent_at = CASE WHEN $3::text IS NULL THEN $4 END, last_error = $3,
             next_attempt_at = $4 + least(interval '30 seconds' * power(2, least(attempts, 7)), interval '1 hour')
         WHERE centre_id = $1 AND proposal_id = $2",
    )
    .bind(&proposal.centre_id)
    .bind(&proposal.proposal_id)
    .bind(error)
    .bind(at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Proposals the credit service does not have yet (including those past their attempts).
pub async fn count_undelivered(executor: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM credit_proposals WHERE sent_at IS NULL").fetch_one(executor).await
}
