//! A centre's rules and figures: refund rules, a collection account's demand-deposit rate, the
//! working-day overrides of its calendar, and what it holds by liability class.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::refund_triggers::RefundPeriod;

/// Allowed refund periods, in days after the trigger.
pub const REFUND_PERIOD_DAYS: std::ops::RangeInclusive<i32> = 1..=60;
/// Allowed holds before a refund is ordered, in working days.
pub const REFUND_HOLD_WORKING_DAYS: std::ops::RangeInclusive<i32> = 0..=10;

/// A centre's refund rules as given at registration; `None` keeps what is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefundRules {
    /// The period of every trigger without one of its own in `periods`.
    pub period_days: Option<i32>,
    pub hold_working_days: Option<i32>,
    /// Periods per regime and trigger, set (or replaced) one by one; the others keep what is set.
    pub periods: Vec<RefundPeriod>,
}

impl RefundRules {
    pub fn new(period_days: Option<i32>, hold_working_days: Option<i32>) -> Result<RefundRules, &'static str> {
        if period_days.is_some_and(|days| !REFUND_PERIOD_DAYS.contains(&days)) {
            return Err("refund_period_days must be 1–60");
        }
        if hold_working_days.is_some_and(|days| !REFUND_HOLD_WORKING_DAYS.contains(&days)) {
            return Err("refund_hold_working_days must be 0–10");
        }
        Ok(RefundRules { period_days, hold_working_days, periods: Vec::new() })
    }

    /// The rules with `periods` per regime and trigger, each (regime, trigger) at most once.
    pub fn with_periods(mut self, periods: Vec<RefundPeriod>) -> Result<RefundRules, String> {
        for (index, period) in periods.iter().enumerate() {
            if periods[..index].iter().any(|other| (other.regime(), other.trigger()) == (period.regime(), period.trigger())) {
                return Err(format!("refund_periods: {} {} is given twice", period.regime().code(), period.trigger().code()));
            }
        }
        self.periods = periods;
        Ok(self)
    }
}

/// Decimal places a stored rate keeps: the rate columns are `numeric(12, 8)`.
pub const RATE_DECIMAL_PLACES: u32 = 8;

/// Why a rate's text is refused; `message` names the field and the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefused {
    NotADecimal,
    OutOfRange,
    /// More decimal places than the column keeps: it would round silently (and 0.999999999
    /// would round to 1, which the column refuses).
    TooManyDecimalPlaces,
}

impl RateRefused {
    /// The sentence for `field`, with the limits.
    pub fn message(self, field: &str) -> String {
        let why = match self {
            RateRefused::NotADecimal => "is not a decimal number",
            RateRefused::OutOfRange => "is outside [0, 1)",
            RateRefused::TooManyDecimalPlaces => "has more than 8 decimal places",
        };
        format!("{field} {why}: it must be an annual rate as a decimal fraction from 0 up to but not including 1, with at most {RATE_DECIMAL_PLACES} decimal places, e.g. \"0.0010\" for 0.10 %")
    }
}

/// An annual interest rate as a decimal fraction in [0, 1) with at most 8 decimal places (what
/// the `numeric(12, 8)` columns store exactly), e.g. 0.0010 for 0.10 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnualRate(Decimal);

impl AnnualRate {
    pub fn parse(text: &str) -> Result<AnnualRate, RateRefused> {
        let rate = text.trim().parse::<Decimal>().map_err(|_| RateRefused::NotADecimal)?;
        if rate < Decimal::ZERO || rate >= Decimal::ONE {
            return Err(RateRefused::OutOfRange);
        }
        // Trailing zeros are no precision: "0.001000000000" is stored exactly.
        if rate.normalize().scale() > RATE_DECIMAL_PLACES {
            return Err(RateRefused::TooManyDecimalPlaces);
        }
        Ok(AnnualRate(rate))
    }

    /// The rate as the text PostgreSQL's `numeric` takes.
    pub fn to_numeric_text(self) -> String {
        self.0.to_string()
    }
}

/// How a centre overrides the national working-day calendar on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    Holiday,
    Workday,
}

impl OverrideKind {
    pub fn parse(text: &str) -> Option<OverrideKind> {
        match text {
            "holiday" => Some(OverrideKind::Holiday),
            "workday" => Some(OverrideKind::Workday),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            OverrideKind::Holiday => "holiday",
            OverrideKind::Workday => "workday",
        }
    }
}

/// A centre's full set of overrides: each day at most once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    days: Vec<(NaiveDate, OverrideKind)>,
}

impl Overrides {
    /// Adds one day's override; a day already overridden is refused.
    pub fn add(&mut self, day: NaiveDate, kind: OverrideKind) -> Result<(), String> {
        if self.days.iter().any(|(known, _)| *known == day) {
            return Err(format!("day {day} is overridden twice"));
        }
        self.days.push((day, kind));
        Ok(())
    }

    pub fn days(&self) -> &[(NaiveDate, OverrideKind)] {
        &self.days
    }
}

/// What a centre holds for others, by liability class, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holdings {
    pub deposits_fen: i64,
    pub suspense_fen: i64,
    pub refund_in_transit_fen: i64,
    pub forfeited_fen: i64,
    /// Everything above, and any liability class added later.
    pub total_fen: i64,
}

