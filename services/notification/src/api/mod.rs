//! The NotificationService gRPC API (proto/jinfu/notification/v1/notification.proto documents
//! every call, role and error).

mod deliveries;
mod parties;

use chrono::{DateTime, Utc};
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields;
use jinfu_proto::notification::v1 as pb;
use jinfu_proto::notification::v1::notification_service_server::NotificationService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, Category, Channel, DeliveryState, Refusal};

pub struct NotificationApi {
    pub pool: PgPool,
    pub clock: SharedClock,
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn set_contacts(&self, request: Request<pb::SetContactsRequest>) -> Result<Response<pb::Contacts>, Status> {
        parties::set_contacts(self, request).await
    }

    async fn get_contacts(&self, request: Request<pb::GetContactsRequest>) -> Result<Response<pb::Contacts>, Status> {
        parties::get_contacts(self, request).await
    }

    async fn set_preferences(&self, request: Request<pb::SetPreferencesRequest>) -> Result<Response<pb::Preferences>, Status> {
        parties::set_preferences(self, request).await
    }

    async fn get_preferences(&self, request: Request<pb::GetPreferencesRequest>) -> Result<Response<pb::Preferences>, Status> {
        parties::get_preferences(self, request).await
    }

    async fn list_inbox(&self, request: Request<pb::ListInboxRequest>) -> Result<Response<pb::ListInboxResponse>, Status> {
        deliveries::list_inbox(self, request).await
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        deliveries::mark_read(self, request).await
    }

    async fn unread_count(&self, request: Request<pb::UnreadCountRequest>) -> Result<Response<pb::UnreadCountResponse>, Status> {
        deliveries::unread_count(self, request).await
    }

    async fn get_delivery(&self, request: Request<pb::GetDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        deliveries::get(self, request).await
    }

    async fn list_deliveries(&self, request: Request<pb::ListDeliveriesRequest>) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        deliveries::list(self, request).await
    }

    async fn retry_delivery(&self, request: Request<pb::RetryDeliveryRequest>) -> Result<Response<pb::Delivery>, Status> {
        deliveries::retry(self, request).await
    }
}

/// The caller, allowed to act for `party`: the party itself, `admin`, or an operator for its
/// own centre's `operators:<centre>`.
fn acting_for<T>(request: &Request<T>, party: &str) -> Result<Caller, Status> {
    domain::check_party(party).map_err(Status::from)?;
    let caller = Caller::of(request)?;
    let operators_of_own_centre = caller.role == Role::Operator && party == domain::operators_of(caller.centre.as_str());
    if caller.party == party || caller.role == Role::Admin || operators_of_own_centre {
        Ok(caller)
    } else {
        Err(Status::permission_denied("a party reads and changes only its own contacts, preferences and inbox"))
    }
}

/// INTERNAL for a failure of `what` (logged in full, answered without detail).
fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Status {
    move |error| fields::internal(what, error)
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::Invalid { .. } => fields::invalid(format!("{}: {refusal}", refusal.code())),
            Refusal::NotDead => Status::failed_precondition(format!("{}: {refusal}", refusal.code())),
        }
    }
}

fn channel_to_pb(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Email => pb::Channel::Email,
        Channel::Sms => pb::Channel::Sms,
        Channel::Webhook => pb::Channel::Webhook,
        Channel::Inbox => pb::Channel::Inbox,
    }
}

fn channel_from_pb(value: i32) -> Result<Channel, Status> {
    match pb::Channel::try_from(value) {
        Ok(pb::Channel::Email) => Ok(Channel::Email),
        Ok(pb::Channel::Sms) => Ok(Channel::Sms),
        Ok(pb::Channel::Webhook) => Ok(Channel::Webhook),
        Ok(pb::Channel::Inbox) => Ok(Channel::Inbox),
        _ => Err(fields::invalid("channel: one of CHANNEL_EMAIL, CHANNEL_SMS, CHANNEL_WEBHOOK, CHANNEL_INBOX")),
    }
}

const CATEGORIES: [(Category, pb::Category); 8] = [
    (Category::Deposit, pb::Category::Deposit),
    (Category::Refund, pb::Category::Refund),
    (Category::Guarantee, pb::Category::Guarantee),
    (Category::Contract, pb::Category::Contract),
    (Category::Payment, pb::Category::Payment),
    (Category::Credit, pb::Category::Credit),
    (Category::Alert, pb::Category::Alert),
    (Category::Tender, pb::Category::Tender),
];

fn category_to_pb(category: Category) -> pb::Category {
    CATEGORIES.iter().find(|(domain, _)| *domain == category).map_or(pb::Category::Unspecified, |(_, proto)| *proto)
}

fn category_from_pb(value: i32) -> Result<Category, Status> {
    let proto = pb::Category::try_from(value).unwrap_or(pb::Category::Unspecified);
    CATEGORIES
        .iter()
        .find(|(_, candidate)| *candidate == proto)
        .map(|(domain, _)| *domain)
        .ok_or_else(|| fields::invalid("category: a CATEGORY_ value other than UNSPECIFIED"))
}

fn state_to_pb(state: DeliveryState) -> pb::DeliveryState {
    match state {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Sending => pb::DeliveryState::Sending,
        DeliveryState::Sent => pb::DeliveryState::Sent,
        DeliveryState::Dead => pb::DeliveryState::Dead,
        DeliveryState::Cancelled => pb::DeliveryState::Cancelled,
    }
}

fn state_from_pb(value: i32) -> Result<Option<DeliveryState>, Status> {
    Ok(match pb::DeliveryState::try_from(value).map_err(|_| fields::invalid("state: a DELIVERY_STATE_ value"))? {
        pb::DeliveryState::Unspecified => None,
        pb::DeliveryState::Pending => Some(DeliveryState::Pending),
        pb::DeliveryState::Sending => Some(DeliveryState::Sending),
        pb::DeliveryState::Sent => Some(DeliveryState::Sent),
        pb::DeliveryState::Dead => Some(DeliveryState::Dead),
        pb::DeliveryState::Cancelled => Some(DeliveryState::Cancelled),
    })
}

/// Page size 1-200, default 50.
fn page_size(requested: i32) -> Result<i64, Status> {
    match requested {
        0 => Ok(50),
        1..=200 => Ok(i64::from(requested)),
        _ => Err(fields::invalid("page_size: 1 to 200 (0 for the default, 50)")),
    }
}

/// A page token: `<created_at micros>.<id>` of the last row of the previous page.
fn page_after(token: &str) -> Result<Option<(DateTime<Utc>, Uuid)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || fields::invalid("page_token: as returned in next_page_token");
    let (micros, id) = token.split_once('.').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok(Some((at, Uuid::parse_str(id).map_err(|_| bad())?)))
}

fn page_token(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{id}", at.timestamp_micros())
}
