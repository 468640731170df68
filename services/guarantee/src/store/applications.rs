//! Applications. What names the bidder is sealed; rows are found by the bidder's tag.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{parsed, Tx};
use crate::domain::{ApplicationState, GuaranteeType};

/// An application as stored (its sealed part still sealed).
#[derive(Debug, Clone)]
pub struct Application {
    pub application_id: Uuid,
    pub centre_id: String,
    pub province_id: String,
    pub section_id: String,
    pub bidder_tag: Vec<u8>,
    pub issuer_code: String,
    pub product_id: String,
    pub kind: GuaranteeType,
    pub state: ApplicationState,
    pub sealed: Vec<u8>,
    pub applied_at: DateTime<Utc>,
    /// The guarantee issued on it, where the query joins guarantees.
    pub guarantee_no: Option<String>,
}

/// What applying writes.
#[derive(Debug, Clone)]
pub struct NewApplication<'a> {
    pub application_id: Uuid,
    pub centre_id: &'a str,
    pub province_id: &'a str,
    pub section_id: &'a str,
    pub bidder_tag: &'a [u8],
    pub issuer_code: &'a str,
    pub product_id: &'a str,
    pub kind: GuaranteeType,
    pub sealed: Vec<u8>,
    pub client_ip: Option<&'a str>,
}

fn application(row: &PgRow) -> anyhow::Result<Application> {
    Ok(Application {
        application_id: row.try_get("application_id")?,
        centre_id: row.try_get("centre_id")?,
        province_id: row.try_get("province_id")?,
        section_id: row.try_get("section_id")?,
        bidder_tag: row.try_get("bidder_tag")?,
        issuer_code: row.try_get("issuer_code")?,
        product_id: row.try_get("product_id")?,
        kind: parsed("application kind", row.try_get("kind")?, GuaranteeType::parse)?,
        state: parsed("application status", row.try_get("status")?, ApplicationState::parse)?,
        sealed: row.try_get("sealed")?,
        applied_at: row.try_get("applied_at")?,
        guarantee_no: row.try_get("guarantee_no").ok().flatten(),
    })
}

/// Serialises applications of one bidder, section and type until the transaction ends.
pub async fn lock_bidder(transaction: &mut Tx, centre_id: &str, section_id: &str, kind: GuaranteeType, bidder_tag: &[u8]) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3 || '/' || encode($4, 'hex'), 0))")
        .bind(centre_id)
        .bind(section_id)
        .bind(kind.code())
        .bind(bidder_tag)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// The number of the bidder's guarantee of `kind` for the section that is in force, if any.
