//! What makes a section's terms acceptable, and whether a section takes new sub-accounts.

use chrono::{DateTime, Utc};
use jinfu_ledger::money::AMOUNT_FEN_MAX;

/// The money and time terms of a section as an operator creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionTerms {
    required_deposit_fen: i64,
    deposit_deadline: DateTime<Utc>,
    bid_opening_time: DateTime<Utc>,
}

/// Why a section's terms are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TermsRefused {
    #[error("required_deposit_fen must be positive")]
    RequiredDeposit,
    #[error("bid_opening_time must not be before deposit_deadline")]
    OpeningBeforeDeadline,
}

/// A deposit requirement: positive and at most the ledger's largest amount.
pub fn required_deposit(fen: i64) -> Result<i64, TermsRefused> {
    if fen <= 0 || fen > AMOUNT_FEN_MAX {
        return Err(TermsRefused::RequiredDeposit);
    }
    Ok(fen)
}

impl SectionTerms {
    /// Terms with a positive deposit (at most the ledger's largest amount) and bids opened no
    /// earlier than the deposit deadline.
    pub fn new(required_deposit_fen: i64, deposit_deadline: DateTime<Utc>, bid_opening_time: DateTime<Utc>) -> Result<SectionTerms, TermsRefused> {
        let required_deposit_fen = required_deposit(required_deposit_fen)?;
        if bid_opening_time < deposit_deadline {
            return Err(TermsRefused::OpeningBeforeDeadline);
        }
        Ok(SectionTerms { required_deposit_fen, deposit_deadline, bid_opening_time })
    }

    pub fn required_deposit_fen(&self) -> i64 {
        self.required_deposit_fen
    }

    pub fn deposit_deadline(&self) -> DateTime<Utc> {
        self.deposit_deadline
    }

    pub fn bid_opening_time(&self) -> DateTime<Utc> {
        self.bid_opening_time
    }
}

/// Why a section takes no new sub-account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepting {
    /// No such section in the centre.
    Unknown,
    /// The section was closed.
    Closed,
}

/// Whether a section whose `open` flag was read (`None`: no such section) takes new
/// sub-accounts.
pub fn accepts_sub_accounts(open: Option<bool>) -> Result<(), NotAccepting> {
    match open {
        None => Err(NotAccepting::Unknown),
        Some(false) => Err(NotAccepting::Closed),
        Some(true) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn instant() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).expect("valid")
    }

    #[test]
    fn a_deposit_must_be_positive_and_at_most_the_largest_amount() {
        assert_eq!(SectionTerms::new(0, instant(), instant()), Err(TermsRefused::RequiredDeposit));
        assert_eq!(SectionTerms::new(-1, instant(), instant()), Err(TermsRefused::RequiredDeposit));
        assert_eq!(SectionTerms::new(AMOUNT_FEN_MAX + 1, instant(), instant()), Err(TermsRefused::RequiredDeposit));
        assert!(SectionTerms::new(AMOUNT_FEN_MAX, instant(), instant()).is_ok());
        assert_eq!(required_deposit(1), Ok(1));
        assert_eq!(required_deposit(0), Err(TermsRefused::RequiredDeposit));
    }

    #[test]
    fn bids_may_open_at_the_deadline_but_not_before_it() {
        let deadline = instant();
        assert!(SectionTerms::new(1, deadline, deadline).is_ok());
        assert_eq!(SectionTerms::new(1, deadline, deadline - Duration::seconds(1)), Err(TermsRefused::OpeningBeforeDeadline));
        let terms = SectionTerms::new(5, deadline, deadline + Duration::hours(1)).expect("valid");
        assert_eq!(terms.required_deposit_fen(), 5);
        assert_eq!(terms.bid_opening_time() - terms.deposit_deadline(), Duration::hours(1));
    }

    #[test]
    fn only_an_open_section_takes_sub_accounts() {
        assert_eq!(accepts_sub_accounts(Some(true)), Ok(()));
        assert_eq!(accepts_sub_accounts(Some(false)), Err(NotAccepting::Closed));
        assert_eq!(accepts_sub_accounts(None), Err(NotAccepting::Unknown));
    }
}
