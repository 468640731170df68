//! Lenders, their products, and suppliers' consents.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LenderRow {
    pub lender_id: String,
    pub province_id: String,
    pub name: String,
    pub kind: String,
    pub bank_name: String,
    pub account_no: String,
    pub account_name: String,
    pub status: String,
    pub status_reason: String,
    pub onboarded_at: DateTime<Utc>,
}

const LENDER: &str = "lender_id, province_id, name, kind, bank_name, account_no, account_name, status, status_reason, onboarded_at";

pub async fn lender(executor: impl PgExecutor<'_>, lender_id: &str) -> sqlx::Result<Option<LenderRow>> {
    sqlx::query_as(&format!("SELECT {LENDER} FROM lenders WHERE lender_id = $1")).bind(lender_id).fetch_optional(executor).await
}

pub async fn lock_lender(transaction: &mut Tx, lender_id: &str) -> sqlx::Result<Option<LenderRow>> {
    sqlx::query_as(&format!("SELECT {LENDER} FROM lenders WHERE lender_id = $1 FOR UPDATE")).bind(lender_id).fetch_optional(&mut **transaction).await
}

pub async fn lenders(executor: impl PgExecutor<'_>, province_id: &str) -> sqlx::Result<Vec<LenderRow>> {
    sqlx::query_as(&format!("SELECT {LENDER} FROM lenders WHERE province_id = $1 ORDER BY lender_id")).bind(province_id).fetch_all(executor).await
}

/// Inserts a lender, or updates its name, kind and account.
pub async fn upsert_lender(transaction: &mut Tx, lender: &LenderRow, by: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO lenders (lender_id, province_id, name, kind, bank_name, account_no, account_name, status, onboarded_at, changed_at, changed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8, $9)
         ON CONFLICT (lender_id) DO UPDATE SET name = $3, kind = $4, bank_name = $5, account_no = $6, account_name = $7, changed_at = $8, changed_by = $9",
    )
    .bind(&lender.lender_id)
    .bind(&lender.province_id)
    .bind(&lender.name)
    .bind(&lender.kind)
    .bind(&lender.bank_name)
    .bind(&lender.account_no)
    .bind(&lender.account_name)
    .bind(at)
    .bind(by)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn set_status(transaction: &mut Tx, lender_id: &str, status: &str, reason: &str, by: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("UPDATE lenders SET status = $2, status_reason = $3, changed_at = $4, changed_by = $5 WHERE lender_id = $1")
        .bind(lender_id)
        .bind(status)
        .bind(reason)
        .bind(at)
        .bind(by)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Loans of the lender that are approved or active (submitted ones are rejected on exit,
/// `lender_exited`).
pub async fn open_loans(transaction: &mut Tx, lender_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM loans WHERE lender_id = $1 AND status IN ('approved', 'active')")
        .bind(lender_id)
        .fetch_one(&mut **transaction)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub lender_id: String,
    pub product_id: String,
    pub name: String,
    pub kind: String,
    pub rate_min_bp: i32,
    pub rate_max_bp: i32,
    pub max_ratio_bp: i32,
    pub term_days: i32,
    pub grace_days: i32,
    pub sme_only: bool,
    pub centres: Vec<String>,
    pub regimes: Vec<String>,
    pub contact: String,
}

const PRODUCT: &str =
    "p.lender_id, p.product_id, p.name, p.kind, p.rate_min_bp, p.rate_max_bp, p.max_ratio_bp, p.term_days, p.grace_days, p.sme_only, p.centres,
    p.regimes, p.contact";

pub async fn upsert_product(transaction: &mut Tx, product: &ProductRow, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO products (lender_id, product_id, name, kind, rate_min_bp, rate_max_bp, max_ratio_bp, term_days, grace_days, sme_only, centres, regimes,
                               contact, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (lender_id, product_id) DO UPDATE SET name = $3, kind = $4, rate_min_bp = $5, rate_max_bp = $6, max_ratio_bp = $7, term_days = $8,
             grace_days = $9, sme_only = $10, centres = $11, regimes = $12, contact = $13, published_at = $14",
    )
    .bind(&product.lender_id)
    .bind(&product.product_id)
    .bind(&product.name)
    .bind(&product.kind)
    .bind(product.rate_min_bp)
    .bind(product.rate_max_bp)
    .bind(product.max_ratio_bp)
    .bind(product.term_days)
    .bind(product.grace_days)
    .bind(product.sme_only)
    .bind(&product.centres)
    .bind(&product.regimes)
    .bind(&product.contact)
    .bind(at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn product(executor: impl PgExecutor<'_>, lender_id: &str, product_id: &str) -> sqlx::Result<Option<ProductRow>> {
    sqlx::query_as(&format!("SELECT {PRODUCT} FROM products p WHERE p.lender_id = $1 AND p.product_id = $2"))
        .bind(lender_id)
        .bind(product_id)
        .fetch_optional(executor)
        .await
}

/// Products of the province's active lenders.
pub async fn products(executor: impl PgExecutor<'_>, province_id: &str) -> sqlx::Result<Vec<ProductRow>> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM products p JOIN lenders l USING (lender_id) WHERE l.province_id = $1 AND l.status = 'active' ORDER BY p.lender_id, p.product_id"
    ))
    .bind(province_id)
    .fetch_all(executor)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub centre_id: String,
    pub supplier_uscc: String,
    pub lender_id: String,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Grants (again, after a revocation) the consent.
pub async fn grant(executor: impl PgExecutor<'_>, centre_id: &str, supplier: &str, lender_id: &str, at: DateTime<Utc>) -> sqlx::Result<ConsentRow> {
    sqlx::query_as(
        "INSERT INTO consents (centre_id, supplier_uscc, lender_id, granted_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (centre_id, supplier_uscc, lender_id) DO UPDATE
             SET granted_at = CASE WHEN consents.revoked_at IS NULL THEN consents.granted_at ELSE $4 END, revoked_at = NULL
         RETURNING centre_id, supplier_uscc, lender_id, granted_at, revoked_at",
    )
    .bind(centre_id)
    .bind(supplier)
    .bind(lender_id)
    .bind(at)
    .fetch_one(executor)
    .await
}

pub async fn revoke(executor: impl PgExecutor<'_>, centre_id: &str, supplier: &str, lender_id: &str, at: DateTime<Utc>) -> sqlx::Result<Option<ConsentRow>> {
    sqlx::query_as(
        "UPDATE consents SET revoked_at = coalesce(revoked_at, $4) WHERE centre_id = $1 AND supplier_uscc = $2 AND lender_id = $3
         RETURNING centre_id, supplier_uscc, lender_id, granted_at, revoked_at",
    )
    .bind(centre_id)
    .bind(supplier)
    .bind(lender_id)
    .bind(at)
    .fetch_optional(executor)
    .await
}

/// Whether `supplier` consents (to `lender_id` or to every lender) in `centre_id` now.
pub async fn consents(executor: impl PgExecutor<'_>, centre_id: &str, supplier: &str, lender_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM consents WHERE centre_id = $1 AND supplier_uscc = $2 AND lender_id IN ($3, '*') AND revoked_at IS NULL)")
        .bind(centre_id)
        .bind(supplier)
        .bind(lender_id)
        .fetch_one(executor)
        .await
}
