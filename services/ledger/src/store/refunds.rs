//! Refunds, their payment orders and corrections of failed refunds.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::domain::deposits::STALE_REFUND_STATUSES;
use crate::domain::refunds::{CorrectionState, CorrectionStep, Party};

/// A correction as the API shows it.
#[derive(Debug, Clone)]
pub struct Correction {
    pub correction_id: Uuid,
    pub section_id: String,
    pub bidder_uscc: String,
    pub payee_account: String,
    pub payee_name: String,
    pub status: String,
    pub submitted_by: String,
    pub verified_by: Option<String>,
    pub approved_by: Option<String>,
}

const CORRECTION_COLUMNS: &str =
    "c.correction_id, r.section_id, r.bidder_uscc, c.payee_account, c.payee_name, c.status, c.submitted_by, c.verified_by, c.approved_by";

fn correction_of(row: &sqlx::postgres::PgRow) -> Correction {
    Correction {
        correction_id: row.get("correction_id"),
        section_id: row.get("section_id"),
        bidder_uscc: row.get("bidder_uscc"),
        payee_account: row.get("payee_account"),
        payee_name: row.get("payee_name"),
        status: row.get("status"),
        submitted_by: row.get("submitted_by"),
        verified_by: row.get("verified_by"),
        approved_by: row.get("approved_by"),
    }
}

/// The refund of a bidder for a section: (refund id, status).
pub async fn refund_of(pool: &PgPool, centre_id: &str, section_id: &str, bidder_uscc: &str) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT refund_id, status FROM refunds WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3")
        .bind(centre_id)
        .bind(section_id)
        .bind(bidder_uscc)
        .fetch_optional(pool)
        .await
}

/// Stores a submitted correction.
pub async fn insert_correction(pool: &PgPool, refund_id: Uuid, payee_account: &str, payee_name: &str, submitted_by: &str) -> Result<Correction, sqlx::Error> {
    let row = sqlx::query(&format!(
        "WITH c AS (INSERT INTO refund_corrections (correction_id, refund_id, payee_account, payee_name, status, submitted_by)
                    VALUES ($1, $2, $3, $4, 'submitted', $5) RETURNING *)
         SELECT {CORRECTION_COLUMNS} FROM c JOIN refunds r USING (refund_id)"
    ))
    .bind(Uuid::now_v7())
    .bind(refund_id)
    .bind(payee_account)
    .bind(payee_name)
    .bind(submitted_by)
    .fetch_one(pool)
    .await?;
    Ok(correction_of(&row))
}

/// A correction of the centre and its refund, both locked: (state, refund id).
pub async fn lock_correction(
    transaction: &mut Transaction<'_, Postgres>,
    correction_id: Uuid,
    centre_id: &str,
) -> Result<Option<(CorrectionState, Uuid)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.status, c.verified_by, c.refund_id, r.status AS refund_status FROM refund_corrections c JOIN refunds r USING (refund_id)
         WHERE c.correction_id = $1 AND r.centre_id = $2 FOR UPDATE OF c, r",
    )
    .bind(correction_id)
    .bind(centre_id)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.map(|row| {
        (CorrectionState { status: row.get(0), verified_by: row.get::<Option<String>, _>(1).as_deref().map(Party::new), refund_status: row.get(3) }, row.get(2))
    }))
}

/// Records `step` by `party` on the correction; approval schedules the refund again, now.
pub async fn record_step(
    transaction: &mut Transaction<'_, Postgres>,
    correction_id: Uuid,
    refund_id: Uuid,
    step: CorrectionStep,
    party: &str,
) -> Result<Correction, sqlx::Error> {
    let (by, at) = match step {
        CorrectionStep::Verify => ("verified_by", "verified_at"),
        CorrectionStep::Approve => ("approved_by", "approved_at"),
    };
    sqlx::query(&format!("UPDATE refund_corrections SET status = $2, {by} = $3, {at} = now() WHERE correction_id = $1"))
        .bind(correction_id)
        .bind(step.leads_to())
        .bind(party)
        .execute(&mut **transaction)
        .await?;
    if step.reschedules_refund() {
        sqlx::query("UPDATE refunds SET status = 'scheduled', order_after = now(), updated_at = now() WHERE refund_id = $1")
            .bind(refund_id)
            .execute(&mut **transaction)
            .await?;
    }
    let row = sqlx::query(&format!("SELECT {CORRECTION_COLUMNS} FROM refund_corrections c JOIN refunds r USING (refund_id) WHERE c.correction_id = $1"))
        .bind(correction_id)
        .fetch_one(&mut **transaction)
        .await?;
    Ok(correction_of(&row))
}

