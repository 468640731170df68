//! Bidders' applications for a guarantee: what a bidder may ask for, for how much, and the
//! states an application passes through (pending → cancelled | rejected | issued).

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::{beijing, Fen};
use serde::{Deserialize, Serialize};

use super::{GuaranteeType, Section};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationState {
    Pending,
    Cancelled,
    Rejected,
    Issued,
}

impl ApplicationState {
    pub const ALL: [ApplicationState; 4] = [ApplicationState::Pending, ApplicationState::Cancelled, ApplicationState::Rejected, ApplicationState::Issued];

    /// The code stored and answered.
    pub const fn code(self) -> &'static str {
        match self {
            ApplicationState::Pending => "pending",
            ApplicationState::Cancelled => "cancelled",
            ApplicationState::Rejected => "rejected",
            ApplicationState::Issued => "issued",
        }
    }

    pub fn parse(code: &str) -> Option<ApplicationState> {
        ApplicationState::ALL.into_iter().find(|state| state.code() == code)
    }
}

impl std::fmt::Display for ApplicationState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

/// The sealed part of an application: whatever names the bidder or its terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedApplication {
    pub bidder_uscc: String,
    pub beneficiary: String,
    pub amount_fen: i64,
    pub premium_fen: i64,
    pub valid_to: NaiveDate,
    /// The issuer's reason when it rejected the application.
    #[serde(default)]
    pub reason: String,
}

