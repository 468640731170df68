//! Centres' clocks, parties' signing keys and LPR announcements added at run time.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::overdue::LprHistory;
use rust_decimal::Decimal;
use sqlx::{PgExecutor, Row};

use crate::domain::rules::CentreRules;

/// The centre's clocks, the law's when it set none.
pub async fn centre_rules(executor: impl PgExecutor<'_>, centre_id: &str) -> sqlx::Result<CentreRules> {
    let row = sqlx::query(
        "SELECT sign_days, sign_in_working_days, publish_working_days, file_working_days, acceptance_working_days, objection_working_days,
                invoice_payment_working_days FROM centre_rules WHERE centre_id = $1",
    )
    .bind(centre_id)
    .fetch_optional(executor)
    .await?;
    let days = |row: &sqlx::postgres::PgRow, index: usize| u32::try_from(row.get::<i32, _>(index)).unwrap_or(0);
    Ok(row.map_or(CentreRules::LAW, |row| CentreRules {
        sign_days: days(&row, 0),
        sign_in_working_days: row.get(1),
        publish_working_days: days(&row, 2),
        file_working_days: days(&row, 3),
        acceptance_working_days: days(&row, 4),
        objection_working_days: days(&row, 5),
        invoice_payment_working_days: days(&row, 6),
    }))
}

pub async fn set_centre_rules(executor: impl PgExecutor<'_>, centre_id: &str, rules: &CentreRules, by: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    let days = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO centre_rules (centre_id, sign_days, sign_in_working_days, publish_working_days, file_working_days, acceptance_working_days,
                                   objection_working_days, invoice_payment_working_days, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (centre_id) DO UPDATE SET sign_days = $2, sign_in_working_days = $3, publish_working_days = $4, file_working_days = $5,
             acceptance_working_days = $6, objection_working_days = $7, invoice_payment_working_days = $8, updated_at = $9, updated_by = $10",
    )
    .bind(centre_id)
    .bind(days(rules.sign_days))
    .bind(rules.sign_in_working_days)
    .bind(days(rules.publish_working_days))
    .bind(days(rules.file_working_days))
    .bind(days(rules.acceptance_working_days))
    .bind(days(rules.objection_working_days))
    .bind(days(rules.invoice_payment_working_days))
    .bind(now)
    .bind(by)
    .execute(executor)
    .await?;
    Ok(())
}

/// A registered signing key: scheme code and hex public key.
pub async fn party_key(executor: impl PgExecutor<'_>, centre_id: &str, party: &str, key_ref: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT scheme, public_key FROM party_keys WHERE centre_id = $1 AND party_uscc = $2 AND key_ref = $3")
        .bind(centre_id)
        .bind(party)
        .bind(key_ref)
        .fetch_optional(executor)
        .await
}

/// A party's key, registered or replaced under its key reference.
pub struct NewKey<'a> {
    pub centre_id: &'a str,
    pub party: &'a str,
    pub key_ref: &'a str,
    pub scheme: &'a str,
    pub public_key: &'a str,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

pub async fn register_key(executor: impl PgExecutor<'_>, key: &NewKey<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO party_keys (centre_id, party_uscc, key_ref, scheme, public_key, registered_at, registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (centre_id, party_uscc, key_ref) DO UPDATE SET scheme = $4, public_key = $5, registered_at = $6, registered_by = $7",
    )
    .bind(key.centre_id)
    .bind(key.party)
    .bind(key.key_ref)
    .bind(key.scheme)
    .bind(key.public_key)
    .bind(key.now)
    .bind(key.by)
    .execute(executor)
    .await?;
    Ok(())
}

/// The shipped LPR history with every announcement added at run time.
pub async fn lpr_history(executor: impl PgExecutor<'_>) -> anyhow::Result<LprHistory> {
    let rows: Vec<(NaiveDate, String)> = sqlx::query_as("SELECT effective_from, rate::text FROM lpr_rates ORDER BY effective_from").fetch_all(executor).await?;
    let mut history = LprHistory::china();
    for (from, rate) in rows {
        history = history.with_rate(from, rate.parse::<Decimal>()?)?;
    }
    Ok(history)
}

/// Records an announcement; `Some(rate)` when another rate is recorded for that day.
pub async fn add_lpr(executor: impl PgExecutor<'_>, from: NaiveDate, rate: Decimal, by: &str, now: DateTime<Utc>) -> sqlx::Result<Option<String>> {
    let stored: String = sqlx::query_scalar(
        "WITH added AS (INSERT INTO lpr_rates (effective_from, rate, added_at, added_by) VALUES ($1, $2::numeric, $3, $4)
                        ON CONFLICT (effective_from) DO NOTHING RETURNING rate)
         SELECT coalesce((SELECT rate FROM added), (SELECT rate FROM lpr_rates WHERE effective_from = $1))::text",
    )
    .bind(from)
    .bind(rate.to_string())
    .bind(now)
    .bind(by)
    .fetch_one(executor)
    .await?;
    Ok((stored.parse::<Decimal>().ok() != Some(rate)).then_some(stored))
}
