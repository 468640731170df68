//! Disbursement (with the collection account locked through the contract service) and its
//! undoing, the purchaser's confirmation of the receivable, and misconduct reports.

use chrono::{Days, NaiveDate};
use jinfu_platform::auth::Role;
use jinfu_platform::fields::{invalid, printable, reason, required_text};
use jinfu_proto::contract::v1::CollectionAccount;
use jinfu_proto::loan::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::applications::{answer, change, loan_facts, officer};
use super::{failed, LoanApi};
use crate::domain::interest::Position;
use crate::domain::rules::expect;
use crate::domain::{is_reference, lock_ref, LoanStatus, Refusal};
use crate::events::{push, yuan};
use crate::peers::Proposal;
use crate::store::loans as store;
use crate::store::proposals;
use crate::sweeper::proposal_id;

pub(super) async fn disburse(api: &LoanApi, request: Request<pb::DisburseRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let lender_id = officer(&who)?.lender_id.clone();
    let body = request.get_ref();
    let disbursed_on = NaiveDate::parse_from_str(&body.disbursed_on, "%Y-%m-%d").map_err(|_| invalid("disbursed_on: a date YYYY-MM-DD is required"))?;
    if disbursed_on > api.today() {
        return Err(invalid("disbursed_on: not in the future"));
    }
    if !is_reference(&body.reference) {
        return Err(invalid("reference: 1-64 letters, digits, '-', '_' or '.'"));
    }
    let loan = api.visible(&who, &centre, &body.loan_id).await?;
    if loan.state() == LoanStatus::Active && loan.disbursement_reference.as_deref() == Some(body.reference.as_str()) {
        return answer(api, &loan).await;
    }
    expect(loan.state(), LoanStatus::Approved, "a disbursement")?;
    if disbursed_on < jinfu_ledger::beijing::date(loan.submitted_at) {
        return Err(invalid("disbursed_on: not before the application"));
    }
    let lender = api.lender(&lender_id).await?;
    let lock = lock_ref(centre.as_str(), &loan.loan_id);
    let account = CollectionAccount { bank_name: lender.bank_name.clone(), account_no: lender.account_no.clone(), account_name: lender.account_name.clone() };
    let why = format!("合同账户变更补充协议：贷款 {} 放款，回款账户变更为 {} 账户并锁定至贷款结清", loan.loan_id, lender.name);
    api.contracts.lock(centre.as_str(), &loan.contract_id, account, &lock, why).await?;
    let now = api.clock.now();
    let activated = change(api, &who, &centre, &body.loan_id, |loan| {
        expect(loan.state(), LoanStatus::Approved, "a disbursement")?;
        let amount = loan.amount_fen.ok_or(Refusal::NoTerms)?;
        let rate = loan.rate_bp.and_then(|rate| u32::try_from(rate).ok()).ok_or(Refusal::NoTerms)?;
        let maturity = disbursed_on.checked_add_days(Days::new(u64::try_from(loan.term_days).unwrap_or(0))).unwrap_or(disbursed_on);
        loan.set_state(LoanStatus::Active);
        loan.disbursed_on = Some(disbursed_on);
        loan.disbursed_at = Some(now);
        loan.disbursement_reference = Some(body.reference.clone());
        loan.maturity_on = Some(maturity);
        loan.set_position(Position { principal_fen: amount, rate_bp: rate, interest_accrued_fen: 0, interest_paid_fen: 0, accrued_to: disbursed_on });
        loan.lock_ref = Some(lock.clone());
        loan.unlocked_at = None;
        let data = json!({
            "amount": yuan(amount), "rate_bp": rate, "disbursed_on": disbursed_on, "maturity_on": maturity, "reference": body.reference,
            "lock_ref": lock, "account_no": lender.account_no, "days_to_cash": (disbursed_on - jinfu_ledger::beijing::date(loan.submitted_at)).num_days(),
        });
        Ok(Some(("loan.disbursed", data)))
    })
    .await;
    if activated.is_err() {
        // The loan changed meanwhile (withdrawn, undone): give the account back.
        let released = api.contracts.unlock(centre.as_str(), &loan.contract_id, &lock, format!("贷款 {} 未放款", loan.loan_id)).await;
        if let Err(status) = released {
            tracing::error!(loan_id = loan.loan_id, lock, error = %status.message(), "a lock taken for a disbursement that did not happen could not be lifted");
        }
    }
    activated
}

pub(super) async fn undo(api: &LoanApi, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let by = officer(&who)?.party.clone();
    let why = reason(&request.get_ref().reason)?.to_owned();
    let loan_id = request.get_ref().loan_id.clone();
    // First the loan, under its row lock (a repayment being applied waits for it, or went first
    // and is seen); then the account, keeping the lock's reference until the contract service
    // has lifted it (the sweeper retries when it cannot answer now).
    change(api, &who, &centre, &loan_id, |loan| {
        expect(loan.state(), LoanStatus::Active, "undoing a disbursement")?;
        if loan.interest_paid_fen > 0 || Some(loan.principal_outstanding_fen) != loan.amount_fen {
            return Err(Refusal::RepaidAlready.into());
        }
        loan.set_state(LoanStatus::Approved);
        loan.disbursed_on = None;
        loan.disbursed_at = None;
        loan.disbursement_reference = None;
        loan.maturity_on = None;
        loan.principal_outstanding_fen = 0;
        loan.interest_accrued_fen = 0;
        loan.interest_paid_fen = 0;
        loan.accrued_to = None;
        Ok(Some(("loan.disbursement_undone", json!({ "by": by, "reason": why }))))
    })
    .await?;
    let loan = api.visible(&who, &centre, &loan_id).await?;
    if let (Some(lock), None) = (&loan.lock_ref, loan.unlocked_at) {
        match api.contracts.unlock(centre.as_str(), &loan.contract_id, lock, format!("贷款 {loan_id} 放款撤销：{why}")).await {
            Ok(()) => store::mark_unlocked(&api.pool, centre.as_str(), &loan_id, api.clock.now()).await.map_err(failed("recording the unlock"))?,
            Err(status) => tracing::warn!(loan_id, error = %status.message(), "the lock will be lifted by the sweeper"),
        }
    }
    answer(api, &api.visible(&who, &centre, &loan_id).await?).await
}

