//! Invoices, payments and their allocations.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::Fen;
use sqlx::PgExecutor;

use super::Tx;
use crate::domain::invoices::Amounts;

/// An invoice as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub centre_id: String,
    pub invoice_no: String,
    pub contract_id: String,
    pub milestone: i32,
    pub invoice_type: String,
    pub issue_date: NaiveDate,
    pub amount_without_tax_fen: i64,
    pub tax_fen: i64,
    pub amount_with_tax_fen: i64,
    pub buyer_uscc: String,
    pub seller_uscc: String,
    pub received_at: DateTime<Utc>,
    /// `None` while pending (its year has no calendar data yet).
    pub object_by: Option<NaiveDate>,
    pub status: String,
    pub disputed_fen: i64,
    pub objection_reason: Option<String>,
    pub paid_fen: i64,
    pub submit_hash: Vec<u8>,
}

impl InvoiceRow {
    pub fn amounts(&self) -> Amounts {
        Amounts { with_tax: Fen::from_fen(self.amount_with_tax_fen), disputed: Fen::from_fen(self.disputed_fen), paid: Fen::from_fen(self.paid_fen) }
    }
}

const COLUMNS: &str = "centre_id, invoice_no, contract_id, milestone, invoice_type, issue_date, amount_without_tax_fen, tax_fen, amount_with_tax_fen,
    buyer_uscc, seller_uscc, received_at, object_by, status, disputed_fen, objection_reason, paid_fen, submit_hash";

pub async fn get(executor: impl PgExecutor<'_>, centre_id: &str, invoice_no: &str) -> sqlx::Result<Option<InvoiceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM invoices WHERE centre_id = $1 AND invoice_no = $2"))
        .bind(centre_id)
        .bind(invoice_no)
        .fetch_optional(executor)
        .await
}

pub async fn lock(transaction: &mut Tx, centre_id: &str, invoice_no: &str) -> sqlx::Result<Option<InvoiceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM invoices WHERE centre_id = $1 AND invoice_no = $2 FOR UPDATE"))
        .bind(centre_id)
        .bind(invoice_no)
        .fetch_optional(&mut **transaction)
        .await
}

pub async fn of_contract(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Vec<InvoiceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM invoices WHERE centre_id = $1 AND contract_id = $2 ORDER BY received_at, invoice_no"))
        .bind(centre_id)
        .bind(contract_id)
        .fetch_all(executor)
        .await
}

/// Invoices with something still payable (not paid, not wholly disputed), oldest first.
pub async fn open(executor: impl PgExecutor<'_>, centre_id: Option<&str>, limit: i64) -> sqlx::Result<Vec<InvoiceRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invoices WHERE status NOT IN ('paid', 'under_query') AND ($1::text IS NULL OR centre_id = $1) ORDER BY received_at LIMIT $2"
    ))
    .bind(centre_id)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Every invoice of a centre received before `before` (the annual report).
pub async fn of_centre_before(executor: impl PgExecutor<'_>, centre_id: &str, before: DateTime<Utc>) -> sqlx::Result<Vec<InvoiceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM invoices WHERE centre_id = $1 AND received_at < $2 ORDER BY contract_id, invoice_no"))
        .bind(centre_id)
        .bind(before)
        .fetch_all(executor)
        .await
}

/// What a milestone's invoices total.
pub async fn milestone_total(transaction: &mut Tx, centre_id: &str, contract_id: &str, milestone: u32) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(sum(amount_with_tax_fen), 0)::bigint FROM invoices WHERE centre_id = $1 AND contract_id = $2 AND milestone = $3")
        .bind(centre_id)
        .bind(contract_id)
        .bind(i32::try_from(milestone).unwrap_or(i32::MAX))
        .fetch_one(&mut **transaction)
        .await
}

/// What all of a contract's invoices total.
pub async fn contract_total(transaction: &mut Tx, centre_id: &str, contract_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT coalesce(sum(amount_with_tax_fen), 0)::bigint FROM invoices WHERE centre_id = $1 AND contract_id = $2")
        .bind(centre_id)
        .bind(contract_id)
        .fetch_one(&mut **transaction)
        .await
}

/// A new invoice as received.
pub struct NewInvoice<'a> {
    pub centre_id: &'a str,
    pub invoice_no: &'a str,
    pub contract_id: &'a str,
    pub milestone: u32,
    pub invoice_type: &'a str,
    pub issue_date: NaiveDate,
    pub without_tax: Fen,
    pub tax: Fen,
    pub with_tax: Fen,
    pub buyer_uscc: &'a str,
    pub seller_uscc: &'a str,
    pub received_at: DateTime<Utc>,
    pub object_by: Option<NaiveDate>,
    pub submit_hash: &'a [u8],
}

