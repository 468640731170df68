//! Suspense items (credits the matching rules could not bind) and the decisions on them.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::suspense::Resolution;

/// A suspended credit as listed.
#[derive(Debug, Clone)]
pub struct SuspenseItem {
    pub bank: String,
    pub bank_serial: String,
    pub sub_account_number: String,
    pub amount_fen: i64,
    pub payer_name: String,
    pub payer_account: String,
    pub value_time: DateTime<Utc>,
    pub reason: String,
    /// The decision in force (`bound`, `return_ordered`, `returned`), or empty.
    pub resolution_status: String,
}

/// What to list.
pub struct ItemFilter<'a> {
    pub centre_id: &'a str,
    pub sub_account_number: Option<&'a str>,
    /// A suspense reason code, or empty for all.
    pub reason: &'a str,
    pub limit: i64,
    /// Leave out items bound to a section still sealed (no `bids.opened` applied): they would
    /// name its bidders.
    pub hide_sealed: bool,
}

/// Suspense items, newest first.
pub async fn items(pool: &PgPool, filter: &ItemFilter<'_>) -> Result<Vec<SuspenseItem>, sqlx::Error> {
    let suspense_codes: Vec<&str> = jinfu_ledger::SuspenseReason::ALL.iter().map(|reason| reason.code()).collect();
    let rows = sqlx::query(
        "SELECT bank, bank_serial, sub_account_number, amount_fen, payer_name, payer_account, value_time, outcome,
                coalesce((SELECT r.status FROM suspense_resolutions r WHERE r.bank = credit_notices.bank
                            AND r.bank_serial = credit_notices.bank_serial AND r.status <> 'return_failed'), '')
         FROM credit_notices
         WHERE centre_id = $1 AND outcome = ANY($2) AND ($3 = '' OR outcome = $3)
           AND ($4::text IS NULL OR sub_account_number = $4)
           AND NOT ($6 AND EXISTS (SELECT 1 FROM sections s
                                   WHERE s.centre_id = credit_notices.centre_id AND s.section_id = credit_notices.section_id
                                     AND s.bids_opened_at IS NULL))
         ORDER BY posted_at DESC, bank, bank_serial LIMIT $5",
    )
    .bind(filter.centre_id)
    .bind(&suspense_codes)
    .bind(filter.reason)
    .bind(filter.sub_account_number)
    .bind(filter.limit)
    .bind(filter.hide_sealed)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| SuspenseItem {
            bank: row.get(0),
            bank_serial: row.get(1),
            sub_account_number: row.get(2),
            amount_fen: row.get(3),
            payer_name: row.get(4),
            payer_account: row.get(5),
            value_time: row.get(6),
            reason: row.get(7),
            resolution_status: row.get(8),
        })
        .collect())
}

/// A centre's resolutions, newest first, leaving out decisions that name a section still
/// sealed (they would name its bidders).
pub async fn resolutions(pool: &PgPool, centre_id: &str, limit: i64) -> Result<Vec<Resolution>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.resolution_id, r.bank, r.bank_serial, r.action, r.status, n.amount_fen, r.sub_account_number, r.section_id,
                r.bidder_uscc, r.order_id, r.entry_sequence, r.decided_by, r.reason, r.decided_at
         FROM suspense_resolutions r JOIN credit_notices n USING (bank, bank_serial)
         WHERE r.centre_id = $1
           AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.centre_id = r.centre_id
                             AND s.section_id IN (r.section_id, n.section_id) AND s.bids_opened_at IS NULL)
         ORDER BY r.decided_at DESC, r.resolution_id DESC LIMIT $2",
    )
    .bind(centre_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Resolution {
            resolution_id: row.get(0),
            bank: row.get(1),
            bank_serial: row.get(2),
            action: row.get(3),
            status: row.get(4),
            amount_fen: row.get(5),
            sub_account_number: row.get(6),
            section_id: row.get(7),
            bidder_uscc: row.get(8),
            order_id: row.get(9),
            entry_sequence: row.get(10),
            decided_by: row.get(11),
            reason: row.get(12),
            decided_at: row.get(13),
        })
        .collect())
}

/// A credit notice a decision is about.
#[derive(Debug, Clone)]
pub struct Notice {
    pub amount_fen: i64,
    pub outcome: String,
    pub account_number: String,
    pub payer_account: String,
    pub payer_name: String,
}

/// The centre's credit notice (bank, serial), if any.
pub async fn notice(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, bank: &str, bank_serial: &str) -> Result<Option<Notice>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT amount_fen, outcome, account_number, payer_account, payer_name FROM credit_notices
         WHERE centre_id = $1 AND bank = $2 AND bank_serial = $3",
    )
    .bind(centre_id)
    .bind(bank)
    .bind(bank_serial)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.map(|row| Notice { amount_fen: row.get(0), outcome: row.get(1), account_number: row.get(2), payer_account: row.get(3), payer_name: row.get(4) }))
}