/// What a bidder asks for, as far as the amount rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub kind: GuaranteeType,
    /// 0 for a bid guarantee: the section's requirement.
    pub amount_fen: i64,
    /// Performance and quality guarantees: the contract amount the share is taken of.
    pub contract_amount_fen: i64,
    pub valid_to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationRefusal {
    #[error("section {0} is closed")]
    SectionClosed(String),
    #[error("valid_to {valid_to} must be after bid opening ({opening})")]
    EndsBeforeOpening { valid_to: NaiveDate, opening: NaiveDate },
    #[error("only the announced winner of section {section_id} may apply for a {kind} guarantee")]
    NotTheWinner { section_id: String, kind: &'static str },
    #[error("contract_amount_fen and amount_fen are required for performance and quality guarantees")]
    ContractAmountsMissing,
    #[error("amount_fen is required for performance and quality guarantees")]
    AmountMissing,
    #[error("a {kind} guarantee may cover at most {share} of the contract amount {contract}: {amount} is more")]
    AboveContractShare { kind: &'static str, share: &'static str, contract: Fen, amount: Fen },
    #[error("the deposit deadline of section {section_id} ({deadline}) has passed")]
    DeadlinePassed { section_id: String, deadline: String },
    #[error("amount {amount} exceeds the section's requirement {required}")]
    AboveRequirement { amount: Fen, required: Fen },
    #[error("amount {amount} does not cover the section's requirement {required}")]
    BelowRequirement { amount: Fen, required: Fen },
    #[error("application {id} is {state}; only a pending application can be cancelled")]
    NotCancellable { id: String, state: ApplicationState },
    #[error("application {id} is {state}, not pending")]
    NotPending { id: String, state: ApplicationState },
}

/// The most a performance (10 %) or quality (3 %) guarantee may cover of a contract amount.
pub fn contract_share_limit(kind: GuaranteeType, contract_amount_fen: i64) -> i64 {
    match kind {
        GuaranteeType::Bid => i64::MAX,
        GuaranteeType::Performance => contract_amount_fen / 10,
        GuaranteeType::Quality => contract_amount_fen.saturating_mul(3) / 100,
    }
}

/// The amount a guarantee of `kind` is quoted for: a bid guarantee covers the section's
/// requirement; other types the amount asked, which is required.
pub fn quoted_amount(kind: GuaranteeType, section: &Section, amount_fen: i64) -> Result<i64, ApplicationRefusal> {
    let amount = if kind == GuaranteeType::Bid { section.required_fen } else { amount_fen };
    if amount <= 0 {
        return Err(ApplicationRefusal::AmountMissing);
    }
    Ok(amount)
}

/// Whether `bidder_uscc` may apply, at `now`, for what it asks for in `section`, and for which
/// amount: the section must be open and the guarantee last beyond bid opening (Beijing date);
/// a bid guarantee is taken before the deposit deadline and covers exactly the requirement;
/// performance and quality guarantees are for the announced winner, within their share of the
/// contract.
pub fn applied_amount(now: DateTime<Utc>, section: &Section, bidder_uscc: &str, ask: Ask) -> Result<i64, ApplicationRefusal> {
    if !section.open {
        return Err(ApplicationRefusal::SectionClosed(section.section_id.clone()));
    }
    let opening = beijing::date(section.bid_opening_time);
    if ask.valid_to <= opening {
        return Err(ApplicationRefusal::EndsBeforeOpening { valid_to: ask.valid_to, opening });
    }
    if ask.kind != GuaranteeType::Bid {
        return contract_guarantee_amount(section, bidder_uscc, ask);
    }
    if now >= section.deposit_deadline {
        return Err(ApplicationRefusal::DeadlinePassed { section_id: section.section_id.clone(), deadline: section.deposit_deadline.to_rfc3339() });
    }
    let (amount, required) = (Fen::from_fen(ask.amount_fen), Fen::from_fen(section.required_fen));
    match ask.amount_fen {
        0 => Ok(section.required_fen),
        asked if asked > section.required_fen => Err(ApplicationRefusal::AboveRequirement { amount, required }),
        asked if asked < section.required_fen => Err(ApplicationRefusal::BelowRequirement { amount, required }),
        asked => Ok(asked),
    }
}

fn contract_guarantee_amount(section: &Section, bidder_uscc: &str, ask: Ask) -> Result<i64, ApplicationRefusal> {
    if section.winner_uscc.as_deref() != Some(bidder_uscc) {
        return Err(ApplicationRefusal::NotTheWinner { section_id: section.section_id.clone(), kind: ask.kind.code() });
    }
    if ask.contract_amount_fen <= 0 || ask.amount_fen <= 0 {
        return Err(ApplicationRefusal::ContractAmountsMissing);
    }
    if ask.amount_fen > contract_share_limit(ask.kind, ask.contract_amount_fen) {
        return Err(ApplicationRefusal::AboveContractShare {
            kind: ask.kind.code(),
            share: if ask.kind == GuaranteeType::Performance { "10 %" } else { "3 %" },
            contract: Fen::from_fen(ask.contract_amount_fen),
            amount: Fen::from_fen(ask.amount_fen),
        });
    }
    Ok(ask.amount_fen)
}

/// A bidder cancels only a pending application.
pub fn may_cancel(id: &str, state: ApplicationState) -> Result<(), ApplicationRefusal> {
    if state != ApplicationState::Pending {
        return Err(ApplicationRefusal::NotCancellable { id: id.to_owned(), state });
    }
    Ok(())
}

/// An issuer rejects or issues only a pending application.
pub fn may_decide(id: &str, state: ApplicationState) -> Result<(), ApplicationRefusal> {
    if state != ApplicationState::Pending {
        return Err(ApplicationRefusal::NotPending { id: id.to_owned(), state });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sealing::tests::section;
    use chrono::Duration;

    const BIDDER: &str = "91520100MA6DKQ5X2L";

    fn ask(kind: GuaranteeType, amount_fen: i64, contract_amount_fen: i64) -> Ask {
        Ask { kind, amount_fen, contract_amount_fen, valid_to: NaiveDate::from_ymd_opt(2027, 3, 1).expect("date") }
    }

    #[test]
    fn a_bid_guarantee_covers_exactly_the_requirement_before_the_deadline() {
        let section = section(false);
        let before = section.deposit_deadline - Duration::minutes(1);
        assert_eq!(applied_amount(before, &section, BIDDER, ask(GuaranteeType::Bid, 0, 0)), Ok(5_000_000));
        assert_eq!(applied_amount(before, &section, BIDDER, ask(GuaranteeType::Bid, 5_000_000, 0)), Ok(5_000_000));
        assert!(matches!(applied_amount(before, &section, BIDDER, ask(GuaranteeType::Bid, 5_000_001, 0)), Err(ApplicationRefusal::AboveRequirement { .. })));
        assert!(matches!(applied_amount(before, &section, BIDDER, ask(GuaranteeType::Bid, 4_999_999, 0)), Err(ApplicationRefusal::BelowRequirement { .. })));
        let at_deadline = applied_amount(section.deposit_deadline, &section, BIDDER, ask(GuaranteeType::Bid, 0, 0));
        assert!(matches!(at_deadline, Err(ApplicationRefusal::DeadlinePassed { .. })), "{at_deadline:?}");
    }

    #[test]
    fn a_guarantee_must_last_beyond_the_beijing_date_of_opening_in_an_open_section() {
        let mut section = section(false);
        let now = section.deposit_deadline - Duration::hours(1);
        // Opening is 2026-12-01 in Beijing: a guarantee to that very day does not do.
        let short = Ask { valid_to: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"), ..ask(GuaranteeType::Bid, 0, 0) };
        assert!(matches!(applied_amount(now, &section, BIDDER, short), Err(ApplicationRefusal::EndsBeforeOpening { .. })));
        section.open = false;
        let refused = applied_amount(now, &section, BIDDER, ask(GuaranteeType::Bid, 0, 0)).map_err(|refusal| refusal.to_string());
        assert_eq!(refused, Err("section GY-1 is closed".to_owned()));
    }

    #[test]
    fn performance_and_quality_guarantees_are_the_winners_within_their_share() {
        let mut section = section(true);
        let now = section.deposit_deadline + Duration::days(30);
        assert!(matches!(applied_amount(now, &section, BIDDER, ask(GuaranteeType::Performance, 100, 1_000)), Err(ApplicationRefusal::NotTheWinner { .. })));
        section.winner_uscc = Some(BIDDER.into());
        assert_eq!(applied_amount(now, &section, BIDDER, ask(GuaranteeType::Performance, 4_000_000, 40_000_000)), Ok(4_000_000));
        assert!(matches!(
            applied_amount(now, &section, BIDDER, ask(GuaranteeType::Performance, 4_000_001, 40_000_000)),
            Err(ApplicationRefusal::AboveContractShare { .. })
        ));
        assert_eq!(applied_amount(now, &section, BIDDER, ask(GuaranteeType::Quality, 1_200_000, 40_000_000)), Ok(1_200_000));
        assert!(matches!(
            applied_amount(now, &section, BIDDER, ask(GuaranteeType::Quality, 1_200_001, 40_000_000)),
            Err(ApplicationRefusal::AboveContractShare { .. })
        ));
        assert_eq!(applied_amount(now, &section, BIDDER, ask(GuaranteeType::Quality, 0, 40_000_000)), Err(ApplicationRefusal::ContractAmountsMissing));
        assert_eq!(contract_share_limit(GuaranteeType::Bid, 1), i64::MAX);
    }

    #[test]
    fn a_quote_is_for_the_requirement_or_the_amount_asked() {
        let section = section(false);
        assert_eq!(quoted_amount(GuaranteeType::Bid, &section, 1), Ok(5_000_000));
        assert_eq!(quoted_amount(GuaranteeType::Quality, &section, 7), Ok(7));
        assert_eq!(quoted_amount(GuaranteeType::Quality, &section, 0), Err(ApplicationRefusal::AmountMissing));
    }

    #[test]
    fn only_a_pending_application_is_cancelled_or_decided() {
        assert!(may_cancel("a", ApplicationState::Pending).is_ok());
        assert!(may_decide("a", ApplicationState::Pending).is_ok());
        for state in [ApplicationState::Cancelled, ApplicationState::Rejected, ApplicationState::Issued] {
            assert!(may_cancel("a", state).is_err());
            assert!(may_decide("a", state).is_err());
            assert_eq!(ApplicationState::parse(state.code()), Some(state));
        }
    }
}
