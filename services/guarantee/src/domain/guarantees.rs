//! Issued guarantees: the states they pass through, what a caller is told of one now, when a
//! bid guarantee may be issued, whether a signature is authentic, and what tender events do.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::beijing;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{GuaranteeTerms, GuaranteeType, Section};

/// A guarantee's recorded state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuaranteeState {
    /// In force.
    Issued,
    /// A claim is pending or accepted.
    Claimed,
    /// A claim was paid.
    Paid,
    /// The tender ended: the bid guarantee is no longer needed.
    Released,
    /// The bidder withdrew before the deadline (退保).
    Surrendered,
    /// Its validity ended.
    Expired,
}

impl GuaranteeState {
    pub const ALL: [GuaranteeState; 6] =
        [GuaranteeState::Issued, GuaranteeState::Claimed, GuaranteeState::Paid, GuaranteeState::Released, GuaranteeState::Surrendered, GuaranteeState::Expired];

    pub const fn code(self) -> &'static str {
        match self {
            GuaranteeState::Issued => "issued",
            GuaranteeState::Claimed => "claimed",
            GuaranteeState::Paid => "paid",
            GuaranteeState::Released => "released",
            GuaranteeState::Surrendered => "surrendered",
            GuaranteeState::Expired => "expired",
        }
    }

    pub fn parse(code: &str) -> Option<GuaranteeState> {
        GuaranteeState::ALL.into_iter().find(|state| state.code() == code)
    }
}

/// What a caller is told of a guarantee: its state, except that one in force reads `expired`
/// after its validity (before the sweeper records it), `unsealed` once the bids are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuaranteeStatus {
    /// In force, and its section's bids are not opened yet.
    Issued,
    /// In force, and its section's bids are opened.
    Unsealed,
    /// Not (or no longer) in force: the recorded state, or expired by date.
    Ended(GuaranteeState),
}

impl GuaranteeStatus {
    pub const fn code(self) -> &'static str {
        match self {
            GuaranteeStatus::Issued => "issued",
            GuaranteeStatus::Unsealed => "unsealed",
            GuaranteeStatus::Ended(state) => state.code(),
        }
    }

    pub const fn in_force(self) -> bool {
        matches!(self, GuaranteeStatus::Issued | GuaranteeStatus::Unsealed)
    }
}

impl std::fmt::Display for GuaranteeStatus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

/// A guarantee's status at `now` (its validity ends with its last Beijing day).
pub fn status(now: DateTime<Utc>, state: GuaranteeState, valid_to: NaiveDate, bids_opened: bool) -> GuaranteeStatus {
    match state {
        GuaranteeState::Issued if valid_to < beijing::date(now) => GuaranteeStatus::Ended(GuaranteeState::Expired),
        GuaranteeState::Issued if bids_opened => GuaranteeStatus::Unsealed,
        GuaranteeState::Issued => GuaranteeStatus::Issued,
        ended => GuaranteeStatus::Ended(ended),
    }
}

/// The sealed part of a guarantee: the signed terms and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedGuarantee {
    pub terms: GuaranteeTerms,
    pub signature: String,
    pub premium_fen: i64,
    /// The issuer's key that verified the signature at issue (`scheme`, hex public key): a
    /// guarantee stays verifiable after the issuer registers a new key.
    #[serde(default)]
    pub issuer_key: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuanceRefusal {
    #[error("validity {valid_from}..{valid_to} does not cover the requested period to {requested}")]
    ValidityShort { valid_from: NaiveDate, valid_to: NaiveDate, requested: NaiveDate },
    #[error("section {section_id} no longer takes deposits (closed, bids opened, or deadline {deadline} passed): the bid guarantee cannot be issued")]
    DepositsClosed { section_id: String, deadline: String },
    #[error("a bid guarantee must be in force at bid opening ({opening}); valid_from {valid_from} is later")]
    NotInForceAtOpening { opening: NaiveDate, valid_from: NaiveDate },
    #[error("guarantee_no: issuer {issuer_code}'s numbers start with '{issuer_code}-' (numbers are unique per issuer)")]
    ForeignNumber { issuer_code: String },
}

/// Whether `guarantee_no` is in `issuer_code`'s own range (`<issuer_code>-…`): numbers are
/// unique per issuer, so a number clashes only with the issuer's own, and an issuer told that a
/// number "is already used" learns nothing about another issuer's (sealed) guarantees.
pub fn number_of_issuer(issuer_code: &str, guarantee_no: &str) -> Result<(), IssuanceRefusal> {
    match guarantee_no.strip_prefix(issuer_code).and_then(|rest| rest.strip_prefix('-')) {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(IssuanceRefusal::ForeignNumber { issuer_code: issuer_code.to_owned() }),
    }
}