pub async fn insert(transaction: &mut Tx, invoice: &NewInvoice<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO invoices (centre_id, invoice_no, contract_id, milestone, invoice_type, issue_date, amount_without_tax_fen, tax_fen, amount_with_tax_fen,
             buyer_uscc, seller_uscc, received_at, object_by, status, submit_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'received', $14)",
    )
    .bind(invoice.centre_id)
    .bind(invoice.invoice_no)
    .bind(invoice.contract_id)
    .bind(i32::try_from(invoice.milestone).unwrap_or(i32::MAX))
    .bind(invoice.invoice_type)
    .bind(invoice.issue_date)
    .bind(invoice.without_tax.fen())
    .bind(invoice.tax.fen())
    .bind(invoice.with_tax.fen())
    .bind(invoice.buyer_uscc)
    .bind(invoice.seller_uscc)
    .bind(invoice.received_at)
    .bind(invoice.object_by)
    .bind(invoice.submit_hash)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn object(transaction: &mut Tx, invoice: &InvoiceRow, status: &str, disputed: Fen, reason: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE invoices SET status = $3, disputed_fen = $4, objection_reason = $5, objected_at = $6 WHERE centre_id = $1 AND invoice_no = $2")
        .bind(&invoice.centre_id)
        .bind(&invoice.invoice_no)
        .bind(status)
        .bind(disputed.fen())
        .bind(reason)
        .bind(at)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Accepted, explicitly or deemed (the window closed without objection); only while `received`.
pub async fn accept(transaction: &mut Tx, centre_id: &str, invoice_no: &str, deemed: bool, at: DateTime<Utc>) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE invoices SET status = 'accepted', accepted_at = $3, deemed = $4 WHERE centre_id = $1 AND invoice_no = $2 AND status = 'received'")
            .bind(centre_id)
            .bind(invoice_no)
            .bind(at)
            .bind(deemed)
            .execute(&mut **transaction)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The value dates and amounts paid on an invoice.
pub async fn payments_of(executor: impl PgExecutor<'_>, centre_id: &str, invoice_no: &str) -> sqlx::Result<Vec<(NaiveDate, Fen)>> {
    let rows: Vec<(NaiveDate, i64)> = sqlx::query_as("SELECT paid_on, amount_fen FROM allocations WHERE centre_id = $1 AND invoice_no = $2 ORDER BY paid_on")
        .bind(centre_id)
        .bind(invoice_no)
        .fetch_all(executor)
        .await?;
    Ok(rows.into_iter().map(|(day, fen)| (day, Fen::from_fen(fen))).collect())
}

/// A payment's stored request hash, when the payment id was used.
pub async fn payment_hash(transaction: &mut Tx, centre_id: &str, payment_id: &str) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT request_hash FROM payments WHERE centre_id = $1 AND payment_id = $2")
        .bind(centre_id)
        .bind(payment_id)
        .fetch_optional(&mut **transaction)
        .await
}

/// A payment recorded by a purchaser.
pub struct NewPayment<'a> {
    pub centre_id: &'a str,
    pub payment_id: &'a str,
    pub contract_id: &'a str,
    pub paid_on: NaiveDate,
    pub amount: Fen,
    pub request_hash: &'a [u8],
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn insert_payment(transaction: &mut Tx, payment: &NewPayment<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO payments (centre_id, payment_id, contract_id, paid_on, amount_fen, request_hash, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(payment.centre_id)
    .bind(payment.payment_id)
    .bind(payment.contract_id)
    .bind(payment.paid_on)
    .bind(payment.amount.fen())
    .bind(payment.request_hash)
    .bind(payment.at)
    .bind(payment.by)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// One allocation, and the invoice's paid amount and state after it.
pub async fn allocate(transaction: &mut Tx, payment: &NewPayment<'_>, invoice_no: &str, amount: Fen, status: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO allocations (centre_id, payment_id, invoice_no, amount_fen, paid_on) VALUES ($1, $2, $3, $4, $5)")
        .bind(payment.centre_id)
        .bind(payment.payment_id)
        .bind(invoice_no)
        .bind(amount.fen())
        .bind(payment.paid_on)
        .execute(&mut **transaction)
        .await?;
    sqlx::query("UPDATE invoices SET paid_fen = paid_fen + $3, status = $4 WHERE centre_id = $1 AND invoice_no = $2")
        .bind(payment.centre_id)
        .bind(invoice_no)
        .bind(amount.fen())
        .bind(status)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// A payment's allocations as recorded.
pub async fn allocations_of(executor: impl PgExecutor<'_>, centre_id: &str, payment_id: &str) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT invoice_no, amount_fen FROM allocations WHERE centre_id = $1 AND payment_id = $2 ORDER BY invoice_no")
        .bind(centre_id)
        .bind(payment_id)
        .fetch_all(executor)
        .await
}

/// A payment as recorded: contract, value date.
pub async fn payment(executor: impl PgExecutor<'_>, centre_id: &str, payment_id: &str) -> sqlx::Result<Option<(String, NaiveDate)>> {
    sqlx::query_as("SELECT contract_id, paid_on FROM payments WHERE centre_id = $1 AND payment_id = $2")
        .bind(centre_id)
        .bind(payment_id)
        .fetch_optional(executor)
        .await
}
