//! Proposals: facts from other services and staff, confirmed or dismissed by a supervisor who
//! did not propose them.

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{self, from_timestamp, invalid, printable, reason, required_text};
use jinfu_proto::credit::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::convert::{self, proposal_pb, record_pb};
use super::{failed, CreditApi, STAFF};
use crate::domain::{is_uscc, may_decide, Debarment, ProposalStatus, Refusal};
use crate::store::proposals::{self as store, ProposalRow};
use crate::store::records::{self, RecordRow};

fn is_proposal_id(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

pub(super) async fn propose(api: &CreditApi, request: Request<pb::ProposeRequest>) -> Result<Response<pb::Proposal>, Status> {
    let (caller, centre) = CreditApi::caller(&request, &[Role::Operator, Role::Admin], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    if !is_proposal_id(&body.proposal_id) {
        return Err(invalid("proposal_id: 1-64 letters, digits, '-', '_', '.', ':'"));
    }
    if !is_uscc(&body.subject_uscc) {
        return Err(invalid("subject_uscc: a unified social credit code (18 characters, upper-case, correct check character)"));
    }
    let behaviour = convert::behaviour(body.behaviour)?;
    let regime = convert::regime(body.regime)?;
    if !is_proposal_id(&body.source) {
        return Err(invalid("source: 1-64 letters, digits, '-', '_', '.', ':' (e.g. ledger:collusion_lead)"));
    }
    let source = body.source.as_str();
    if body.evidence_refs.is_empty() || body.evidence_refs.len() > 10 {
        return Err(invalid("evidence_refs: 1 to 10 references"));
    }
    for (index, evidence) in body.evidence_refs.iter().enumerate() {
        printable(&format!("evidence_refs[{index}]"), required_text(&format!("evidence_refs[{index}]"), evidence)?)?;
    }
    let summary = reason(&body.summary)?;
    let hash = crate::domain::proposal_hash(&body.subject_uscc, behaviour, source, &body.evidence_refs, summary, regime);
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    if let Some(existing) = store::lock(&mut transaction, centre.as_str(), &body.proposal_id).await.map_err(failed("reading a proposal"))? {
        if existing.content_hash != hash {
            return Err(Status::already_exists(format!("proposal {} exists with other content", body.proposal_id)));
        }
        return Ok(Response::new(proposal_pb(&existing)));
    }
    let row = ProposalRow {
        centre_id: centre.to_string(),
        proposal_id: body.proposal_id.clone(),
        subject_uscc: body.subject_uscc.clone(),
        behaviour: behaviour.code().into(),
        source: source.into(),
        evidence_refs: body.evidence_refs.clone(),
        summary: summary.into(),
        regime: regime.map(|regime| regime.code().into()),
        proposed_by: caller.party.clone(),
        proposed_at: now,
        content_hash: hash,
        status: ProposalStatus::Pending.code().into(),
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        record_id: None,
    };
    if !store::insert_new(&mut transaction, &row).await.map_err(failed("storing a proposal"))? {
        // Stored meanwhile by a concurrent call or a consumer: ask again for the answer.
        return Err(Status::already_exists(format!("proposal {} was stored meanwhile; repeat the call", body.proposal_id)));
    }
    let data = json!({ "proposal_id": row.proposal_id, "subject_uscc": row.subject_uscc, "behaviour": row.behaviour, "source": row.source });
    crate::events::push(&mut transaction, &api.events_topic, centre.as_str(), &row.subject_uscc, "credit.proposal_received", data).await?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(proposal_pb(&row)))
}

/// The pending proposal a supervisor (not its proposer) decides.
async fn pending(transaction: &mut crate::store::Tx, centre: &str, proposal_id: &str, decider: &str) -> Result<ProposalRow, Status> {
    let row = store::lock(transaction, centre, proposal_id).await.map_err(failed("reading a proposal"))?;
    let row = row.ok_or_else(|| Status::not_found(format!("proposal {} not found", fields::clip(proposal_id, 64))))?;
    may_decide(&row.proposed_by, decider)?;
    if row.status != ProposalStatus::Pending.code() {
        return Err(Refusal::NotPending { status: ProposalStatus::parse(&row.status).map_or("decided", ProposalStatus::code) }.into());
    }
    Ok(row)
}

pub(super) async fn confirm(api: &CreditApi, request: Request<pb::ConfirmRequest>) -> Result<Response<pb::Record>, Status> {
    let (caller, centre) = CreditApi::caller(&request, &[Role::Supervisor], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let legal_basis = printable("legal_basis", required_text("legal_basis", &body.legal_basis)?)?;
    let authority = printable("authority", required_text("authority", &body.authority)?)?;
    let decided_on = chrono::NaiveDate::parse_from_str(&body.decided_on, "%Y-%m-%d").map_err(|_| invalid("decided_on: a date YYYY-MM-DD is required"))?;
    if !(0..=jinfu_ledger::money::AMOUNT_FEN_MAX).contains(&body.fine_fen) {
        return Err(invalid("fine_fen: 0 or more"));
    }
    if body.province_wide && !centre.is_province() {
        return Err(Refusal::NotProvince.into());
    }
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let proposal = pending(&mut transaction, centre.as_str(), &body.proposal_id, &caller.party).await?;
    let behaviour = crate::domain::Behaviour::parse(&proposal.behaviour).ok_or_else(|| Status::internal("a stored behaviour is unknown"))?;
    let regime = proposal.regime.as_deref().and_then(crate::domain::Regime::parse);
    let from = match body.debarred_from {
        Some(_) => from_timestamp("debarred_from", body.debarred_from)?,
        None => jinfu_ledger::beijing::start_of(decided_on),
    };
    let ban = Debarment::new(behaviour, regime, body.debarment_months, from)?;
    let row = RecordRow {
        record_id: uuid::Uuid::now_v7().to_string(),
        centre_id: centre.to_string(),
        subject_uscc: proposal.subject_uscc.clone(),
        behaviour: proposal.behaviour.clone(),
        kind: if ban.is_some() { "blacklist" } else { "violation" }.into(),
        legal_basis: legal_basis.into(),
        authority: authority.into(),
        decided_on,
        evidence_refs: proposal.evidence_refs.clone(),
        fine_fen: body.fine_fen,
        debarred_from: ban.map(|ban| ban.from),
        debarred_until: ban.map(|ban| ban.until),
        province_wide: body.province_wide,
        regime: proposal.regime.clone(),
        listed_at: now,
        proposal_id: proposal.proposal_id.clone(),
        confirmed_by: caller.party.clone(),
        repair: "none".into(),
        repair_reason: None,
        repair_applied_at: None,
        repair_decided_by: None,
        repaired_at: None,
    };
    records::insert(&mut transaction, &row).await.map_err(failed("storing a record"))?;
    store::decide(&mut transaction, &proposal, ProposalStatus::Confirmed.code(), &caller.party, now, legal_basis, Some(&row.record_id))
        .await
        .map_err(failed("deciding a proposal"))?;
    let data = json!({
        "record_id": row.record_id, "proposal_id": row.proposal_id, "subject_uscc": row.subject_uscc, "behaviour": row.behaviour, "kind": row.kind,
        "legal_basis": row.legal_basis, "debarred_from": row.debarred_from, "debarred_until": row.debarred_until, "province_wide": row.province_wide,
        "regime": row.regime,
    });
    crate::events::push(&mut transaction, &api.events_topic, centre.as_str(), &row.subject_uscc, "credit.record_confirmed", data).await?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(record_pb(&row, now)))
}

pub(super) async fn dismiss(api: &CreditApi, request: Request<pb::DismissRequest>) -> Result<Response<pb::Proposal>, Status> {
    let (caller, centre) = CreditApi::caller(&request, &[Role::Supervisor], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let mut proposal = pending(&mut transaction, centre.as_str(), &body.proposal_id, &caller.party).await?;
    store::decide(&mut transaction, &proposal, ProposalStatus::Dismissed.code(), &caller.party, now, why, None).await.map_err(failed("deciding a proposal"))?;
    let data = json!({ "proposal_id": proposal.proposal_id, "subject_uscc": proposal.subject_uscc, "reason": why });
    crate::events::push(&mut transaction, &api.events_topic, centre.as_str(), &proposal.subject_uscc, "credit.proposal_dismissed", data).await?;
    transaction.commit().await.map_err(failed("committing"))?;
    proposal.status = ProposalStatus::Dismissed.code().into();
    proposal.decided_by = Some(caller.party.clone());
    proposal.decided_at = Some(now);
    proposal.decision_reason = Some(why.into());
    Ok(Response::new(proposal_pb(&proposal)))
}

pub(super) async fn list(api: &CreditApi, request: Request<pb::ListProposalsRequest>) -> Result<Response<pb::ListProposalsResponse>, Status> {
    let (_, centre) = CreditApi::caller(&request, STAFF, &request.get_ref().centre_id)?;
    let status = Some(request.get_ref().status.as_str()).filter(|status| !status.is_empty());
    let rows = store::list(&api.pool, centre.as_str(), status).await.map_err(failed("listing proposals"))?;
    Ok(Response::new(pb::ListProposalsResponse { proposals: rows.iter().map(proposal_pb).collect() }))
}