pub async fn guarantee_in_force(
    transaction: &mut Tx,
    centre_id: &str,
    section_id: &str,
    kind: GuaranteeType,
    bidder_tag: &[u8],
) -> anyhow::Result<Option<String>> {
    let number = sqlx::query_scalar(
        "SELECT g.guarantee_no FROM applications a JOIN guarantees g USING (application_id)
         WHERE a.centre_id = $1 AND a.section_id = $2 AND a.bidder_tag = $3 AND a.kind = $4 AND g.state IN ('issued', 'claimed')",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(bidder_tag)
    .bind(kind.code())
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(number)
}

/// Inserts a pending application; `None` when the bidder already has a live one (pending or
/// issued) of the same type for the section.
pub async fn insert(transaction: &mut Tx, new: &NewApplication<'_>) -> anyhow::Result<Option<Application>> {
    let row = sqlx::query(
        "INSERT INTO applications (application_id, centre_id, province_id, section_id, bidder_tag, issuer_code, product_id, kind, status, sealed, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
         ON CONFLICT DO NOTHING RETURNING *",
    )
    .bind(new.application_id)
    .bind(new.centre_id)
    .bind(new.province_id)
    .bind(new.section_id)
    .bind(new.bidder_tag)
    .bind(new.issuer_code)
    .bind(new.product_id)
    .bind(new.kind.code())
    .bind(&new.sealed)
    .bind(new.client_ip)
    .fetch_optional(&mut **transaction)
    .await?;
    row.as_ref().map(application).transpose()
}

/// The bidder's pending application of `kind` for the section, if any.
pub async fn pending(transaction: &mut Tx, centre_id: &str, section_id: &str, kind: GuaranteeType, bidder_tag: &[u8]) -> anyhow::Result<Option<Uuid>> {
    let id = sqlx::query_scalar(
        "SELECT application_id FROM applications WHERE centre_id = $1 AND section_id = $2 AND bidder_tag = $3 AND kind = $4 AND status = 'pending'",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(bidder_tag)
    .bind(kind.code())
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(id)
}

/// The application, locked for the rest of the transaction.
pub async fn lock(transaction: &mut Tx, application_id: Uuid, centre_id: &str) -> anyhow::Result<Option<Application>> {
    let row = sqlx::query("SELECT * FROM applications WHERE application_id = $1 AND centre_id = $2 FOR UPDATE")
        .bind(application_id)
        .bind(centre_id)
        .fetch_optional(&mut **transaction)
        .await?;
    row.as_ref().map(application).transpose()
}

/// Records the decision on a pending application (with its sealed part when it changed).
pub async fn decide(transaction: &mut Tx, application_id: Uuid, state: ApplicationState, sealed: Option<&[u8]>) -> anyhow::Result<Application> {
    let row = sqlx::query("UPDATE applications SET status = $2, decided_at = now(), sealed = COALESCE($3, sealed) WHERE application_id = $1 RETURNING *")
        .bind(application_id)
        .bind(state.code())
        .bind(sealed)
        .fetch_one(&mut **transaction)
        .await?;
    application(&row)
}

/// The issuer's applications in the province, oldest first (at most 1000), optionally of one
/// status.
pub async fn of_issuer(pool: &PgPool, province: &str, issuer_code: &str, status: &str) -> anyhow::Result<Vec<Application>> {
    let rows = sqlx::query(
        "SELECT a.*, g.guarantee_no FROM applications a LEFT JOIN guarantees g USING (application_id)
         WHERE a.province_id = $1 AND a.issuer_code = $2 AND ($3 = '' OR a.status = $3) ORDER BY a.applied_at LIMIT 1000",
    )
    .bind(province)
    .bind(issuer_code)
    .bind(status)
    .fetch_all(pool)
    .await?;
    rows.iter().map(application).collect()
}

pub async fn get(pool: &PgPool, application_id: Uuid, centre_id: &str) -> anyhow::Result<Option<Application>> {
    let row = sqlx::query(
        "SELECT a.*, g.guarantee_no FROM applications a LEFT JOIN guarantees g USING (application_id) WHERE a.application_id = $1 AND a.centre_id = $2",
    )
    .bind(application_id)
    .bind(centre_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(application).transpose()
}

/// The bidder's cancelled or rejected applications of the last hour.
pub async fn failed_last_hour(transaction: &mut Tx, centre_id: &str, bidder_tag: &[u8]) -> anyhow::Result<i64> {
    let failed = sqlx::query_scalar(
        "SELECT count(*) FROM applications WHERE centre_id = $1 AND bidder_tag = $2
           AND status IN ('cancelled', 'rejected') AND decided_at > now() - interval '1 hour'",
    )
    .bind(centre_id)
    .bind(bidder_tag)
    .fetch_one(&mut **transaction)
    .await?;
    Ok(failed)
}

/// Firms that applied to the issuer for the section in the last hour.
pub async fn firms_for_issuer_section_last_hour(transaction: &mut Tx, centre_id: &str, section_id: &str, issuer_code: &str) -> anyhow::Result<i64> {
    let firms = sqlx::query_scalar(
        "SELECT count(DISTINCT bidder_tag) FROM applications
         WHERE centre_id = $1 AND section_id = $2 AND issuer_code = $3 AND applied_at > now() - interval '1 hour'",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(issuer_code)
    .fetch_one(&mut **transaction)
    .await?;
    Ok(firms)
}

/// Firms that applied from the address in the last hour.
pub async fn firms_from_ip_last_hour(transaction: &mut Tx, client_ip: &str) -> anyhow::Result<i64> {
    let firms = sqlx::query_scalar("SELECT count(DISTINCT bidder_tag) FROM applications WHERE client_ip = $1 AND applied_at > now() - interval '1 hour'")
        .bind(client_ip)
        .fetch_one(&mut **transaction)
        .await?;
    Ok(firms)
}
