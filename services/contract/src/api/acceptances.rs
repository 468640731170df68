//! Acceptance (履约验收): the supplier's request, the purchaser's result.

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{invalid, printable, timestamp};
use jinfu_proto::contract::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::{date_text, failed, fen, ContractApi, PURCHASER_SIDE};
use crate::domain::contracts::Milestone;
use crate::domain::invoices::Trigger;
use crate::domain::{ContractStatus, MilestoneKind, Refusal};
use crate::events::{yuan, Events};
use crate::store::contracts::{self as store, AcceptanceResult, AcceptanceRow, ContractRow};
use crate::store::{rules, Tx};

/// The milestone `sequence` of an active contract that can be delivered.
async fn deliverable(transaction: &mut Tx, contract: &ContractRow, sequence: u32) -> Result<Milestone, Status> {
    if contract.status != ContractStatus::Active.code() {
        return Err(
            Refusal::WrongStatus { status: ContractStatus::parse(&contract.status).map_or("unknown", ContractStatus::code), what: "an acceptance" }.into()
        );
    }
    let milestones = store::milestones(&mut **transaction, &contract.centre_id, &contract.contract_id).await.map_err(failed("reading milestones"))?;
    let milestone = milestones.into_iter().find(|milestone| milestone.sequence == sequence).ok_or(Refusal::NoSuchMilestone { milestone: sequence })?;
    if milestone.term.kind == MilestoneKind::Prepayment {
        return Err(Refusal::NotDeliverable { milestone: sequence }.into());
    }
    Ok(milestone)
}

fn acceptance_pb(contract: &ContractRow, row: &AcceptanceRow, kind: MilestoneKind, today: chrono::NaiveDate) -> pb::Acceptance {
    let trigger = Trigger {
        signed_on: None,
        requested_on: Some(jinfu_ledger::beijing::date(row.requested_at)),
        organise_by: row.organise_by,
        passed_on: if row.passed == Some(true) { row.recorded_at.map(jinfu_ledger::beijing::date) } else { None },
        failed: row.passed == Some(false),
    };
    pb::Acceptance {
        centre_id: contract.centre_id.clone(),
        contract_id: contract.contract_id.clone(),
        milestone: u32::try_from(row.milestone).unwrap_or(0),
        requested_at: Some(timestamp(row.requested_at)),
        organise_by: row.organise_by.map(date_text).unwrap_or_default(),
        recorded_at: row.recorded_at.map(timestamp),
        passed: row.passed == Some(true),
        note: row.note.clone().unwrap_or_default(),
        payment_clock_from: trigger.clock_from(kind, today).map(date_text).unwrap_or_default(),
    }
}

async fn answer(
    api: &ContractApi,
    transaction: Tx,
    events: Events<'_>,
    contract: &ContractRow,
    milestone: &Milestone,
) -> Result<Response<pb::Acceptance>, Status> {
    let mut transaction = transaction;
    events.insert(&mut transaction).await.map_err(failed("writing events"))?;
    let rows = store::acceptances(&mut *transaction, &contract.centre_id, &contract.contract_id).await.map_err(failed("reading acceptances"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    let row = rows.iter().find(|row| u32::try_from(row.milestone).ok() == Some(milestone.sequence)).ok_or_else(|| Status::internal("acceptance vanished"))?;
    Ok(Response::new(acceptance_pb(contract, row, milestone.term.kind, api.today())))
}

pub(super) async fn request(api: &ContractApi, request: Request<pb::RequestAcceptanceRequest>) -> Result<Response<pb::Acceptance>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Supplier], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    let milestone = deliverable(&mut transaction, &contract, body.milestone).await?;
    let centre_rules = rules::centre_rules(&mut *transaction, centre.as_str()).await.map_err(failed("reading centre rules"))?;
    let organise_by = super::contracts::pending(centre_rules.organise_by(&api.calendar.current(), jinfu_ledger::beijing::date(now)))?;
    let mut events = Events::new(&api.events_topic);
    if store::request_acceptance(&mut transaction, centre.as_str(), &contract.contract_id, body.milestone, now, organise_by)
        .await
        .map_err(failed("storing a request"))?
    {
        events.push(
            centre.as_str(),
            &contract.contract_id,
            "acceptance.requested",
            json!({ "contract_id": contract.contract_id, "milestone": body.milestone, "organise_by": organise_by, "purchaser_uscc": contract.purchaser_uscc, "supplier_uscc": contract.supplier_uscc }),
        );
    }
    answer(api, transaction, events, &contract, &milestone).await
}

pub(super) async fn record(api: &ContractApi, request: Request<pb::RecordAcceptanceRequest>) -> Result<Response<pb::Acceptance>, Status> {
    let (caller, centre) = ContractApi::caller(&request, PURCHASER_SIDE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let note = if body.note.is_empty() { "" } else { printable("note", &body.note)? };
    if note.chars().count() > 1000 {
        return Err(invalid("note: at most 1000 characters"));
    }
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    let milestone = deliverable(&mut transaction, &contract, body.milestone).await?;
    let rows = store::acceptances(&mut *transaction, centre.as_str(), &contract.contract_id).await.map_err(failed("reading acceptances"))?;
    let row = rows
        .iter()
        .find(|row| u32::try_from(row.milestone).ok() == Some(body.milestone))
        .ok_or(Refusal::AcceptanceNotRequested { milestone: body.milestone })?;
    if row.recorded_at.is_some() {
        // The same result again is the same result; another one is refused.
        if row.passed == Some(body.passed) && row.note.as_deref().unwrap_or_default() == note {
            return answer(api, transaction, Events::new(&api.events_topic), &contract, &milestone).await;
        }
        return Err(Refusal::AcceptanceRecorded { milestone: body.milestone }.into());
    }
    let settlement = match (milestone.term.kind, body.passed) {
        (MilestoneKind::Settlement, true) => {
            let amount = fen("settlement_amount_fen", body.settlement_amount_fen)?;
            if !amount.is_positive() {
                return Err(Refusal::SettlementAmountRequired.into());
            }
            Some(amount)
        }
        _ => None,
    };
    let result = AcceptanceResult { milestone: body.milestone, passed: body.passed, note, settlement, at: now };
    store::record_acceptance(&mut transaction, centre.as_str(), &contract.contract_id, &result).await.map_err(failed("storing an acceptance"))?;
    let late = row.organise_by.is_some_and(|organise_by| jinfu_ledger::beijing::date(now) > organise_by);
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "acceptance.recorded",
        json!({
            "contract_id": contract.contract_id, "milestone": body.milestone, "passed": body.passed, "organise_by": row.organise_by, "late": late,
            "settlement_amount": settlement.map(|amount| yuan(amount.fen())),
        }),
    );
    answer(api, transaction, events, &contract, &milestone).await
}
