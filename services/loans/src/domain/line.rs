//! The credit-flow line (信用流水贷, Jilin): what a supplier may borrow without collateral, from
//! the payments it received under contracts on the platform in the last twelve months.
//!
//! line = min(cap, received × 30 % × regularity) − outstanding, at least 0, rounded down to the
//! yuan, where regularity = min(months with a payment, 6) / 6 and, with a single purchaser, the
//! result is halved (concentration). docs/loans.md, "Credit-flow line", shows the factors.

/// The largest line, in fen (5,000,000 yuan).
pub const LINE_CAP_FEN: i64 = 500_000_000;

/// The factors of one supplier's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factors {
    pub received_12m_fen: i64,
    pub months_with_payments: u32,
    pub distinct_purchasers: u32,
    pub outstanding_fen: i64,
}

/// The line and the formula with its factors filled in.
pub fn credit_line(factors: Factors) -> (i64, String) {
    let months = i128::from(factors.months_with_payments.min(6));
    let mut base = i128::from(factors.received_12m_fen) * 30 * months / (100 * 6);
    let concentration = if factors.distinct_purchasers <= 1 { 2 } else { 1 };
    base /= concentration;
    let capped = base.min(i128::from(LINE_CAP_FEN));
    let line = (capped - i128::from(factors.outstanding_fen)).max(0);
    let line = i64::try_from(line / 100 * 100).unwrap_or(0);
    let formula = format!(
        "min({LINE_CAP_FEN}, {} x 30% x min({}, 6)/6 / {concentration}) - {} = {line} fen",
        factors.received_12m_fen, factors.months_with_payments, factors.outstanding_fen
    );
    (line, formula)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_supplier_of_several_purchasers_gets_30_percent_of_a_years_receipts() {
        let factors = Factors { received_12m_fen: 100_000_000, months_with_payments: 8, distinct_purchasers: 3, outstanding_fen: 0 };
        assert_eq!(credit_line(factors).0, 30_000_000);
    }

    #[test]
    fn irregular_or_concentrated_receipts_and_open_loans_lower_the_line() {
        let base = Factors { received_12m_fen: 100_000_000, months_with_payments: 3, distinct_purchasers: 3, outstanding_fen: 0 };
        assert_eq!(credit_line(base).0, 15_000_000);
        assert_eq!(credit_line(Factors { distinct_purchasers: 1, ..base }).0, 7_500_000);
        assert_eq!(credit_line(Factors { outstanding_fen: 20_000_000, ..base }).0, 0);
        assert_eq!(credit_line(Factors { received_12m_fen: 0, months_with_payments: 0, ..base }).0, 0);
    }

    #[test]
    fn the_line_is_capped_and_rounded_down_to_the_yuan() {
        let huge = Factors { received_12m_fen: 1_000_000_000_000, months_with_payments: 12, distinct_purchasers: 9, outstanding_fen: 0 };
        assert_eq!(credit_line(huge).0, LINE_CAP_FEN);
        let odd = Factors { received_12m_fen: 1_001, months_with_payments: 6, distinct_purchasers: 2, outstanding_fen: 0 };
        assert_eq!(credit_line(odd), (300, "min(500000000, 1001 x 30% x min(6, 6)/6 / 1) - 0 = 300 fen".into()));
    }
}
