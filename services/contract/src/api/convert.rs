//! Conversions between the API's messages and the domain's types, in one place.

use jinfu_ledger::Fen;
use jinfu_platform::fields::{invalid, timestamp};
use jinfu_proto::contract::v1 as pb;
use rust_decimal::Decimal;
use tonic::Status;

use super::date_text;
use crate::domain::clocks::Clock;
use crate::domain::contracts::{AgreedRate, Milestone, MilestoneTerm, Security};
use crate::domain::{ContractStatus, InvoiceStatus, MilestoneKind, RateKind, Regime, Scale, SecurityForm};
use crate::facts::InvoiceFacts;
use crate::store::contracts::ContractRow;

pub fn regime(value: i32) -> Result<Regime, Status> {
    match pb::Regime::try_from(value) {
        Ok(pb::Regime::Procurement) => Ok(Regime::Procurement),
        Ok(pb::Regime::Engineering) => Ok(Regime::Engineering),
        _ => Err(invalid("regime must be PROCUREMENT or ENGINEERING")),
    }
}

fn regime_pb(code: &str) -> i32 {
    (match Regime::parse(code) {
        Some(Regime::Procurement) => pb::Regime::Procurement,
        Some(Regime::Engineering) => pb::Regime::Engineering,
        None => pb::Regime::Unspecified,
    }) as i32
}

pub fn scale(value: i32) -> Result<Scale, Status> {
    match pb::Scale::try_from(value) {
        Ok(pb::Scale::Micro) => Ok(Scale::Micro),
        Ok(pb::Scale::Small) => Ok(Scale::Small),
        Ok(pb::Scale::Medium) => Ok(Scale::Medium),
        Ok(pb::Scale::Large) => Ok(Scale::Large),
        _ => Err(invalid("supplier_scale must be MICRO, SMALL, MEDIUM or LARGE")),
    }
}

fn scale_pb(code: &str) -> i32 {
    (match Scale::parse(code) {
        Some(Scale::Micro) => pb::Scale::Micro,
        Some(Scale::Small) => pb::Scale::Small,
        Some(Scale::Medium) => pb::Scale::Medium,
        Some(Scale::Large) => pb::Scale::Large,
        None => pb::Scale::Unspecified,
    }) as i32
}

const KINDS: [(pb::MilestoneKind, MilestoneKind); 4] = [
    (pb::MilestoneKind::Prepayment, MilestoneKind::Prepayment),
    (pb::MilestoneKind::Delivery, MilestoneKind::Delivery),
    (pb::MilestoneKind::Acceptance, MilestoneKind::Acceptance),
    (pb::MilestoneKind::Settlement, MilestoneKind::Settlement),
];

pub fn milestone_term(index: usize, milestone: &pb::Milestone) -> Result<MilestoneTerm, Status> {
    let kind = pb::MilestoneKind::try_from(milestone.kind).ok().and_then(|kind| KINDS.iter().find(|(api, _)| *api == kind)).map(|(_, kind)| *kind);
    let kind = kind.ok_or_else(|| invalid(format!("milestones[{index}].kind must be PREPAYMENT, DELIVERY, ACCEPTANCE or SETTLEMENT")))?;
    Ok(MilestoneTerm { kind, percent_bp: milestone.percent_bp, period_days: milestone.period_days, working_days: milestone.working_days })
}

pub fn milestone_pb(milestone: &Milestone) -> pb::Milestone {
    let kind = KINDS.iter().find(|(_, kind)| *kind == milestone.term.kind).map_or(pb::MilestoneKind::Unspecified, |(api, _)| *api);
    pb::Milestone {
        kind: kind as i32,
        percent_bp: milestone.term.percent_bp,
        period_days: milestone.term.period_days,
        working_days: milestone.term.working_days,
        amount_fen: milestone.amount.fen(),
        sequence: milestone.sequence,
    }
}

const FORMS: [(pb::SecurityForm, SecurityForm); 3] =
    [(pb::SecurityForm::None, SecurityForm::None), (pb::SecurityForm::Cash, SecurityForm::Cash), (pb::SecurityForm::Guarantee, SecurityForm::Guarantee)];

/// A security; absent means none.
pub fn security(field: &str, value: Option<&pb::Security>) -> Result<Security, Status> {
    let Some(value) = value else { return Ok(Security { form: SecurityForm::None, amount: Fen::ZERO }) };
    let form = pb::SecurityForm::try_from(value.form).ok().and_then(|form| FORMS.iter().find(|(api, _)| *api == form)).map(|(_, form)| *form);
    let form = form.ok_or_else(|| invalid(format!("{field}.form must be NONE, CASH or GUARANTEE")))?;
    Ok(Security { form, amount: super::fen(&format!("{field}.amount_fen"), value.amount_fen)? })
}

