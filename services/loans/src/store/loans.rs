//! Loans and their repayments. A use case locks the loan (`lock`), changes the row in memory
//! through the domain's decisions and writes it back whole (`save`) with its events.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

use super::Tx;
use crate::domain::interest::Position;
use crate::domain::LoanStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoanRow {
    pub centre_id: String,
    pub loan_id: String,
    pub lender_id: String,
    pub product_id: String,
    pub supplier_uscc: String,
    pub purchaser_uscc: String,
    pub contract_id: String,
    pub section_id: String,
    pub basis: String,
    pub contract_amount_fen: i64,
    pub requested_fen: i64,
    pub status_code: i32,
    pub status: String,
    pub request_hash: Vec<u8>,
    pub rejection_code: Option<String>,
    pub rejection_reason: Option<String>,
    pub eligibility_receipt: String,
    pub eligibility_signature: String,
    pub eligibility_key_ref: String,
    pub amount_fen: Option<i64>,
    pub rate_bp: Option<i32>,
    pub term_days: i32,
    pub grace_days: i32,
    pub terms_proposed_by: Option<String>,
    pub approved_by: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub disbursed_on: Option<NaiveDate>,
    pub disbursed_at: Option<DateTime<Utc>>,
    pub disbursement_reference: Option<String>,
    pub maturity_on: Option<NaiveDate>,
    pub principal_outstanding_fen: i64,
    pub interest_paid_fen: i64,
    pub interest_accrued_fen: i64,
    pub accrued_to: Option<NaiveDate>,
    pub delinquent_at: Option<DateTime<Utc>>,
    pub defaulted_at: Option<DateTime<Utc>>,
    pub confirmation: Option<String>,
    pub confirmation_due_on: Option<NaiveDate>,
    pub confirmation_overdue_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lock_ref: Option<String>,
    pub unlocked_at: Option<DateTime<Utc>>,
}

impl LoanRow {
    pub fn state(&self) -> LoanStatus {
        LoanStatus::from_number(self.status_code).unwrap_or(LoanStatus::Rejected)
    }

    pub fn set_state(&mut self, status: LoanStatus) {
        self.status_code = status.number();
        self.status = status.code().to_owned();
    }

    /// The interest position of a disbursed loan.
    pub fn position(&self) -> Option<Position> {
        Some(Position {
            principal_fen: self.principal_outstanding_fen,
            rate_bp: u32::try_from(self.rate_bp?).ok()?,
            interest_accrued_fen: self.interest_accrued_fen,
            interest_paid_fen: self.interest_paid_fen,
            accrued_to: self.accrued_to?,
        })
    }

    pub fn set_position(&mut self, position: Position) {
        self.principal_outstanding_fen = position.principal_fen;
        self.interest_accrued_fen = position.interest_accrued_fen;
        self.interest_paid_fen = position.interest_paid_fen;
        self.accrued_to = Some(position.accrued_to);
    }
}

const COLUMNS: &str = "centre_id, loan_id, lender_id, product_id, supplier_uscc, purchaser_uscc, contract_id, section_id, basis, contract_amount_fen,
    requested_fen, status_code, status, request_hash, rejection_code, rejection_reason, eligibility_receipt, eligibility_signature, eligibility_key_ref,
    amount_fen, rate_bp, term_days, grace_days, terms_proposed_by, approved_by, submitted_at, approved_at, disbursed_on, disbursed_at,
    disbursement_reference, maturity_on, principal_outstanding_fen, interest_paid_fen, interest_accrued_fen, accrued_to, delinquent_at, defaulted_at,
    confirmation, confirmation_due_on, confirmation_overdue_at, closed_at, lock_ref, unlocked_at";

pub async fn get(executor: impl PgExecutor<'_>, centre_id: &str, loan_id: &str) -> sqlx::Result<Option<LoanRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM loans WHERE centre_id = $1 AND loan_id = $2")).bind(centre_id).bind(loan_id).fetch_optional(executor).await
}

pub async fn lock(transaction: &mut Tx, centre_id: &str, loan_id: &str) -> sqlx::Result<Option<LoanRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM loans WHERE centre_id = $1 AND loan_id = $2 FOR UPDATE"))
        .bind(centre_id)
        .bind(loan_id)
        .fetch_optional(&mut **transaction)
        .await
}

