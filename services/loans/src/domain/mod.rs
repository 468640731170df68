//! Loan rules without I/O: states with their stored codes, refusals, and decisions that take
//! `today` (a Beijing date) and the facts. `api/` converts at the edge; `store/` persists.

pub mod interest;
pub mod line;
pub mod rules;

use jinfu_platform::coded;

coded! {
    /// A lender's standing in its province: suspended lenders take no new loans; exit is final.
    LenderStatus { Active = "active", Suspended = "suspended", Exited = "exited" }
}

coded! {
    /// The seeds' products (Guizhou, Jilin).
    ProductKind {
        /// 政采贷, 合同融资贷: against an award or a contract.
        ContractFinancing = "contract_financing",
        /// 履约贷: funds the performance security.
        Performance = "performance",
        /// 工程中标贷.
        EngineeringAward = "engineering_award",
        /// 药采贷 (revolving).
        Revolving = "revolving",
        /// 工程质量保证金贷.
        QualityRetention = "quality_retention",
        /// 信用流水贷: a line from the supplier's payment history.
        CreditFlow = "credit_flow",
    }
}

coded! {
    /// A loan's state; [`LoanStatus::number`] is the stored numeric code (Apache Fineract's).
    LoanStatus {
        Submitted = "submitted",
        Approved = "approved",
        Active = "active",
        Withdrawn = "withdrawn",
        Rejected = "rejected",
        /// Closed, obligations met.
        Closed = "closed",
        WrittenOff = "written_off",
        /// Repaid beyond what was owed; the surplus is the supplier's.
        Overpaid = "overpaid",
    }
}

impl LoanStatus {
    pub const fn number(self) -> i32 {
        match self {
            LoanStatus::Submitted => 100,
            LoanStatus::Approved => 200,
            LoanStatus::Active => 300,
            LoanStatus::Withdrawn => 400,
            LoanStatus::Rejected => 500,
            LoanStatus::Closed => 600,
            LoanStatus::WrittenOff => 601,
            LoanStatus::Overpaid => 700,
        }
    }

    pub fn from_number(number: i32) -> Option<LoanStatus> {
        Self::ALL.iter().copied().find(|status| status.number() == number)
    }

    /// Whether the loan holds (or may come to hold) the contract: one such loan per contract.
    pub fn is_open(self) -> bool {
        matches!(self, LoanStatus::Submitted | LoanStatus::Approved | LoanStatus::Active)
    }
}

/// A lender's officer as a token names it: `party` = `<lender_id>:<officer>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub lender_id: String,
    /// The whole party (`<lender_id>:<officer>`): who proposed, who approved.
    pub party: String,
}

impl Officer {
    pub fn parse(party: &str) -> Option<Officer> {
        let (lender, officer) = party.split_once(':')?;
        (is_code(lender) && !officer.trim().is_empty()).then(|| Officer { lender_id: lender.to_owned(), party: party.to_owned() })
    }
}

/// A lender or product code: 1-32 letters, digits, `-`, `_`.
pub fn is_code(text: &str) -> bool {
    (1..=32).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A loan or payment reference: 1-64 letters, digits, `-`, `_`, `.`.
pub fn is_reference(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The lock a loan holds on its contract's collection account.
pub fn lock_ref(centre_id: &str, loan_id: &str) -> String {
    format!("loan:{centre_id}:{loan_id}")
}

/// Why a request was refused: a stable code (what clients and docs/loans.md show) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("lender {lender_id} has exited; exit is final")]
    LenderExited { lender_id: String },
    #[error("lender {lender_id} is {status}: it takes no new loans")]
    LenderNotActive { lender_id: String, status: &'static str },
    #[error("lender {lender_id} has {open} open loans: it cannot exit before they are closed")]
    OpenLoans { lender_id: String, open: i64 },
    #[error("the caller is not the contract's supplier")]
    NotTheSupplier,
    #[error("contract {contract_id} is terminated")]
    ContractTerminated { contract_id: String },
    #[error("the product does not serve this contract: {why}")]
    ProductNotEligible { why: String },
    #[error("{requested_fen} fen is more than {max_fen} fen, the product's share of the contract amount")]
    AmountAboveRatio { requested_fen: i64, max_fen: i64 },
    #[error("loan {loan_id} of this contract is still open")]
    LoanOpen { loan_id: String },
    #[error("the loan is {status}: {what} is not possible")]
    WrongStatus { status: &'static str, what: &'static str },
    #[error("no terms are proposed yet")]
    NoTerms,
    #[error("the officer who proposed the terms may not approve them")]
    MakerIsChecker,
    #[error("the rate {rate_bp} bp is outside the product's {min_bp}-{max_bp} bp")]
    RateOutOfRange { rate_bp: u32, min_bp: u32, max_bp: u32 },
    #[error("{amount_fen} fen is more than the {limit_fen} fen requested or allowed")]
    AmountAboveLimit { amount_fen: i64, limit_fen: i64 },
    #[error("the loan has repayments: its disbursement cannot be undone")]
    RepaidAlready,
    #[error("the lender has not asked the purchaser to confirm the receivable")]
    ConfirmationNotRequested,
    #[error("the loan has not defaulted: it cannot be written off")]
    NotInDefault,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::LenderExited { .. } => "lender_exited",
            Refusal::LenderNotActive { .. } => "lender_not_active",
            Refusal::OpenLoans { .. } => "open_loans",
            Refusal::NotTheSupplier => "not_the_supplier",
            Refusal::ContractTerminated { .. } => "contract_terminated",
            Refusal::ProductNotEligible { .. } => "product_not_eligible",
            Refusal::AmountAboveRatio { .. } => "amount_above_ratio",
            Refusal::LoanOpen { .. } => "loan_open",
            Refusal::WrongStatus { .. } => "wrong_status",
            Refusal::NoTerms => "no_terms",
            Refusal::MakerIsChecker => "maker_is_checker",
            Refusal::RateOutOfRange { .. } => "rate_out_of_range",
            Refusal::AmountAboveLimit { .. } => "amount_above_limit",
            Refusal::RepaidAlready => "repaid_already",
            Refusal::ConfirmationNotRequested => "confirmation_not_requested",
            Refusal::NotInDefault => "not_in_default",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_round_trip_and_are_fineracts() {
        for status in LoanStatus::ALL {
            assert_eq!(LoanStatus::from_number(status.number()), Some(*status));
        }
        assert_eq!((LoanStatus::Submitted.number(), LoanStatus::Active.number(), LoanStatus::Overpaid.number()), (100, 300, 700));
    }

    #[test]
    fn an_officer_is_a_lender_code_and_a_name() {
        assert_eq!(Officer::parse("ICBC-GZ:wang").map(|o| o.lender_id), Some("ICBC-GZ".into()));
        assert_eq!(Officer::parse("ICBC-GZ"), None);
        assert_eq!(Officer::parse("ICBC GZ:wang"), None);
        assert_eq!(Officer::parse("ICBC-GZ: "), None);
    }
}
