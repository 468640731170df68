//! Beijing time (UTC+8, no daylight saving): every deadline, due date and timestamp shown to a
//! party is Beijing time. The offset is built here once.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};

/// UTC+8 in seconds.
const OFFSET_SECONDS: i32 = 8 * 3600;

/// The UTC+8 offset.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(OFFSET_SECONDS).expect("UTC+8 is a valid offset")
}

/// An instant shown in Beijing time.
pub fn at(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    time.with_timezone(&offset())
}

/// An instant as RFC 3339 text in Beijing time, e.g. `2026-11-29T09:30:00+08:00`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    at(time).to_rfc3339()
}

/// The Beijing calendar date of an instant.
pub fn date(time: DateTime<Utc>) -> NaiveDate {
    at(time).date_naive()
}

/// The instant of a Beijing wall-clock time (UTC+8 has no gaps or folds, so it always exists).
pub fn instant(local: NaiveDateTime) -> DateTime<Utc> {
    (local - chrono::Duration::seconds(i64::from(OFFSET_SECONDS))).and_utc()
}

/// The first instant of a Beijing date.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    instant(day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_is_eight_hours_ahead_across_midnight() {
        let utc = DateTime::parse_from_rfc3339("2026-11-29T16:30:00Z").expect("valid").with_timezone(&Utc);
        assert_eq!(date(utc), NaiveDate::from_ymd_opt(2026, 11, 30).expect("valid"));
        assert_eq!(rfc3339(utc), "2026-11-30T00:30:00+08:00");
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).expect("valid");
        assert_eq!(start_of(day), DateTime::parse_from_rfc3339("2026-11-29T16:00:00Z").expect("valid").with_timezone(&Utc));
        assert_eq!(date(start_of(day)), day);
        assert_eq!(date(start_of(day) - chrono::Duration::seconds(1)), day.pred_opt().expect("valid"));
    }
}
