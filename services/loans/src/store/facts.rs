//! What the contract service told on contract.events: its contracts (the lenders'
//! opportunities) and the purchasers' payments (repayments, and suppliers' payment history).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

use super::Tx;
use crate::domain::line::Factors;

/// A contract as the events tell it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContractFact {
    pub centre_id: String,
    pub contract_id: String,
    pub section_id: String,
    pub supplier_uscc: String,
    pub purchaser_uscc: String,
    pub amount_fen: i64,
    pub status: String,
}

/// Records a drafted or signed contract (a signing never goes back to pending).
pub async fn upsert_contract(transaction: &mut Tx, fact: &ContractFact, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO contracts (centre_id, contract_id, section_id, supplier_uscc, purchaser_uscc, amount_fen, status, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (centre_id, contract_id) DO UPDATE SET amount_fen = $6, updated_at = $8,
             status = CASE WHEN contracts.status = 'pending' THEN $7 ELSE contracts.status END",
    )
    .bind(&fact.centre_id)
    .bind(&fact.contract_id)
    .bind(&fact.section_id)
    .bind(&fact.supplier_uscc)
    .bind(&fact.purchaser_uscc)
    .bind(fact.amount_fen)
    .bind(&fact.status)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// An amendment or a termination of a contract already known (unknown ones: nothing).
pub async fn update_contract(
    transaction: &mut Tx,
    centre_id: &str,
    contract_id: &str,
    amount_fen: Option<i64>,
    terminated: bool,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contracts SET amount_fen = coalesce($3, amount_fen), status = CASE WHEN $4 THEN 'terminated' ELSE status END, updated_at = $5
         WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(centre_id)
    .bind(contract_id)
    .bind(amount_fen)
    .bind(terminated)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Contracts (pending or active) of `centre_id` whose suppliers consent to `lender_id` now.
pub async fn opportunities(executor: impl PgExecutor<'_>, centre_id: &str, lender_id: &str) -> sqlx::Result<Vec<ContractFact>> {
    sqlx::query_as(
        "SELECT c.centre_id, c.contract_id, c.section_id, c.supplier_uscc, c.purchaser_uscc, c.amount_fen, c.status FROM contracts c
         WHERE c.centre_id = $1 AND c.status <> 'terminated'
           AND EXISTS (SELECT 1 FROM consents k WHERE k.centre_id = c.centre_id AND k.supplier_uscc = c.supplier_uscc AND k.lender_id IN ($2, '*')
                       AND k.revoked_at IS NULL)
         ORDER BY c.updated_at DESC LIMIT 500",
    )
    .bind(centre_id)
    .bind(lender_id)
    .fetch_all(executor)
    .await
}

/// A payment recorded under a contract.
#[derive(Debug, Clone)]
pub struct PaymentFact {
    pub centre_id: String,
    pub payment_id: String,
    pub contract_id: String,
    pub supplier_uscc: String,
    pub purchaser_uscc: String,
    pub amount_fen: i64,
    pub paid_on: NaiveDate,
    pub locked_by: Option<String>,
}

/// Records the payment; `false` when it was recorded before (a repeated event).
pub async fn insert_payment(transaction: &mut Tx, payment: &PaymentFact, at: DateTime<Utc>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO payments (centre_id, payment_id, contract_id, supplier_uscc, purchaser_uscc, amount_fen, paid_on, locked_by, seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(&payment.centre_id)
    .bind(&payment.payment_id)
    .bind(&payment.contract_id)
    .bind(&payment.supplier_uscc)
    .bind(&payment.purchaser_uscc)
    .bind(payment.amount_fen)
    .bind(payment.paid_on)
    .bind(&payment.locked_by)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The factors of `supplier`'s credit-flow line on `today`: payments in the 12 months before,
/// in the centres of `centre_id`'s province.
pub async fn line_factors(executor: impl PgExecutor<'_>, centre_id: &str, supplier: &str, today: NaiveDate) -> sqlx::Result<Factors> {
    let since = today.checked_sub_months(chrono::Months::new(12)).unwrap_or(today);
    let (received, months, purchasers, outstanding): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(amount_fen), 0)::bigint, count(DISTINCT date_trunc('month', paid_on)), count(DISTINCT purchaser_uscc),
                (SELECT coalesce(sum(principal_outstanding_fen), 0)::bigint FROM loans
                  WHERE supplier_uscc = $1 AND status = 'active' AND left(centre_id, 2) = left($4, 2))
         FROM payments WHERE supplier_uscc = $1 AND paid_on > $2 AND paid_on <= $3 AND left(centre_id, 2) = left($4, 2)",
    )
    .bind(supplier)
    .bind(since)
    .bind(today)
    .bind(centre_id)
    .fetch_one(executor)
    .await?;
    Ok(Factors {
        received_12m_fen: received,
        months_with_payments: u32::try_from(months).unwrap_or(0),
        distinct_purchasers: u32::try_from(purchasers).unwrap_or(0),
        outstanding_fen: outstanding,
    })
}
