//! Centres, their collection accounts, demand-deposit rates and calendar overrides.

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::domain::centres::{AnnualRate, OverrideKind, RefundRules};

/// What registering a centre did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CentreRegistered {
    Created,
    /// Registered before with the same name and parent; refund rules updated.
    AlreadyRegistered,
    /// Registered before with another name or parent; nothing changed.
    Conflict,
    /// The parent is not registered; nothing changed.
    UnknownParent,
}

/// Registers a centre with its chain head and refund rules, in one transaction.
pub async fn register_centre(pool: &PgPool, centre_id: &str, name: &str, parent: Option<&str>, rules: &RefundRules) -> Result<CentreRegistered, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let existing = sqlx::query("SELECT name, parent_centre_id FROM centres WHERE centre_id = $1").bind(centre_id).fetch_optional(&mut *transaction).await?;
    if let Some(row) = existing {
        if row.get::<String, _>(0) != name || row.get::<Option<String>, _>(1).as_deref() != parent {
            return Ok(CentreRegistered::Conflict);
        }
        set_refund_rules(&mut transaction, centre_id, rules).await?;
        transaction.commit().await?;
        return Ok(CentreRegistered::AlreadyRegistered);
    }
    if let Some(parent) = parent {
        if !exists(&mut transaction, parent).await? {
            return Ok(CentreRegistered::UnknownParent);
        }
    }
    sqlx::query("INSERT INTO centres (centre_id, name, parent_centre_id) VALUES ($1, $2, $3)")
        .bind(centre_id)
        .bind(name)
        .bind(parent)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("INSERT INTO chain_heads (centre_id, last_sequence, last_hash) VALUES ($1, 0, $2)")
        .bind(centre_id)
        .bind(jinfu_ledger::chain::GENESIS_HASH.to_vec())
        .execute(&mut *transaction)
        .await?;
    set_refund_rules(&mut transaction, centre_id, rules).await?;
    transaction.commit().await?;
    Ok(CentreRegistered::Created)
}

async fn exists(transaction: &mut Transaction<'_, Postgres>, centre_id: &str) -> Result<bool, sqlx::Error> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1").bind(centre_id).fetch_optional(&mut **transaction).await?;
    Ok(known.is_some())
}

async fn set_refund_rules(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, rules: &RefundRules) -> Result<(), sqlx::Error> {
    for period in &rules.periods {
        sqlx::query(
            "INSERT INTO centre_refund_periods (centre_id, regime, trigger, period_days) VALUES ($1, $2, $3, $4)
             ON CONFLICT (centre_id, regime, trigger) DO UPDATE SET period_days = EXCLUDED.period_days",
        )
        .bind(centre_id)
        .bind(period.regime().code())
        .bind(period.trigger().code())
        .bind(period.days())
        .execute(&mut **transaction)
        .await?;
    }
    sqlx::query(
        "UPDATE centres SET refund_period_days = coalesce($2, refund_period_days),
                            refund_hold_working_days = coalesce($3, refund_hold_working_days)
         WHERE centre_id = $1",
    )
    .bind(centre_id)
    .bind(rules.period_days)
    .bind(rules.hold_working_days)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Whether the centre is registered.
pub async fn is_registered(pool: &PgPool, centre_id: &str) -> Result<bool, sqlx::Error> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1").bind(centre_id).fetch_optional(pool).await?;
    Ok(known.is_some())
}

/// A collection account as registered.
pub struct NewBankAccount<'a> {
    pub centre_id: &'a str,
    pub bank: &'a str,
    pub account_number: &'a str,
    pub signing_key_ref: &'a str,
    pub rate: AnnualRate,
}

/// What registering a collection account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRegistered {
    /// Stored; `created` is false when it existed and its key and rate were updated.
    Stored { created: bool },
    /// The account belongs to another centre; nothing changed.
    OtherCentre,
    /// The centre is not registered; nothing changed.
    UnknownCentre,
}

