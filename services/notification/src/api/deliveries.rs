//! The inbox and delivery status.

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields;
use jinfu_proto::notification::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{acting_for, category_to_pb, channel_to_pb, failed, page_after, page_size, page_token, state_from_pb, state_to_pb, NotificationApi};
use crate::domain::{mask, Category, Channel, DeliveryState, Refusal};
use crate::store::deliveries::{self, DeliveryRow, Filter};

/// Staff who read a centre's deliveries.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

fn inbox_message(row: DeliveryRow) -> pb::InboxMessage {
    pb::InboxMessage {
        id: row.id.to_string(),
        category: category_to_pb(Category::parse(&row.category).unwrap_or(Category::Alert)).into(),
        template: row.template,
        subject: row.subject,
        body: row.body,
        centre_id: row.centre_id,
        legal: row.legal,
        created_at: Some(fields::timestamp(row.created_at)),
        read_at: row.read_at.map(fields::timestamp),
    }
}

fn delivery(row: DeliveryRow) -> pb::Delivery {
    let channel = Channel::parse(&row.channel).unwrap_or(Channel::Inbox);
    pb::Delivery {
        id: row.id.to_string(),
        event_id: row.event_id,
        recipient: row.recipient,
        channel: channel_to_pb(channel).into(),
        category: category_to_pb(Category::parse(&row.category).unwrap_or(Category::Alert)).into(),
        template: row.template,
        legal: row.legal,
        centre_id: row.centre_id,
        state: state_to_pb(DeliveryState::parse(&row.state).unwrap_or(DeliveryState::Pending)).into(),
        attempts: row.attempts,
        provider_id: row.provider_id.unwrap_or_default(),
        last_error: row.last_error.unwrap_or_default(),
        created_at: Some(fields::timestamp(row.created_at)),
        next_attempt_at: Some(fields::timestamp(row.next_attempt_at)),
        sent_at: row.sent_at.map(fields::timestamp),
        destination: mask(channel, &row.destination),
    }
}

pub async fn list_inbox(api: &NotificationApi, request: Request<pb::ListInboxRequest>) -> Result<Response<pb::ListInboxResponse>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    let body = request.into_inner();
    let limit = page_size(body.page_size)?;
    let rows = deliveries::inbox(&api.pool, &body.party, body.unread_only, page_after(&body.page_token)?, limit).await.map_err(failed("reading an inbox"))?;
    let next_page_token =
        if rows.len() as i64 == limit { rows.last().map(|row| page_token(row.created_at, row.id)).unwrap_or_default() } else { String::new() };
    Ok(Response::new(pb::ListInboxResponse { messages: rows.into_iter().map(inbox_message).collect(), next_page_token }))
}

pub async fn mark_read(api: &NotificationApi, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    let body = request.into_inner();
    if body.ids.len() > 500 {
        return Err(fields::invalid("ids: at most 500"));
    }
    let ids = body.ids.iter().map(|id| Uuid::parse_str(id).map_err(|_| fields::invalid("ids: message ids as listed"))).collect::<Result<Vec<_>, _>>()?;
    let marked = deliveries::mark_read(&api.pool, &body.party, &ids, api.clock.now()).await.map_err(failed("marking messages read"))?;
    Ok(Response::new(pb::MarkReadResponse { marked: i32::try_from(marked).unwrap_or(i32::MAX) }))
}

pub async fn unread_count(api: &NotificationApi, request: Request<pb::UnreadCountRequest>) -> Result<Response<pb::UnreadCountResponse>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    let unread = deliveries::unread(&api.pool, &request.get_ref().party).await.map_err(failed("counting unread messages"))?;
    Ok(Response::new(pb::UnreadCountResponse { unread }))
}

/// The delivery, if the caller may see it: its recipient, or staff of its centre.
async fn visible<T>(api: &NotificationApi, request: &Request<T>, id: &str) -> Result<(Caller, DeliveryRow), Status> {
    let caller = Caller::of(request)?;
    let not_found = || Status::not_found("no such delivery");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let row = deliveries::get(&api.pool, id).await.map_err(failed("reading a delivery"))?.ok_or_else(not_found)?;
    let staff = STAFF.contains(&caller.role) && caller.may_access(&row.centre_id) && deliveries::staff_may_see(&row);
    if staff || caller.party == row.recipient {
        Ok((caller, row))
    } else {
        Err(not_found())
    }
}

pub async fn get(api: &NotificationApi, request: Request<pb::GetDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
    let (_, row) = visible(api, &request, &request.get_ref().id).await?;
    Ok(Response::new(delivery(row)))
}

pub async fn list(api: &NotificationApi, request: Request<pb::ListDeliveriesRequest>) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
    let centre = fields::centre("centre_id", &request.get_ref().centre_id)?;
    let caller = Caller::of(&request)?;
    caller.authorize(STAFF, centre.as_str())?;
    let body = request.into_inner();
    let limit = page_size(body.page_size)?;
    let filter = Filter {
        centres: centres_of(&centre),
        sealed_hidden: true,
        state: state_from_pb(body.state)?.map(|state| state.code().to_owned()),
        event_id: (!body.event_id.is_empty()).then_some(body.event_id),
        recipient: (!body.recipient.is_empty()).then_some(body.recipient),
        after: page_after(&body.page_token)?,
    };
    let rows = deliveries::list(&api.pool, &filter, limit).await.map_err(failed("listing deliveries"))?;
    let next_page_token =
        if rows.len() as i64 == limit { rows.last().map(|row| page_token(row.created_at, row.id)).unwrap_or_default() } else { String::new() };
    Ok(Response::new(pb::ListDeliveriesResponse { deliveries: rows.into_iter().map(delivery).collect(), next_page_token }))
}

/// A province centre's listing covers only its own code: the province's cities list their own.
fn centres_of(centre: &CentreCode) -> Vec<String> {
    vec![centre.as_str().to_owned()]
}

pub async fn retry(api: &NotificationApi, request: Request<pb::RetryDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
    let (caller, row) = visible(api, &request, &request.get_ref().id).await?;
    if !matches!(caller.role, Role::Operator | Role::Admin) || !caller.may_access(&row.centre_id) {
        return Err(Status::permission_denied("role operator or admin of the delivery's centre may retry it"));
    }
    if !deliveries::retry(&api.pool, row.id, api.clock.now()).await.map_err(failed("retrying a delivery"))? {
        return Err(Refusal::NotDead.into());
    }
    let row = deliveries::get(&api.pool, row.id).await.map_err(failed("reading a delivery"))?.ok_or_else(|| Status::not_found("no such delivery"))?;
    Ok(Response::new(delivery(row)))
}
