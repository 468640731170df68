//! Fraud warnings, stored once per rule, subject and hour.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::Tx;

/// A stored warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudWarning {
    pub centre_id: String,
    pub rule: String,
    pub subject: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

/// Stores a warning; `false` when the same rule already warned about the subject this hour.
pub async fn insert(transaction: &mut Tx, centre_id: &str, rule: &str, subject: &str, detail: &str) -> anyhow::Result<bool> {
    let stored = sqlx::query("INSERT INTO fraud_warnings (centre_id, rule, subject, detail) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(centre_id)
        .bind(rule)
        .bind(subject)
        .bind(detail)
        .execute(&mut **transaction)
        .await?
        .rows_affected()
        > 0;
    Ok(stored)
}

/// The centre's warnings, newest first (at most 1000).
pub async fn list(pool: &PgPool, centre_id: &str) -> anyhow::Result<Vec<FraudWarning>> {
    let rows =
        sqlx::query("SELECT * FROM fraud_warnings WHERE centre_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1000").bind(centre_id).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(FraudWarning {
                centre_id: row.try_get("centre_id")?,
                rule: row.try_get("rule")?,
                subject: row.try_get("subject")?,
                detail: row.try_get("detail")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
