//! Where a bidder's deposit stands, in words a bidder reads, and when a deposit held past its
//! refund due date is stale (滞留保证金).

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::matching::DepositProgress;
use jinfu_ledger::Fen;

/// The bid guarantee that covers a bidder's deposit, if any is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    pub guarantee_no: String,
    pub amount: Fen,
}

/// What the ledger knows about one bidder's deposit for one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositFacts {
    pub required: Fen,
    pub held: Fen,
    /// The largest guarantee in force, if any.
    pub cover: Option<Cover>,
    /// Transfers from this bidder's sub-account still in suspense.
    pub suspended_items: usize,
}

/// The deposit's status code, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepositState {
    SatisfiedByGuarantee,
    NoMoneyReceived,
    Short,
    Matched,
    Over,
}

impl DepositState {
    pub fn code(self) -> &'static str {
        match self {
            DepositState::SatisfiedByGuarantee => "satisfied_by_guarantee",
            DepositState::NoMoneyReceived => "no_money_received",
            DepositState::Short => "short",
            DepositState::Matched => "matched",
            DepositState::Over => "over",
        }
    }
}

/// The verdict on a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub state: DepositState,
    /// Whether the requirement is met, by cash or by guarantee.
    pub satisfied: bool,
    /// Cash that will be refunded as more than needed.
    pub excess: Fen,
    /// One or two sentences for the bidder (Chinese).
    pub explanation: String,
}

/// Assesses a deposit: a guarantee at least the requirement satisfies it (and makes all cash
/// excess); otherwise the cash held decides.
pub fn assess(facts: &DepositFacts) -> Assessment {
    let DepositFacts { required, held, cover, suspended_items } = facts;
    let (required, held) = (*required, *held);
    let (state, explanation, excess) = match cover.as_ref().filter(|cover| cover.amount >= required) {
        Some(Cover { guarantee_no, amount }) => {
            let cash = if held > Fen::ZERO { format!("已缴现金 {held} 元为超额部分，将退还。") } else { String::new() };
            (DepositState::SatisfiedByGuarantee, format!("已由电子保函 {guarantee_no}（担保金额 {amount} 元）足额担保。{cash}"), held)
        }
        None if held == Fen::ZERO => (DepositState::NoMoneyReceived, "尚未收到保证金。".to_owned(), Fen::ZERO),
        None => match DepositProgress::of(held, required) {
            DepositProgress::Short { missing } => (DepositState::Short, format!("已收到 {held} 元，还差 {missing} 元。"), Fen::ZERO),
            DepositProgress::Satisfied => (DepositState::Matched, format!("保证金 {held} 元已足额到账。"), Fen::ZERO),
            DepositProgress::Over { excess } => (DepositState::Over, format!("已收到 {held} 元，超出 {excess} 元，超出部分将退还。"), excess),
        },
    };
    let explanation = if *suspended_items == 0 {
        explanation
    } else {
        format!("{explanation} 另有 {suspended_items} 笔转账未能确认为保证金（见 suspended）。")
    };
    let satisfied = held >= required || state == DepositState::SatisfiedByGuarantee;
    Assessment { state, satisfied, excess, explanation }
}

/// Refund statuses under which the deposit is still held by the centre.
pub const STALE_REFUND_STATUSES: [&str; 3] = ["scheduled", "ordered", "failed"];

/// The Beijing date a deposit's staleness is judged on at `now`.
pub fn stale_as_of(now: DateTime<Utc>) -> NaiveDate {
    jinfu_ledger::beijing::date(now)
}

/// A deposit is stale on `today` when money is still held after its refund's due date and the
/// refund is not finished (settled, forfeited or found empty).
pub fn is_stale(due_on: NaiveDate, refund_status: &str, held_fen: i64, today: NaiveDate) -> bool {
    due_on < today && STALE_REFUND_STATUSES.contains(&refund_status) && held_fen > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(required: i64, held: i64, cover: Option<i64>, suspended_items: usize) -> DepositFacts {
        DepositFacts {
            required: Fen::from_fen(required),
            held: Fen::from_fen(held),
            cover: cover.map(|amount| Cover { guarantee_no: "G-1".into(), amount: Fen::from_fen(amount) }),
            suspended_items,
        }
    }

    #[test]
    fn cash_decides_without_a_sufficient_guarantee() {
        let none = assess(&facts(100_000, 0, None, 0));
        assert_eq!((none.state, none.satisfied, none.excess), (DepositState::NoMoneyReceived, false, Fen::ZERO));
        let short = assess(&facts(100_000, 40_000, None, 0));
        assert_eq!((short.state, short.satisfied), (DepositState::Short, false));
        assert_eq!(short.explanation, "已收到 400.00 元，还差 600.00 元。");
        let matched = assess(&facts(100_000, 100_000, None, 0));
        assert_eq!((matched.state, matched.satisfied, matched.excess), (DepositState::Matched, true, Fen::ZERO));
        let over = assess(&facts(100_000, 130_000, None, 0));
        assert_eq!((over.state, over.satisfied, over.excess), (DepositState::Over, true, Fen::from_fen(30_000)));
    }

    #[test]
    fn a_sufficient_guarantee_satisfies_the_deposit_and_makes_cash_excess() {
        let covered = assess(&facts(100_000, 20_000, Some(100_000), 0));
        assert_eq!((covered.state, covered.satisfied, covered.excess), (DepositState::SatisfiedByGuarantee, true, Fen::from_fen(20_000)));
        assert!(covered.explanation.contains("G-1") && covered.explanation.contains("将退还"), "{}", covered.explanation);
        let without_cash = assess(&facts(100_000, 0, Some(150_000), 0));
        assert_eq!(without_cash.explanation, "已由电子保函 G-1（担保金额 1500.00 元）足额担保。");
    }

    #[test]
    fn a_guarantee_below_the_requirement_does_not_count() {
        let partial = assess(&facts(100_000, 50_000, Some(99_999), 0));
        assert_eq!((partial.state, partial.satisfied), (DepositState::Short, false));
    }

    #[test]
    fn suspended_transfers_are_mentioned() {
        let assessed = assess(&facts(100_000, 0, None, 2));
        assert_eq!(assessed.explanation, "尚未收到保证金。 另有 2 笔转账未能确认为保证金（见 suspended）。");
    }

    #[test]
    fn a_deposit_is_stale_only_after_its_due_date_while_held_and_unfinished() {
        let due = NaiveDate::from_ymd_opt(2026, 11, 20).expect("valid");
        let next_day = due.succ_opt().expect("valid");
        assert!(!is_stale(due, "scheduled", 1, due), "not on the due date itself");
        assert!(is_stale(due, "scheduled", 1, next_day));
        assert!(is_stale(due, "failed", 1, next_day));
        assert!(!is_stale(due, "settled", 1, next_day));
        assert!(!is_stale(due, "ordered", 0, next_day), "nothing held");
    }

    #[test]
    fn staleness_is_judged_on_the_beijing_date() {
        let evening_utc = DateTime::parse_from_rfc3339("2026-11-29T16:30:00Z").expect("valid").with_timezone(&Utc);
        assert_eq!(stale_as_of(evening_utc), NaiveDate::from_ymd_opt(2026, 11, 30).expect("valid"));
    }
}
