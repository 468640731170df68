//! Loaded calendar years (`calendar_years`, the year in force), their audit trail
//! (`calendar_loads`) and the refunds waiting for a year (`refunds.status = 'pending_calendar'`).

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::calendar::YearData;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

type Tx<'t> = Transaction<'t, Postgres>;

/// A loaded year as listed: its data and its provenance.
#[derive(Debug, Clone)]
pub struct LoadedYear {
    pub data: YearData,
    pub source: String,
    pub loaded_by: String,
    pub loaded_at: DateTime<Utc>,
    pub load_id: i64,
}

/// One load to record.
pub struct NewLoad<'a> {
    pub data: &'a YearData,
    pub source: &'a str,
    pub loaded_by: &'a str,
    pub now: DateTime<Utc>,
    /// `domain::calendar::Reload::code`.
    pub outcome: &'a str,
}

fn loaded_year(row: &sqlx::postgres::PgRow) -> Result<LoadedYear, sqlx::Error> {
    let year: i32 = row.try_get("year")?;
    let holidays: Vec<NaiveDate> = row.try_get("holidays")?;
    let workdays: Vec<NaiveDate> = row.try_get("make_up_workdays")?;
    // Stored rows were validated before they were written; a row that no longer validates is
    // a decode error, never a silently different calendar.
    let data = YearData::new(year, &holidays, &workdays).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(LoadedYear {
        data,
        source: row.try_get("source")?,
        loaded_by: row.try_get("loaded_by")?,
        loaded_at: row.try_get("loaded_at")?,
        load_id: row.try_get("load_id")?,
    })
}

const YEAR_COLUMNS: &str = "year, holidays, make_up_workdays, source, loaded_by, loaded_at, load_id";

/// Every loaded year, in year order.
pub async fn loaded_years(pool: &PgPool) -> Result<Vec<LoadedYear>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {YEAR_COLUMNS} FROM calendar_years ORDER BY year")).fetch_all(pool).await?;
    rows.iter().map(loaded_year).collect()
}

/// Every loaded year, read inside `transaction` (after a load, before it commits).
pub async fn loaded_years_in(transaction: &mut Tx<'_>) -> Result<Vec<LoadedYear>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {YEAR_COLUMNS} FROM calendar_years ORDER BY year")).fetch_all(&mut **transaction).await?;
    rows.iter().map(loaded_year).collect()
}

/// The calendar's version: the highest load id (0 before any load).
pub async fn version(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(load_id), 0)::int8 FROM calendar_loads").fetch_one(pool).await
}

/// Serialises loads (of any year) for the rest of `transaction`, then returns the year's data
/// in force, if any, locked.
pub async fn lock_year(transaction: &mut Tx<'_>, year: i32) -> Result<Option<LoadedYear>, sqlx::Error> {
    sqlx::query("LOCK TABLE calendar_years IN SHARE ROW EXCLUSIVE MODE").execute(&mut **transaction).await?;
    let row = sqlx::query(&format!("SELECT {YEAR_COLUMNS} FROM calendar_years WHERE year = $1")).bind(year).fetch_optional(&mut **transaction).await?;
    row.as_ref().map(loaded_year).transpose()
}

/// Scheduled refunds whose dates span a day of [first, last]: triggered (Beijing date) on or
/// before `last` and due on or after `first`.
pub async fn scheduled_refunds_spanning(transaction: &mut Tx<'_>, first: NaiveDate, last: NaiveDate) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status = 'scheduled' AND due_on >= $1 AND (triggered_at AT TIME ZONE 'Asia/Shanghai')::date <= $2")
        .bind(first)
        .bind(last)
        .fetch_one(&mut **transaction)
        .await
}

