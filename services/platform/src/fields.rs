//! The one definition of the request fields every service's `api/` converts: required text,
//! identifiers, decision reasons, centre codes and timestamps, each refused with
//! INVALID_ARGUMENT naming the field; and the one way a handler reports an internal error
//! (logged in full, answered without detail).

use chrono::{DateTime, Utc};
use jinfu_ledger::ids::CentreCode;
use tonic::Status;

/// Longest free text a required field takes, in characters.
pub const TEXT_MAX_CHARS: usize = 256;
/// Longest reason an operator gives for a decision, in characters.
pub const REASON_MAX_CHARS: usize = 1000;

/// `text` bounded to `max_chars` characters: whole if it fits, otherwise cut at the last space
/// before the bound (or at the bound, if a single word is longer) with `…` appended, so a
/// reason or a quoted value is never cut in the middle of a word. Control characters become
/// U+FFFD.
pub fn clip(text: &str, max_chars: usize) -> String {
    let printable = |c: char| if c.is_control() { '\u{FFFD}' } else { c };
    if text.chars().count() <= max_chars {
        return text.chars().map(printable).collect();
    }
    let head: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = match head.rfind(' ') {
        Some(space) if space > 0 => &head[..space],
        _ => head.as_str(),
    };
    let mut clipped: String = cut.trim_end().chars().map(printable).collect();
    clipped.push('…');
    clipped
}

/// INVALID_ARGUMENT with the message as given.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// INTERNAL without detail for the caller; the error is logged with `what` failed.
pub fn internal(what: &str, error: impl std::fmt::Display) -> Status {
    tracing::error!(error = %error, "{what} failed in a gRPC handler");
    Status::internal("internal error; the request changed nothing")
}

/// A required text field: trimmed, 1–256 characters, no control characters.
pub fn required_text<'a>(field: &str, text: &'a str) -> Result<&'a str, Status> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > TEXT_MAX_CHARS || trimmed.chars().any(char::is_control) {
        return Err(invalid(format!("{field} is required: 1–{TEXT_MAX_CHARS} printable characters")));
    }
    Ok(trimmed)
}

/// Text a request names something by or filters on (an id to look up, a status filter): may be
/// empty and is not trimmed, so a lookup finds exactly what it found before, but is refused
/// with INVALID_ARGUMENT naming the field when it holds a control character (PostgreSQL cannot
/// store NUL: it would fail as a database error) or more than 256 characters.
pub fn printable<'a>(field: &str, text: &'a str) -> Result<&'a str, Status> {
    if text.chars().count() > TEXT_MAX_CHARS || text.chars().any(char::is_control) {
        return Err(invalid(format!("{field} must be at most {TEXT_MAX_CHARS} printable characters")));
    }
    Ok(text)
}

/// An identifier that becomes part of an account key or another `:`-separated key: a required
/// text field without `:`.
pub fn identifier<'a>(field: &str, text: &'a str) -> Result<&'a str, Status> {
    let trimmed = required_text(field, text)?;
    if trimmed.contains(':') {
        return Err(invalid(format!("{field} must not contain ':'")));
    }
    Ok(trimmed)
}

/// The reason an operator gives for a decision: trimmed, 1–1000 characters.
pub fn reason(text: &str) -> Result<&str, Status> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > REASON_MAX_CHARS {
        return Err(invalid(format!("reason must be 1–{REASON_MAX_CHARS} characters")));
    }
    Ok(trimmed)
}

/// A centre's six-digit administrative-division code.
pub fn centre(field: &str, text: &str) -> Result<CentreCode, Status> {
    CentreCode::parse(text).map_err(|error| invalid(format!("{field}: {error}")))
}

/// An instant as a protobuf timestamp.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// Earliest instant a timestamp field takes: 0001-01-01T00:00:00Z, in Unix seconds.
pub const TIMESTAMP_SECONDS_MIN: i64 = -62_135_596_800;
/// Latest instant a timestamp field takes: 9999-12-31T23:59:59Z (and its fraction), in Unix
/// seconds.
pub const TIMESTAMP_SECONDS_MAX: i64 = 253_402_300_799;

