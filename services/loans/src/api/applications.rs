//! Applications and the lender's decision: apply (with the contract service's facts and the
//! credit service's receipt), withdraw, the maker's terms, the checker's approval, rejection and
//! its undoing.

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{invalid, reason};
use jinfu_proto::loan::v1 as pb;
use serde_json::{json, Value};
use tonic::{Request, Response, Status};

use super::convert::loan_pb;
use super::{failed, not_found, LoanApi, Who};
use crate::domain::rules::{expect, may_apply, may_approve, may_propose, ProductTerms};
use crate::domain::{is_code, is_reference, LenderStatus, LoanStatus, Refusal};
use crate::events::{push, yuan};
use crate::store::lenders::{self as lender_store, ProductRow};
use crate::store::loans::{self as store, LoanRow};

pub(super) fn product_terms(product: &ProductRow) -> ProductTerms {
    let unsigned = |value: i32| u32::try_from(value).unwrap_or(0);
    ProductTerms {
        rate_min_bp: unsigned(product.rate_min_bp),
        rate_max_bp: unsigned(product.rate_max_bp),
        max_ratio_bp: unsigned(product.max_ratio_bp),
        sme_only: product.sme_only,
        centres: product.centres.clone(),
        regimes: product.regimes.clone(),
    }
}

/// The facts every loan event carries.
pub(super) fn loan_facts(loan: &LoanRow) -> Value {
    json!({
        "loan_id": loan.loan_id, "lender_id": loan.lender_id, "product_id": loan.product_id, "supplier_uscc": loan.supplier_uscc,
        "purchaser_uscc": loan.purchaser_uscc, "contract_id": loan.contract_id, "section_id": loan.section_id, "status": loan.status,
        "status_code": loan.status_code,
    })
}

/// The loan as the answer shows it, with its repayments and what is owed today.
pub(super) async fn answer(api: &LoanApi, loan: &LoanRow) -> Result<Response<pb::Loan>, Status> {
    let repayments = store::repayments(&api.pool, &loan.centre_id, &loan.loan_id).await.map_err(failed("reading repayments"))?;
    Ok(Response::new(loan_pb(loan, &repayments, api.today())))
}

