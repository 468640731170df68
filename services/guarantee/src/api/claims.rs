//! Claims on guarantees: submitted by the centre's staff, decided and paid by the issuer.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, printable, reason, required_text, timestamp};
use jinfu_platform::outbox::OutboxRows;
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{centre, failed, GuaranteeApi, STAFF};
use crate::domain::claims::{self, ClaimAgainst};
use crate::domain::guarantees::after_rejected_claim;
use crate::domain::{sealing, ClaimState, GuaranteeState};
use crate::store::claims::{Claim, ClaimOnGuarantee, NewClaim};
use crate::store::{self, Tx};

fn claim_message(claim: &Claim) -> pb::Claim {
    pb::Claim {
        claim_id: claim.claim_id.to_string(),
        centre_id: claim.centre_id.clone(),
        guarantee_no: claim.guarantee_no.clone(),
        reason: claim.reason.code().to_owned(),
        evidence_ref: claim.evidence_ref.clone(),
        amount_fen: claim.amount_fen,
        status: claim.state.code().to_owned(),
        decision_reason: claim.decision_reason.clone().unwrap_or_default(),
        paid_fen: claim.paid_fen.unwrap_or_default(),
        payment_serial: claim.payment_serial.clone().unwrap_or_default(),
        submitted_at: Some(timestamp(claim.submitted_at)),
    }
}

pub(super) async fn submit(api: &GuaranteeApi, request: Request<pb::SubmitClaimRequest>) -> Result<Response<pb::Claim>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator, Role::Supervisor], &body.centre_id)?;
    let evidence = required_text("evidence_ref", &body.evidence_ref)?;
    printable("guarantee_no", &body.guarantee_no)?;
    let mut transaction = api.begin().await?;
    // Unknown, and a bid guarantee before opening, are answered alike: before opening, nobody
    // may learn that it exists.
    let unknown = || Status::not_found(format!("centre {} has no guarantee {:?}", body.centre_id, body.guarantee_no));
    let guarantee = store::guarantees::lock(&mut transaction, &body.centre_id, body.guarantee_no.trim())
        .await
        .map_err(failed("locking the guarantee"))?
        .ok_or_else(unknown)?;
    let sealed = api.open_guarantee(&guarantee)?;
    let section = api.sections.require(&body.centre_id, &sealed.terms.section_id).await?;
    if !sealing::claim_reveals_nothing(sealed.terms.kind, section.bids_opened) {
        return Err(unknown());
    }
    let against = ClaimAgainst {
        guarantee_no: &guarantee.guarantee_no,
        kind: sealed.terms.kind,
        status: api.status(&guarantee, &sealed, &section),
        guarantee_amount_fen: sealed.terms.amount_fen,
    };
    let claim_reason = claims::may_claim(against, &body.reason, body.amount_fen)?;
    let new = NewClaim {
        claim_id: Uuid::now_v7(),
        guarantee_no: &guarantee.guarantee_no,
        centre_id: &body.centre_id,
        reason: claim_reason,
        evidence_ref: evidence,
        amount_fen: body.amount_fen,
        submitted_by: format!("{}:{}", caller.role, caller.party),
    };
    let claim = store::claims::insert(&mut transaction, &new).await.map_err(failed("storing the claim"))?;
    store::guarantees::set_state(&mut transaction, &guarantee.guarantee_no, GuaranteeState::Claimed, claim_reason.code())
        .await
        .map_err(failed("claiming the guarantee"))?;
    let mut outbox = OutboxRows::default();
    api.event(
        &mut outbox,
        &sealed.terms.section_id,
        "guarantee.claimed",
        &body.centre_id,
        serde_json::json!({
            "claim_id": claim.claim_id, "guarantee_no": guarantee.guarantee_no, "section_id": sealed.terms.section_id, "reason": claim_reason.code(),
            "evidence_ref": evidence, "amount_fen": body.amount_fen, "issuer_code": guarantee.issuer_code,
        }),
    );
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(claim_message(&claim)))
}

