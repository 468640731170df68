//! Money is an exact count of fen (0.01 CNY) in an `i64`. Floating point never touches it.

use std::fmt;
use std::ops::{Add, Sub};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An amount of renminbi in fen. May be negative only as an intermediate signed delta; every
/// stored posting amount is positive (see [`crate::entry::JournalEntry::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a decimal number of yuan")]
    NotANumber(String),
    #[error("amount {0:?} has more than two decimal places (fen is the smallest unit)")]
    TooManyDecimals(String),
    #[error("amount {0:?} must be greater than zero")]
    NotPositive(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

/// The largest single amount accepted from outside: CNY 100 billion. Deposits are capped by law
/// far below this; the limit exists so that sums of many amounts cannot overflow `i64`.
pub const AMOUNT_FEN_MAX: i64 = 10_000_000_000_000;

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub const fn from_fen(fen: i64) -> Self {
        Fen(fen)
    }

    pub const fn fen(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parses a balance: like [`Fen::parse_positive_yuan`], but zero ("0.00") is allowed.
    pub fn parse_balance_yuan(text: &str) -> Result<Fen, MoneyError> {
        match Fen::parse_positive_yuan(text) {
            Err(MoneyError::NotPositive(_)) if !text.starts_with('-') => Ok(Fen(0)),
            other => other,
        }
    }

    /// Parses a positive amount of yuan written as a decimal string ("50000", "50000.5",
    /// "50000.50"). More than two decimal digits (even "1.500"), zero, negatives, signs,
    /// spaces, exponents and anything else that is not a plain decimal are refused: a bank
    /// amount is either exact in fen or it is wrong.
    pub fn parse_positive_yuan(text: &str) -> Result<Fen, MoneyError> {
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let plain = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && !(unsigned.contains('.') && fraction.is_empty());
        if !plain {
            return Err(MoneyError::NotANumber(text.to_owned()));
        }
        if fraction.len() > 2 {
            return Err(MoneyError::TooManyDecimals(text.to_owned()));
        }
        let decimal = Decimal::from_str(text).map_err(|_| MoneyError::NotANumber(text.to_owned()))?;
        if decimal <= Decimal::ZERO {
            return Err(MoneyError::NotPositive(text.to_owned()));
        }
        let fen = decimal * Decimal::ONE_HUNDRED;
        let fen = i64::try_from(fen.trunc()).map_err(|_| MoneyError::TooLarge(text.to_owned()))?;
        if fen > AMOUNT_FEN_MAX {
            return Err(MoneyError::TooLarge(text.to_owned()));
        }
        Ok(Fen(fen))
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// The amount as yuan with exactly two decimals, e.g. `1234.50`.
    pub fn to_yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Add for Fen {
    type Output = Fen;
    fn add(self, other: Fen) -> Fen {
        Fen(self.0.checked_add(other.0).expect("fen addition overflowed i64"))
    }
}

impl Sub for Fen {
    type Output = Fen;
    fn sub(self, other: Fen) -> Fen {
        Fen(self.0.checked_sub(other.0).expect("fen subtraction overflowed i64"))
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_yuan_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_yuan_parse_to_exact_fen() {
        assert_eq!(Fen::parse_positive_yuan("50000").unwrap().fen(), 5_000_000);
        assert_eq!(Fen::parse_positive_yuan("0.01").unwrap().fen(), 1);
        assert_eq!(Fen::parse_positive_yuan("12.5").unwrap().fen(), 1250);
        assert_eq!(Fen::parse_positive_yuan("12.50").unwrap().fen(), 1250);
    }

    #[test]
    fn three_decimals_zero_negative_and_exponent_are_refused() {
        assert!(matches!(Fen::parse_positive_yuan("1.001"), Err(MoneyError::TooManyDecimals(_))));
        assert!(matches!(Fen::parse_positive_yuan("12.500"), Err(MoneyError::TooManyDecimals(_))));
        assert!(matches!(Fen::parse_positive_yuan("+5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan(" 5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan("5."), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan(".5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan("0"), Err(MoneyError::NotPositive(_))));
        assert!(matches!(Fen::parse_positive_yuan("-5.00"), Err(MoneyError::NotPositive(_))));
        assert!(matches!(Fen::parse_positive_yuan("1e5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan(""), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan("１００"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_positive_yuan("999999999999999"), Err(MoneyError::TooLarge(_))));
    }

    #[test]
    fn fen_prints_as_yuan_with_two_decimals() {
        assert_eq!(Fen::from_fen(5).to_yuan_string(), "0.05");
        assert_eq!(Fen::from_fen(123_456).to_yuan_string(), "1234.56");
        assert_eq!(Fen::from_fen(-120).to_yuan_string(), "-1.20");
    }
}
