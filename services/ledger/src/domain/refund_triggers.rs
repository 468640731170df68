//! Which tender event refunds whom, per regime (DOMAIN.md, "after award"), and the refund
//! periods a centre may set per regime and trigger.
//!
//! Engineering tendering (招标投标法实施条例 art. 57): every bidder's deposit is refunded within
//! 5 days of the contract's signing — not at the award, because a runner-up may still be
//! awarded when the winner refuses to sign (art. 55). Government procurement (政府采购法实施条例
//! art. 33): the losers within 5 working days of the award notice, the winner within 5 working
//! days of the contract's signing.

use super::centres::REFUND_PERIOD_DAYS;

/// The law's refund period for every trigger: 5 days (calendar days for engineering, working
/// days for procurement).
pub const LAW_REFUND_PERIOD_DAYS: i32 = 5;

/// The rules a section follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Regime {
    /// Engineering tendering (招标投标法): calendar days.
    Engineering,
    /// Government procurement (政府采购法): working days.
    Procurement,
}

impl Regime {
    pub fn parse(text: &str) -> Option<Regime> {
        match text {
            "engineering" => Some(Regime::Engineering),
            "procurement" => Some(Regime::Procurement),
            _ => None,
        }
    }

    /// The stored text.
    pub fn code(self) -> &'static str {
        match self {
            Regime::Engineering => "engineering",
            Regime::Procurement => "procurement",
        }
    }
}

/// What starts a refund's period (the stored `refunds.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefundTrigger {
    /// `bidder.withdrew` before the deposit deadline.
    Withdrawal,
    /// `award.announced`.
    Award,
    /// `contract.signed`.
    ContractSigned,
    /// `tender.terminated`.
    Terminated,
    /// `tender.failed`.
    FailedTender,
}

impl RefundTrigger {
    pub const ALL: [RefundTrigger; 5] =
        [RefundTrigger::Withdrawal, RefundTrigger::Award, RefundTrigger::ContractSigned, RefundTrigger::Terminated, RefundTrigger::FailedTender];

    pub fn parse(text: &str) -> Option<RefundTrigger> {
        RefundTrigger::ALL.into_iter().find(|trigger| trigger.code() == text)
    }

    /// The stored text.
    pub fn code(self) -> &'static str {
        match self {
            RefundTrigger::Withdrawal => "withdrawal",
            RefundTrigger::Award => "award",
            RefundTrigger::ContractSigned => "contract_signed",
            RefundTrigger::Terminated => "terminated",
            RefundTrigger::FailedTender => "failed_tender",
        }
    }
}

/// Whose refunds a trigger schedules (each bidder once: a bidder already scheduled is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refunded {
    /// Nobody yet.
    Nobody,
    /// The bidder who withdrew.
    TheWithdrawingBidder,
    /// Every bidder but the winner.
    AllButTheWinner,
    /// Every bidder.
    Everyone,
}

/// Whose refunds `trigger` schedules in a section of `regime`.
pub fn refunded_on(regime: Regime, trigger: RefundTrigger) -> Refunded {
    match (regime, trigger) {
        (_, RefundTrigger::Withdrawal) => Refunded::TheWithdrawingBidder,
        // 实施条例 art. 55, 57: a runner-up may still be awarded until the contract is signed.
        (Regime::Engineering, RefundTrigger::Award) => Refunded::Nobody,
        (Regime::Procurement, RefundTrigger::Award) => Refunded::AllButTheWinner,
        (_, RefundTrigger::ContractSigned | RefundTrigger::Terminated | RefundTrigger::FailedTender) => Refunded::Everyone,
    }
}

/// One refund period a centre sets for a regime and trigger, instead of its general period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPeriod {
    regime: Regime,
    trigger: RefundTrigger,
    days: i32,
}

impl RefundPeriod {
    /// A period, refused when its days are outside 1–60 or when the trigger never refunds
    /// anyone in the regime (an engineering award).
    pub fn new(regime: Regime, trigger: RefundTrigger, days: i32) -> Result<RefundPeriod, String> {
        if !REFUND_PERIOD_DAYS.contains(&days) {
            return Err(format!("refund_periods: days for {} {} must be 1–60", regime.code(), trigger.code()));
        }
        if refunded_on(regime, trigger) == Refunded::Nobody {
            return Err(format!("refund_periods: {} sections refund nobody on {}; there is no period to set", regime.code(), trigger.code()));
        }
        Ok(RefundPeriod { regime, trigger, days })
    }

    pub fn regime(self) -> Regime {
        self.regime
    }

    pub fn trigger(self) -> RefundTrigger {
        self.trigger
    }

    pub fn days(self) -> i32 {
        self.days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engineering_award_refunds_nobody_the_contract_signing_refunds_everyone() {
        assert_eq!(refunded_on(Regime::Engineering, RefundTrigger::Award), Refunded::Nobody);
        assert_eq!(refunded_on(Regime::Engineering, RefundTrigger::ContractSigned), Refunded::Everyone);
    }

    #[test]
    fn a_procurement_award_refunds_the_losers_and_the_contract_signing_the_winner() {
        assert_eq!(refunded_on(Regime::Procurement, RefundTrigger::Award), Refunded::AllButTheWinner);
        assert_eq!(refunded_on(Regime::Procurement, RefundTrigger::ContractSigned), Refunded::Everyone);
    }

    #[test]
    fn withdrawals_terminations_and_failed_tenders_refund_alike_in_both_regimes() {
        for regime in [Regime::Engineering, Regime::Procurement] {
            assert_eq!(refunded_on(regime, RefundTrigger::Withdrawal), Refunded::TheWithdrawingBidder);
            assert_eq!(refunded_on(regime, RefundTrigger::Terminated), Refunded::Everyone);
            assert_eq!(refunded_on(regime, RefundTrigger::FailedTender), Refunded::Everyone);
        }
    }

    #[test]
    fn codes_round_trip() {
        for trigger in RefundTrigger::ALL {
            assert_eq!(RefundTrigger::parse(trigger.code()), Some(trigger));
        }
        assert_eq!(Regime::parse("engineering").map(Regime::code), Some("engineering"));
        assert_eq!(Regime::parse("Engineering"), None);
        assert_eq!(RefundTrigger::parse("award.announced"), None);
    }

    #[test]
    fn a_period_is_1_to_60_days_and_only_for_a_trigger_that_refunds_someone() {
        let period = RefundPeriod::new(Regime::Engineering, RefundTrigger::ContractSigned, 7).expect("valid");
        assert_eq!((period.regime(), period.trigger(), period.days()), (Regime::Engineering, RefundTrigger::ContractSigned, 7));
        assert!(RefundPeriod::new(Regime::Procurement, RefundTrigger::Award, 60).is_ok());
        assert_eq!(RefundPeriod::new(Regime::Procurement, RefundTrigger::Award, 0), Err("refund_periods: days for procurement award must be 1–60".to_owned()));
        assert!(RefundPeriod::new(Regime::Engineering, RefundTrigger::Award, 5).is_err(), "an engineering award refunds nobody");
    }
}