/// A centre's refunds (of one status, or all when empty), by due date, at most 1,000:
/// (section, bidder, trigger, due on, status); refunds waiting for the calendar
/// (`pending_calendar`, no due date yet) come last, oldest trigger first. Refunds of sections still sealed (no
/// `bids.opened` applied) are left out: each names a bidder, and even their number would
/// count a sealed section's bidders (a withdrawal's refund is due long before the opening).
pub async fn list(pool: &PgPool, centre_id: &str, status: &str) -> Result<Vec<(String, String, String, Option<NaiveDate>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.section_id, r.bidder_uscc, r.trigger, r.due_on, r.status FROM refunds r
         JOIN sections s ON s.centre_id = r.centre_id AND s.section_id = r.section_id
         WHERE r.centre_id = $1 AND ($2 = '' OR r.status = $2) AND s.bids_opened_at IS NOT NULL
         ORDER BY r.due_on NULLS LAST, r.triggered_at, r.section_id, r.bidder_uscc LIMIT 1000",
    )
    .bind(centre_id)
    .bind(status)
    .fetch_all(pool)
    .await
}

type Tx<'t> = Transaction<'t, Postgres>;

/// Marks refunds past due on `today` whose money is still held as reported stale at `now`, and
/// returns them: (centre, section, bidder, due on, status). Each is returned once, ever.
pub async fn mark_stale(
    transaction: &mut Tx<'_>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String, String, NaiveDate, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE refunds SET stale_reported_at = $2
         WHERE stale_reported_at IS NULL AND due_on < $1 AND status = ANY($3)
         RETURNING centre_id, section_id, bidder_uscc, due_on, status",
    )
    .bind(today)
    .bind(now)
    .bind(&STALE_REFUND_STATUSES[..])
    .fetch_all(&mut **transaction)
    .await
}

/// A scheduled refund whose hold has passed.
#[derive(Debug, Clone)]
pub struct DueRefund {
    pub refund_id: Uuid,
    pub centre_id: String,
    pub section_id: String,
    pub bidder_uscc: String,
}

/// Locks up to `limit` scheduled refunds due at `now` (skipping those another runner holds).
pub async fn lock_due(transaction: &mut Tx<'_>, now: DateTime<Utc>, limit: i64) -> Result<Vec<DueRefund>, sqlx::Error> {
    let rows: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT refund_id, centre_id, section_id, bidder_uscc FROM refunds
         WHERE status = 'scheduled' AND order_after <= $1 ORDER BY order_after, refund_id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.into_iter().map(|(refund_id, centre_id, section_id, bidder_uscc)| DueRefund { refund_id, centre_id, section_id, bidder_uscc }).collect())
}

/// Why the bidder's deposit for the section is to be forfeited, if it is.
pub async fn forfeiture_reason(transaction: &mut Tx<'_>, refund: &DueRefund) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT reason FROM forfeiture_marks WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3")
        .bind(&refund.centre_id)
        .bind(&refund.section_id)
        .bind(&refund.bidder_uscc)
        .fetch_optional(&mut **transaction)
        .await
}

/// A transfer into the deposit, as stored.
#[derive(Debug, Clone)]
pub struct DepositTransfer {
    pub amount_fen: i64,
    pub payer_account: String,
    pub payer_name: String,
    pub value_time: DateTime<Utc>,
    pub bank: String,
    pub account_number: String,
}