/// Whether the issued validity covers what the bidder asked for.
pub fn validity_covers(valid_from: NaiveDate, valid_to: NaiveDate, requested: NaiveDate) -> Result<(), IssuanceRefusal> {
    if valid_from > valid_to || valid_to < requested {
        return Err(IssuanceRefusal::ValidityShort { valid_from, valid_to, requested });
    }
    Ok(())
}

/// A bid guarantee stands in for a deposit: it is issued while the section takes deposits,
/// and is in force on the (Beijing) day of bid opening.
pub fn may_issue_bid(now: DateTime<Utc>, section: &Section, valid_from: NaiveDate) -> Result<(), IssuanceRefusal> {
    if !section.open || section.bids_opened || now >= section.deposit_deadline {
        return Err(IssuanceRefusal::DepositsClosed { section_id: section.section_id.clone(), deadline: section.deposit_deadline.to_rfc3339() });
    }
    let opening = beijing::date(section.bid_opening_time);
    if valid_from > opening {
        return Err(IssuanceRefusal::NotInForceAtOpening { opening, valid_from });
    }
    Ok(())
}

/// Whether a guarantee's signature verifies with the issuer's key it was issued under, else
/// (for guarantees sealed before keys were kept) the issuer's current key. `current_key` is
/// `None` when the issuer is no longer registered: then nothing is authentic.
pub fn authentic(sealed: &SealedGuarantee, current_key: Option<(String, String)>) -> bool {
    let Some(current) = current_key else { return false };
    let (scheme, public_key) = sealed.issuer_key.clone().unwrap_or(current);
    let Ok(scheme) = scheme.parse::<Scheme>() else { return false };
    let Ok(key) = VerifyingKey::from_hex(scheme, &public_key) else { return false };
    key.verify(sealed.terms.canonical_text().as_bytes(), &sealed.signature).is_ok()
}

/// What a rejected claim leaves of its guarantee: back in force, unless the tender ended
/// meanwhile (its release event found the guarantee claimed and passed it over) — then it is
/// released now. `tender_end` is the event type that ended the tender, if any.
pub fn after_rejected_claim(tender_end: Option<&str>) -> (GuaranteeState, String) {
    match tender_end {
        Some(event_type) => (GuaranteeState::Released, format!("claim rejected after {event_type}")),
        None => (GuaranteeState::Issued, "claim rejected".to_owned()),
    }
}

