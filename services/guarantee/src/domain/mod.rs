//! Guarantee rules without I/O: plain types and decisions that take `now` and the facts. The
//! domain never sees an API (`pb::`) type; `api/` converts at the edge and `store/` persists.
//!
//! The terms an issuer signs and the guarantee types are the wire contract shared with issuers
//! and the bank simulator; they live in `jinfu_proto::guarantee_terms` and are re-exported here.

pub mod applications;
pub mod claims;
pub mod figures;
pub mod guarantees;
pub mod issuers;
pub mod products;
pub mod sealing;
pub mod tender_events;

use chrono::NaiveDate;
use jinfu_ledger::Fen;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

pub use jinfu_proto::guarantee_terms::{GuaranteeTerms, GuaranteeType, UnknownGuaranteeType};

pub use self::applications::{ApplicationState, SealedApplication};
pub use self::claims::{ClaimReason, ClaimState};
pub use self::guarantees::{GuaranteeState, GuaranteeStatus, SealedGuarantee};
pub use self::issuers::{IssuerKind, IssuerState};
pub use self::sealing::{Section, Viewer};

/// The premium: amount × rate, rounded half-up to the fen, and at least the minimum premium.
pub fn premium(amount: Fen, rate: Decimal, minimum: Fen) -> Option<Fen> {
    let raw = Decimal::from(amount.fen()).checked_mul(rate)?;
    let rounded = raw.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero).to_i64()?;
    Some(Fen::from_fen(rounded.max(minimum.fen())))
}

/// A premium rate as products declare it: a decimal fraction in [0, 0.1].
pub fn parse_rate(text: &str) -> Option<Decimal> {
    let rate: Decimal = text.trim().parse().ok()?;
    (rate >= Decimal::ZERO && rate <= Decimal::new(1, 1) && rate.scale() <= 8).then_some(rate)
}

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// 64 lower-case hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// A guarantee number as issuers print them: 6–64 letters, digits, `-` or `/`.
pub fn is_guarantee_no(text: &str) -> bool {
    (6..=64).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premium_is_rate_times_amount_rounded_half_up_with_a_floor() {
        let rate = parse_rate("0.0015").expect("rate");
        // 50,000.00 yuan × 0.15% = 75.00 yuan.
        assert_eq!(premium(Fen::from_fen(5_000_000), rate, Fen::from_fen(0)), Some(Fen::from_fen(7_500)));
        // 333.33 yuan × 0.15% = 0.499995 yuan → 50 fen (half-up of 49.9995 fen).
        assert_eq!(premium(Fen::from_fen(33_333), rate, Fen::ZERO), Some(Fen::from_fen(50)));
        // The minimum premium applies below it.
        assert_eq!(premium(Fen::from_fen(100_000), rate, Fen::from_fen(20_000)), Some(Fen::from_fen(20_000)));
    }

    #[test]
    fn rates_outside_zero_to_ten_percent_are_refused() {
        assert!(parse_rate("0.1").is_some());
        assert!(parse_rate("0.1000001").is_none());
        assert!(parse_rate("-0.001").is_none());
        assert!(parse_rate("1.5%").is_none());
    }

    /// Issuers sign this text: it must stay byte-identical now that it lives in jinfu-proto.
    #[test]
    fn the_re_exported_terms_keep_the_signed_text_byte_identical() {
        let terms = GuaranteeTerms {
            guarantee_no: "BH2026-0001".into(),
            application_id: "0190-app".into(),
            centre_id: "520100".into(),
            section_id: "GY-2026-001".into(),
            kind: GuaranteeType::Quality,
            principal_uscc: "91520100MA6DKQ5X2L".into(),
            beneficiary: "贵阳市某采购人".into(),
            amount_fen: 1_200_000,
            valid_from: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
            valid_to: NaiveDate::from_ymd_opt(2027, 2, 28).expect("date"),
            document_sha256: "0f".repeat(32),
        };
        assert_eq!(
            terms.canonical_text(),
            format!("jinfu-guarantee-v1\nBH2026-0001\n0190-app\n520100\nGY-2026-001\nquality\n91520100MA6DKQ5X2L\n贵阳市某采购人\n1200000\n2026-11-23\n2027-02-28\n{}", "0f".repeat(32))
        );
        // Sealed guarantees store the type by its code.
        assert_eq!(serde_json::to_string(&GuaranteeType::Quality).ok().as_deref(), Some("\"quality\""));
    }
}
