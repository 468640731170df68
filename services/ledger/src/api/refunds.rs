//! Refunds: listing them, and corrections of failed refunds (submitted by the bidder,
//! verified by an operator, approved by a supervisor who is not the verifier).

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{identifier, invalid, printable};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, LedgerApi, Reply, STAFF};
use crate::domain::refunds::{check_step, may_submit, CorrectionStep, Party, StepRefused};
use crate::store::refunds::{self as store, Correction};

pub(super) async fn submit_refund_correction(api: &LedgerApi, request: Request<pb::SubmitRefundCorrectionRequest>) -> Reply<pb::RefundCorrection> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Bidder], &body.centre_id)?;
    if caller.party != body.bidder_uscc {
        return Err(Status::permission_denied("a bidder may correct only its own refund"));
    }
    printable("section_id", &body.section_id)?;
    let payee_account = identifier("payee_account", &body.payee_account)?;
    let payee_name = identifier("payee_name", &body.payee_name)?;
    let (refund_id, status) = store::refund_of(&api.pool, &body.centre_id, &body.section_id, &body.bidder_uscc)
        .await
        .map_err(database)?
        .ok_or_else(|| Status::not_found("no refund for this bidder and section"))?;
    may_submit(&status).map_err(Status::failed_precondition)?;
    let correction = store::insert_correction(&api.pool, refund_id, payee_account, payee_name, &caller.party).await.map_err(database)?;
    Ok(Response::new(correction_message(correction)))
}

pub(super) async fn verify_refund_correction(api: &LedgerApi, request: Request<pb::RefundCorrectionDecision>) -> Reply<pb::RefundCorrection> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator], &body.centre_id)?;
    decide(api, &body, CorrectionStep::Verify, &caller.party).await
}

pub(super) async fn approve_refund_correction(api: &LedgerApi, request: Request<pb::RefundCorrectionDecision>) -> Reply<pb::RefundCorrection> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Supervisor], &body.centre_id)?;
    decide(api, &body, CorrectionStep::Approve, &caller.party).await
}

pub(super) async fn list_refunds(api: &LedgerApi, request: Request<pb::ListRefundsRequest>) -> Reply<pb::ListRefundsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    printable("status", &body.status)?;
    let rows = store::list(&api.pool, &body.centre_id, &body.status).await.map_err(database)?;
    let refunds = rows
        .into_iter()
        .map(|(section_id, bidder_uscc, trigger, due_on, status)| pb::Refund {
            section_id,
            bidder_uscc,
            trigger,
            due_on: due_on.map(|day| day.to_string()).unwrap_or_default(),
            status,
        })
        .collect();
    Ok(Response::new(pb::ListRefundsResponse { refunds }))
}

/// Takes `step` on the correction by `party`, in one transaction.
async fn decide(api: &LedgerApi, body: &pb::RefundCorrectionDecision, step: CorrectionStep, party: &str) -> Reply<pb::RefundCorrection> {
    let id = uuid::Uuid::parse_str(&body.correction_id).map_err(|_| invalid("correction_id is not a UUID"))?;
    let mut transaction = api.pool.begin().await.map_err(database)?;
    let (state, refund_id) = store::lock_correction(&mut transaction, id, &body.centre_id)
        .await
        .map_err(database)?
        .ok_or_else(|| Status::not_found("no such correction in this centre"))?;
    check_step(step, &state, &Party::new(party)).map_err(|refusal| match refusal {
        StepRefused::SamePerson => Status::permission_denied(refusal.to_string()),
        StepRefused::WrongStatus { .. } | StepRefused::RefundNotFailed => Status::failed_precondition(refusal.to_string()),
    })?;
    let correction = store::record_step(&mut transaction, id, refund_id, step, party).await.map_err(database)?;
    transaction.commit().await.map_err(database)?;
    Ok(Response::new(correction_message(correction)))
}

fn correction_message(correction: Correction) -> pb::RefundCorrection {
    pb::RefundCorrection {
        correction_id: correction.correction_id.to_string(),
        section_id: correction.section_id,
        bidder_uscc: correction.bidder_uscc,
        payee_account: correction.payee_account,
        payee_name: correction.payee_name,
        status: correction.status,
        submitted_by: correction.submitted_by,
        verified_by: correction.verified_by.unwrap_or_default(),
        approved_by: correction.approved_by.unwrap_or_default(),
    }
}