/// Every transfer into the bidder's deposit (matched notices and bound suspense items), by
/// value time, whose paying account no confirmed order of this refund has paid back yet.
pub async fn transfers_to_refund(transaction: &mut Tx<'_>, refund: &DueRefund) -> Result<Vec<DepositTransfer>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT amount_fen, payer_account, payer_name, value_time, bank, account_number, bank_serial FROM credit_notices
         WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3 AND outcome IN ('matched', 'short', 'over')
         UNION ALL
         SELECT n.amount_fen, n.payer_account, n.payer_name, n.value_time, n.bank, n.account_number, n.bank_serial
         FROM suspense_resolutions r JOIN credit_notices n USING (bank, bank_serial)
         WHERE r.centre_id = $1 AND r.section_id = $2 AND r.bidder_uscc = $3 AND r.status = 'bound'
         ORDER BY 4, 5, 7",
    )
    .bind(&refund.centre_id)
    .bind(&refund.section_id)
    .bind(&refund.bidder_uscc)
    .fetch_all(&mut **transaction)
    .await?;
    let confirmed: BTreeSet<String> = sqlx::query_scalar("SELECT payee_account FROM payment_orders WHERE refund_id = $1 AND status = 'confirmed'")
        .bind(refund.refund_id)
        .fetch_all(&mut **transaction)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .iter()
        .map(|row| DepositTransfer {
            amount_fen: row.get(0),
            payer_account: row.get(1),
            payer_name: row.get(2),
            value_time: row.get(3),
            bank: row.get(4),
            account_number: row.get(5),
        })
        .filter(|transfer| !confirmed.contains(&transfer.payer_account))
        .collect())
}

/// The payee (account, name) of the refund's latest correction approved since its last failed
/// order, if any.
pub async fn approved_correction(transaction: &mut Tx<'_>, refund_id: Uuid) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.payee_account, c.payee_name FROM refund_corrections c
         WHERE c.refund_id = $1 AND c.status = 'approved'
           AND c.approved_at > coalesce((SELECT max(settled_at) FROM payment_orders WHERE refund_id = $1 AND status = 'failed'), '-infinity')
         ORDER BY c.approved_at DESC LIMIT 1",
    )
    .bind(refund_id)
    .fetch_optional(&mut **transaction)
    .await
}

/// A collection account's demand-deposit rates: (effective from, annual rate), in date order.
pub async fn rates(transaction: &mut Tx<'_>, bank: &str, account_number: &str) -> Result<Vec<(NaiveDate, Decimal)>, sqlx::Error> {
    let rows: Vec<(NaiveDate, String)> =
        sqlx::query_as("SELECT effective_from, annual_rate::text FROM bank_account_rates WHERE bank = $1 AND account_number = $2 ORDER BY effective_from")
            .bind(bank)
            .bind(account_number)
            .fetch_all(&mut **transaction)
            .await?;
    Ok(rows.into_iter().map(|(from, rate)| (from, rate.parse::<Decimal>().unwrap_or_default())).collect())
}

/// What orders not yet settled will take from a collection account.
pub async fn outstanding_orders_fen(transaction: &mut Tx<'_>, bank: &str, account_number: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(sum(principal_fen + interest_fen), 0)::int8 FROM payment_orders WHERE bank = $1 AND account_number = $2 AND status = 'ordered'",
    )
    .bind(bank)
    .bind(account_number)
    .fetch_one(&mut **transaction)
    .await
}

/// A refund's payment order as stored.
pub struct NewOrder<'a> {
    pub order_id: Uuid,
    pub refund: &'a DueRefund,
    pub bank: &'a str,
    pub account_number: &'a str,
    pub payee_account: &'a str,
    pub payee_name: &'a str,
    pub principal_fen: i64,
    pub interest_fen: i64,
    pub refund_date: NaiveDate,
    pub order_sequence: i64,
}

pub async fn insert_order(transaction: &mut Tx<'_>, order: &NewOrder<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_orders (order_id, refund_id, centre_id, bank, account_number, payee_account, payee_name,
             principal_fen, interest_fen, refund_date, status, order_sequence)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'ordered', $11)",
    )
    .bind(order.order_id)
    .bind(order.refund.refund_id)
    .bind(&order.refund.centre_id)
    .bind(order.bank)
    .bind(order.account_number)
    .bind(order.payee_account)
    .bind(order.payee_name)
    .bind(order.principal_fen)
    .bind(order.interest_fen)
    .bind(order.refund_date)
    .bind(order.order_sequence)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn set_status(transaction: &mut Tx<'_>, refund_id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refunds SET status = $2, updated_at = now() WHERE refund_id = $1").bind(refund_id).bind(status).execute(&mut **transaction).await?;
    Ok(())
}