/// Registers (or updates) a collection account and its standing rate, in one transaction.
pub async fn register_bank_account(pool: &PgPool, account: &NewBankAccount<'_>) -> Result<AccountRegistered, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let stored = sqlx::query_scalar::<_, bool>(
        "INSERT INTO bank_accounts (bank, account_number, centre_id, signing_key_ref, demand_deposit_rate)
         VALUES ($1, $2, $3, $4, $5::numeric)
         ON CONFLICT (bank, account_number) DO UPDATE SET signing_key_ref = EXCLUDED.signing_key_ref,
             demand_deposit_rate = EXCLUDED.demand_deposit_rate
         WHERE bank_accounts.centre_id = EXCLUDED.centre_id
         RETURNING (xmax = 0)",
    )
    .bind(account.bank)
    .bind(account.account_number)
    .bind(account.centre_id)
    .bind(account.signing_key_ref)
    .bind(account.rate.to_numeric_text())
    .fetch_optional(&mut *transaction)
    .await;
    let created = match stored {
        Ok(Some(created)) => created,
        Ok(None) => return Ok(AccountRegistered::OtherCentre),
        Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => return Ok(AccountRegistered::UnknownCentre),
        Err(error) => return Err(error),
    };
    sqlx::query(
        "INSERT INTO bank_account_rates (bank, account_number, effective_from, annual_rate)
         VALUES ($1, $2, DATE '2000-01-01', $3::numeric)
         ON CONFLICT (bank, account_number, effective_from) DO UPDATE SET annual_rate = EXCLUDED.annual_rate",
    )
    .bind(account.bank)
    .bind(account.account_number)
    .bind(account.rate.to_numeric_text())
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(AccountRegistered::Stored { created })
}

/// The centre a collection account belongs to, if it is registered.
pub async fn account_centre(pool: &PgPool, bank: &str, account_number: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT centre_id FROM bank_accounts WHERE bank = $1 AND account_number = $2").bind(bank).bind(account_number).fetch_optional(pool).await
}

/// Sets a collection account's rate from `effective_from`. Returns false when the centre has
/// no such account.
pub async fn set_rate(
    pool: &PgPool,
    centre_id: &str,
    bank: &str,
    account_number: &str,
    effective_from: NaiveDate,
    rate: AnnualRate,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "INSERT INTO bank_account_rates (bank, account_number, effective_from, annual_rate)
         SELECT bank, account_number, $4, $5::numeric FROM bank_accounts WHERE bank = $2 AND account_number = $3 AND centre_id = $1
         ON CONFLICT (bank, account_number, effective_from) DO UPDATE SET annual_rate = EXCLUDED.annual_rate",
    )
    .bind(centre_id)
    .bind(bank)
    .bind(account_number)
    .bind(effective_from)
    .bind(rate.to_numeric_text())
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Replaces the centre's calendar overrides, in one transaction. Returns false (and changes
/// nothing) when the centre is not registered.
pub async fn replace_calendar_overrides(pool: &PgPool, centre_id: &str, overrides: &[(NaiveDate, OverrideKind)]) -> Result<bool, sqlx::Error> {
    let days: Vec<NaiveDate> = overrides.iter().map(|(day, _)| *day).collect();
    let kinds: Vec<&str> = overrides.iter().map(|(_, kind)| kind.code()).collect();
    let mut transaction = pool.begin().await?;
    let known: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1 FOR UPDATE").bind(centre_id).fetch_optional(&mut *transaction).await?;
    if known.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM calendar_overrides WHERE centre_id = $1").bind(centre_id).execute(&mut *transaction).await?;
    sqlx::query("INSERT INTO calendar_overrides (centre_id, day, kind) SELECT $1, day, kind FROM UNNEST($2::date[], $3::text[]) AS o(day, kind)")
        .bind(centre_id)
        .bind(&days)
        .bind(&kinds)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(true)
}

/// The centre's liability balances summed per account class (the key's first segment).
pub async fn liabilities_by_class(pool: &PgPool, centre_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT split_part(account, ':', 1) AS class, sum(balance_fen)::bigint FROM accounts
         WHERE centre_id = $1 AND kind = 'liability' GROUP BY 1",
    )
    .bind(centre_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(class, fen)| (class, fen.unwrap_or(0))).collect())
}
