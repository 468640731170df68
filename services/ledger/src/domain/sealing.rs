//! Sealing before bid opening (开标前保密): until a section's bids are opened, nobody may learn
//! who deposited for it — not even the centre's staff. Every read that could name a section's
//! bidders applies this rule.
//!
//! One fact ends sealing: the section's `bids.opened` event, applied (`sections.bids_opened_at`).
//! The scheduled opening time does not: it can be moved by `section.changed`, and a passed
//! schedule with no opening (a postponed session, a terminated tender) reveals nothing. The
//! SQL in `crate::store` applies the same rule as `bids_opened_at IS NULL`.

use chrono::{DateTime, Utc};

/// Whether a section's bidders are still sealed: until its `bids.opened` event is applied.
/// `bids_opened_at` is when that event says the bids were opened, if it was applied.
pub fn is_sealed(bids_opened_at: Option<DateTime<Utc>>) -> bool {
    bids_opened_at.is_none()
}

/// Why a `section.changed` event's new opening time is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpeningRefused {
    /// After the deposit deadline the opening may only move later: bidders have committed to
    /// the announced session, and an earlier one is a new announcement, not a change.
    #[error("after the deposit deadline ({deadline}) the bid opening may only move later, not from {current} to {requested}")]
    MovedEarlier { deadline: String, current: String, requested: String },
}

impl OpeningRefused {
    /// The stable code clients and dead letters show.
    pub fn code(&self) -> &'static str {
        match self {
            OpeningRefused::MovedEarlier { .. } => "opening_moved_earlier",
        }
    }
}

/// Whether a section whose deposits close at `deposit_deadline` and whose bids are scheduled
/// to open at `current` may have its opening moved to `requested` at `now`: any move before the
/// deadline (the deadline instant included), and afterwards only a move later (or none).
pub fn may_move_opening(deposit_deadline: DateTime<Utc>, current: DateTime<Utc>, requested: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), OpeningRefused> {
    if now <= deposit_deadline || requested >= current {
        return Ok(());
    }
    Err(OpeningRefused::MovedEarlier { deadline: deposit_deadline.to_rfc3339(), current: current.to_rfc3339(), requested: requested.to_rfc3339() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn bidders_are_sealed_until_the_bids_opened_event_whatever_the_clock_says() {
        let opened = DateTime::from_timestamp(1_790_000_000, 0).expect("valid");
        assert!(is_sealed(None), "no event, sealed: even long after the scheduled opening");
        assert!(!is_sealed(Some(opened)));
    }

    #[test]
    fn after_the_deposit_deadline_the_opening_moves_only_later() {
        let deadline = DateTime::from_timestamp(1_790_000_000, 0).expect("valid");
        let opening = deadline + Duration::hours(1);
        let before = deadline - Duration::minutes(1);
        let after = deadline + Duration::minutes(1);
        assert_eq!(may_move_opening(deadline, opening, deadline - Duration::days(1), before), Ok(()), "before the deadline anything goes");
        assert_eq!(may_move_opening(deadline, opening, opening - Duration::minutes(1), deadline), Ok(()), "the deadline instant is still before");
        assert_eq!(may_move_opening(deadline, opening, opening + Duration::days(3), after), Ok(()));
        assert_eq!(may_move_opening(deadline, opening, opening, after), Ok(()));
        let refused = may_move_opening(deadline, opening, deadline - Duration::days(1), after).expect_err("earlier after the deadline");
        assert_eq!(refused.code(), "opening_moved_earlier");
        assert!(refused.to_string().starts_with("after the deposit deadline"), "{refused}");
        assert!(may_move_opening(deadline, opening, opening - Duration::seconds(1), after).is_err());
    }
}