/// A payment order a bank's result settles, locked, with its refund and registered key.
#[derive(Debug, Clone)]
pub struct OrderToSettle {
    pub refund_id: Option<Uuid>,
    pub centre_id: String,
    pub bank: String,
    pub account_number: String,
    pub principal_fen: i64,
    pub interest_fen: i64,
    pub status: String,
    /// Empty for a suspense return.
    pub section_id: String,
    /// Empty for a suspense return.
    pub bidder_uscc: String,
    pub signing_key_ref: String,
    pub purpose: String,
}

pub async fn lock_order(transaction: &mut Tx<'_>, order_id: Uuid) -> Result<Option<OrderToSettle>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT o.refund_id, o.centre_id, o.bank, o.account_number, o.principal_fen, o.interest_fen, o.status,
                coalesce(r.section_id, ''), coalesce(r.bidder_uscc, ''), a.signing_key_ref, o.purpose
         FROM payment_orders o LEFT JOIN refunds r USING (refund_id)
         JOIN bank_accounts a ON a.bank = o.bank AND a.account_number = o.account_number
         WHERE o.order_id = $1 FOR UPDATE OF o",
    )
    .bind(order_id)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.map(|row| OrderToSettle {
        refund_id: row.get(0),
        centre_id: row.get(1),
        bank: row.get(2),
        account_number: row.get(3),
        principal_fen: row.get(4),
        interest_fen: row.get(5),
        status: row.get(6),
        section_id: row.get(7),
        bidder_uscc: row.get(8),
        signing_key_ref: row.get(9),
        purpose: row.get(10),
    }))
}

/// A bank's result as recorded on its order.
pub struct OrderResult<'a> {
    pub order_id: Uuid,
    pub status: &'a str,
    pub result_sequence: i64,
    pub bank_serial: &'a str,
    pub settled_at: DateTime<Utc>,
    pub failure_reason: Option<&'a str>,
}

pub async fn record_result(transaction: &mut Tx<'_>, result: &OrderResult<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payment_orders SET status = $2, result_sequence = $3, result_serial = $4, settled_at = $5, failure_reason = $6 WHERE order_id = $1")
        .bind(result.order_id)
        .bind(result.status)
        .bind(result.result_sequence)
        .bind(result.bank_serial)
        .bind(result.settled_at)
        .bind(result.failure_reason)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Marks the refund settled when nothing else of it is in flight and no failed order of it
/// waits for a second attempt (a failed sibling keeps the refund failed until it is paid).
pub async fn settle_if_done(transaction: &mut Tx<'_>, refund_id: Option<Uuid>, confirmed_order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refunds SET status = 'settled', updated_at = now() WHERE refund_id = $1
           AND NOT EXISTS (SELECT 1 FROM payment_orders WHERE refund_id = $1 AND status = 'ordered' AND order_id <> $2)
           AND NOT EXISTS (SELECT 1 FROM payment_orders WHERE refund_id = $1 AND status = 'failed'
                             AND NOT EXISTS (SELECT 1 FROM payment_orders later WHERE later.refund_id = $1
                                               AND later.status = 'confirmed' AND later.ordered_at > payment_orders.settled_at))",
    )
    .bind(refund_id)
    .bind(confirmed_order_id)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn mark_failed(transaction: &mut Tx<'_>, refund_id: Option<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refunds SET status = 'failed', updated_at = now() WHERE refund_id = $1").bind(refund_id).execute(&mut **transaction).await?;
    Ok(())
}

/// Keeps a bank's result with what it did.
pub async fn insert_payment_result(transaction: &mut Tx<'_>, order_id: Uuid, bank_serial: &str, status: &str, effect: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO payment_results (order_id, bank_serial, status, effect) VALUES ($1, $2, $3, $4)")
        .bind(order_id)
        .bind(bank_serial)
        .bind(status)
        .bind(effect)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Refunds past due on `today` and not finished, per registered centre (zero included).
pub async fn past_due_by_centre(pool: &PgPool, today: NaiveDate) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.centre_id, count(r.refund_id)::int8 FROM centres c
         LEFT JOIN refunds r ON r.centre_id = c.centre_id AND r.due_on < $1 AND r.status = ANY($2)
         GROUP BY c.centre_id",
    )
    .bind(today)
    .bind(&STALE_REFUND_STATUSES[..])
    .fetch_all(pool)
    .await
}