/// The loan holding the lock `lock_ref` on a collection account, locked.
pub async fn lock_by_lock_ref(transaction: &mut Tx, lock_ref: &str) -> sqlx::Result<Option<LoanRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM loans WHERE lock_ref = $1 FOR UPDATE")).bind(lock_ref).fetch_optional(&mut **transaction).await
}

/// The open loan of a contract, if any.
pub async fn open_for_contract(transaction: &mut Tx, centre_id: &str, contract_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT loan_id FROM loans WHERE centre_id = $1 AND contract_id = $2 AND status IN ('submitted', 'approved', 'active')")
        .bind(centre_id)
        .bind(contract_id)
        .fetch_optional(&mut **transaction)
        .await
}

/// Who lists: everyone of the centre (staff), one supplier, one lender, one purchaser.
pub enum Lister<'a> {
    Staff,
    Supplier(&'a str),
    Lender(&'a str),
    Purchaser(&'a str),
}

pub async fn list(executor: impl PgExecutor<'_>, centre_id: &str, lister: Lister<'_>, status: Option<&str>) -> sqlx::Result<Vec<LoanRow>> {
    let (filter, party) = match lister {
        Lister::Staff => ("TRUE", ""),
        Lister::Supplier(party) => ("supplier_uscc = $3", party),
        Lister::Lender(party) => ("lender_id = $3", party),
        Lister::Purchaser(party) => ("purchaser_uscc = $3 AND confirmation IS NOT NULL", party),
    };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM loans WHERE centre_id = $1 AND ($2::text IS NULL OR status = $2) AND {filter} ORDER BY submitted_at DESC, loan_id LIMIT 500"
    ))
    .bind(centre_id)
    .bind(status)
    .bind(party)
    .fetch_all(executor)
    .await
}