/// The status of the decision in force on (bank, serial), locked, if there is one.
pub async fn live_resolution(transaction: &mut Transaction<'_, Postgres>, bank: &str, bank_serial: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM suspense_resolutions WHERE bank = $1 AND bank_serial = $2 AND status <> 'return_failed' FOR UPDATE")
        .bind(bank)
        .bind(bank_serial)
        .fetch_optional(&mut **transaction)
        .await
}

/// The sub-account money would be bound to, with its section's collection account and state.
#[derive(Debug, Clone)]
pub struct BindTarget {
    pub centre_id: String,
    pub section_id: String,
    pub bidder_uscc: String,
    pub bank: String,
    pub account_number: String,
    pub open: bool,
    pub required_fen: i64,
    /// When the section's `bids.opened` event was applied; `None` while it is sealed.
    pub bids_opened_at: Option<DateTime<Utc>>,
}

pub async fn bind_target(transaction: &mut Transaction<'_, Postgres>, sub_account_number: &str) -> Result<Option<BindTarget>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.centre_id, s.section_id, s.bidder_uscc, sec.bank, sec.account_number, sec.open, sec.required_deposit_fen, sec.bids_opened_at
         FROM sub_accounts s JOIN sections sec USING (centre_id, section_id) WHERE s.sub_account_number = $1",
    )
    .bind(sub_account_number)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.map(|row| BindTarget {
        centre_id: row.get(0),
        section_id: row.get(1),
        bidder_uscc: row.get(2),
        bank: row.get(3),
        account_number: row.get(4),
        open: row.get(5),
        required_fen: row.get(6),
        bids_opened_at: row.get(7),
    }))
}

/// A payment order returning suspended money to its payer.
pub struct ReturnOrderRow<'a> {
    pub order_id: Uuid,
    pub centre_id: &'a str,
    pub bank: &'a str,
    pub account_number: &'a str,
    pub payee_account: &'a str,
    pub payee_name: &'a str,
    pub amount_fen: i64,
    pub refund_date: NaiveDate,
    pub order_sequence: i64,
}

pub async fn insert_return_order(transaction: &mut Transaction<'_, Postgres>, order: &ReturnOrderRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_orders (order_id, refund_id, purpose, centre_id, bank, account_number, payee_account, payee_name,
             principal_fen, interest_fen, refund_date, status, order_sequence)
         VALUES ($1, NULL, 'suspense_return', $2, $3, $4, $5, $6, $7, 0, $8, 'ordered', $9)",
    )
    .bind(order.order_id)
    .bind(order.centre_id)
    .bind(order.bank)
    .bind(order.account_number)
    .bind(order.payee_account)
    .bind(order.payee_name)
    .bind(order.amount_fen)
    .bind(order.refund_date)
    .bind(order.order_sequence)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Stores a decision (its entry must already be written).
pub async fn insert_resolution(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, resolution: &Resolution) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO suspense_resolutions (resolution_id, bank, bank_serial, centre_id, action, status, sub_account_number,
             section_id, bidder_uscc, order_id, entry_sequence, decided_by, reason, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(resolution.resolution_id)
    .bind(&resolution.bank)
    .bind(&resolution.bank_serial)
    .bind(centre_id)
    .bind(&resolution.action)
    .bind(&resolution.status)
    .bind(&resolution.sub_account_number)
    .bind(&resolution.section_id)
    .bind(&resolution.bidder_uscc)
    .bind(resolution.order_id)
    .bind(resolution.entry_sequence)
    .bind(&resolution.decided_by)
    .bind(&resolution.reason)
    .bind(resolution.decided_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Sets the status of the decision a return order carries out.
pub async fn set_status_of_order(transaction: &mut Transaction<'_, Postgres>, order_id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE suspense_resolutions SET status = $2 WHERE order_id = $1").bind(order_id).bind(status).execute(&mut **transaction).await?;
    Ok(())
}

/// Open suspense items per registered centre (zero included): a suspense outcome with no
/// decision in force (a failed return opens it again).
pub async fn open_items_by_centre(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let suspense_codes: Vec<&str> = jinfu_ledger::SuspenseReason::ALL.iter().map(|reason| reason.code()).collect();
    sqlx::query_as(
        "SELECT c.centre_id, count(n.bank)::int8 FROM centres c
         LEFT JOIN credit_notices n ON n.centre_id = c.centre_id AND n.outcome = ANY($1)
              AND NOT EXISTS (SELECT 1 FROM suspense_resolutions r
                              WHERE r.bank = n.bank AND r.bank_serial = n.bank_serial AND r.status <> 'return_failed')
         GROUP BY c.centre_id",
    )
    .bind(&suspense_codes)
    .fetch_all(pool)
    .await
}
