//! Interest and repayment, exact to the fen: simple interest on the principal outstanding,
//! actual/365, for each day from the disbursement date (counted) to the repayment date (not
//! counted); each segment between two changes of the principal is rounded half up to the fen
//! once. A repayment pays the interest due first, then the principal; what is left over is the
//! supplier's surplus.

use chrono::NaiveDate;

/// Basis points × days in a year: the denominator of one day's interest.
const DENOMINATOR: i128 = 10_000 * 365;

/// Interest on `principal_fen` at `rate_bp` a year from `from` (counted) to `to` (not counted),
/// rounded half up to the fen; nothing when `to` is not after `from`.
pub fn segment_interest(principal_fen: i64, rate_bp: u32, from: NaiveDate, to: NaiveDate) -> i64 {
    let days = (to - from).num_days();
    if days <= 0 || principal_fen <= 0 {
        return 0;
    }
    let numerator = i128::from(principal_fen) * i128::from(rate_bp) * i128::from(days);
    i64::try_from((numerator + DENOMINATOR / 2) / DENOMINATOR).unwrap_or(i64::MAX)
}

/// Where a loan stands: principal, interest accrued to `accrued_to`, interest paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub principal_fen: i64,
    pub rate_bp: u32,
    pub interest_accrued_fen: i64,
    pub interest_paid_fen: i64,
    pub accrued_to: NaiveDate,
}

/// How one repayment divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub interest_fen: i64,
    pub principal_fen: i64,
    pub surplus_fen: i64,
}

impl Position {
    /// The position accrued to `day` (a day before `accrued_to` accrues nothing backwards).
    pub fn accrued(self, day: NaiveDate) -> Position {
        if day <= self.accrued_to {
            return self;
        }
        Position {
            interest_accrued_fen: self.interest_accrued_fen + segment_interest(self.principal_fen, self.rate_bp, self.accrued_to, day),
            accrued_to: day,
            ..self
        }
    }

    pub fn interest_due_fen(self) -> i64 {
        self.interest_accrued_fen - self.interest_paid_fen
    }

    /// What is owed: principal and interest due.
    pub fn owed_fen(self) -> i64 {
        self.principal_fen + self.interest_due_fen()
    }

    /// Applies `amount_fen` paid on `paid_on`: interest to that day first, then principal; the
    /// rest is surplus. Returns the new position and the allocation.
    pub fn repay(self, amount_fen: i64, paid_on: NaiveDate) -> (Position, Allocation) {
        let accrued = self.accrued(paid_on);
        let interest = amount_fen.min(accrued.interest_due_fen());
        let principal = (amount_fen - interest).min(accrued.principal_fen);
        let surplus = amount_fen - interest - principal;
        let next = Position { principal_fen: accrued.principal_fen - principal, interest_paid_fen: accrued.interest_paid_fen + interest, ..accrued };
        (next, Allocation { interest_fen: interest, principal_fen: principal, surplus_fen: surplus })
    }
}

/// Days past maturity with something owed on `today` (0 when current or repaid).
pub fn days_past_due(maturity_on: NaiveDate, owed_fen: i64, today: NaiveDate) -> u32 {
    if owed_fen <= 0 || today <= maturity_on {
        return 0;
    }
    u32::try_from((today - maturity_on).num_days()).unwrap_or(u32::MAX)
}

/// Whether a loan past due by `days` is in default after `grace_days` of grace.
pub fn in_default(days: u32, grace_days: u32) -> bool {
    days > grace_days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn loan() -> Position {
        Position { principal_fen: 100_000_000, rate_bp: 365, interest_accrued_fen: 0, interest_paid_fen: 0, accrued_to: day("2026-01-01") }
    }

    #[test]
    fn one_day_of_one_million_yuan_at_3_65_percent_is_100_yuan() {
        // 1,000,000 yuan × 3.65 % / 365 = 100 yuan a day.
        assert_eq!(segment_interest(100_000_000, 365, day("2026-01-01"), day("2026-01-02")), 10_000);
        assert_eq!(segment_interest(100_000_000, 365, day("2026-01-01"), day("2026-01-01")), 0);
        assert_eq!(segment_interest(100_000_000, 365, day("2026-01-02"), day("2026-01-01")), 0);
    }

    #[test]
    fn rounding_is_half_up_to_the_fen_per_segment() {
        // 1 fen × 1 bp × 1 day = 1/3,650,000 fen: rounds to 0; 1,825,000 units is exactly a half: 1.
        assert_eq!(segment_interest(1, 1, day("2026-01-01"), day("2026-01-02")), 0);
        assert_eq!(segment_interest(1_825, 1000, day("2026-01-01"), day("2026-01-02")), 1);
        assert_eq!(segment_interest(1_824, 1000, day("2026-01-01"), day("2026-01-02")), 0);
    }

    #[test]
    fn the_largest_loan_over_the_longest_term_does_not_overflow() {
        let fen = jinfu_ledger::money::AMOUNT_FEN_MAX;
        let interest = segment_interest(fen, 2400, day("2026-01-01"), day("2028-12-31"));
        assert!(interest > fen / 2 && interest < fen, "{interest}");
    }

    #[test]
    fn a_repayment_pays_interest_first_then_principal_and_keeps_the_surplus_apart() {
        let (after, split) = loan().repay(60_000_000, day("2026-01-11"));
        assert_eq!(split, Allocation { interest_fen: 100_000, principal_fen: 59_900_000, surplus_fen: 0 });
        assert_eq!((after.principal_fen, after.interest_due_fen()), (40_100_000, 0));
        // The next segment accrues on the smaller principal only.
        let (closed, split) = after.repay(50_000_000, day("2026-01-21"));
        let interest = segment_interest(40_100_000, 365, day("2026-01-11"), day("2026-01-21"));
        assert_eq!(split, Allocation { interest_fen: interest, principal_fen: 40_100_000, surplus_fen: 50_000_000 - 40_100_000 - interest });
        assert_eq!(closed.owed_fen(), 0);
    }

    #[test]
    fn a_payment_smaller_than_the_interest_due_pays_only_interest() {
        let (after, split) = loan().repay(5_000, day("2026-01-02"));
        assert_eq!(split, Allocation { interest_fen: 5_000, principal_fen: 0, surplus_fen: 0 });
        assert_eq!(after.interest_due_fen(), 5_000);
        assert_eq!(after.principal_fen, 100_000_000);
    }

    #[test]
    fn a_back_dated_payment_accrues_nothing_backwards() {
        let later = loan().accrued(day("2026-01-11"));
        assert_eq!(later.accrued(day("2026-01-05")), later);
    }

    #[test]
    fn delinquency_counts_days_past_maturity_and_default_follows_grace() {
        assert_eq!(days_past_due(day("2026-06-30"), 1, day("2026-06-30")), 0);
        assert_eq!(days_past_due(day("2026-06-30"), 1, day("2026-07-10")), 10);
        assert_eq!(days_past_due(day("2026-06-30"), 0, day("2026-07-10")), 0);
        assert!(!in_default(30, 30));
        assert!(in_default(31, 30));
    }
}