pub async fn insert(transaction: &mut Tx, loan: &LoanRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO loans (centre_id, loan_id, lender_id, product_id, supplier_uscc, purchaser_uscc, contract_id, section_id, basis, contract_amount_fen,
                            requested_fen, status_code, status, request_hash, rejection_code, rejection_reason, eligibility_receipt, eligibility_signature,
                            eligibility_key_ref, term_days, grace_days, submitted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind(&loan.centre_id)
    .bind(&loan.loan_id)
    .bind(&loan.lender_id)
    .bind(&loan.product_id)
    .bind(&loan.supplier_uscc)
    .bind(&loan.purchaser_uscc)
    .bind(&loan.contract_id)
    .bind(&loan.section_id)
    .bind(&loan.basis)
    .bind(loan.contract_amount_fen)
    .bind(loan.requested_fen)
    .bind(loan.status_code)
    .bind(&loan.status)
    .bind(&loan.request_hash)
    .bind(&loan.rejection_code)
    .bind(&loan.rejection_reason)
    .bind(&loan.eligibility_receipt)
    .bind(&loan.eligibility_signature)
    .bind(&loan.eligibility_key_ref)
    .bind(loan.term_days)
    .bind(loan.grace_days)
    .bind(loan.submitted_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Writes back every column a loan's life changes.
pub async fn save(transaction: &mut Tx, loan: &LoanRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE loans SET status_code = $3, status = $4, rejection_code = $5, rejection_reason = $6, amount_fen = $7, rate_bp = $8, terms_proposed_by = $9,
             approved_by = $10, approved_at = $11, disbursed_on = $12, disbursed_at = $13, disbursement_reference = $14, maturity_on = $15,
             principal_outstanding_fen = $16, interest_paid_fen = $17, interest_accrued_fen = $18, accrued_to = $19, delinquent_at = $20,
             defaulted_at = $21, confirmation = $22, confirmation_due_on = $23, confirmation_overdue_at = $24, closed_at = $25, lock_ref = $26,
             unlocked_at = $27
         WHERE centre_id = $1 AND loan_id = $2",
    )
    .bind(&loan.centre_id)
    .bind(&loan.loan_id)
    .bind(loan.status_code)
    .bind(&loan.status)
    .bind(&loan.rejection_code)
    .bind(&loan.rejection_reason)
    .bind(loan.amount_fen)
    .bind(loan.rate_bp)
    .bind(&loan.terms_proposed_by)
    .bind(&loan.approved_by)
    .bind(loan.approved_at)
    .bind(loan.disbursed_on)
    .bind(loan.disbursed_at)
    .bind(&loan.disbursement_reference)
    .bind(loan.maturity_on)
    .bind(loan.principal_outstanding_fen)
    .bind(loan.interest_paid_fen)
    .bind(loan.interest_accrued_fen)
    .bind(loan.accrued_to)
    .bind(loan.delinquent_at)
    .bind(loan.defaulted_at)
    .bind(&loan.confirmation)
    .bind(loan.confirmation_due_on)
    .bind(loan.confirmation_overdue_at)
    .bind(loan.closed_at)
    .bind(&loan.lock_ref)
    .bind(loan.unlocked_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepaymentRow {
    pub payment_id: String,
    pub paid_on: NaiveDate,
    pub amount_fen: i64,
    pub interest_fen: i64,
    pub principal_fen: i64,
    pub surplus_fen: i64,
}

pub async fn insert_repayment(transaction: &mut Tx, loan: &LoanRow, repayment: &RepaymentRow, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO repayments (centre_id, loan_id, payment_id, paid_on, amount_fen, interest_fen, principal_fen, surplus_fen, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&loan.centre_id)
    .bind(&loan.loan_id)
    .bind(&repayment.payment_id)
    .bind(repayment.paid_on)
    .bind(repayment.amount_fen)
    .bind(repayment.interest_fen)
    .bind(repayment.principal_fen)
    .bind(repayment.surplus_fen)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn repayments(executor: impl PgExecutor<'_>, centre_id: &str, loan_id: &str) -> sqlx::Result<Vec<RepaymentRow>> {
    sqlx::query_as(
        "SELECT payment_id, paid_on, amount_fen, interest_fen, principal_fen, surplus_fen FROM repayments WHERE centre_id = $1 AND loan_id = $2
         ORDER BY paid_on, recorded_at, payment_id",
    )
    .bind(centre_id)
    .bind(loan_id)
    .fetch_all(executor)
    .await
}

pub async fn has_repayments(transaction: &mut Tx, centre_id: &str, loan_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repayments WHERE centre_id = $1 AND loan_id = $2)")
        .bind(centre_id)
        .bind(loan_id)
        .fetch_one(&mut **transaction)
        .await
}

/// Loans the sweeper must look at on `today`: active ones past maturity not yet in default,
/// open ones with a confirmation past due not yet flagged, and any other holding a lock still to
/// be lifted (closed, overpaid, or a disbursement undone).
pub async fn to_sweep(executor: impl PgExecutor<'_>, today: NaiveDate, limit: i64) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT centre_id, loan_id FROM loans
         WHERE (status = 'active' AND maturity_on < $1 AND defaulted_at IS NULL)
            OR (status IN ('submitted', 'approved', 'active') AND confirmation = 'requested' AND confirmation_due_on < $1 AND confirmation_overdue_at IS NULL)
            OR (status <> 'active' AND lock_ref IS NOT NULL AND unlocked_at IS NULL)
         ORDER BY centre_id, loan_id LIMIT $2",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The contract service lifted the closed loan's lock.
pub async fn mark_unlocked(executor: impl PgExecutor<'_>, centre_id: &str, loan_id: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE loans SET unlocked_at = $3 WHERE centre_id = $1 AND loan_id = $2").bind(centre_id).bind(loan_id).bind(at).execute(executor).await?;
    Ok(())
}

/// Rejects every submitted loan of a lender that exits (`lender_exited`), returning them.
pub async fn reject_submitted_of(transaction: &mut Tx, lender_id: &str, reason: &str) -> sqlx::Result<Vec<LoanRow>> {
    sqlx::query_as(&format!(
        "UPDATE loans SET status_code = 500, status = 'rejected', rejection_code = 'lender_exited', rejection_reason = $2
         WHERE lender_id = $1 AND status = 'submitted' RETURNING {COLUMNS}"
    ))
    .bind(lender_id)
    .bind(reason)
    .fetch_all(&mut **transaction)
    .await
}
