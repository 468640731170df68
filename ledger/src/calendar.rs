//! Chinese working days (DESIGN.md §3, DOMAIN.md "Working days").
//!
//! The State Council sets each year's holidays and make-up working days (调休) by notice; they
//! ship as data (`ledger/data/cn-holidays.txt`, the seed: 2024–2026) and later years are loaded
//! at run time by an administrator as a [`YearData`] (validated here: every date inside the
//! year, every make-up working day a weekend day) and added with [`Calendar::with_year`].
//! Arithmetic into a year without data fails with [`CalendarError::NoDataForYear`] instead of
//! guessing. A centre may override single days.
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
    #[error("calendar data for {year} is inconsistent: {problem}")]
    Inconsistent { year: i32, problem: String },
}

/// Years a calendar may be loaded for.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// One year's national data as the State Council's notice sets it: its days off (放假, weekends
/// inside a holiday period included) and its make-up working days (调休上班, always weekend
/// days). Every other Monday–Friday is a working day, every other weekend day is off. Built only
/// through [`YearData::new`] or [`YearData::parse`], so a value is always consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearData {
    year: i32,
    holidays: BTreeSet<NaiveDate>,
    make_up_workdays: BTreeSet<NaiveDate>,
}

impl YearData {
    /// Checks a year's data: the year in [`YEARS`], at least one holiday, every date inside the
    /// year, each date given once, no day both a holiday and a make-up working day, and every
    /// make-up working day a Saturday or Sunday (a weekday is a working day already).
    pub fn new(year: i32, holidays: &[NaiveDate], make_up_workdays: &[NaiveDate]) -> Result<YearData, CalendarError> {
        let inconsistent = |problem: String| CalendarError::Inconsistent { year, problem };
        if !YEARS.contains(&year) {
            return Err(inconsistent(format!("the year must be between {} and {}", YEARS.start(), YEARS.end())));
        }
        if holidays.is_empty() {
            return Err(inconsistent("no holiday: every State Council notice sets some".to_owned()));
        }
        let mut holiday_set = BTreeSet::new();
        for day in holidays {
            if day.year() != year {
                return Err(inconsistent(format!("holiday {day} is outside {year}")));
            }
            if !holiday_set.insert(*day) {
                return Err(inconsistent(format!("holiday {day} is given twice")));
            }
        }
        let mut workday_set = BTreeSet::new();
        for day in make_up_workdays {
            if day.year() != year {
                return Err(inconsistent(format!("make-up workday {day} is outside {year}")));
            }
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                return Err(inconsistent(format!("make-up workday {day} is a {:?}, not a weekend day", day.weekday())));
            }
            if holiday_set.contains(day) {
                return Err(inconsistent(format!("{day} is both a holiday and a make-up workday")));
            }
            if !workday_set.insert(*day) {
                return Err(inconsistent(format!("make-up workday {day} is given twice")));
            }
        }
        Ok(YearData { year, holidays: holiday_set, make_up_workdays: workday_set })
    }

    /// Reads one year from the text format of `ledger/data/cn-holidays.txt`: exactly one
    /// `year <year> <source>` line and `holiday`/`workday` lines (single dates or `a..b`
    /// ranges), all inside that year. Returns the data and the source named on the `year` line.
    pub fn parse(year: i32, text: &str) -> Result<(YearData, String), CalendarError> {
        let mut source = None;
        let mut holidays = Vec::new();
        let mut workdays = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| CalendarError::BadData { line: index + 1, problem };
            let (kind, rest) = line.split_once(char::is_whitespace).ok_or_else(|| bad("missing date".to_owned()))?;
            let rest = rest.trim();
            match kind {
                "year" => {
                    let (value, named) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    if value.parse::<i32>().ok() != Some(year) {
                        return Err(bad(format!("the file declares year {value}, not {year}")));
                    }
                    if source.replace(named.trim().to_owned()).is_some() {
                        return Err(bad("a second `year` line".to_owned()));
                    }
                }
                "holiday" | "workday" => {
                    let value = rest.split_whitespace().next().unwrap_or_default();
                    let (first, last) = value.split_once("..").unwrap_or((value, value));
                    let parse = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad(format!("bad date {text:?}")));
                    let (first, last) = (parse(first)?, parse(last)?);
                    if last < first {
                        return Err(bad("range ends before it starts".to_owned()));
                    }
                    let target = if kind == "holiday" { &mut holidays } else { &mut workdays };
                    let mut day = first;
                    while day <= last {
                        target.push(day);
                        day += Duration::days(1);
                    }
                }
                other => return Err(bad(format!("unknown kind {other:?}"))),
            }
        }
        let source = source
            .filter(|named| !named.is_empty())
            .ok_or_else(|| CalendarError::Inconsistent { year, problem: "no `year <year> <source>` line naming the notice".to_owned() })?;
        Ok((YearData::new(year, &holidays, &workdays)?, source))
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// Days off, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.holidays.iter().copied()
    }

    /// Make-up working days, in date order.
    pub fn make_up_workdays(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.make_up_workdays.iter().copied()
    }
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

    /// A copy with `data`'s year complete: that year's days from `data` replace whatever the
    /// calendar held for it (a year loaded at run time takes precedence over the seed).
    pub fn with_year(&self, data: &YearData) -> Calendar {
        let mut calendar = self.clone();
        let (first, last) = year_bounds(data.year);
        let old: Vec<NaiveDate> = calendar.days.range(first..=last).map(|(day, _)| *day).collect();
        for day in old {
            calendar.days.remove(&day);
        }
        calendar.days.extend(data.holidays().map(|day| (day, DayKind::Holiday)));
        calendar.days.extend(data.make_up_workdays().map(|day| (day, DayKind::Workday)));
        calendar.years.insert(data.year);
        calendar
    }

    /// The years with complete data, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// The last day of the unbroken run of years with data that starts with `today`'s year:
    /// up to that day every date computation from `today` on succeeds. `None` when `today`'s own
    /// year has no data.
    pub fn covered_until(&self, today: NaiveDate) -> Option<NaiveDate> {
        let mut year = today.year();
        if !self.years.contains(&year) {
            return None;
        }
        while self.years.contains(&(year + 1)) {
            year += 1;
        }
        Some(year_bounds(year).1)
    }

    /// Days from `today` to [`Calendar::covered_until`] (0 on the last covered day; negative —
    /// minus one — when `today`'s year has no data at all).
    pub fn days_left(&self, today: NaiveDate) -> i64 {
        self.covered_until(today).map_or(-1, |last| (last - today).num_days())
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

/// The first and last day of `year` (clamped to chrono's range, which covers [`YEARS`]).
fn year_bounds(year: i32) -> (NaiveDate, NaiveDate) {
    let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(NaiveDate::MIN);
    let last = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX);
    (first, last)
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

    /// A clearly fictional 2027 (only New Year's Day off, one make-up Saturday): not official data.
    const TEST_2027: &str = "year 2027 test calendar, not official\nholiday 2027-01-01 元旦 (test)\nworkday 2027-01-09 test make-up Saturday\n";

    #[test]
    fn a_loaded_year_extends_the_calendar_so_a_late_december_deadline_can_be_computed() {
        let (data, source) = YearData::parse(2027, TEST_2027).unwrap();
        assert_eq!(source, "test calendar, not official");
        let calendar = Calendar::china().with_year(&data);
        // Monday 2026-12-28 + 5 working days: 29, 30, 31, (Jan 1 off, 2–3 weekend) 4, 5.
        assert_eq!(calendar.add_working_days(date("2026-12-28"), 5).unwrap(), date("2027-01-05"));
        assert!(calendar.is_working_day(date("2027-01-09")).unwrap(), "the make-up Saturday works");
        assert!(!calendar.is_working_day(date("2027-01-10")).unwrap());
        assert_eq!(calendar.years().collect::<Vec<_>>(), vec![2024, 2025, 2026, 2027]);
    }

    #[test]
    fn loading_a_year_again_replaces_its_days_rather_than_adding_to_them() {
        let first = YearData::new(2027, &[date("2027-01-01"), date("2027-01-04")], &[]).unwrap();
        let second = YearData::new(2027, &[date("2027-01-01")], &[]).unwrap();
        let calendar = Calendar::china().with_year(&first).with_year(&second);
        assert!(calendar.is_working_day(date("2027-01-04")).unwrap());
        // A loaded year replaces the seed's data for that year too.
        let seed_2026 = Calendar::china().with_year(&YearData::new(2026, &[date("2026-01-01")], &[]).unwrap());
        assert!(seed_2026.is_working_day(date("2026-10-08")).unwrap());
    }

    #[test]
    fn inconsistent_year_data_is_refused() {
        let refused = |holidays: &[&str], workdays: &[&str]| {
            let parse = |days: &[&str]| days.iter().map(|day| date(day)).collect::<Vec<_>>();
            YearData::new(2027, &parse(holidays), &parse(workdays)).unwrap_err().to_string()
        };
        assert!(refused(&["2027-01-01"], &["2027-01-08"]).contains("2027-01-08 is a Fri, not a weekend day"));
        assert!(refused(&["2026-12-31"], &[]).contains("holiday 2026-12-31 is outside 2027"));
        assert!(refused(&["2027-01-01"], &["2028-01-08"]).contains("outside 2027"));
        assert!(refused(&["2027-01-02"], &["2027-01-02"]).contains("both a holiday and a make-up workday"));
        assert!(refused(&["2027-01-01", "2027-01-01"], &[]).contains("given twice"));
        assert!(refused(&[], &[]).contains("no holiday"));
        assert!(YearData::new(1900, &[date("1900-01-01")], &[]).is_err());
    }

    #[test]
    fn a_year_file_must_declare_its_year_and_source_and_keep_inside_it() {
        assert!(YearData::parse(2028, TEST_2027).unwrap_err().to_string().contains("declares year 2027, not 2028"));
        assert!(YearData::parse(2027, "holiday 2027-01-01 x\n").unwrap_err().to_string().contains("no `year"));
        assert!(YearData::parse(2027, "year 2027 x\nholiday 2027-12-31..2028-01-01 x\n").unwrap_err().to_string().contains("outside 2027"));
        assert!(YearData::parse(2027, "year 2027 x\nworkday 2027-01-07 x\nholiday 2027-01-01 x\n").is_err(), "Thursday is no make-up day");
        assert!(YearData::parse(2027, "year 2027 x\nholliday 2027-01-01 x\n").is_err());
        // The shipped 2026 block, cut out of the seed file, parses as one year.
        let block: String =
            CHINA_DATA.lines().skip_while(|line| !line.starts_with("year 2026")).take_while(|line| !line.is_empty()).map(|line| format!("{line}\n")).collect();
        let (data, _) = YearData::parse(2026, &block).unwrap();
        assert!(data.holidays().any(|day| day == date("2026-10-01")));
    }

    #[test]
    fn days_left_count_to_the_end_of_the_last_unbroken_year_with_data() {
        let china = Calendar::china();
        assert_eq!(china.covered_until(date("2026-11-29")), Some(date("2026-12-31")));
        assert_eq!(china.days_left(date("2026-11-29")), 32);
        assert_eq!(china.days_left(date("2026-12-31")), 0);
        assert_eq!(china.days_left(date("2027-01-01")), -1);
        let (data, _) = YearData::parse(2027, TEST_2027).unwrap();
        assert_eq!(china.with_year(&data).days_left(date("2026-11-29")), 32 + 365);
        // A gap stops the run: 2029 alone does not extend 2026.
        let only_2029 = china.with_year(&YearData::new(2029, &[date("2029-01-01")], &[]).unwrap());
        assert_eq!(only_2029.covered_until(date("2026-11-29")), Some(date("2026-12-31")));
    }
}
