//! The facts reminders need: sections' deposit deadlines (from trading.events) and deposits that
//! arrived short (from ledger.events).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;

/// Records a section's deposit deadline; a changed deadline re-arms its short deposits'
/// reminders. Returns whether the deadline changed.
pub async fn set_deadline(transaction: &mut Tx, centre_id: &str, section_id: &str, deadline: DateTime<Utc>) -> sqlx::Result<bool> {
    let previous: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT deposit_deadline FROM sections WHERE centre_id = $1 AND section_id = $2 FOR UPDATE")
        .bind(centre_id)
        .bind(section_id)
        .fetch_optional(&mut **transaction)
        .await?;
    if previous == Some(deadline) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO sections (centre_id, section_id, deposit_deadline) VALUES ($1, $2, $3)
         ON CONFLICT (centre_id, section_id) DO UPDATE SET deposit_deadline = $3",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(deadline)
    .execute(&mut **transaction)
    .await?;
    sqlx::query("UPDATE short_deposits SET reminded = false WHERE centre_id = $1 AND section_id = $2")
        .bind(centre_id)
        .bind(section_id)
        .execute(&mut **transaction)
        .await?;
    Ok(true)
}

/// A bidder's deposit position after a transfer, as `deposit.received` reports it.
#[derive(Debug, Clone)]
pub struct Position<'a> {
    pub centre_id: &'a str,
    pub section_id: &'a str,
    pub bidder_uscc: &'a str,
    pub held_fen: i64,
    pub required_fen: i64,
    pub satisfied: bool,
}

/// Records a bidder's deposit position after a transfer.
pub async fn record_deposit(transaction: &mut Tx, position: &Position<'_>, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO short_deposits (centre_id, section_id, bidder_uscc, held_fen, required_fen, satisfied, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (centre_id, section_id, bidder_uscc) DO UPDATE SET held_fen = $4, required_fen = $5, satisfied = $6, updated_at = $7",
    )
    .bind(position.centre_id)
    .bind(position.section_id)
    .bind(position.bidder_uscc)
    .bind(position.held_fen.max(0))
    .bind(position.required_fen.max(0))
    .bind(position.satisfied)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// A short deposit whose reminder is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueReminder {
    pub centre_id: String,
    pub section_id: String,
    pub bidder_uscc: String,
    pub held_fen: i64,
    pub required_fen: i64,
    pub deposit_deadline: DateTime<Utc>,
}

/// Short deposits, not yet reminded, whose deadline is after `now` and at most `lead` ahead;
/// locked for this transaction.
pub async fn due(transaction: &mut Tx, now: DateTime<Utc>, lead: chrono::Duration, limit: i64) -> sqlx::Result<Vec<DueReminder>> {
    sqlx::query_as(
        "SELECT d.centre_id, d.section_id, d.bidder_uscc, d.held_fen, d.required_fen, s.deposit_deadline
         FROM short_deposits d JOIN sections s USING (centre_id, section_id)
         WHERE NOT d.satisfied AND NOT d.reminded AND s.deposit_deadline > $1 AND s.deposit_deadline <= $1 + $2
         ORDER BY s.deposit_deadline LIMIT $3 FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(now)
    .bind(lead)
    .bind(limit)
    .fetch_all(&mut **transaction)
    .await
}

pub async fn mark_reminded(transaction: &mut Tx, reminder: &DueReminder) -> sqlx::Result<()> {
    sqlx::query("UPDATE short_deposits SET reminded = true WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3")
        .bind(&reminder.centre_id)
        .bind(&reminder.section_id)
        .bind(&reminder.bidder_uscc)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Short deposits not yet reminded (the reminder backlog gauge).
pub async fn waiting(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM short_deposits WHERE NOT satisfied AND NOT reminded").fetch_one(pool).await
}

/// Records (or moves) a deadline; one already fulfilled stays done.
pub async fn set_deadline_reminder(
    transaction: &mut Tx,
    deadline: &crate::domain::plan::Deadline,
    centre_id: &str,
    due_at: DateTime<Utc>,
    remind_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO deadlines (key, centre_id, recipient, template, vars, due_at, remind_at, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting', $8)
         ON CONFLICT (key) DO UPDATE SET recipient = $3, vars = $5, due_at = $6, remind_at = $7, updated_at = $8,
             state = CASE WHEN deadlines.state = 'done' THEN 'done' WHEN deadlines.due_at <> $6 THEN 'waiting' ELSE deadlines.state END",
    )
    .bind(&deadline.key)
    .bind(centre_id)
    .bind(&deadline.recipient)
    .bind(deadline.template)
    .bind(&deadline.vars)
    .bind(due_at)
    .bind(remind_at)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Marks a deadline done (its fact happened); `false` if it was not known.
pub async fn fulfil(transaction: &mut Tx, key: &str, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let result = sqlx::query("UPDATE deadlines SET state = 'done', updated_at = $2 WHERE key = $1").bind(key).bind(now).execute(&mut **transaction).await?;
    Ok(result.rows_affected() == 1)
}

/// A deadline whose reminder is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDeadline {
    pub key: String,
    pub centre_id: String,
    pub recipient: String,
    pub template: String,
    pub vars: serde_json::Value,
    pub due_at: DateTime<Utc>,
}

/// Waiting deadlines whose reminder time has come and that have not passed; locked.
pub async fn due_deadlines(transaction: &mut Tx, now: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<DueDeadline>> {
    sqlx::query_as(
        "SELECT key, centre_id, recipient, template, vars, due_at FROM deadlines
         WHERE state = 'waiting' AND remind_at <= $1 AND due_at > $1 ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **transaction)
    .await
}

pub async fn mark_deadline_reminded(transaction: &mut Tx, key: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE deadlines SET state = 'reminded', updated_at = $2 WHERE key = $1").bind(key).bind(now).execute(&mut **transaction).await?;
    Ok(())
}