pub(super) async fn write_off(api: &LoanApi, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let by = officer(&who)?.party.clone();
    let why = reason(&request.get_ref().reason)?.to_owned();
    let now = api.clock.now();
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        if loan.state() == LoanStatus::WrittenOff {
            return Ok(None);
        }
        expect(loan.state(), LoanStatus::Active, "a write-off")?;
        if loan.defaulted_at.is_none() {
            return Err(Refusal::NotInDefault.into());
        }
        loan.set_state(LoanStatus::WrittenOff);
        loan.closed_at = Some(now);
        let written_off = yuan(loan.principal_outstanding_fen);
        Ok(Some(("loan.written_off", json!({ "by": by, "reason": why, "principal_written_off": written_off }))))
    })
    .await
}

pub(super) async fn request_confirmation(api: &LoanApi, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    officer(&who)?;
    let today = api.today();
    let due = today.checked_add_days(Days::new(u64::try_from(api.confirmation_days).unwrap_or(30))).unwrap_or(today);
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        if loan.confirmation.is_some() {
            return Ok(None);
        }
        if !matches!(loan.state(), LoanStatus::Submitted | LoanStatus::Approved | LoanStatus::Active) {
            return Err(Refusal::WrongStatus { status: loan.state().code(), what: "a confirmation request" }.into());
        }
        loan.confirmation = Some("requested".into());
        loan.confirmation_due_on = Some(due);
        Ok(Some(("loan.confirmation_requested", json!({ "due_on": due, "amount": yuan(loan.amount_fen.unwrap_or(loan.requested_fen)) }))))
    })
    .await
}

pub(super) async fn confirm_receivable(api: &LoanApi, request: Request<pb::ConfirmReceivableRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Purchaser], &request.get_ref().centre_id).await?;
    let body = request.get_ref();
    let answer_given = if body.confirmed { "confirmed" } else { "disputed" };
    // A note is optional when confirming, required when disputing; either way 1-1000 characters.
    let why = if body.confirmed && body.reason.trim().is_empty() { String::new() } else { reason(&body.reason)?.to_owned() };
    change(api, &who, &centre, &body.loan_id, |loan| {
        match loan.confirmation.as_deref() {
            Some("requested") => {}
            Some(given) if given == answer_given => return Ok(None),
            _ => return Err(Refusal::ConfirmationNotRequested.into()),
        }
        loan.confirmation = Some(answer_given.into());
        let event = if body.confirmed { "loan.receivable_confirmed" } else { "loan.receivable_disputed" };
        Ok(Some((event, json!({ "due_on": loan.confirmation_due_on, "reason": why }))))
    })
    .await
}

pub(super) async fn report_misconduct(api: &LoanApi, request: Request<pb::ReportMisconductRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let by = officer(&who)?.party.clone();
    let body = request.get_ref();
    let behaviour = match body.kind.as_str() {
        "fraud" => "false_materials",
        "diverted_funds" => "loan_default",
        _ => return Err(invalid("kind: fraud or diverted_funds")),
    };
    if body.evidence_refs.is_empty() || body.evidence_refs.len() > 9 {
        return Err(invalid("evidence_refs: 1 to 9 references"));
    }
    for (index, evidence) in body.evidence_refs.iter().enumerate() {
        let field = format!("evidence_refs[{index}]");
        printable(&field, required_text(&field, evidence)?)?;
    }
    let summary = reason(&body.summary)?.to_owned();
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let loan = api.lock_visible(&mut transaction, &who, &centre, &body.loan_id).await?;
    if matches!(loan.state(), LoanStatus::Submitted | LoanStatus::Withdrawn | LoanStatus::Rejected) {
        return Err(Refusal::WrongStatus { status: loan.state().code(), what: "a misconduct report" }.into());
    }
    let mut evidence = vec![format!("loan:{}:{}", loan.centre_id, loan.loan_id)];
    evidence.extend(body.evidence_refs.iter().cloned());
    let proposal = Proposal {
        centre_id: loan.centre_id.clone(),
        proposal_id: proposal_id(&body.kind, &loan.loan_id),
        subject_uscc: loan.supplier_uscc.clone(),
        behaviour: behaviour.into(),
        evidence_refs: evidence,
        summary: summary.clone(),
    };
    proposals::insert(&mut transaction, &loan.loan_id, &proposal, now).await.map_err(failed("storing a proposal"))?;
    let mut data = loan_facts(&loan);
    data["kind"] = json!(body.kind);
    data["proposal_id"] = json!(proposal.proposal_id);
    data["reported_by"] = json!(by);
    data["summary"] = json!(summary);
    push(&mut transaction, &api.events_topic, centre.as_str(), &loan.loan_id, "loan.misconduct_reported", data).await.map_err(failed("writing an event"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    answer(api, &loan).await
}