/// What a tender event does to a section's bid guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenderEffect {
    /// Release every bid guarantee of the section in force.
    Release { reason: &'static str },
    /// Surrender the withdrawing bidder's bid guarantee, if it withdrew in time.
    Surrender { reason: &'static str },
    /// Record the event only (figures count a section's bid guarantees from its opening on).
    Record,
}

/// The effect of a trading event type; `None` for events that do not concern guarantees.
pub fn tender_effect(event_type: &str) -> Option<TenderEffect> {
    match event_type {
        "contract.signed" => Some(TenderEffect::Release { reason: "contract signed" }),
        "tender.terminated" => Some(TenderEffect::Release { reason: "tender terminated" }),
        "tender.failed" => Some(TenderEffect::Release { reason: "tender failed" }),
        "bidder.withdrew" => Some(TenderEffect::Surrender { reason: "the bidder withdrew before the deadline" }),
        "bids.opened" => Some(TenderEffect::Record),
        _ => None,
    }
}

/// Whether a withdrawal surrenders the guarantee: only in time, as the ledger counts it (at the
/// deadline instant is still in time). Later, the guarantee stays in force so the tenderer can
/// claim (withdrew_after_deadline).
pub fn withdrawal_in_time(withdrawn_at: DateTime<Utc>, deposit_deadline: DateTime<Utc>) -> bool {
    withdrawn_at <= deposit_deadline
}

/// Whether a guarantee of `kind` replaces a cash deposit (and so counts as cash released).
pub fn replaces_deposit(kind: GuaranteeType) -> bool {
    kind == GuaranteeType::Bid
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_issuer_numbers_its_guarantees_in_its_own_range() {
        assert_eq!(number_of_issuer("PICC", "PICC-2026-0001"), Ok(()));
        for foreign in ["CCBG-2026-0001", "PICC2026-0001", "PICC-", "PIC-2026", "picc-2026-0001"] {
            assert!(number_of_issuer("PICC", foreign).is_err(), "{foreign}");
        }
    }

    use super::*;
    use crate::domain::sealing::tests::section;
    use chrono::Duration;
    use jinfu_platform::signing::SigningKey;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("date")
    }

    #[test]
    fn a_guarantee_in_force_reads_expired_after_its_last_beijing_day_and_unsealed_after_opening() {
        // 2027-03-01T16:30Z is already 2027-03-02 in Beijing.
        let late = DateTime::parse_from_rfc3339("2027-03-01T16:30:00Z").expect("time").with_timezone(&Utc);
        let evening = late - Duration::hours(1);
        assert_eq!(status(late, GuaranteeState::Issued, date(2027, 3, 1), false), GuaranteeStatus::Ended(GuaranteeState::Expired));
        assert_eq!(status(evening, GuaranteeState::Issued, date(2027, 3, 1), false), GuaranteeStatus::Issued);
        assert_eq!(status(evening, GuaranteeState::Issued, date(2027, 3, 1), true), GuaranteeStatus::Unsealed);
        assert_eq!(status(evening, GuaranteeState::Claimed, date(2027, 3, 1), true).code(), "claimed");
        assert!(!status(late, GuaranteeState::Issued, date(2027, 3, 1), true).in_force());
        for state in GuaranteeState::ALL {
            assert_eq!(GuaranteeState::parse(state.code()), Some(state));
        }
    }

    #[test]
    fn a_bid_guarantee_is_issued_while_deposits_are_taken_and_in_force_at_opening() {
        let open = section(false);
        let before = open.deposit_deadline - Duration::minutes(5);
        assert_eq!(may_issue_bid(before, &open, date(2026, 12, 1)), Ok(()));
        assert!(matches!(may_issue_bid(before, &open, date(2026, 12, 2)), Err(IssuanceRefusal::NotInForceAtOpening { .. })));
        assert!(matches!(may_issue_bid(open.deposit_deadline, &open, date(2026, 11, 1)), Err(IssuanceRefusal::DepositsClosed { .. })));
        assert!(matches!(may_issue_bid(before, &section(true), date(2026, 11, 1)), Err(IssuanceRefusal::DepositsClosed { .. })));
        assert!(validity_covers(date(2026, 11, 1), date(2027, 3, 1), date(2027, 3, 1)).is_ok());
        assert!(validity_covers(date(2026, 11, 1), date(2027, 2, 28), date(2027, 3, 1)).is_err());
        assert!(validity_covers(date(2027, 3, 2), date(2027, 3, 1), date(2027, 3, 1)).is_err());
    }

    #[test]
    fn a_signature_is_authentic_with_the_key_it_was_issued_under() {
        let key = SigningKey::generate(Scheme::Ed25519);
        let newer = SigningKey::generate(Scheme::Ed25519);
        let terms = GuaranteeTerms {
            guarantee_no: "PICC-0001".into(),
            application_id: "app".into(),
            centre_id: "520100".into(),
            section_id: "GY-1".into(),
            kind: GuaranteeType::Bid,
            principal_uscc: "91520100MA6DKQ5X2L".into(),
            beneficiary: "采购人".into(),
            amount_fen: 5_000_000,
            valid_from: date(2026, 11, 1),
            valid_to: date(2027, 3, 1),
            document_sha256: "ab".repeat(32),
        };
        let signature = key.sign(terms.canonical_text().as_bytes());
        let pinned = Some(("ed25519".to_owned(), key.public_key_hex()));
        let current = Some(("ed25519".to_owned(), newer.public_key_hex()));
        let sealed = SealedGuarantee { terms, signature, premium_fen: 5_000, issuer_key: pinned };
        assert!(authentic(&sealed, current.clone()), "the pinned key verifies after a key change");
        assert!(!authentic(&sealed, None), "an issuer no longer registered vouches for nothing");
        let unpinned = SealedGuarantee { issuer_key: None, ..sealed.clone() };
        assert!(!authentic(&unpinned, current), "without a pinned key the current key is used");
        let altered = SealedGuarantee { terms: GuaranteeTerms { amount_fen: 5_000_001, ..sealed.terms.clone() }, ..sealed };
        assert!(!authentic(&altered, Some(("ed25519".to_owned(), key.public_key_hex()))));
    }

    #[test]
    fn tender_events_release_or_surrender_and_late_withdrawals_keep_the_guarantee() {
        assert_eq!(tender_effect("contract.signed"), Some(TenderEffect::Release { reason: "contract signed" }));
        assert!(matches!(tender_effect("bidder.withdrew"), Some(TenderEffect::Surrender { .. })));
        assert_eq!(tender_effect("bids.opened"), Some(TenderEffect::Record));
        assert_eq!(tender_effect("award.announced"), None);
        let deadline = section(false).deposit_deadline;
        assert!(withdrawal_in_time(deadline, deadline));
        assert!(!withdrawal_in_time(deadline + Duration::seconds(1), deadline));
        assert_eq!(after_rejected_claim(None), (GuaranteeState::Issued, "claim rejected".to_owned()));
        assert_eq!(after_rejected_claim(Some("tender.failed")).0, GuaranteeState::Released);
    }
}