fn security_pb(form: &str, amount_fen: i64) -> pb::Security {
    let form = SecurityForm::parse(form).and_then(|form| FORMS.iter().find(|(_, known)| *known == form)).map_or(pb::SecurityForm::Unspecified, |(api, _)| *api);
    pb::Security { form: form as i32, amount_fen }
}

/// The agreed overdue rate; absent means statutory. Percent text with at most 4 decimals.
pub fn overdue_rate(value: Option<&pb::OverdueRate>) -> Result<AgreedRate, Status> {
    let Some(value) = value else { return Ok(AgreedRate::STATUTORY) };
    let kind = match pb::overdue_rate::Kind::try_from(value.kind) {
        Ok(pb::overdue_rate::Kind::Statutory) => return Ok(AgreedRate::STATUTORY),
        Ok(pb::overdue_rate::Kind::Fixed) => RateKind::Fixed,
        Ok(pb::overdue_rate::Kind::LprPlus) => RateKind::LprPlus,
        _ => return Err(invalid("overdue_rate.kind must be STATUTORY, FIXED or LPR_PLUS")),
    };
    Ok(AgreedRate { kind, annual: Some(percent_rate("overdue_rate.annual_percent", &value.annual_percent)?) })
}

/// Percent text ("3.45") as a fraction (0.0345): 0 to 100 exclusive, at most 4 decimals.
pub fn percent_rate(field: &str, text: &str) -> Result<Decimal, Status> {
    let percent: Decimal = text.trim().parse().map_err(|_| invalid(format!("{field}: a decimal percentage such as \"3.45\" is required")))?;
    if percent < Decimal::ZERO || percent >= Decimal::from(100) || percent.scale() > 4 {
        return Err(invalid(format!("{field}: from 0 to below 100, at most 4 decimals")));
    }
    Ok(percent / Decimal::from(100))
}

pub fn overdue_rate_pb(rate: &AgreedRate) -> pb::OverdueRate {
    let kind = match rate.kind {
        RateKind::Statutory => pb::overdue_rate::Kind::Statutory,
        RateKind::Fixed => pb::overdue_rate::Kind::Fixed,
        RateKind::LprPlus => pb::overdue_rate::Kind::LprPlus,
    };
    let annual_percent = match rate.kind {
        RateKind::Statutory => String::new(),
        _ => rate.annual.map(|annual| (annual * Decimal::from(100)).normalize().to_string()).unwrap_or_default(),
    };
    pb::OverdueRate { kind: kind as i32, annual_percent }
}

fn status_pb(code: &str) -> i32 {
    (match ContractStatus::parse(code) {
        Some(ContractStatus::Pending) => pb::ContractStatus::Pending,
        Some(ContractStatus::Active) => pb::ContractStatus::Active,
        Some(ContractStatus::Terminated) => pb::ContractStatus::Terminated,
        None => pb::ContractStatus::Unspecified,
    }) as i32
}

pub fn invoice_status_pb(code: &str) -> i32 {
    (match InvoiceStatus::parse(code) {
        Some(InvoiceStatus::Received) => pb::InvoiceStatus::Received,
        Some(InvoiceStatus::UnderQuery) => pb::InvoiceStatus::UnderQuery,
        Some(InvoiceStatus::ConditionallyAccepted) => pb::InvoiceStatus::ConditionallyAccepted,
        Some(InvoiceStatus::Accepted) => pb::InvoiceStatus::Accepted,
        Some(InvoiceStatus::Paid) => pb::InvoiceStatus::Paid,
        None => pb::InvoiceStatus::Unspecified,
    }) as i32
}

pub fn invoice_type(value: i32) -> Result<&'static str, Status> {
    match pb::InvoiceType::try_from(value) {
        Ok(pb::InvoiceType::SpecialVat) => Ok("special_vat"),
        Ok(pb::InvoiceType::Ordinary) => Ok("ordinary"),
        _ => Err(invalid("type must be SPECIAL_VAT or ORDINARY")),
    }
}

fn invoice_type_pb(code: &str) -> i32 {
    (match code {
        "special_vat" => pb::InvoiceType::SpecialVat,
        "ordinary" => pb::InvoiceType::Ordinary,
        _ => pb::InvoiceType::Unspecified,
    }) as i32
}