/// Locks the loan `who` may see, lets `change` decide and change it (returning the event's type
/// and extra data, or `None` for a repeat that changes nothing), saves it with its event.
pub(super) async fn change<F>(api: &LoanApi, who: &Who, centre: &jinfu_ledger::ids::CentreCode, loan_id: &str, change: F) -> Result<Response<pb::Loan>, Status>
where
    F: FnOnce(&mut LoanRow) -> Result<Option<(&'static str, Value)>, Status>,
{
    let mut transaction = api.begin().await?;
    let mut loan = api.lock_visible(&mut transaction, who, centre, loan_id).await?;
    let Some((event_type, extra)) = change(&mut loan)? else {
        return answer(api, &loan).await;
    };
    store::save(&mut transaction, &loan).await.map_err(failed("saving a loan"))?;
    let mut data = loan_facts(&loan);
    if let (Value::Object(data), Value::Object(extra)) = (&mut data, extra) {
        data.extend(extra);
    }
    push(&mut transaction, &api.events_topic, centre.as_str(), loan_id, event_type, data).await.map_err(failed("writing an event"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    answer(api, &loan).await
}

/// The lender's officer, or PERMISSION_DENIED.
pub(super) fn officer(who: &Who) -> Result<&crate::domain::Officer, Status> {
    match who {
        Who::Lender(officer) => Ok(officer),
        _ => Err(Status::permission_denied("a lender's officer makes this call")),
    }
}

fn request_hash(body: &pb::ApplyRequest) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!("{}|{}|{}|{}", body.lender_id, body.product_id, body.contract_id, body.requested_fen).as_bytes()).to_vec()
}

pub(super) async fn apply(api: &LoanApi, request: Request<pb::ApplyRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Supplier], &request.get_ref().centre_id).await?;
    let Who::Supplier(supplier) = &who else { return Err(Status::permission_denied("the supplier applies")) };
    let body = request.get_ref();
    if !is_reference(&body.loan_id) || !is_reference(&body.contract_id) {
        return Err(invalid("loan_id, contract_id: 1-64 letters, digits, '-', '_' or '.'"));
    }
    if !is_code(&body.lender_id) || !is_code(&body.product_id) {
        return Err(invalid("lender_id, product_id: 1-32 letters, digits, '-' or '_'"));
    }
    if body.requested_fen <= 0 || body.requested_fen > jinfu_ledger::money::AMOUNT_FEN_MAX {
        return Err(invalid(format!("requested_fen: 1 to {} fen", jinfu_ledger::money::AMOUNT_FEN_MAX)));
    }
    let hash = request_hash(body);
    if let Some(existing) = store::get(&api.pool, centre.as_str(), &body.loan_id).await.map_err(failed("reading a loan"))? {
        if existing.supplier_uscc != *supplier || existing.request_hash != hash {
            return Err(Status::already_exists(format!("loan {} exists with other content", body.loan_id)));
        }
        return answer(api, &existing).await;
    }
    let lender = api.lender(&body.lender_id).await?.clone();
    let product = lender_store::product(&api.pool, &lender.lender_id, &body.product_id)
        .await
        .map_err(failed("reading a product"))?
        .filter(|_| lender.province_id == centre.province().as_str())
        .ok_or_else(|| Status::not_found(format!("product {}/{} not found", lender.lender_id, body.product_id)))?;
    let contract = api.contracts.get(centre.as_str(), &body.contract_id).await?;
    if contract.facts.supplier_uscc != *supplier {
        return Err(Status::not_found(format!("contract {} not found", body.contract_id)));
    }
    let lender_status = LenderStatus::parse(&lender.status).unwrap_or(LenderStatus::Exited);
    may_apply(supplier, lender_status, &lender.lender_id, &product_terms(&product), &contract.facts, body.requested_fen)?;
    let now = api.clock.now();
    let receipt = api.credit.check(centre.as_str(), supplier, &contract.facts.regime, now).await?;
    let mut loan = LoanRow {
        centre_id: centre.as_str().to_owned(),
        loan_id: body.loan_id.clone(),
        lender_id: lender.lender_id.clone(),
        product_id: product.product_id.clone(),
        supplier_uscc: supplier.clone(),
        purchaser_uscc: contract.purchaser_uscc.clone(),
        contract_id: contract.facts.contract_id.clone(),
        section_id: contract.section_id.clone(),
        basis: contract.basis.to_owned(),
        contract_amount_fen: contract.facts.amount_fen,
        requested_fen: body.requested_fen,
        status_code: 0,
        status: String::new(),
        request_hash: hash,
        rejection_code: None,
        rejection_reason: None,
        eligibility_receipt: receipt.text.clone(),
        eligibility_signature: receipt.signature.clone(),
        eligibility_key_ref: receipt.key_ref.clone(),
        amount_fen: None,
        rate_bp: None,
        term_days: product.term_days,
        grace_days: product.grace_days,
        terms_proposed_by: None,
        approved_by: None,
        submitted_at: now,
        approved_at: None,
        disbursed_on: None,
        disbursed_at: None,
        disbursement_reference: None,
        maturity_on: None,
        principal_outstanding_fen: 0,
        interest_paid_fen: 0,
        interest_accrued_fen: 0,
        accrued_to: None,
        delinquent_at: None,
        defaulted_at: None,
        confirmation: None,
        confirmation_due_on: None,
        confirmation_overdue_at: None,
        closed_at: None,
        lock_ref: None,
        unlocked_at: None,
    };
    if receipt.eligible {
        loan.set_state(LoanStatus::Submitted);
    } else {
        loan.set_state(LoanStatus::Rejected);
        loan.rejection_code = Some("supplier_barred".into());
        loan.rejection_reason = Some(format!("the supplier is debarred: {}", receipt.barring.join("; ")));
    }
    let mut transaction = api.begin().await?;
    if receipt.eligible {
        if let Some(open) = store::open_for_contract(&mut transaction, centre.as_str(), &contract.facts.contract_id).await.map_err(failed("reading loans"))? {
            return Err(Refusal::LoanOpen { loan_id: open }.into());
        }
    }
    store::insert(&mut transaction, &loan).await.map_err(|error| match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => {
            Status::already_exists(format!("loan {} exists, or the contract has an open loan", body.loan_id))
        }
        _ => failed("storing a loan")(error),
    })?;
    lender_store::grant(&mut *transaction, centre.as_str(), supplier, &lender.lender_id, now).await.map_err(failed("storing a consent"))?;
    let (event_type, mut data) = if receipt.eligible { ("loan.applied", loan_facts(&loan)) } else { ("loan.rejected", loan_facts(&loan)) };
    data["requested"] = json!(yuan(loan.requested_fen));
    data["basis"] = json!(loan.basis);
    data["rejection_code"] = json!(loan.rejection_code);
    data["eligibility_receipt"] = json!(loan.eligibility_receipt);
    push(&mut transaction, &api.events_topic, centre.as_str(), &loan.loan_id, event_type, data).await.map_err(failed("writing an event"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    answer(api, &loan).await
}

pub(super) async fn withdraw(api: &LoanApi, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Supplier], &request.get_ref().centre_id).await?;
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        match loan.state() {
            LoanStatus::Withdrawn => return Ok(None),
            LoanStatus::Submitted | LoanStatus::Approved => {}
            other => return Err(Refusal::WrongStatus { status: other.code(), what: "a withdrawal" }.into()),
        }
        loan.set_state(LoanStatus::Withdrawn);
        Ok(Some(("loan.withdrawn", json!({}))))
    })
    .await
}