pub(super) async fn decide(api: &GuaranteeApi, request: Request<pb::DecideClaimRequest>) -> Result<Response<pb::Claim>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let reason = reason(&body.reason)?;
    let mut transaction = api.begin().await?;
    let locked = issuer_claim(&mut transaction, &caller, &body.centre_id, &body.claim_id, ClaimState::Pending).await?;
    let (number, section_id) = (&locked.claim.guarantee_no, &locked.section_id);
    let state = ClaimState::decided(body.accept);
    let claim = store::claims::decide(&mut transaction, locked.claim.claim_id, state, reason).await.map_err(failed("deciding the claim"))?;
    let mut released = false;
    if state == ClaimState::Rejected {
        let ended = store::guarantees::tender_end(&mut transaction, number).await.map_err(failed("reading the tender"))?;
        let (guarantee_state, state_reason) = after_rejected_claim(ended.as_deref());
        released = guarantee_state == GuaranteeState::Released;
        store::guarantees::set_state(&mut transaction, number, guarantee_state, &state_reason).await.map_err(failed("updating the guarantee"))?;
    }
    let mut outbox = OutboxRows::default();
    if released {
        api.event(
            &mut outbox,
            section_id,
            "guarantee.released",
            &body.centre_id,
            serde_json::json!({
                "guarantee_no": number, "section_id": section_id, "reason": "claim rejected after the tender ended", "trading_event_id": "",
            }),
        );
    }
    api.event(
        &mut outbox,
        section_id,
        &format!("guarantee.claim_{}", state.code()),
        &body.centre_id,
        serde_json::json!({
            "claim_id": claim.claim_id, "guarantee_no": number, "section_id": section_id, "reason": reason,
        }),
    );
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(claim_message(&claim)))
}

pub(super) async fn record_payment(api: &GuaranteeApi, request: Request<pb::RecordClaimPaymentRequest>) -> Result<Response<pb::Claim>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let serial = required_text("payment_serial", &body.payment_serial)?;
    let mut transaction = api.begin().await?;
    let locked = issuer_claim(&mut transaction, &caller, &body.centre_id, &body.claim_id, ClaimState::Accepted).await?;
    claims::payment_fits(body.paid_fen, locked.claim.amount_fen)?;
    let number = &locked.claim.guarantee_no;
    let claim = store::claims::pay(&mut transaction, locked.claim.claim_id, body.paid_fen, serial).await.map_err(failed("paying the claim"))?;
    store::guarantees::set_state(&mut transaction, number, GuaranteeState::Paid, "claim paid").await.map_err(failed("updating the guarantee"))?;
    let mut outbox = OutboxRows::default();
    api.event(
        &mut outbox,
        &locked.section_id,
        "guarantee.claim_paid",
        &body.centre_id,
        serde_json::json!({
            "claim_id": claim.claim_id, "guarantee_no": number, "section_id": locked.section_id,
            "paid_fen": body.paid_fen, "payment_serial": serial,
        }),
    );
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(claim_message(&claim)))
}

pub(super) async fn list(api: &GuaranteeApi, request: Request<pb::ListClaimsRequest>) -> Result<Response<pb::ListClaimsResponse>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    // An issuer of the province sees the claims on its own guarantees; staff every claim.
    let issuer = match caller.role {
        Role::Issuer if caller.centre.province() == centre(&body.centre_id)?.province() => Some(caller.party.as_str()),
        _ => {
            caller.authorize(STAFF, &body.centre_id)?;
            None
        }
    };
    printable("guarantee_no", &body.guarantee_no)?;
    let claims = store::claims::list(&api.pool, &body.centre_id, body.guarantee_no.trim(), issuer).await.map_err(failed("listing claims"))?;
    Ok(Response::new(pb::ListClaimsResponse { claims: claims.iter().map(claim_message).collect() }))
}

/// A claim on one of the calling issuer's guarantees, locked, in `expected`; with the
/// guarantee's section. NOT_FOUND for another issuer's.
async fn issuer_claim(transaction: &mut Tx, caller: &Caller, centre_id: &str, claim_id: &str, expected: ClaimState) -> Result<ClaimOnGuarantee, Status> {
    if caller.role != Role::Issuer {
        return Err(Status::permission_denied("only the guarantee's issuer decides and pays claims"));
    }
    let id = Uuid::parse_str(claim_id).map_err(|_| invalid("claim_id is not a UUID"))?;
    let locked = store::claims::lock(transaction, id, centre_id)
        .await
        .map_err(failed("locking the claim"))?
        .filter(|locked| locked.issuer_code == caller.party && locked.province_id == caller.centre.province().as_str())
        .ok_or_else(|| Status::not_found(format!("issuer {} has no claim {id}", caller.party)))?;
    claims::must_be(&id.to_string(), locked.claim.state, expected)?;
    Ok(locked)
}
