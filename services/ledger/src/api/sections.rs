//! Sections: creation, closing, reading, and tender events submitted by call.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, from_timestamp, identifier, invalid, printable, timestamp};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, LedgerApi, Reply};
use crate::consumer::{Handled, Refused};
use crate::domain::sections::{required_deposit, SectionTerms};
use crate::domain::tender_events::Source;
use crate::store::sections::{self as store, NewSection};

fn regime(value: i32) -> Result<&'static str, Status> {
    match pb::Regime::try_from(value) {
        Ok(pb::Regime::Engineering) => Ok("engineering"),
        Ok(pb::Regime::Procurement) => Ok("procurement"),
        _ => Err(invalid("regime must be REGIME_ENGINEERING or REGIME_PROCUREMENT")),
    }
}

fn terms(body: &pb::CreateSectionRequest) -> Result<SectionTerms, Status> {
    required_deposit(body.required_deposit_fen).map_err(|refusal| invalid(refusal.to_string()))?;
    let deadline = from_timestamp("deposit_deadline", body.deposit_deadline)?;
    let opening = from_timestamp("bid_opening_time", body.bid_opening_time)?;
    SectionTerms::new(body.required_deposit_fen, deadline, opening).map_err(|refusal| invalid(refusal.to_string()))
}

pub(super) async fn create_section(api: &LedgerApi, request: Request<pb::CreateSectionRequest>) -> Reply<pb::CreateSectionResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let code = fields::centre("centre_id", &body.centre_id)?;
    caller.authorize(&[Role::Operator, Role::Admin], code.as_str())?;
    let section_id = identifier("section_id", &body.section_id)?;
    let name = identifier("name", &body.name)?;
    let regime = regime(body.regime)?;
    let terms = terms(&body)?;
    printable("bank", &body.bank)?;
    printable("account_number", &body.account_number)?;
    let account_centre = crate::store::centres::account_centre(&api.pool, &body.bank, &body.account_number).await.map_err(database)?;
    if account_centre.as_deref() != Some(code.as_str()) {
        return Err(Status::failed_precondition(format!("collection account {}/{} is not registered for centre {code}", body.bank, body.account_number)));
    }
    let section = NewSection {
        centre_id: code.as_str(),
        section_id,
        name,
        regime,
        terms,
        bank: &body.bank,
        account_number: &body.account_number,
        basic_account_required: body.basic_account_required,
    };
    if !store::insert(&api.pool, &section).await.map_err(database)? {
        return Err(Status::already_exists(format!("section {section_id} already exists in centre {code}")));
    }
    Ok(Response::new(pb::CreateSectionResponse { created: true }))
}

pub(super) async fn close_section(api: &LedgerApi, request: Request<pb::CloseSectionRequest>) -> Reply<pb::CloseSectionResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator, Role::Admin], &body.centre_id)?;
    let reason = identifier("reason", &body.reason)?;
    printable("section_id", &body.section_id)?;
    if !store::close(&api.pool, &body.centre_id, &body.section_id, reason).await.map_err(database)? {
        return Err(Status::not_found(format!("section {} not found in centre {}", body.section_id, body.centre_id)));
    }
    Ok(Response::new(pb::CloseSectionResponse {}))
}

pub(super) async fn get_section(api: &LedgerApi, request: Request<pb::GetSectionRequest>) -> Reply<pb::Section> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    if !caller.may_access(&body.centre_id) {
        return Err(Status::permission_denied(format!("caller of centre {} may not read centre {}", caller.centre, body.centre_id)));
    }
    printable("section_id", &body.section_id)?;
    let section = store::get(&api.pool, &body.centre_id, &body.section_id)
        .await
        .map_err(database)?
        .ok_or_else(|| Status::not_found(format!("centre {} has no section {}", body.centre_id, body.section_id)))?;
    Ok(Response::new(pb::Section {
        centre_id: body.centre_id,
        section_id: body.section_id,
        name: section.name,
        regime: section.regime,
        required_deposit_fen: section.required_deposit_fen,
        deposit_deadline: Some(timestamp(section.deposit_deadline)),
        bid_opening_time: Some(timestamp(section.bid_opening_time)),
        open: section.open,
        bids_opened_at: section.bids_opened_at.map(timestamp),
        winner_uscc: section.winner_uscc.unwrap_or_default(),
        contract_signed_at: section.contract_signed_at.map(timestamp),
    }))
}

/// The tender event as the `trading.events` consumer reads it.
fn tender_event(body: &pb::SubmitTenderEventRequest) -> Result<crate::ingest::Record, Status> {
    printable("event_id", &body.event_id)?;
    printable("section_id", &body.section_id)?;
    printable("type", &body.r#type)?;
    let occurred_at = from_timestamp("occurred_at", body.occurred_at)?;
    let data: serde_json::Value = if body.data_json.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(&body.data_json).map_err(|error| invalid(format!("data_json is not JSON: {error}")))?
    };
    let value = serde_json::to_vec(&serde_json::json!({
        "schema_version": 1,
        "event_id": body.event_id,
        "centre_id": body.centre_id,
        "section_id": body.section_id,
        "type": body.r#type,
        "occurred_at": occurred_at.to_rfc3339(),
        "data": data,
    }))
    .map_err(|_| Status::internal("event does not serialise"))?;
    Ok(crate::ingest::Record { partition: -1, offset: -1, value, headers: Vec::new(), timestamp: None })
}

pub(super) async fn submit_tender_event(api: &LedgerApi, request: Request<pb::SubmitTenderEventRequest>) -> Reply<pb::SubmitTenderEventResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator, Role::Admin], &body.centre_id)?;
    let record = tender_event(&body)?;
    // Event ids are the caller's: deduplicated per caller and centre, never across callers.
    let source = Source::Caller { centre: caller.centre.as_str(), party: &caller.party };
    let mut transaction = api.pool.begin().await.map_err(database)?;
    match api.trading.apply_from(&mut transaction, &record, source, api.clock.now()).await {
        Ok(Handled::Applied) => {
            transaction.commit().await.map_err(database)?;
            Ok(Response::new(pb::SubmitTenderEventResponse {}))
        }
        Ok(Handled::Refused(refusal)) => Err(tender_refusal(&refusal)),
        Err(error) => Err(fields::internal("applying a tender event", error)),
    }
}

/// A refused tender event as a status, the refusal's code first: a reused event id is
/// ALREADY_EXISTS, an opening moved earlier after the deadline FAILED_PRECONDITION, anything
/// else about the event itself INVALID_ARGUMENT.
fn tender_refusal(Refused(code, sentence): &Refused) -> Status {
    let message = format!("{code}: {sentence}");
    match *code {
        "event_id_reused" => Status::already_exists(message),
        "opening_moved_earlier" => Status::failed_precondition(message),
        _ => invalid(message),
    }
}