pub(super) async fn propose_terms(api: &LoanApi, request: Request<pb::ProposeTermsRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let maker = officer(&who)?.party.clone();
    let body = request.get_ref();
    if body.amount_fen <= 0 {
        return Err(invalid("amount_fen: more than 0"));
    }
    let current = api.visible(&who, &centre, &body.loan_id).await?;
    let product = lender_store::product(&api.pool, &current.lender_id, &current.product_id)
        .await
        .map_err(failed("reading a product"))?
        .ok_or_else(|| not_found(&body.loan_id))?;
    let terms = product_terms(&product);
    let lender = api.lender(&current.lender_id).await?;
    change(api, &who, &centre, &body.loan_id, |loan| {
        if lender.status != LenderStatus::Active.code() {
            let status = LenderStatus::parse(&lender.status).unwrap_or(LenderStatus::Exited).code();
            return Err(Refusal::LenderNotActive { lender_id: lender.lender_id.clone(), status }.into());
        }
        may_propose(loan.state(), &terms, loan.requested_fen, body.amount_fen, body.rate_bp)?;
        loan.amount_fen = Some(body.amount_fen);
        loan.rate_bp = Some(i32::try_from(body.rate_bp).unwrap_or(i32::MAX));
        loan.terms_proposed_by = Some(maker);
        Ok(Some(("loan.terms_proposed", json!({ "amount": yuan(body.amount_fen), "rate_bp": body.rate_bp, "term_days": loan.term_days }))))
    })
    .await
}

pub(super) async fn approve(api: &LoanApi, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let checker = officer(&who)?.clone();
    let lender = api.lender(&checker.lender_id).await?;
    let lender_status = LenderStatus::parse(&lender.status).unwrap_or(LenderStatus::Exited);
    let now = api.clock.now();
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        if loan.state() == LoanStatus::Approved {
            return Ok(None);
        }
        may_approve(loan.state(), lender_status, loan.terms_proposed_by.as_deref(), &checker)?;
        loan.set_state(LoanStatus::Approved);
        loan.approved_by = Some(checker.party.clone());
        loan.approved_at = Some(now);
        let data = json!({
            "amount": yuan(loan.amount_fen.unwrap_or(0)), "rate_bp": loan.rate_bp, "term_days": loan.term_days, "maker": loan.terms_proposed_by,
            "checker": checker.party,
        });
        Ok(Some(("loan.approved", data)))
    })
    .await
}

pub(super) async fn reject(api: &LoanApi, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    officer(&who)?;
    let why = reason(&request.get_ref().reason)?.to_owned();
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        if loan.state() == LoanStatus::Rejected {
            return Ok(None);
        }
        expect(loan.state(), LoanStatus::Submitted, "a rejection")?;
        loan.set_state(LoanStatus::Rejected);
        loan.rejection_code = Some("lender_rejected".into());
        loan.rejection_reason = Some(why.clone());
        Ok(Some(("loan.rejected", json!({ "rejection_code": "lender_rejected", "reason": why }))))
    })
    .await
}

pub(super) async fn undo_approval(api: &LoanApi, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let by = officer(&who)?.party.clone();
    let why = reason(&request.get_ref().reason)?.to_owned();
    change(api, &who, &centre, &request.get_ref().loan_id, |loan| {
        expect(loan.state(), LoanStatus::Approved, "undoing an approval")?;
        loan.set_state(LoanStatus::Submitted);
        loan.amount_fen = None;
        loan.rate_bp = None;
        loan.terms_proposed_by = None;
        loan.approved_by = None;
        loan.approved_at = None;
        Ok(Some(("loan.approval_undone", json!({ "by": by, "reason": why }))))
    })
    .await
}
