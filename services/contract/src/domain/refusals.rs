//! Why a request was refused: a stable code (what clients, dead letters and docs/contracts.md
//! show) and a sentence. The API answers FAILED_PRECONDITION with `<code>: <sentence>`.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the award of section {section} named another supplier")]
    NotTheWinner { section: String },
    #[error("no award was seen for section {section}: awarded_at is required")]
    AwardUnknown { section: String },
    #[error("the award of section {section} is closed ({reason}): no contract can be drafted from it")]
    AwardClosed { section: String, reason: String },
    #[error("the contract is {status}: {what} is not possible")]
    WrongStatus { status: &'static str, what: &'static str },
    #[error("key {key_ref} is not registered for {party}")]
    UnknownKey { party: String, key_ref: String },
    #[error("the signature does not verify against key {key_ref} over the contract's canonical text")]
    BadSignature { key_ref: String },
    #[error("the contract is not signed yet")]
    NotSigned,
    #[error("milestone {milestone} does not exist")]
    NoSuchMilestone { milestone: u32 },
    #[error("milestone {milestone} is a prepayment: nothing is delivered for it")]
    NotDeliverable { milestone: u32 },
    #[error("acceptance of milestone {milestone} was not requested")]
    AcceptanceNotRequested { milestone: u32 },
    #[error("acceptance of milestone {milestone} is recorded already")]
    AcceptanceRecorded { milestone: u32 },
    #[error("a settlement milestone that passed needs settlement_amount_fen > 0")]
    SettlementAmountRequired,
    #[error("invoices of milestone {milestone} would total {total_fen} fen, more than its {limit_fen} fen")]
    InvoiceExceedsMilestone { milestone: u32, total_fen: i64, limit_fen: i64 },
    #[error("the invoice's buyer and seller must be the contract's purchaser and supplier")]
    InvoiceParties,
    #[error("the objection window closed on {object_by}")]
    ObjectionWindowClosed { object_by: NaiveDate },
    #[error("the invoice is {status}: {what} is not possible")]
    InvoiceNotOpen { status: &'static str, what: &'static str },
    #[error("invoice {invoice_no} has {payable_fen} fen still payable; {amount_fen} fen cannot be allocated to it")]
    Overpaid { invoice_no: String, payable_fen: i64, amount_fen: i64 },
    #[error("invoice {invoice_no} is not an invoice of this contract")]
    ForeignInvoice { invoice_no: String },
    #[error("{amount_fen} fen is less than the {invoiced_fen} fen invoiced under the contract")]
    AmountBelowInvoiced { amount_fen: i64, invoiced_fen: i64 },
    #[error("another rate ({rate}) is recorded for {day}")]
    LprConflict { day: NaiveDate, rate: String },
    #[error("the collection account is locked by {holder} (a loan against the contract) until that loan is closed")]
    CollectionAccountLocked { holder: String },
    #[error("the collection account is locked by {holder}, not by the lock named")]
    NotTheLockHolder { holder: String },
}

impl Refusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotTheWinner { .. } => "not_the_winner",
            Refusal::AwardUnknown { .. } => "award_unknown",
            Refusal::AwardClosed { .. } => "award_closed",
            Refusal::WrongStatus { .. } => "wrong_status",
            Refusal::UnknownKey { .. } => "unknown_key",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::NotSigned => "not_signed",
            Refusal::NoSuchMilestone { .. } => "no_such_milestone",
            Refusal::NotDeliverable { .. } => "not_deliverable",
            Refusal::AcceptanceNotRequested { .. } => "acceptance_not_requested",
            Refusal::AcceptanceRecorded { .. } => "acceptance_recorded",
            Refusal::SettlementAmountRequired => "settlement_amount_required",
            Refusal::InvoiceExceedsMilestone { .. } => "invoice_exceeds_milestone",
            Refusal::InvoiceParties => "invoice_parties",
            Refusal::ObjectionWindowClosed { .. } => "objection_window_closed",
            Refusal::InvoiceNotOpen { .. } => "invoice_not_open",
            Refusal::Overpaid { .. } => "overpaid",
            Refusal::ForeignInvoice { .. } => "foreign_invoice",
            Refusal::AmountBelowInvoiced { .. } => "amount_below_invoiced",
            Refusal::LprConflict { .. } => "lpr_conflict",
            Refusal::CollectionAccountLocked { .. } => "collection_account_locked",
            Refusal::NotTheLockHolder { .. } => "not_the_lock_holder",
        }
    }
}
