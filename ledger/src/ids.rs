//! Identifiers that carry check digits: the unified social credit code (统一社会信用代码,
//! GB 32100-2015), the centre's administrative-division code, and the virtual sub-account number.

use std::fmt;

/// The 31 characters of GB 32100-2015 (no I, O, Z, S, V), in value order.
const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("unified social credit code {0:?} must be 18 characters")]
    UsccLength(String),
    #[error("unified social credit code {0:?} contains a character outside GB 32100-2015")]
    UsccCharacter(String),
    #[error("unified social credit code {0:?} has a wrong check character")]
    UsccCheck(String),
    #[error("centre code {0:?} must be a six-digit administrative-division code")]
    CentreCode(String),
    #[error("virtual sub-account number {0:?} is malformed or its check digit is wrong")]
    SubAccount(String),
}

/// A validated unified social credit code, upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    pub fn parse(text: &str) -> Result<Uscc, IdError> {
        let code = text.trim().to_ascii_uppercase();
        if code.len() != 18 || !code.is_ascii() {
            return Err(IdError::UsccLength(text.to_owned()));
        }
        let values: Vec<u32> = code
            .bytes()
            .map(|byte| USCC_CHARSET.iter().position(|c| *c == byte).map(|p| p as u32))
            .collect::<Option<_>>()
            .ok_or_else(|| IdError::UsccCharacter(text.to_owned()))?;
        if uscc_check_value(&values[..17]) != values[17] {
            return Err(IdError::UsccCheck(text.to_owned()));
        }
        Ok(Uscc(code))
    }

    /// Whether `text` is a code exactly as the platform keeps them: valid and already upper-case.
    pub fn is_canonical(text: &str) -> bool {
        Uscc::parse(text).is_ok_and(|code| code.as_str() == text)
    }

    /// Completes 17 characters with their check character: used by the simulator and tests.
    pub fn with_check_character(first_seventeen: &str) -> Result<Uscc, IdError> {
        let values: Vec<u32> = first_seventeen
            .bytes()
            .map(|byte| USCC_CHARSET.iter().position(|c| *c == byte).map(|p| p as u32))
            .collect::<Option<_>>()
            .ok_or_else(|| IdError::UsccCharacter(first_seventeen.to_owned()))?;
        if values.len() != 17 {
            return Err(IdError::UsccLength(first_seventeen.to_owned()));
        }
        let check = USCC_CHARSET[uscc_check_value(&values) as usize] as char;
        Ok(Uscc(format!("{first_seventeen}{check}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn uscc_check_value(values: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(USCC_WEIGHTS).map(|(value, weight)| value * weight).sum();
    (31 - sum % 31) % 31
}

impl fmt::Display for Uscc {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A centre's six-digit administrative-division code, e.g. `520000` (Guizhou) or `520100`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CentreCode(String);

impl CentreCode {
    pub fn parse(text: &str) -> Result<CentreCode, IdError> {
        let valid = text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
        if valid {
            Ok(CentreCode(text.to_owned()))
        } else {
            Err(IdError::CentreCode(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The province this centre belongs to: the first two digits followed by `0000`.
    pub fn province(&self) -> CentreCode {
        CentreCode(format!("{}0000", &self.0[..2]))
    }

    pub fn is_province(&self) -> bool {
        self.0.ends_with("0000")
    }
}

impl fmt::Display for CentreCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Builds the virtual sub-account number for the `sequence`-th sub-account of a centre:
/// six digits of centre code, ten digits of sequence, one Luhn check digit (17 digits).
/// The check digit catches any single mistyped digit and most swaps of neighbours, which is
/// what a bidder copying the number into an online-banking form gets wrong.
pub fn sub_account_number(centre: &CentreCode, sequence: u64) -> String {
    assert!(sequence < 10_000_000_000, "sub-account sequence {sequence} exceeds ten digits");
    let body = format!("{}{:010}", centre.as_str(), sequence);
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

/// Checks the shape and the check digit of a virtual sub-account number.
pub fn validate_sub_account_number(text: &str) -> Result<(), IdError> {
    let well_formed = text.len() == 17 && text.bytes().all(|b| b.is_ascii_digit());
    if !well_formed || luhn_check_digit(&text[..16]) != text.as_bytes()[16] - b'0' {
        return Err(IdError::SubAccount(text.to_owned()));
    }
    Ok(())
}

fn luhn_check_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_unified_social_credit_code_validates() {
        // Codes printed on public business licences.
        for code in ["91110000802100433B", "91440300708461136T", "91330100799655058B"] {
            assert!(Uscc::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn a_changed_character_breaks_the_uscc_check() {
        assert!(matches!(Uscc::parse("91110000802100433C"), Err(IdError::UsccCheck(_))));
        assert!(matches!(Uscc::parse("9111000080210043"), Err(IdError::UsccLength(_))));
        assert!(matches!(Uscc::parse("91110000802100433I"), Err(IdError::UsccCharacter(_))));
    }

    #[test]
    fn a_completed_uscc_validates() {
        let code = Uscc::with_check_character("91520100MA6DJ0001").unwrap();
        assert!(Uscc::parse(code.as_str()).is_ok());
    }

    #[test]
    fn sub_account_numbers_carry_a_luhn_digit_that_catches_a_typo() {
        let centre = CentreCode::parse("520100").unwrap();
        let number = sub_account_number(&centre, 42);
        assert_eq!(number.len(), 17);
        assert!(validate_sub_account_number(&number).is_ok());
        let mut typo = number.clone().into_bytes();
        typo[10] = if typo[10] == b'9' { b'0' } else { typo[10] + 1 };
        assert!(validate_sub_account_number(std::str::from_utf8(&typo).unwrap()).is_err());
    }

    #[test]
    fn centre_codes_are_six_digits_and_know_their_province() {
        let city = CentreCode::parse("520100").unwrap();
        assert_eq!(city.province().as_str(), "520000");
        assert!(!city.is_province());
        assert!(CentreCode::parse("52010").is_err());
        assert!(CentreCode::parse("052010").is_err());
    }
}