/// A contract as the API shows it.
pub fn contract_pb(contract: &ContractRow, milestones: &[Milestone], clocks: &[Clock], amendments: Vec<String>, today: chrono::NaiveDate) -> pb::Contract {
    let clocks = clocks
        .iter()
        .map(|clock| pb::Clock {
            name: clock.name.clone(),
            due_on: date_text(clock.due_on),
            done_at: clock.done_at.map(timestamp),
            late: clock.late(today),
            party: clock.party_codes(),
        })
        .collect();
    pb::Contract {
        centre_id: contract.centre_id.clone(),
        contract_id: contract.contract_id.clone(),
        section_id: contract.section_id.clone(),
        regime: regime_pb(&contract.regime),
        purchaser_uscc: contract.purchaser_uscc.clone(),
        purchaser_name: contract.purchaser_name.clone(),
        supplier_uscc: contract.supplier_uscc.clone(),
        supplier_name: contract.supplier_name.clone(),
        supplier_scale: scale_pb(&contract.supplier_scale),
        amount_fen: contract.amount_fen,
        awarded_at: Some(timestamp(contract.awarded_at)),
        milestones: milestones.iter().map(milestone_pb).collect(),
        payment_days: u32::try_from(contract.payment_days).unwrap_or(0),
        collection_account: Some(pb::CollectionAccount {
            bank_name: contract.bank_name.clone(),
            account_no: contract.account_no.clone(),
            account_name: contract.account_name.clone(),
        }),
        performance_security: Some(security_pb(&contract.performance_form, contract.performance_fen)),
        quality_retention: Some(security_pb(&contract.quality_form, contract.quality_fen)),
        overdue_rate: Some(overdue_rate_pb(&contract.agreed_rate())),
        status: status_pb(&contract.status),
        canonical_text: contract.canonical_text.clone(),
        purchaser_signed_at: contract.purchaser_signed_at.map(timestamp),
        supplier_signed_at: contract.supplier_signed_at.map(timestamp),
        signed_at: contract.signed_at.map(timestamp),
        clocks,
        amendments,
        termination_reason: contract.termination_reason.clone().unwrap_or_default(),
        paid_on_termination_fen: contract.paid_on_termination_fen.unwrap_or(0),
        overdue_rate_in_force: Some(overdue_rate_pb(&contract.rate_in_force())),
        collection_account_locked_by: contract.account_locked_by.clone().unwrap_or_default(),
        // GetContract and the changes' answers fill it; lists leave it out.
        account_changes: Vec::new(),
    }
}

/// An invoice as the API shows it.
pub fn invoice_pb(facts: &InvoiceFacts) -> pb::Invoice {
    let invoice = &facts.invoice;
    let amounts = invoice.amounts();
    let interest = facts.interest.as_ref();
    pb::Invoice {
        centre_id: invoice.centre_id.clone(),
        invoice_no: invoice.invoice_no.clone(),
        contract_id: invoice.contract_id.clone(),
        milestone: u32::try_from(invoice.milestone).unwrap_or(0),
        r#type: invoice_type_pb(&invoice.invoice_type),
        issue_date: date_text(invoice.issue_date),
        amount_without_tax_fen: invoice.amount_without_tax_fen,
        tax_fen: invoice.tax_fen,
        amount_with_tax_fen: invoice.amount_with_tax_fen,
        buyer_uscc: invoice.buyer_uscc.clone(),
        seller_uscc: invoice.seller_uscc.clone(),
        received_at: Some(timestamp(invoice.received_at)),
        object_by: invoice.object_by.map(date_text).unwrap_or_default(),
        status: invoice_status_pb(&invoice.status),
        disputed_fen: invoice.disputed_fen,
        objection_reason: invoice.objection_reason.clone().unwrap_or_default(),
        payable_fen: amounts.payable().fen(),
        paid_fen: invoice.paid_fen,
        due_on: facts.due.map(|(day, _)| date_text(day)).unwrap_or_default(),
        due_by: match (facts.due, facts.calendar_missing) {
            (Some((_, by)), _) => by.code().to_owned(),
            (None, Some(_)) => "calendar_missing".to_owned(),
            (None, None) => String::new(),
        },
        overdue_interest_fen: interest.map_or(0, |interest| interest.fen.fen()),
        interest: interest
            .map(|interest| {
                interest
                    .segments
                    .iter()
                    .map(|segment| pb::InterestSegment {
                        from: date_text(segment.from),
                        to: date_text(segment.to),
                        days: segment.days,
                        unpaid_fen: segment.unpaid.fen(),
                        daily_rate: segment.daily_rate.normalize().to_string(),
                        exact_fen: segment.exact_fen.normalize().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
