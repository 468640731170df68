//! Deadlines pending the calendar (NULL: their year had no data when the act happened) and
//! their dating once it has (`crate::sweeper`).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

/// A contract with its signing or disclosure deadlines pending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UndatedContract {
    pub centre_id: String,
    pub contract_id: String,
    pub awarded_at: DateTime<Utc>,
    pub sign_by: Option<NaiveDate>,
    pub signed_at: Option<DateTime<Utc>>,
    pub publish_by: Option<NaiveDate>,
}

pub async fn contracts(executor: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<UndatedContract>> {
    sqlx::query_as(
        "SELECT centre_id, contract_id, awarded_at, sign_by, signed_at, publish_by FROM contracts
         WHERE sign_by IS NULL OR (signed_at IS NOT NULL AND publish_by IS NULL) ORDER BY awarded_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Sets the deadlines given, each only where it is still pending.
pub async fn date_contract(
    executor: impl PgExecutor<'_>,
    contract: &UndatedContract,
    sign_by: Option<NaiveDate>,
    disclose_by: Option<(NaiveDate, NaiveDate)>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contracts SET sign_by = coalesce(sign_by, $3), publish_by = coalesce(publish_by, $4), file_by = coalesce(file_by, $5)
         WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(&contract.centre_id)
    .bind(&contract.contract_id)
    .bind(sign_by)
    .bind(disclose_by.map(|(publish, _)| publish))
    .bind(disclose_by.map(|(_, file)| file))
    .execute(executor)
    .await?;
    Ok(())
}

/// An acceptance or invoice with its deadline pending: centre, contract or invoice, milestone
/// (acceptances), and the instant its deadline runs from.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Undated {
    pub centre_id: String,
    pub subject: String,
    pub milestone: i32,
    pub from: DateTime<Utc>,
}

pub async fn acceptances(executor: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<Undated>> {
    sqlx::query_as(
        "SELECT centre_id, contract_id AS subject, milestone, requested_at AS \"from\" FROM acceptances WHERE organise_by IS NULL ORDER BY requested_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(executor)
    .await
}

pub async fn date_acceptance(executor: impl PgExecutor<'_>, acceptance: &Undated, organise_by: NaiveDate) -> sqlx::Result<()> {
    sqlx::query("UPDATE acceptances SET organise_by = $4 WHERE centre_id = $1 AND contract_id = $2 AND milestone = $3 AND organise_by IS NULL")
        .bind(&acceptance.centre_id)
        .bind(&acceptance.subject)
        .bind(acceptance.milestone)
        .bind(organise_by)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn invoices(executor: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<Undated>> {
    sqlx::query_as(
        "SELECT centre_id, invoice_no AS subject, milestone, received_at AS \"from\" FROM invoices WHERE object_by IS NULL ORDER BY received_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(executor)
    .await
}

pub async fn date_invoice(executor: impl PgExecutor<'_>, invoice: &Undated, object_by: NaiveDate) -> sqlx::Result<()> {
    sqlx::query("UPDATE invoices SET object_by = $3 WHERE centre_id = $1 AND invoice_no = $2 AND object_by IS NULL")
        .bind(&invoice.centre_id)
        .bind(&invoice.subject)
        .bind(object_by)
        .execute(executor)
        .await?;
    Ok(())
}
