//! The wire contract of an e-guarantee shared by the guarantee service, issuers' systems and the
//! bank simulator: the guarantee types and the terms an issuer signs, with their canonical text.
//! The canonical text is what signatures cover; it must stay byte-identical across versions.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::guarantee::v1 as pb;

/// What a guarantee secures: a bid (投标), the performance of a contract (履约) or the quality
/// of the work after acceptance (质量).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuaranteeType {
    Bid,
    Performance,
    Quality,
}

impl GuaranteeType {
    /// Every type, in the API's order.
    pub const ALL: [GuaranteeType; 3] = [GuaranteeType::Bid, GuaranteeType::Performance, GuaranteeType::Quality];

    /// The code stored, published and signed.
    pub const fn code(self) -> &'static str {
        match self {
            GuaranteeType::Bid => "bid",
            GuaranteeType::Performance => "performance",
            GuaranteeType::Quality => "quality",
        }
    }

    pub fn parse(code: &str) -> Option<GuaranteeType> {
        GuaranteeType::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// An API value that names no guarantee type (unspecified or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownGuaranteeType(pub i32);

impl std::fmt::Display for UnknownGuaranteeType {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("type must be BID, PERFORMANCE or QUALITY")
    }
}

impl std::error::Error for UnknownGuaranteeType {}

impl TryFrom<i32> for GuaranteeType {
    type Error = UnknownGuaranteeType;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        match pb::GuaranteeType::try_from(value) {
            Ok(pb::GuaranteeType::Bid) => Ok(GuaranteeType::Bid),
            Ok(pb::GuaranteeType::Performance) => Ok(GuaranteeType::Performance),
            Ok(pb::GuaranteeType::Quality) => Ok(GuaranteeType::Quality),
            _ => Err(UnknownGuaranteeType(value)),
        }
    }
}

impl From<GuaranteeType> for i32 {
    fn from(kind: GuaranteeType) -> i32 {
        let value = match kind {
            GuaranteeType::Bid => pb::GuaranteeType::Bid,
            GuaranteeType::Performance => pb::GuaranteeType::Performance,
            GuaranteeType::Quality => pb::GuaranteeType::Quality,
        };
        value as i32
    }
}

/// What an issuer signs when it issues a guarantee (see `IssueGuarantee` in guarantee.proto).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuaranteeTerms {
    pub guarantee_no: String,
    pub application_id: String,
    pub centre_id: String,
    pub section_id: String,
    pub kind: GuaranteeType,
    pub principal_uscc: String,
    pub beneficiary: String,
    pub amount_fen: i64,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub document_sha256: String,
}

impl GuaranteeTerms {
    /// The signed text: one field a line, in this order, joined by `\n` without a final newline.
    pub fn canonical_text(&self) -> String {
        [
            "jinfu-guarantee-v1".to_owned(),
            self.guarantee_no.clone(),
            self.application_id.clone(),
            self.centre_id.clone(),
            self.section_id.clone(),
            self.kind.code().to_owned(),
            self.principal_uscc.clone(),
            self.beneficiary.clone(),
            self.amount_fen.to_string(),
            self.valid_from.format("%Y-%m-%d").to_string(),
            self.valid_to.format("%Y-%m-%d").to_string(),
            self.document_sha256.clone(),
        ]
        .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_text_is_the_documented_lines() {
        let terms = GuaranteeTerms {
            guarantee_no: "BH2026-0001".into(),
            application_id: "0190-app".into(),
            centre_id: "520100".into(),
            section_id: "GY-2026-001".into(),
            kind: GuaranteeType::Bid,
            principal_uscc: "91520100MA6DKQ5X2L".into(),
            beneficiary: "贵阳市某采购人".into(),
            amount_fen: 5_000_000,
            valid_from: NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
            valid_to: NaiveDate::from_ymd_opt(2027, 2, 28).expect("date"),
            document_sha256: "ab".repeat(32),
        };
        assert_eq!(
            terms.canonical_text(),
            format!(
                "jinfu-guarantee-v1\nBH2026-0001\n0190-app\n520100\nGY-2026-001\nbid\n91520100MA6DKQ5X2L\n贵阳市某采购人\n5000000\n2026-11-23\n2027-02-28\n{}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn types_round_trip_through_their_code_and_the_api_number() {
        for kind in GuaranteeType::ALL {
            assert_eq!(GuaranteeType::parse(kind.code()), Some(kind));
            assert_eq!(GuaranteeType::try_from(i32::from(kind)), Ok(kind));
        }
        assert_eq!(GuaranteeType::try_from(pb::GuaranteeType::Unspecified as i32), Err(UnknownGuaranteeType(0)));
        assert_eq!(serde_json::to_string(&GuaranteeType::Performance).ok().as_deref(), Some("\"performance\""));
    }
}
