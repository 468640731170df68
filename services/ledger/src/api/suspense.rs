//! Suspense: listing items and decisions, and an operator's decision to bind or return one.

use jinfu_ledger::SuspenseReason;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, identifier, invalid, timestamp};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, page, LedgerApi, Reply, STAFF};
use crate::store::suspense::{self as store, ItemFilter, SuspenseItem};
use crate::suspense::{Decision, Item, Resolution, ResolveError, Topics};

pub(super) async fn list_suspense(api: &LedgerApi, request: Request<pb::ListSuspenseRequest>) -> Reply<pb::ListSuspenseResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    if !body.reason.is_empty() && SuspenseReason::parse(&body.reason).is_none() {
        return Err(invalid(format!("unknown suspense reason {:?}", body.reason)));
    }
    let filter =
        ItemFilter { centre_id: &body.centre_id, sub_account_number: None, reason: &body.reason, limit: page(body.limit, 100, 1000), hide_sealed: true };
    let items = suspense_items(api, &filter).await?;
    Ok(Response::new(pb::ListSuspenseResponse { items }))
}

pub(super) async fn bind_suspense_item(api: &LedgerApi, request: Request<pb::BindSuspenseItemRequest>) -> Reply<pb::SuspenseResolution> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator], &body.centre_id)?;
    let reason = fields::reason(&body.reason)?;
    let sub_account_number = identifier("sub_account_number", &body.sub_account_number)?;
    let item = item(&body.centre_id, &body.bank, &body.bank_serial, &caller.party, reason)?;
    resolve(api, &item, Decision::Bind { sub_account_number }).await
}

pub(super) async fn return_suspense_item(api: &LedgerApi, request: Request<pb::ReturnSuspenseItemRequest>) -> Reply<pb::SuspenseResolution> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Operator], &body.centre_id)?;
    let reason = fields::reason(&body.reason)?;
    let item = item(&body.centre_id, &body.bank, &body.bank_serial, &caller.party, reason)?;
    resolve(api, &item, Decision::Return).await
}

pub(super) async fn list_suspense_resolutions(
    api: &LedgerApi,
    request: Request<pb::ListSuspenseResolutionsRequest>,
) -> Reply<pb::ListSuspenseResolutionsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    let limit = page(body.limit, 100, 1000);
    let resolutions = store::resolutions(&api.pool, &body.centre_id, limit).await.map_err(database)?;
    Ok(Response::new(pb::ListSuspenseResolutionsResponse { resolutions: resolutions.into_iter().map(resolution_message).collect() }))
}

/// The suspense items a filter selects, as listed.
pub(super) async fn suspense_items(api: &LedgerApi, filter: &ItemFilter<'_>) -> Result<Vec<pb::SuspenseItem>, Status> {
    let items = store::items(&api.pool, filter).await.map_err(database)?;
    Ok(items.into_iter().map(item_message).collect())
}

fn item<'a>(centre_id: &'a str, bank: &'a str, bank_serial: &'a str, decided_by: &'a str, reason: &'a str) -> Result<Item<'a>, Status> {
    let bank = identifier("bank", bank)?;
    let bank_serial = identifier("bank_serial", bank_serial)?;
    Ok(Item { centre_id, bank, bank_serial, decided_by, reason })
}

async fn resolve(api: &LedgerApi, item: &Item<'_>, decision: Decision<'_>) -> Reply<pb::SuspenseResolution> {
    let topics = Topics { events: &api.events_topic, orders: &api.orders_topic };
    let resolution = crate::suspense::resolve(&api.pool, item, decision, api.signer.as_deref(), &topics, api.clock.now()).await.map_err(resolve_error)?;
    Ok(Response::new(resolution_message(resolution)))
}

fn resolve_error(error: ResolveError) -> Status {
    match error {
        ResolveError::NotFound(message) => Status::not_found(message),
        ResolveError::FailedPrecondition(message) => Status::failed_precondition(message),
        ResolveError::Internal(error) => fields::internal("resolving a suspense item", error),
    }
}

fn item_message(item: SuspenseItem) -> pb::SuspenseItem {
    pb::SuspenseItem {
        bank: item.bank,
        bank_serial: item.bank_serial,
        sub_account_number: item.sub_account_number,
        amount_fen: item.amount_fen,
        payer_name: item.payer_name,
        payer_account: item.payer_account,
        value_time: Some(timestamp(item.value_time)),
        reason: item.reason,
        resolution_status: item.resolution_status,
    }
}

fn resolution_message(resolution: Resolution) -> pb::SuspenseResolution {
    pb::SuspenseResolution {
        resolution_id: resolution.resolution_id.to_string(),
        bank: resolution.bank,
        bank_serial: resolution.bank_serial,
        action: resolution.action,
        status: resolution.status,
        amount_fen: resolution.amount_fen,
        sub_account_number: resolution.sub_account_number.unwrap_or_default(),
        section_id: resolution.section_id.unwrap_or_default(),
        bidder_uscc: resolution.bidder_uscc.unwrap_or_default(),
        order_id: resolution.order_id.map(|id| id.to_string()).unwrap_or_default(),
        entry_sequence: resolution.entry_sequence,
        decided_by: resolution.decided_by,
        reason: resolution.reason,
        decided_at: Some(timestamp(resolution.decided_at)),
    }
}
