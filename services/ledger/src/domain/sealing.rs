//! Sealing before bid opening (开标前保密): until a section's bids are opened, nobody may learn
//! who deposited for it — not even the centre's staff. Every read that could name a section's
//! bidders applies this rule.

use chrono::{DateTime, Utc};

/// Whether the bidders of a section whose bids open at `bid_opening_time` are still sealed at
/// `now`. The instant of opening itself is no longer sealed.
pub fn is_sealed(bid_opening_time: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < bid_opening_time
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn bidders_are_sealed_until_the_instant_of_bid_opening() {
        let opening = DateTime::from_timestamp(1_790_000_000, 0).expect("valid");
        assert!(is_sealed(opening, opening - Duration::seconds(1)));
        assert!(!is_sealed(opening, opening));
        assert!(!is_sealed(opening, opening + Duration::days(1)));
    }
}
