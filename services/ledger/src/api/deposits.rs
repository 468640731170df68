//! Deposits: a bidder's own status, a section's deposits after bid opening, account balances
//! and deposits held past their refund due date.

use jinfu_ledger::Fen;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::printable;
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, suspense::suspense_items, LedgerApi, Reply, STAFF};
use crate::domain::deposits::{assess, is_stale, stale_as_of, Cover, DepositFacts};
use crate::domain::sealing::is_sealed;
use crate::store::deposits::{self as store, DepositRow};
use crate::store::suspense::ItemFilter;

/// Suspended transfers listed with one bidder's deposit, at most.
const SUSPENDED_PER_DEPOSIT_MAX: i64 = 100;

pub(super) async fn get_deposit_status(api: &LedgerApi, request: Request<pb::GetDepositStatusRequest>) -> Reply<pb::DepositStatus> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Bidder], &body.centre_id)?;
    if caller.party != body.bidder_uscc {
        return Err(Status::permission_denied("a bidder may read only its own deposit"));
    }
    printable("section_id", &body.section_id)?;
    let statuses = deposit_statuses(api, &body.centre_id, &body.section_id, Some(&body.bidder_uscc)).await?;
    statuses.into_iter().next().map(Response::new).ok_or_else(|| Status::not_found("no sub-account for this bidder and section"))
}

pub(super) async fn list_section_deposits(api: &LedgerApi, request: Request<pb::ListSectionDepositsRequest>) -> Reply<pb::ListSectionDepositsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator, Role::Supervisor], &body.centre_id)?;
    printable("section_id", &body.section_id)?;
    let opened = crate::store::sections::bids_opened_at(&api.pool, &body.centre_id, &body.section_id)
        .await
        .map_err(database)?
        .ok_or_else(|| Status::not_found("section not found"))?;
    if is_sealed(opened) {
        return Err(Status::failed_precondition(format!(
            "sealed: bidders of section {} are confidential until its bids are opened (the bids.opened event)",
            body.section_id
        )));
    }
    let deposits = deposit_statuses(api, &body.centre_id, &body.section_id, None).await?;
    Ok(Response::new(pb::ListSectionDepositsResponse { deposits }))
}

pub(super) async fn get_account_balances(api: &LedgerApi, request: Request<pb::GetAccountBalancesRequest>) -> Reply<pb::GetAccountBalancesResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    printable("key_prefix", &body.key_prefix)?;
    let rows = store::balances(&api.pool, &body.centre_id, &body.key_prefix).await.map_err(database)?;
    let balances = rows.into_iter().map(|(account, kind, balance_fen)| pb::AccountBalance { account, kind, balance_fen }).collect();
    Ok(Response::new(pb::GetAccountBalancesResponse { balances }))
}

pub(super) async fn list_stale_deposits(api: &LedgerApi, request: Request<pb::ListStaleDepositsRequest>) -> Reply<pb::ListStaleDepositsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    let today = stale_as_of(api.clock.now());
    let rows = store::stale_deposits(&api.pool, &body.centre_id, today).await.map_err(database)?;
    debug_assert!(rows.iter().all(|(_, _, held, due_on, status)| is_stale(*due_on, status, *held, today)), "the query applies the stale rule");
    let deposits = rows
        .into_iter()
        .map(|(section_id, bidder_uscc, held_fen, due_on, refund_status)| pb::StaleDeposit {
            section_id,
            bidder_uscc,
            held_fen,
            due_on: due_on.to_string(),
            refund_status,
        })
        .collect();
    Ok(Response::new(pb::ListStaleDepositsResponse { deposits }))
}

/// The deposits of a section's bidders (or of one), each assessed with its suspended transfers.
async fn deposit_statuses(api: &LedgerApi, centre_id: &str, section_id: &str, bidder: Option<&str>) -> Result<Vec<pb::DepositStatus>, Status> {
    let now = api.clock.now();
    let rows = store::deposits(&api.pool, centre_id, section_id, bidder, jinfu_ledger::beijing::date(now)).await.map_err(database)?;
    let mut statuses = Vec::with_capacity(rows.len());
    for row in rows {
        let suspended = if row.sub_account_number.is_empty() {
            Vec::new()
        } else {
            let filter =
                ItemFilter { centre_id, sub_account_number: Some(&row.sub_account_number), reason: "", limit: SUSPENDED_PER_DEPOSIT_MAX, hide_sealed: false };
            suspense_items(api, &filter).await?
        };
        statuses.push(deposit_status(section_id, row, suspended));
    }
    Ok(statuses)
}

fn deposit_status(section_id: &str, row: DepositRow, suspended: Vec<pb::SuspenseItem>) -> pb::DepositStatus {
    let cover = row.cover.map(|(guarantee_no, amount_fen)| Cover { guarantee_no, amount: Fen::from_fen(amount_fen) });
    let facts = DepositFacts { required: Fen::from_fen(row.required_fen), held: Fen::from_fen(row.held_fen), cover, suspended_items: suspended.len() };
    let assessment = assess(&facts);
    pb::DepositStatus {
        section_id: section_id.to_owned(),
        bidder_uscc: row.bidder_uscc,
        sub_account_number: row.sub_account_number,
        received: facts.held > Fen::ZERO,
        held_fen: facts.held.fen(),
        required_fen: facts.required.fen(),
        satisfied: assessment.satisfied,
        excess_fen: assessment.excess.fen(),
        status: assessment.state.code().to_owned(),
        explanation: assessment.explanation,
        suspended,
        guarantee_no: facts.cover.as_ref().map(|cover| cover.guarantee_no.clone()).unwrap_or_default(),
        guarantee_amount_fen: facts.cover.as_ref().map_or(0, |cover| cover.amount.fen()),
    }
}