/// A required protobuf timestamp as an instant, within years 1 to 9999 UTC (the range of
/// `google.protobuf.Timestamp` itself, and well inside PostgreSQL's `timestamptz`, which
/// refuses years before 4713 BC or after 294276 with a database error).
pub fn from_timestamp(field: &str, value: Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, Status> {
    let value = value.ok_or_else(|| invalid(format!("{field} is required")))?;
    let out_of_range = || invalid(format!("{field} is out of range: it must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"));
    if !(TIMESTAMP_SECONDS_MIN..=TIMESTAMP_SECONDS_MAX).contains(&value.seconds) {
        return Err(out_of_range());
    }
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).unwrap_or(u32::MAX)).ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_trimmed_bounded_and_printable() {
        assert_eq!(required_text("name", "  华北  ").ok(), Some("华北"));
        assert!(required_text("name", "   ").is_err());
        assert!(required_text("name", "a\u{0}b").is_err());
        assert!(required_text("name", &"中".repeat(TEXT_MAX_CHARS)).is_ok());
        assert!(required_text("name", &"中".repeat(TEXT_MAX_CHARS + 1)).is_err());
        assert!(identifier("bidder", "a:b").is_err());
        assert!(identifier("bidder", "ab").is_ok());
        let refused = required_text("section_id", "").err().map(|status| status.message().to_owned()).unwrap_or_default();
        assert!(refused.starts_with("section_id is required"), "{refused}");
    }

    #[test]
    fn clipped_text_keeps_whole_words_and_says_it_was_cut() {
        assert_eq!(clip("short reason", 100), "short reason");
        assert_eq!(clip("malformed_json: expected value at line 1 column 7", 30), "malformed_json: expected…");
        assert!(clip(&"x".repeat(50), 10).chars().count() <= 10);
        assert_eq!(clip("a\nb", 10), "a\u{FFFD}b");
        let long = format!("oversized: {}", "word ".repeat(400));
        let clipped = clip(&long, 1000);
        assert!(clipped.chars().count() <= 1000 && clipped.starts_with("oversized: ") && clipped.ends_with("word…"), "{clipped}");
    }

    #[test]
    fn timestamps_round_trip_and_bad_ones_are_refused() {
        let now = DateTime::from_timestamp(1_790_000_000, 123_000_000).expect("valid");
        assert_eq!(from_timestamp("at", Some(timestamp(now))).ok(), Some(now));
        assert!(from_timestamp("at", None).is_err());
        assert!(from_timestamp("at", Some(prost_types::Timestamp { seconds: 0, nanos: -1 })).is_err());
    }

    #[test]
    fn timestamps_outside_years_1_to_9999_are_refused_naming_the_field() {
        let at = |seconds: i64| from_timestamp("deposit_deadline", Some(prost_types::Timestamp { seconds, nanos: 0 }));
        // Year -200000: chrono takes it, PostgreSQL does not.
        let year_minus_200000 = -6_373_281_168_000;
        let refused = at(year_minus_200000).err().map(|status| (status.code(), status.message().to_owned()));
        assert!(matches!(&refused, Some((tonic::Code::InvalidArgument, message)) if message.starts_with("deposit_deadline is out of range")), "{refused:?}");
        assert!(at(TIMESTAMP_SECONDS_MIN - 1).is_err());
        assert!(at(TIMESTAMP_SECONDS_MAX + 1).is_err());
        assert_eq!(at(TIMESTAMP_SECONDS_MIN).ok().map(|time| time.to_rfc3339()), Some("0001-01-01T00:00:00+00:00".to_owned()));
        assert_eq!(at(TIMESTAMP_SECONDS_MAX).ok().map(|time| time.to_rfc3339()), Some("9999-12-31T23:59:59+00:00".to_owned()));
    }

    #[test]
    fn lookup_text_with_a_nul_is_refused_naming_the_field_but_is_otherwise_unchanged() {
        assert_eq!(printable("section_id", " S-1 ").ok(), Some(" S-1 "));
        assert_eq!(printable("status", "").ok(), Some(""));
        let refused = printable("section_id", "S\u{0}1").err().map(|status| (status.code(), status.message().to_owned()));
        assert!(matches!(&refused, Some((tonic::Code::InvalidArgument, message)) if message.starts_with("section_id ")), "{refused:?}");
        assert!(printable("section_id", &"x".repeat(TEXT_MAX_CHARS + 1)).is_err());
    }
}
