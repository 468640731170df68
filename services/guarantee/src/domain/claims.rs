//! Claims (索赔) on a guarantee: which reasons fit which type, how much may be claimed and paid,
//! and the states a claim passes through (pending → accepted → paid, or rejected).

use jinfu_ledger::Fen;

use super::{GuaranteeStatus, GuaranteeType};

/// Why a beneficiary claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimReason {
    WithdrewAfterDeadline,
    RefusedToSign,
    FailedToPerform,
    QualityDefect,
}

impl ClaimReason {
    pub const ALL: [ClaimReason; 4] =
        [ClaimReason::WithdrewAfterDeadline, ClaimReason::RefusedToSign, ClaimReason::FailedToPerform, ClaimReason::QualityDefect];

    pub const fn code(self) -> &'static str {
        match self {
            ClaimReason::WithdrewAfterDeadline => "withdrew_after_deadline",
            ClaimReason::RefusedToSign => "refused_to_sign",
            ClaimReason::FailedToPerform => "failed_to_perform",
            ClaimReason::QualityDefect => "quality_defect",
        }
    }

    pub fn parse(code: &str) -> Option<ClaimReason> {
        ClaimReason::ALL.into_iter().find(|reason| reason.code() == code)
    }
}

/// Where a claim stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    Pending,
    Accepted,
    Rejected,
    Paid,
}

impl ClaimState {
    pub const ALL: [ClaimState; 4] = [ClaimState::Pending, ClaimState::Accepted, ClaimState::Rejected, ClaimState::Paid];

    pub const fn code(self) -> &'static str {
        match self {
            ClaimState::Pending => "pending",
            ClaimState::Accepted => "accepted",
            ClaimState::Rejected => "rejected",
            ClaimState::Paid => "paid",
        }
    }

    pub fn parse(code: &str) -> Option<ClaimState> {
        ClaimState::ALL.into_iter().find(|state| state.code() == code)
    }

    /// The state an issuer's decision puts a pending claim in.
    pub const fn decided(accept: bool) -> ClaimState {
        if accept {
            ClaimState::Accepted
        } else {
            ClaimState::Rejected
        }
    }
}

impl std::fmt::Display for ClaimState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefusal {
    #[error("guarantee {guarantee_no} is {status}, not in force")]
    NotInForce { guarantee_no: String, status: GuaranteeStatus },
    #[error("reason {reason:?} does not fit a {kind} guarantee")]
    ReasonDoesNotFit { reason: String, kind: &'static str },
    #[error("amount must be positive and at most the guarantee's {0}")]
    Amount(Fen),
    #[error("claim {claim_id} is {state}, not {expected}")]
    WrongState { claim_id: String, state: ClaimState, expected: ClaimState },
    #[error("paid_fen must be positive and at most the claim's {0}")]
    Payment(Fen),
}

/// Claim reasons that fit each guarantee type.
pub fn claim_fits(kind: GuaranteeType, reason: ClaimReason) -> bool {
    match kind {
        GuaranteeType::Bid => matches!(reason, ClaimReason::WithdrewAfterDeadline | ClaimReason::RefusedToSign),
        GuaranteeType::Performance => reason == ClaimReason::FailedToPerform,
        GuaranteeType::Quality => reason == ClaimReason::QualityDefect,
    }
}

/// A claim as submitted, checked against its guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimAgainst<'a> {
    pub guarantee_no: &'a str,
    pub kind: GuaranteeType,
    pub status: GuaranteeStatus,
    pub guarantee_amount_fen: i64,
}

/// Whether a claim for `reason` of `amount_fen` may be made on a guarantee: it must be in force,
/// the reason must fit its type, the amount at most the guarantee's.
pub fn may_claim(guarantee: ClaimAgainst<'_>, reason: &str, amount_fen: i64) -> Result<ClaimReason, ClaimRefusal> {
    if !guarantee.status.in_force() {
        return Err(ClaimRefusal::NotInForce { guarantee_no: guarantee.guarantee_no.to_owned(), status: guarantee.status });
    }
    let fitting = ClaimReason::parse(reason).filter(|parsed| claim_fits(guarantee.kind, *parsed));
    let Some(reason) = fitting else {
        return Err(ClaimRefusal::ReasonDoesNotFit { reason: reason.to_owned(), kind: guarantee.kind.code() });
    };
    if amount_fen <= 0 || amount_fen > guarantee.guarantee_amount_fen {
        return Err(ClaimRefusal::Amount(Fen::from_fen(guarantee.guarantee_amount_fen)));
    }
    Ok(reason)
}

