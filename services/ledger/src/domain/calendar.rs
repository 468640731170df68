//! The working-day calendar the ledger computes refund due dates with (DESIGN.md §7: the
//! calendar is data loaded at run time). The compiled-in State Council years are the seed; years
//! an administrator loads (`LoadCalendarYear`, `ledger calendar load`) are added on top and take
//! precedence; a centre's overrides apply on top of both. A due date that needs a year with no
//! data is not an error to dead-letter: the refund waits as [`PENDING_CALENDAR`].

use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::calendar::{Calendar, CalendarError, YearData};

/// The status of a refund whose due date needs a year the calendar has no data for yet.
pub const PENDING_CALENDAR: &str = "pending_calendar";

/// The national calendar: the seed with every loaded year added, in any order.
pub fn build(seed: &Calendar, loaded: &[YearData]) -> Calendar {
    loaded.iter().fold(seed.clone(), |calendar, year| calendar.with_year(year))
}

/// The calendar in force in this process and the load version it was built from, shared by
/// the tender-event handlers, the API and the refresher; replaced as a whole when a year is
/// loaded (here or, seen by polling the version, on another replica).
#[derive(Clone)]
pub struct SharedCalendar {
    inner: Arc<RwLock<(i64, Arc<Calendar>)>>,
}

impl SharedCalendar {
    /// Starts with `calendar` at `version` (the highest `calendar_loads` id it includes, 0 for
    /// the seed alone).
    pub fn new(calendar: Calendar, version: i64) -> SharedCalendar {
        SharedCalendar { inner: Arc::new(RwLock::new((version, Arc::new(calendar)))) }
    }

    /// The calendar in force now.
    pub fn current(&self) -> Arc<Calendar> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).1.clone()
    }

    pub fn version(&self) -> i64 {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).0
    }

    /// Puts `calendar` in force unless a newer version already is.
    pub fn replace(&self, calendar: Calendar, version: i64) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if version >= inner.0 {
            *inner = (version, Arc::new(calendar));
        }
    }
}

/// A refund's rules at its centre: the period (calendar days for engineering sections, working
/// days for procurement sections) and the working days of hold for forfeiture marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundClock<'a> {
    pub regime: &'a str,
    pub period_days: u32,
    pub hold_working_days: u32,
}

/// When a refund triggered at `triggered_at` is due (a Beijing date) and from when it may be
/// ordered: after the hold, or at the trigger itself without one. `NoDataForYear` means the
/// refund must wait as [`PENDING_CALENDAR`].
pub fn refund_dates(calendar: &Calendar, rules: RefundClock<'_>, triggered_at: DateTime<Utc>) -> Result<(NaiveDate, DateTime<Utc>), CalendarError> {
    let day = jinfu_ledger::beijing::date(triggered_at);
    let due =
        if rules.regime == "engineering" { calendar.add_calendar_days(day, rules.period_days)? } else { calendar.add_working_days(day, rules.period_days)? };
    if rules.hold_working_days == 0 {
        return Ok((due, triggered_at));
    }
    let hold_until = calendar.add_working_days(day, rules.hold_working_days)?;
    let start = hold_until.min(due).and_hms_opt(0, 0, 0).unwrap_or_default();
    Ok((due, jinfu_ledger::beijing::instant(start)))
}

/// What loading a year does, given what is in force for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// No data was loaded for the year before.
    Loaded,
    /// Other data was loaded before and nothing scheduled depends on it: the new data replaces it.
    Replaced,
    /// The same data again: nothing changes; the load is recorded.
    Unchanged,
}

impl Reload {
    /// The stored code (`calendar_loads.outcome`).
    pub fn code(self) -> &'static str {
        match self {
            Reload::Loaded => "loaded",
            Reload::Replaced => "replaced",
            Reload::Unchanged => "unchanged",
        }
    }
}

/// Why a load is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadRefused {
    #[error("calendar_year_in_use: {dependent} scheduled refunds have due dates computed with the {year} data in force; a changed year is loaded only when none does")]
    InUse { year: i32, dependent: i64 },
}

impl LoadRefused {
    pub fn code(&self) -> &'static str {
        match self {
            LoadRefused::InUse { .. } => "calendar_year_in_use",
        }
    }
}

/// Decides a load of `new` when `in_force` was loaded for its year before (the seed does not
/// count: loading a seed year over it is a first load, checked like a replacement), and
/// `dependent` scheduled refunds span a day of the year (triggered in or before it, due in or
/// after it). Changed data replaces the old only when no scheduled refund depends on it: a due
/// date already told to the bidder (`refund.scheduled`) is never moved silently.
pub fn may_load(in_force: Option<&YearData>, seed_has_year: bool, new: &YearData, dependent: i64) -> Result<Reload, LoadRefused> {
    match in_force {
        Some(old) if old == new => Ok(Reload::Unchanged),
        Some(_) if dependent > 0 => Err(LoadRefused::InUse { year: new.year(), dependent }),
        Some(_) => Ok(Reload::Replaced),
        None if seed_has_year && dependent > 0 => Err(LoadRefused::InUse { year: new.year(), dependent }),
        None => Ok(Reload::Loaded),
    }
}

/// Longest notice reference (`source`) a load may carry, in characters.
pub const SOURCE_MAX_CHARS: usize = 1_000;