/// Holdings from the sum of liability balances per account class (the account key's first
/// segment).
pub fn holdings<'a>(classes: impl IntoIterator<Item = (&'a str, i64)>) -> Holdings {
    let mut holdings = Holdings::default();
    let mut other_fen = 0;
    for (class, fen) in classes {
        match class {
            "deposit" => holdings.deposits_fen += fen,
            "suspense" => holdings.suspense_fen += fen,
            "refund-in-transit" => holdings.refund_in_transit_fen += fen,
            "forfeited" => holdings.forfeited_fen += fen,
            // Any liability class added later still counts towards what the centre holds.
            _ => other_fen += fen,
        }
    }
    holdings.total_fen = other_fen + holdings.deposits_fen + holdings.suspense_fen + holdings.refund_in_transit_fen + holdings.forfeited_fen;
    holdings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_rules_are_bounded() {
        assert!(RefundRules::new(None, None).is_ok());
        assert!(RefundRules::new(Some(1), Some(0)).is_ok());
        assert!(RefundRules::new(Some(60), Some(10)).is_ok());
        assert_eq!(RefundRules::new(Some(0), None), Err("refund_period_days must be 1–60"));
        assert_eq!(RefundRules::new(Some(61), None), Err("refund_period_days must be 1–60"));
        assert_eq!(RefundRules::new(None, Some(11)), Err("refund_hold_working_days must be 0–10"));
        assert_eq!(RefundRules::new(None, Some(-1)), Err("refund_hold_working_days must be 0–10"));
    }

    #[test]
    fn a_regime_and_trigger_gets_at_most_one_period() {
        use crate::domain::refund_triggers::{RefundTrigger, Regime};
        let period = |days| RefundPeriod::new(Regime::Engineering, RefundTrigger::ContractSigned, days).expect("valid");
        let other = RefundPeriod::new(Regime::Procurement, RefundTrigger::ContractSigned, 5).expect("valid");
        let rules = RefundRules::default().with_periods(vec![period(7), other]).expect("distinct");
        assert_eq!(rules.periods, vec![period(7), other]);
        assert_eq!(
            RefundRules::default().with_periods(vec![period(7), period(8)]),
            Err("refund_periods: engineering contract_signed is given twice".to_owned())
        );
    }

    #[test]
    fn a_rate_is_a_fraction_from_zero_up_to_but_not_including_one() {
        assert_eq!(AnnualRate::parse(" 0.0010 ").map(AnnualRate::to_numeric_text), Ok("0.0010".to_owned()));
        assert!(AnnualRate::parse("0").is_ok());
        assert_eq!(AnnualRate::parse("1"), Err(RateRefused::OutOfRange));
        assert_eq!(AnnualRate::parse("-0.01"), Err(RateRefused::OutOfRange));
        assert_eq!(AnnualRate::parse("1.5%"), Err(RateRefused::NotADecimal));
        assert_eq!(AnnualRate::parse(""), Err(RateRefused::NotADecimal));
    }

    #[test]
    fn a_rate_has_at_most_the_eight_decimal_places_its_column_keeps() {
        assert!(AnnualRate::parse("0.99999999").is_ok());
        assert!(AnnualRate::parse("0.00000001").is_ok());
        assert!(AnnualRate::parse("0.001000000000").is_ok(), "trailing zeros are no precision");
        // numeric(12, 8) would round these: 0.000000001 to 0, 0.999999999 to 1 (then refused).
        assert_eq!(AnnualRate::parse("0.000000001"), Err(RateRefused::TooManyDecimalPlaces));
        assert_eq!(AnnualRate::parse("0.999999999"), Err(RateRefused::TooManyDecimalPlaces));
        let message = RateRefused::TooManyDecimalPlaces.message("annual_rate");
        assert!(message.starts_with("annual_rate has more than 8 decimal places"), "{message}");
        assert!(message.contains("[0, 1)") || message.contains("from 0 up to but not including 1"), "{message}");
    }

    #[test]
    fn a_day_is_overridden_at_most_once() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 8).expect("valid");
        let next = day.succ_opt().expect("valid");
        let mut set = Overrides::default();
        assert_eq!(set.add(day, OverrideKind::Holiday), Ok(()));
        assert_eq!(set.add(next, OverrideKind::Workday), Ok(()));
        assert_eq!(set.add(day, OverrideKind::Workday), Err("day 2026-10-08 is overridden twice".to_owned()));
        assert_eq!(set.days(), &[(day, OverrideKind::Holiday), (next, OverrideKind::Workday)]);
        assert_eq!(OverrideKind::parse("workday").map(OverrideKind::code), Some("workday"));
        assert_eq!(OverrideKind::parse("Holiday"), None);
    }

    #[test]
    fn holdings_count_every_liability_class_in_the_total() {
        let held = holdings([("deposit", 100), ("suspense", 20), ("refund-in-transit", 3), ("forfeited", 4), ("escrow", 1000)]);
        assert_eq!(held, Holdings { deposits_fen: 100, suspense_fen: 20, refund_in_transit_fen: 3, forfeited_fen: 4, total_fen: 1127 });
        assert_eq!(holdings([]), Holdings::default());
    }
}
