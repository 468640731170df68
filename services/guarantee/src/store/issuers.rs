//! Issuers and the log of their state changes.

use jinfu_platform::signing::Scheme;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{parsed, Tx};
use crate::domain::{IssuerKind, IssuerState};

/// An issuer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The province centre.
    pub centre_id: String,
    pub issuer_code: String,
    pub name: String,
    pub kind: IssuerKind,
    pub state: IssuerState,
    pub scheme: Scheme,
    /// Lower-case hex.
    pub public_key: String,
}

/// What registering an issuer writes.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub province: &'a str,
    pub issuer_code: &'a str,
    pub name: &'a str,
    pub kind: IssuerKind,
    pub scheme: Scheme,
    pub public_key: &'a str,
}

fn issuer(row: &PgRow) -> anyhow::Result<Issuer> {
    Ok(Issuer {
        centre_id: row.try_get("centre_id")?,
        issuer_code: row.try_get("issuer_code")?,
        name: row.try_get("name")?,
        kind: parsed("issuer kind", row.try_get("kind")?, IssuerKind::parse)?,
        state: parsed("issuer state", row.try_get("state")?, IssuerState::parse)?,
        scheme: row.try_get::<&str, _>("scheme")?.parse()?,
        public_key: row.try_get("public_key")?,
    })
}

/// The issuer, locked for the rest of the transaction.
pub async fn lock(transaction: &mut Tx, province: &str, issuer_code: &str) -> anyhow::Result<Option<Issuer>> {
    let row = sqlx::query("SELECT * FROM issuers WHERE centre_id = $1 AND issuer_code = $2 FOR UPDATE")
        .bind(province)
        .bind(issuer_code)
        .fetch_optional(&mut **transaction)
        .await?;
    row.as_ref().map(issuer).transpose()
}

/// Inserts the issuer or updates its details (not its state).
pub async fn upsert(transaction: &mut Tx, registration: &Registration<'_>) -> anyhow::Result<Issuer> {
    let row = sqlx::query(
        "INSERT INTO issuers (centre_id, issuer_code, name, kind, scheme, public_key) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (centre_id, issuer_code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, scheme = EXCLUDED.scheme, public_key = EXCLUDED.public_key
         RETURNING *",
    )
    .bind(registration.province)
    .bind(registration.issuer_code)
    .bind(registration.name)
    .bind(registration.kind.code())
    .bind(registration.scheme.as_str())
    .bind(registration.public_key)
    .fetch_one(&mut **transaction)
    .await?;
    issuer(&row)
}

/// Sets the issuer's state and logs the change with its reason.
pub async fn set_state(transaction: &mut Tx, province: &str, issuer_code: &str, state: IssuerState, reason: &str, changed_by: &str) -> anyhow::Result<Issuer> {
    let row = sqlx::query("UPDATE issuers SET state = $3 WHERE centre_id = $1 AND issuer_code = $2 RETURNING *")
        .bind(province)
        .bind(issuer_code)
        .bind(state.code())
        .fetch_one(&mut **transaction)
        .await?;
    log_state(transaction, province, issuer_code, state, reason, changed_by).await?;
    issuer(&row)
}

/// Logs a state the issuer entered.
pub async fn log_state(transaction: &mut Tx, province: &str, issuer_code: &str, state: IssuerState, reason: &str, changed_by: &str) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO issuer_state_changes (centre_id, issuer_code, state, reason, changed_by) VALUES ($1, $2, $3, $4, $5)")
        .bind(province)
        .bind(issuer_code)
        .bind(state.code())
        .bind(reason)
        .bind(changed_by)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

pub async fn list(pool: &PgPool, province: &str) -> anyhow::Result<Vec<Issuer>> {
    let rows = sqlx::query("SELECT * FROM issuers WHERE centre_id = $1 ORDER BY issuer_code").bind(province).fetch_all(pool).await?;
    rows.iter().map(issuer).collect()
}

/// The issuer's current key (`scheme`, hex public key), if it is registered.
pub async fn key(pool: &PgPool, province: &str, issuer_code: &str) -> anyhow::Result<Option<(String, String)>> {
    let key = sqlx::query_as("SELECT scheme, public_key FROM issuers WHERE centre_id = $1 AND issuer_code = $2")
        .bind(province)
        .bind(issuer_code)
        .fetch_optional(pool)
        .await?;
    Ok(key)
}