/// Records the load in `calendar_loads` and, unless it changed nothing, puts its data in force.
/// Returns the load id.
pub async fn record_load(transaction: &mut Tx<'_>, load: &NewLoad<'_>) -> Result<i64, sqlx::Error> {
    let holidays: Vec<NaiveDate> = load.data.holidays().collect();
    let workdays: Vec<NaiveDate> = load.data.make_up_workdays().collect();
    let load_id: i64 = sqlx::query_scalar(
        "INSERT INTO calendar_loads (year, holidays, make_up_workdays, source, loaded_by, loaded_at, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING load_id",
    )
    .bind(load.data.year())
    .bind(&holidays)
    .bind(&workdays)
    .bind(load.source)
    .bind(load.loaded_by)
    .bind(load.now)
    .bind(load.outcome)
    .fetch_one(&mut **transaction)
    .await?;
    if load.outcome != "unchanged" {
        sqlx::query(
            "INSERT INTO calendar_years (year, holidays, make_up_workdays, source, loaded_by, loaded_at, load_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (year) DO UPDATE SET holidays = $2, make_up_workdays = $3, source = $4, loaded_by = $5, loaded_at = $6, load_id = $7",
        )
        .bind(load.data.year())
        .bind(&holidays)
        .bind(&workdays)
        .bind(load.source)
        .bind(load.loaded_by)
        .bind(load.now)
        .bind(load_id)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(load_id)
}

/// Notes on the load how many waiting refunds it scheduled.
pub async fn set_refunds_scheduled(transaction: &mut Tx<'_>, load_id: i64, count: u64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calendar_loads SET refunds_scheduled = $2 WHERE load_id = $1")
        .bind(load_id)
        .bind(i32::try_from(count).unwrap_or(i32::MAX))
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// A refund waiting for the calendar, with what its dates are computed from.
#[derive(Debug, Clone)]
pub struct PendingRefund {
    pub refund_id: Uuid,
    pub centre_id: String,
    pub section_id: String,
    pub bidder_uscc: String,
    pub trigger: String,
    pub triggered_at: DateTime<Utc>,
    pub regime: String,
    pub period_days: i32,
    pub hold_working_days: i32,
}

/// How [`lock_pending`] treats rows another transaction has locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Skip them (a refresher round: another one is on them).
    Skip,
    /// Wait for them (a load: it must date every refund the new year allows).
    Wait,
}

/// Refunds waiting for the calendar, locked, oldest trigger first, at most `limit`, with their
/// section's regime and their centre's current refund rules (the period for the regime and
/// trigger, else the centre's general one).
pub async fn lock_pending(transaction: &mut Tx<'_>, limit: i64, locked: Locked) -> Result<Vec<PendingRefund>, sqlx::Error> {
    let skip = if locked == Locked::Skip { " SKIP LOCKED" } else { "" };
    let rows = sqlx::query(&format!(
        "SELECT r.refund_id, r.centre_id, r.section_id, r.bidder_uscc, r.trigger, r.triggered_at, s.regime,
                coalesce(p.period_days, c.refund_period_days), c.refund_hold_working_days
         FROM refunds r JOIN sections s USING (centre_id, section_id) JOIN centres c USING (centre_id)
              LEFT JOIN centre_refund_periods p ON p.centre_id = r.centre_id AND p.regime = s.regime AND p.trigger = r.trigger
         WHERE r.status = 'pending_calendar' ORDER BY r.triggered_at, r.refund_id LIMIT $1 FOR UPDATE OF r{skip}"
    ))
    .bind(limit)
    .fetch_all(&mut **transaction)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingRefund {
                refund_id: row.try_get(0)?,
                centre_id: row.try_get(1)?,
                section_id: row.try_get(2)?,
                bidder_uscc: row.try_get(3)?,
                trigger: row.try_get(4)?,
                triggered_at: row.try_get(5)?,
                regime: row.try_get(6)?,
                period_days: row.try_get(7)?,
                hold_working_days: row.try_get(8)?,
            })
        })
        .collect()
}

/// Gives a waiting refund its dates: it is scheduled from now on.
pub async fn schedule_pending(transaction: &mut Tx<'_>, refund_id: Uuid, due_on: NaiveDate, order_after: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refunds SET status = 'scheduled', due_on = $2, order_after = $3, updated_at = now() WHERE refund_id = $1 AND status = 'pending_calendar'",
    )
    .bind(refund_id)
    .bind(due_on)
    .bind(order_after)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Refunds waiting for the calendar, across centres.
pub async fn pending_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status = 'pending_calendar'").fetch_one(pool).await
}
