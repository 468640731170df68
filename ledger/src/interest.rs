//! Refund interest (DESIGN.md §3): principal × annual demand-deposit rate × days ÷ 360, the
//! days counted actual from the value date to the refund date, rounded half up to the fen.
//! Chinese banks count RMB deposit interest on a 360-day year.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::Fen;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterestError {
    #[error("refund date {refund} is before value date {value}")]
    RefundBeforeValue { value: NaiveDate, refund: NaiveDate },
    #[error("annual rate {0} is negative or not below 1")]
    BadRate(Decimal),
    #[error("interest overflows")]
    Overflow,
}

/// Interest on `principal` held from `value_date` to `refund_date` at `annual_rate` (a decimal
/// fraction: 0.0035 is 0.35 %).
pub fn refund_interest(principal: Fen, annual_rate: Decimal, value_date: NaiveDate, refund_date: NaiveDate) -> Result<Fen, InterestError> {
    if refund_date < value_date {
        return Err(InterestError::RefundBeforeValue { value: value_date, refund: refund_date });
    }
    if annual_rate < Decimal::ZERO || annual_rate >= Decimal::ONE {
        return Err(InterestError::BadRate(annual_rate));
    }
    let days = Decimal::from((refund_date - value_date).num_days());
    let fen = Decimal::from(principal.fen())
        .checked_mul(annual_rate)
        .and_then(|v| v.checked_mul(days))
        .and_then(|v| v.checked_div(Decimal::from(360)))
        .ok_or(InterestError::Overflow)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let fen = i64::try_from(fen).map_err(|_| InterestError::Overflow)?;
    Ok(Fen::from_fen(fen))
}

/// Exact (unrounded) interest, in fen, on `principal` from `value_date` to `refund_date` under a
/// rate history: `rates` are (effective from, annual rate) in date order, each applying until
/// the next. Days before the first rate earn nothing. Sum several of these and round once with
/// [`round_half_up`].
pub fn interest_exact_fen(principal: Fen, rates: &[(NaiveDate, Decimal)], value_date: NaiveDate, refund_date: NaiveDate) -> Result<Decimal, InterestError> {
    if refund_date < value_date {
        return Err(InterestError::RefundBeforeValue { value: value_date, refund: refund_date });
    }
    let mut total = Decimal::ZERO;
    for (index, (from, rate)) in rates.iter().enumerate() {
        if *rate < Decimal::ZERO || *rate >= Decimal::ONE {
            return Err(InterestError::BadRate(*rate));
        }
        let until = rates.get(index + 1).map(|(next, _)| *next).unwrap_or(NaiveDate::MAX);
        let start = value_date.max(*from);
        let end = refund_date.min(until);
        if end <= start {
            continue;
        }
        let days = Decimal::from((end - start).num_days());
        let part = Decimal::from(principal.fen())
            .checked_mul(*rate)
            .and_then(|v| v.checked_mul(days))
            .and_then(|v| v.checked_div(Decimal::from(360)))
            .ok_or(InterestError::Overflow)?;
        total = total.checked_add(part).ok_or(InterestError::Overflow)?;
    }
    Ok(total)
}

/// Rounds exact fen half up (away from zero) to whole fen.
pub fn round_half_up(exact_fen: Decimal) -> Result<Fen, InterestError> {
    let rounded = exact_fen.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(rounded).map(Fen::from_fen).map_err(|_| InterestError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn fifty_thousand_yuan_for_30_days_at_0_35_percent_is_14_58_yuan() {
        // 5,000,000 fen × 0.0035 × 30 / 360 = 1458.333… fen → 1458 fen.
        let interest = refund_interest(Fen::from_fen(5_000_000), Decimal::from_str("0.0035").unwrap(), date("2026-10-20"), date("2026-11-19")).unwrap();
        assert_eq!(interest, Fen::from_fen(1458));
    }

    #[test]
    fn a_half_fen_rounds_up() {
        // 360 fen × 0.0025 × 2 / 360 = 0.005 fen… use 36,000 fen × 0.05 × 1 / 360 = 5 fen exactly,
        // and 3,600 fen × 0.0025 × 2 / 360 = 0.05 fen → 0; 18 fen × 0.1 × 100 / 360 = 0.5 → 1.
        assert_eq!(
            refund_interest(Fen::from_fen(36_000), Decimal::from_str("0.05").unwrap(), date("2026-01-01"), date("2026-01-02")).unwrap(),
            Fen::from_fen(5)
        );
        assert_eq!(refund_interest(Fen::from_fen(18), Decimal::from_str("0.1").unwrap(), date("2026-01-01"), date("2026-04-11")).unwrap(), Fen::from_fen(1));
    }

    #[test]
    fn a_rate_cut_mid_holding_splits_the_days() {
        // 1,000,000 fen from 2026-01-01: 0.35 % for 90 days (to 04-01), then 0.20 % for 30 days.
        // 1,000,000 × 0.0035 × 90 / 360 = 875; 1,000,000 × 0.0020 × 30 / 360 = 166.67 → 1041.67 → 1042.
        let rates = [(date("2000-01-01"), Decimal::from_str("0.0035").unwrap()), (date("2026-04-01"), Decimal::from_str("0.0020").unwrap())];
        let exact = interest_exact_fen(Fen::from_fen(1_000_000), &rates, date("2026-01-01"), date("2026-05-01")).unwrap();
        assert_eq!(round_half_up(exact).unwrap(), Fen::from_fen(1042));
    }

    #[test]
    fn same_day_refund_earns_nothing_and_a_backwards_refund_is_refused() {
        assert_eq!(refund_interest(Fen::from_fen(100), Decimal::from_str("0.0035").unwrap(), date("2026-01-01"), date("2026-01-01")).unwrap(), Fen::ZERO);
        assert!(refund_interest(Fen::from_fen(100), Decimal::from_str("0.0035").unwrap(), date("2026-01-02"), date("2026-01-01")).is_err());
    }
}