/// The notice a year's data comes from (title, document number, URL): trimmed, 1–1000
/// characters, no control characters.
pub fn source(text: &str) -> Result<&str, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > SOURCE_MAX_CHARS || trimmed.chars().any(char::is_control) {
        return Err(format!("source must name the notice: 1–{SOURCE_MAX_CHARS} printable characters"));
    }
    Ok(trimmed)
}

/// The first and last day of `year`, for finding the refunds that depend on it.
pub fn year_span(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((NaiveDate::from_ymd_opt(year, 1, 1)?, NaiveDate::from_ymd_opt(year, 12, 31)?))
}

/// Days from `now`'s Beijing date to the last day the calendar covers without a gap (the
/// `jinfu_calendar_days_left` gauge); -1 when today's own year has no data.
pub fn days_left(calendar: &Calendar, now: DateTime<Utc>) -> i64 {
    calendar.days_left(jinfu_ledger::beijing::date(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn beijing_noon(day: &str) -> DateTime<Utc> {
        jinfu_ledger::beijing::instant(date(day).and_hms_opt(12, 0, 0).unwrap())
    }

    /// A clearly fictional 2027: only New Year's Day off. Not official data.
    fn test_2027() -> YearData {
        YearData::new(2027, &[date("2027-01-01")], &[]).unwrap()
    }

    const PROCUREMENT: RefundClock<'static> = RefundClock { regime: "procurement", period_days: 5, hold_working_days: 1 };

    #[test]
    fn a_refund_triggered_on_28_december_needs_next_year_and_is_dated_once_it_is_loaded() {
        let seed = Calendar::china();
        let triggered = beijing_noon("2026-12-28");
        assert_eq!(refund_dates(&seed, PROCUREMENT, triggered), Err(CalendarError::NoDataForYear(2027)));
        let calendar = build(&seed, &[test_2027()]);
        let (due, order_after) = refund_dates(&calendar, PROCUREMENT, triggered).unwrap();
        assert_eq!(due, date("2027-01-05"));
        assert_eq!(order_after, jinfu_ledger::beijing::instant(date("2026-12-29").and_hms_opt(0, 0, 0).unwrap()));
        // Engineering: 5 calendar days → Saturday 2027-01-02, moved to Monday 01-04.
        let engineering = RefundClock { regime: "engineering", ..PROCUREMENT };
        assert_eq!(refund_dates(&calendar, engineering, triggered).unwrap().0, date("2027-01-04"));
        let no_hold = RefundClock { hold_working_days: 0, ..PROCUREMENT };
        assert_eq!(refund_dates(&calendar, no_hold, triggered).unwrap().1, triggered);
    }

    #[test]
    fn an_early_december_trigger_is_dated_with_the_seed_alone() {
        assert_eq!(refund_dates(&Calendar::china(), PROCUREMENT, beijing_noon("2026-12-01")).unwrap().0, date("2026-12-08"));
    }

    #[test]
    fn a_changed_year_replaces_the_loaded_one_only_when_no_scheduled_refund_depends_on_it() {
        let other = YearData::new(2027, &[date("2027-01-01"), date("2027-01-04")], &[]).unwrap();
        assert_eq!(may_load(None, false, &test_2027(), 0), Ok(Reload::Loaded));
        assert_eq!(may_load(None, false, &test_2027(), 3), Ok(Reload::Loaded), "nothing can depend on a year never loaded");
        assert_eq!(may_load(Some(&test_2027()), false, &test_2027(), 3), Ok(Reload::Unchanged));
        assert_eq!(may_load(Some(&test_2027()), false, &other, 0), Ok(Reload::Replaced));
        let refused = may_load(Some(&test_2027()), false, &other, 3).unwrap_err();
        assert_eq!(refused.code(), "calendar_year_in_use");
        assert!(refused.to_string().starts_with("calendar_year_in_use: 3 scheduled refunds"));
        // A seed year loaded at run time: refused while scheduled refunds use the seed's days.
        let seed_2026 = YearData::new(2026, &[date("2026-01-01")], &[]).unwrap();
        assert!(may_load(None, true, &seed_2026, 1).is_err());
        assert_eq!(may_load(None, true, &seed_2026, 0), Ok(Reload::Loaded));
    }

    #[test]
    fn a_load_must_name_its_notice() {
        assert!(source("  ").is_err());
        assert!(source("a\u{0}b").is_err());
        assert_eq!(source(" 国办发明电〔2026〕N号 ").unwrap(), "国办发明电〔2026〕N号");
    }

    #[test]
    fn a_shared_calendar_keeps_the_newest_version() {
        let shared = SharedCalendar::new(Calendar::china(), 0);
        assert!(shared.current().is_working_day(date("2027-01-04")).is_err());
        shared.replace(build(&Calendar::china(), &[test_2027()]), 2);
        shared.replace(Calendar::china(), 1);
        assert_eq!(shared.version(), 2);
        assert!(shared.current().is_working_day(date("2027-01-04")).unwrap());
    }

    #[test]
    fn days_left_on_29_november_2026_are_32_with_the_seed_and_397_with_2027() {
        let now = beijing_noon("2026-11-29");
        assert_eq!(days_left(&Calendar::china(), now), 32);
        assert_eq!(days_left(&build(&Calendar::china(), &[test_2027()]), now), 397);
    }
}
