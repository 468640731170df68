//! Figures per centre (a province centre: all its centres) and per lender.

use chrono::NaiveDate;
use sqlx::PgExecutor;

/// The period and scope of a report.
pub struct Scope<'a> {
    /// A centre code; a province's (ending 0000) covers every centre of the province.
    pub centre_id: &'a str,
    pub lender_id: Option<&'a str>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub today: NaiveDate,
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Figures {
    pub applied: i64,
    pub approved: i64,
    pub rejected: i64,
    pub disbursed: i64,
    pub disbursed_fen: i64,
    pub average_rate_bp: i64,
    pub average_days_to_cash: i64,
    pub repaid_fen: i64,
    pub outstanding_fen: i64,
    pub overdue: i64,
    pub defaulted: i64,
}

pub async fn figures(executor: impl PgExecutor<'_>, scope: &Scope<'_>) -> sqlx::Result<Figures> {
    let province = scope.centre_id.ends_with("0000");
    let centre_filter = if province { "left(l.centre_id, 2) = left($1, 2)" } else { "l.centre_id = $1" };
    sqlx::query_as(&format!(
        "WITH scoped AS (SELECT * FROM loans l WHERE {centre_filter} AND ($2::text IS NULL OR l.lender_id = $2)),
              span AS (SELECT coalesce($3::date, '0001-01-01'::date) AS first, coalesce($4::date, '9999-12-31'::date) AS last)
         SELECT
           (SELECT count(*) FROM scoped, span WHERE (submitted_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN first AND last) AS applied,
           (SELECT count(*) FROM scoped, span WHERE (approved_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN first AND last) AS approved,
           (SELECT count(*) FROM scoped, span WHERE status = 'rejected' AND (submitted_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN first AND last) AS rejected,
           (SELECT count(*) FROM scoped, span WHERE disbursed_on BETWEEN first AND last) AS disbursed,
           (SELECT coalesce(sum(amount_fen), 0)::bigint FROM scoped, span WHERE disbursed_on BETWEEN first AND last) AS disbursed_fen,
           (SELECT coalesce(floor(avg(rate_bp)), 0)::bigint FROM scoped, span WHERE disbursed_on BETWEEN first AND last) AS average_rate_bp,
           (SELECT coalesce(floor(avg(disbursed_on - (submitted_at AT TIME ZONE 'Asia/Shanghai')::date)), 0)::bigint FROM scoped, span
             WHERE disbursed_on BETWEEN first AND last) AS average_days_to_cash,
           (SELECT coalesce(sum(r.amount_fen - r.surplus_fen), 0)::bigint FROM repayments r JOIN scoped s USING (centre_id, loan_id), span
             WHERE r.paid_on BETWEEN first AND last) AS repaid_fen,
           (SELECT coalesce(sum(principal_outstanding_fen), 0)::bigint FROM scoped WHERE status = 'active') AS outstanding_fen,
           (SELECT count(*) FROM scoped WHERE status = 'active' AND maturity_on < $5) AS overdue,
           (SELECT count(*) FROM scoped WHERE defaulted_at IS NOT NULL) AS defaulted"
    ))
    .bind(scope.centre_id)
    .bind(scope.lender_id)
    .bind(scope.from)
    .bind(scope.to)
    .bind(scope.today)
    .fetch_one(executor)
    .await
}