/// An issuer acts on a claim only in the state the act expects.
pub fn must_be(claim_id: &str, state: ClaimState, expected: ClaimState) -> Result<(), ClaimRefusal> {
    if state != expected {
        return Err(ClaimRefusal::WrongState { claim_id: claim_id.to_owned(), state, expected });
    }
    Ok(())
}

/// A payment is positive and at most the amount claimed.
pub fn payment_fits(paid_fen: i64, claimed_fen: i64) -> Result<(), ClaimRefusal> {
    if paid_fen <= 0 || paid_fen > claimed_fen {
        return Err(ClaimRefusal::Payment(Fen::from_fen(claimed_fen)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GuaranteeState;

    fn bid(status: GuaranteeStatus) -> ClaimAgainst<'static> {
        ClaimAgainst { guarantee_no: "PICC-0001", kind: GuaranteeType::Bid, status, guarantee_amount_fen: 5_000_000 }
    }

    #[test]
    fn each_type_takes_its_own_reasons() {
        assert!(claim_fits(GuaranteeType::Bid, ClaimReason::RefusedToSign));
        assert!(claim_fits(GuaranteeType::Bid, ClaimReason::WithdrewAfterDeadline));
        assert!(!claim_fits(GuaranteeType::Bid, ClaimReason::FailedToPerform));
        assert!(claim_fits(GuaranteeType::Performance, ClaimReason::FailedToPerform));
        assert!(!claim_fits(GuaranteeType::Performance, ClaimReason::QualityDefect));
        assert!(claim_fits(GuaranteeType::Quality, ClaimReason::QualityDefect));
        assert!(!claim_fits(GuaranteeType::Quality, ClaimReason::RefusedToSign));
    }

    #[test]
    fn a_claim_needs_a_guarantee_in_force_a_fitting_reason_and_a_covered_amount() {
        assert_eq!(may_claim(bid(GuaranteeStatus::Unsealed), "refused_to_sign", 5_000_000), Ok(ClaimReason::RefusedToSign));
        assert!(matches!(may_claim(bid(GuaranteeStatus::Ended(GuaranteeState::Claimed)), "refused_to_sign", 1), Err(ClaimRefusal::NotInForce { .. })));
        assert!(matches!(may_claim(bid(GuaranteeStatus::Issued), "failed_to_perform", 1), Err(ClaimRefusal::ReasonDoesNotFit { .. })));
        assert!(matches!(may_claim(bid(GuaranteeStatus::Issued), "no_reason", 1), Err(ClaimRefusal::ReasonDoesNotFit { .. })));
        assert!(matches!(may_claim(bid(GuaranteeStatus::Issued), "refused_to_sign", 5_000_001), Err(ClaimRefusal::Amount(_))));
        assert!(matches!(may_claim(bid(GuaranteeStatus::Issued), "refused_to_sign", 0), Err(ClaimRefusal::Amount(_))));
    }

    #[test]
    fn claims_are_decided_when_pending_and_paid_up_to_the_claim() {
        assert_eq!(ClaimState::decided(true), ClaimState::Accepted);
        assert_eq!(ClaimState::decided(false), ClaimState::Rejected);
        assert!(must_be("c", ClaimState::Pending, ClaimState::Pending).is_ok());
        assert_eq!(
            must_be("c", ClaimState::Pending, ClaimState::Accepted).map_err(|refusal| refusal.to_string()),
            Err("claim c is pending, not accepted".to_owned())
        );
        assert!(payment_fits(3_000_000, 3_000_000).is_ok());
        assert!(payment_fits(3_000_001, 3_000_000).is_err());
        assert!(payment_fits(0, 3_000_000).is_err());
        for state in ClaimState::ALL {
            assert_eq!(ClaimState::parse(state.code()), Some(state));
        }
    }
}
