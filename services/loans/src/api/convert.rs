//! Rows to API messages.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_proto::loan::v1 as pb;

use crate::domain::interest::days_past_due;
use crate::store::facts::ContractFact;
use crate::store::lenders::{ConsentRow, LenderRow, ProductRow};
use crate::store::loans::{LoanRow, RepaymentRow};

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0) }
}

fn date(day: Option<NaiveDate>) -> String {
    day.map(|day| day.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

fn unsigned(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

pub fn lender_pb(row: &LenderRow) -> pb::Lender {
    pb::Lender {
        lender_id: row.lender_id.clone(),
        province_id: row.province_id.clone(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        bank_name: row.bank_name.clone(),
        account_no: row.account_no.clone(),
        account_name: row.account_name.clone(),
        status: row.status.clone(),
        status_reason: row.status_reason.clone(),
        onboarded_at: Some(timestamp(row.onboarded_at)),
    }
}

pub fn product_pb(row: &ProductRow, province_id: &str) -> pb::Product {
    pb::Product {
        lender_id: row.lender_id.clone(),
        product_id: row.product_id.clone(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        rate_min_bp: unsigned(row.rate_min_bp),
        rate_max_bp: unsigned(row.rate_max_bp),
        max_ratio_bp: unsigned(row.max_ratio_bp),
        term_days: unsigned(row.term_days),
        grace_days: unsigned(row.grace_days),
        sme_only: row.sme_only,
        centres: row.centres.clone(),
        regimes: row.regimes.clone(),
        contact: row.contact.clone(),
        province_id: province_id.to_owned(),
    }
}

pub fn consent_pb(row: &ConsentRow) -> pb::Consent {
    pb::Consent {
        centre_id: row.centre_id.clone(),
        supplier_uscc: row.supplier_uscc.clone(),
        lender_id: row.lender_id.clone(),
        granted_at: Some(timestamp(row.granted_at)),
        revoked_at: row.revoked_at.map(timestamp),
    }
}

pub fn opportunity_pb(row: &ContractFact) -> pb::Opportunity {
    pb::Opportunity {
        centre_id: row.centre_id.clone(),
        contract_id: row.contract_id.clone(),
        section_id: row.section_id.clone(),
        supplier_uscc: row.supplier_uscc.clone(),
        purchaser_uscc: row.purchaser_uscc.clone(),
        amount_fen: row.amount_fen,
        basis: if row.status == "active" { "contract".into() } else { "award".into() },
    }
}

fn repayment_pb(row: &RepaymentRow) -> pb::Repayment {
    pb::Repayment {
        payment_id: row.payment_id.clone(),
        paid_on: date(Some(row.paid_on)),
        amount_fen: row.amount_fen,
        interest_fen: row.interest_fen,
        principal_fen: row.principal_fen,
        surplus_fen: row.surplus_fen,
    }
}

/// The loan as of `today`: interest accrued to today, days past due.
pub fn loan_pb(loan: &LoanRow, repayments: &[RepaymentRow], today: NaiveDate) -> pb::Loan {
    let owed = loan.position().filter(|_| loan.status == "active").map(|position| position.accrued(today));
    let days = match (owed, loan.maturity_on) {
        (Some(owed), Some(maturity)) => days_past_due(maturity, owed.owed_fen(), today),
        _ => 0,
    };
    pb::Loan {
        centre_id: loan.centre_id.clone(),
        loan_id: loan.loan_id.clone(),
        lender_id: loan.lender_id.clone(),
        product_id: loan.product_id.clone(),
        supplier_uscc: loan.supplier_uscc.clone(),
        purchaser_uscc: loan.purchaser_uscc.clone(),
        contract_id: loan.contract_id.clone(),
        section_id: loan.section_id.clone(),
        basis: loan.basis.clone(),
        contract_amount_fen: loan.contract_amount_fen,
        requested_fen: loan.requested_fen,
        status: loan.status_code,
        rejection_code: loan.rejection_code.clone().unwrap_or_default(),
        rejection_reason: loan.rejection_reason.clone().unwrap_or_default(),
        eligibility_receipt: loan.eligibility_receipt.clone(),
        eligibility_signature: loan.eligibility_signature.clone(),
        eligibility_key_ref: loan.eligibility_key_ref.clone(),
        amount_fen: loan.amount_fen.unwrap_or(0),
        rate_bp: loan.rate_bp.map_or(0, unsigned),
        term_days: unsigned(loan.term_days),
        grace_days: unsigned(loan.grace_days),
        terms_proposed_by: loan.terms_proposed_by.clone().unwrap_or_default(),
        approved_by: loan.approved_by.clone().unwrap_or_default(),
        submitted_at: Some(timestamp(loan.submitted_at)),
        approved_at: loan.approved_at.map(timestamp),
        disbursed_on: date(loan.disbursed_on),
        disbursement_reference: loan.disbursement_reference.clone().unwrap_or_default(),
        maturity_on: date(loan.maturity_on),
        repayments: repayments.iter().map(repayment_pb).collect(),
        principal_outstanding_fen: loan.principal_outstanding_fen,
        interest_due_fen: owed.map_or(0, |owed| owed.interest_due_fen()),
        days_past_due: days,
        defaulted_at: loan.defaulted_at.map(timestamp),
        confirmation_due_on: date(loan.confirmation_due_on),
        confirmation: loan.confirmation.clone().unwrap_or_default(),
        closed_at: loan.closed_at.map(timestamp),
        lock_ref: loan.lock_ref.clone().filter(|_| loan.unlocked_at.is_none()).unwrap_or_default(),
    }
}
