//! Sealing (密封) as a rule: until a section's bids are opened, only the bidder and its issuer
//! may learn that the bidder applied for or holds a guarantee for it; every other caller gets
//! the answer it would get for an unknown number. (`crate::seal` is the cryptography.)
//!
//! One fact ends sealing: the ledger applied the section's `bids.opened` event
//! (`Section::bids_opened`). The scheduled `bid_opening_time` is only shown, never compared
//! with the clock: a schedule can be moved, and one that passed without an opening reveals
//! nothing.

use chrono::{DateTime, Utc};

/// A section as the ledger describes it.
#[derive(Debug, Clone)]
pub struct Section {
    pub centre_id: String,
    pub section_id: String,
    /// `engineering` or `procurement`.
    pub regime: String,
    pub required_fen: i64,
    pub deposit_deadline: DateTime<Utc>,
    pub bid_opening_time: DateTime<Utc>,
    pub open: bool,
    /// Set once the ledger has applied the section's `bids.opened` event.
    pub bids_opened: bool,
    /// The winner, once the award is announced.
    pub winner_uscc: Option<String>,
}

/// Who asks, as far as sealing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party<'a> {
    /// A bidder, by its unified social credit code.
    Bidder(&'a str),
    /// An issuer of the section's province, by its code.
    Issuer(&'a str),
    /// An operator, supervisor or administrator.
    Staff,
    /// Anyone else (a bank).
    Other,
}

/// A caller of the API as sealing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer<'a> {
    pub party: Party<'a>,
    /// Whether the caller may access the section's centre.
    pub of_centre: bool,
}

/// The refusal of a listing that would reveal sealed guarantees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed until bid opening: the guarantees of section {section_id} are confidential until its bids are opened (scheduled {opening})")]
pub struct Sealed {
    pub section_id: String,
    /// The scheduled opening, RFC 3339 in UTC as the section gives it.
    pub opening: String,
}

/// Whether `viewer` may see a bidder's application or guarantee for a section: the bidder
/// itself and its issuer always; staff of the centre once the bids are opened.
pub fn may_see(viewer: Viewer<'_>, bids_opened: bool, bidder_uscc: &str, issuer_code: &str) -> bool {
    match viewer.party {
        Party::Bidder(uscc) => uscc == bidder_uscc,
        Party::Issuer(code) => code == issuer_code,
        Party::Staff => bids_opened && viewer.of_centre,
        Party::Other => false,
    }
}

/// Whether `viewer` may verify a guarantee: whoever may see it, and after opening anyone who
/// may access the centre (the guarantee is then public to the centre's parties).
pub fn may_verify(viewer: Viewer<'_>, bids_opened: bool, bidder_uscc: &str, issuer_code: &str) -> bool {
    may_see(viewer, bids_opened, bidder_uscc, issuer_code) || (bids_opened && viewer.of_centre)
}

/// Whether a section's guarantees may be listed: only once its bids are opened.
pub fn may_list(section: &Section) -> Result<(), Sealed> {
    if section.bids_opened {
        return Ok(());
    }
    Err(Sealed { section_id: section.section_id.clone(), opening: section.bid_opening_time.to_rfc3339() })
}

/// Whether a guarantee may be named in a claim's answer: a bid guarantee only after opening.
/// Before, a claim is answered as for an unknown number, so nobody learns that it exists.
pub fn claim_reveals_nothing(kind: super::GuaranteeType, bids_opened: bool) -> bool {
    kind != super::GuaranteeType::Bid || bids_opened
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::GuaranteeType;

    pub(crate) fn section(bids_opened: bool) -> Section {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).expect("time");
        Section {
            centre_id: "520100".into(),
            section_id: "GY-1".into(),
            regime: "engineering".into(),
            required_fen: 5_000_000,
            deposit_deadline: at("2026-12-01T09:00:00+08:00"),
            bid_opening_time: at("2026-12-01T09:30:00+08:00"),
            open: true,
            bids_opened,
            winner_uscc: None,
        }
    }

    const BIDDER: &str = "91520100MA6DKQ5X2L";

    #[test]
    fn before_opening_only_the_bidder_and_its_issuer_see_the_application() {
        let staff = Viewer { party: Party::Staff, of_centre: true };
        assert!(may_see(Viewer { party: Party::Bidder(BIDDER), of_centre: true }, false, BIDDER, "PICC"));
        assert!(!may_see(Viewer { party: Party::Bidder("91520100OTHER0000X"), of_centre: true }, false, BIDDER, "PICC"));
        assert!(may_see(Viewer { party: Party::Issuer("PICC"), of_centre: false }, false, BIDDER, "PICC"));
        assert!(!may_see(Viewer { party: Party::Issuer("ICBCG"), of_centre: false }, false, BIDDER, "PICC"));
        assert!(!may_see(staff, false, BIDDER, "PICC"));
        assert!(may_see(staff, true, BIDDER, "PICC"));
        assert!(!may_see(Viewer { party: Party::Staff, of_centre: false }, true, BIDDER, "PICC"));
        assert!(!may_see(Viewer { party: Party::Other, of_centre: true }, true, BIDDER, "PICC"));
    }

    #[test]
    fn after_opening_every_party_of_the_centre_may_verify_but_before_only_the_two_involved() {
        let other_bidder = Viewer { party: Party::Bidder("91520100OTHER0000X"), of_centre: true };
        assert!(!may_verify(other_bidder, false, BIDDER, "PICC"));
        assert!(may_verify(other_bidder, true, BIDDER, "PICC"));
        assert!(!may_verify(Viewer { party: Party::Other, of_centre: false }, true, BIDDER, "PICC"));
    }

    #[test]
    fn a_section_is_listed_and_a_bid_guarantee_claimed_only_after_opening() {
        let refused = may_list(&section(false)).expect_err("sealed");
        assert!(refused.to_string().starts_with("sealed until bid opening: the guarantees of section GY-1"), "{refused}");
        assert!(may_list(&section(true)).is_ok());
        assert!(!claim_reveals_nothing(GuaranteeType::Bid, false));
        assert!(claim_reveals_nothing(GuaranteeType::Bid, true));
        assert!(claim_reveals_nothing(GuaranteeType::Performance, false));
    }
}
