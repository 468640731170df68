//! Chinese working days (DESIGN.md §3, DOMAIN.md "Working days").
//!
//! The State Council sets each year's holidays and make-up working days (调休) by notice; they
//! ship as data (`ledger/data/cn-holidays.txt`). Arithmetic into a year without data fails with
//! [`CalendarError::NoDataForYear`] instead of guessing. A centre may override single days.
//! Calendar-day and working-day deadlines are separate functions; both follow 民法典 art.
//! 201–203: the first day is not counted, and a deadline falling on a day off moves to the next
//! working day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, Weekday};

const CHINA_DATA: &str = include_str!("../data/cn-holidays.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("no holiday data for {0}: add the State Council's notice for that year to the calendar")]
    NoDataForYear(i32),
    #[error("calendar data line {line}: {problem}")]
    BadData { line: usize, problem: String },
}

/// The Beijing (UTC+8) calendar date of an instant: every deadline and due date is a Beijing date.
pub fn china_date(time: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    crate::beijing::date(time)
}

/// One day's status set explicitly, by the national data or by a centre's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Holiday,
    Workday,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    /// Years whose data is complete.
    years: BTreeSet<i32>,
    /// Days whose status differs from "Monday–Friday work, weekend off", or confirms it.
    days: BTreeMap<NaiveDate, DayKind>,
}

impl Calendar {
    /// The national calendar shipped with Jinfu.
    pub fn china() -> Calendar {
        Calendar::parse(CHINA_DATA).expect("the shipped holiday data parses")
    }

    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        let mut years = BTreeSet::new();
        let mut days = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: &str| CalendarError::BadData { line: index + 1, problem: problem.to_owned() };
            let mut fields = line.split_whitespace();
            let kind = fields.next().ok_or_else(|| bad("empty"))?;
            let value = fields.next().ok_or_else(|| bad("missing date"))?;
            match kind {
                "year" => {
                    years.insert(value.parse::<i32>().map_err(|_| bad("bad year"))?);
                }
                "holiday" | "workday" => {
                    let (first, last) = value.split_once("..").unwrap_or((value, value));
                    let parse = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad("bad date"));
                    let (first, last) = (parse(first)?, parse(last)?);
                    if last < first {
                        return Err(bad("range ends before it starts"));
                    }
                    let day_kind = if kind == "holiday" { DayKind::Holiday } else { DayKind::Workday };
                    let mut day = first;
                    while day <= last {
                        days.insert(day, day_kind);
                        day += Duration::days(1);
                    }
                }
                _ => return Err(bad("unknown kind")),
            }
        }
        Ok(Calendar { years, days })
    }

    /// A copy with a centre's overrides applied (e.g. a local holiday, or a day the centre
    /// works). Overrides do not add data for a year the national calendar lacks.
    pub fn with_overrides(&self, overrides: &[(NaiveDate, DayKind)]) -> Calendar {
        let mut calendar = self.clone();
        for (day, kind) in overrides {
            calendar.days.insert(*day, *kind);
        }
        calendar
    }

    pub fn is_working_day(&self, day: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains(&day.year()) {
            return Err(CalendarError::NoDataForYear(day.year()));
        }
        Ok(match self.days.get(&day) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        })
    }

    /// The first working day on or after `day`.
    pub fn next_working_day_from(&self, day: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut candidate = day;
        while !self.is_working_day(candidate)? {
            candidate += Duration::days(1);
        }
        Ok(candidate)
    }

    /// The deadline `count` working days after `start` (the start day itself not counted).
    pub fn add_working_days(&self, start: NaiveDate, count: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = start;
        let mut remaining = count;
        while remaining > 0 {
            day += Duration::days(1);
            if self.is_working_day(day)? {
                remaining -= 1;
            }
        }
        Ok(day)
    }

    /// The deadline `count` calendar days after `start` (the start day not counted); a deadline
    /// falling on a day off moves to the next working day (民法典 art. 203).
    pub fn add_calendar_days(&self, start: NaiveDate, count: u32) -> Result<NaiveDate, CalendarError> {
        self.next_working_day_from(start + Duration::days(i64::from(count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn spring_festival_2025_days_off_and_make_up_sunday_and_saturday() {
        let china = Calendar::china();
        assert!(!china.is_working_day(date("2025-01-28")).unwrap(), "除夕 is off in 2025");
        assert!(!china.is_working_day(date("2025-02-04")).unwrap());
        assert!(china.is_working_day(date("2025-01-26")).unwrap(), "make-up Sunday");
        assert!(china.is_working_day(date("2025-02-08")).unwrap(), "make-up Saturday");
        assert!(china.is_working_day(date("2025-02-05")).unwrap());
    }

    #[test]
    fn five_working_days_from_the_eve_of_spring_festival_2026_end_after_the_holiday() {
        let china = Calendar::china();
        // Friday 2026-02-13; Saturday 14 is a make-up working day; 15–23 are off.
        assert_eq!(china.add_working_days(date("2026-02-13"), 5).unwrap(), date("2026-02-27"));
        assert_eq!(china.add_working_days(date("2026-02-13"), 1).unwrap(), date("2026-02-14"));
        // Working days run through the make-up Saturday 2026-02-28.
        assert_eq!(china.add_working_days(date("2026-02-26"), 2).unwrap(), date("2026-02-28"));
    }

    #[test]
    fn national_day_2025_and_2026_with_their_make_up_days() {
        let china = Calendar::china();
        // 2025: 10-01..10-08 off, Sunday 09-28 and Saturday 10-11 working.
        assert!(china.is_working_day(date("2025-09-28")).unwrap());
        assert!(china.is_working_day(date("2025-10-11")).unwrap());
        assert_eq!(china.add_working_days(date("2025-09-30"), 5).unwrap(), date("2025-10-14"));
        // 2026: 10-01..10-07 off, Sunday 09-20 and Saturday 10-10 working.
        assert!(china.is_working_day(date("2026-09-20")).unwrap());
        assert_eq!(china.add_working_days(date("2026-09-30"), 5).unwrap(), date("2026-10-13"));
    }

    #[test]
    fn a_calendar_day_deadline_landing_on_a_holiday_moves_to_the_next_working_day() {
        let china = Calendar::china();
        // 5 calendar days after 2026-09-28 is 2026-10-03, inside National Day: moves to 10-08.
        assert_eq!(china.add_calendar_days(date("2026-09-28"), 5).unwrap(), date("2026-10-08"));
        // 5 calendar days after Monday 2026-11-16 is Saturday 11-21: moves to Monday 11-23.
        assert_eq!(china.add_calendar_days(date("2026-11-16"), 5).unwrap(), date("2026-11-23"));
        assert_eq!(china.add_calendar_days(date("2026-11-17"), 5).unwrap(), date("2026-11-23"));
    }

    #[test]
    fn a_year_without_data_fails_clearly() {
        let china = Calendar::china();
        assert_eq!(china.is_working_day(date("2027-03-01")), Err(CalendarError::NoDataForYear(2027)));
        assert_eq!(china.add_working_days(date("2026-12-28"), 5), Err(CalendarError::NoDataForYear(2027)));
    }

    #[test]
    fn a_centre_override_makes_a_day_off_or_a_working_day() {
        let local = Calendar::china().with_overrides(&[(date("2026-11-20"), DayKind::Holiday), (date("2026-11-22"), DayKind::Workday)]);
        assert!(!local.is_working_day(date("2026-11-20")).unwrap());
        assert!(local.is_working_day(date("2026-11-22")).unwrap());
        assert!(Calendar::china().is_working_day(date("2026-11-20")).unwrap());
    }
}
