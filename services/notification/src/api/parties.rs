//! Contacts and preferences.

use jinfu_platform::fields;
use jinfu_proto::notification::v1 as pb;
use tonic::{Request, Response, Status};

use super::{acting_for, category_from_pb, category_to_pb, channel_from_pb, channel_to_pb, failed, NotificationApi};
use crate::domain::policy::Contacts;
use crate::domain::{self};
use crate::store::contacts::{self, ContactsRow};

/// Most interest tags a party keeps.
const TAGS_MAX: usize = 50;

fn contacts_to_pb(party: &str, row: Option<ContactsRow>) -> pb::Contacts {
    match row {
        Some(row) => pb::Contacts {
            party: row.party,
            email: row.email.unwrap_or_default(),
            phone: row.phone.unwrap_or_default(),
            webhook_url: row.webhook_url.unwrap_or_default(),
            webhook_secret_set: row.webhook_secret.is_some(),
            updated_at: Some(fields::timestamp(row.updated_at)),
        },
        None => pb::Contacts { party: party.to_owned(), ..pb::Contacts::default() },
    }
}

pub async fn set_contacts(api: &NotificationApi, request: Request<pb::SetContactsRequest>) -> Result<Response<pb::Contacts>, Status> {
    let caller = acting_for(&request, &request.get_ref().party)?;
    let body = request.into_inner();
    let email = domain::normalise_email(&body.email)?;
    let phone = domain::normalise_phone(&body.phone)?;
    let webhook = domain::check_webhook(&body.webhook_url, &body.webhook_secret)?;
    let (webhook_url, webhook_secret) = webhook.map_or((None, None), |(url, secret)| (Some(url), Some(secret)));
    let stored = Contacts { email, phone, webhook_url, webhook_secret };
    let row = contacts::set(&api.pool, &body.party, &stored, &format!("{}:{}", caller.role, caller.party), api.clock.now())
        .await
        .map_err(failed("storing contacts"))?;
    Ok(Response::new(contacts_to_pb(&body.party, Some(row))))
}

pub async fn get_contacts(api: &NotificationApi, request: Request<pb::GetContactsRequest>) -> Result<Response<pb::Contacts>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    let party = &request.get_ref().party;
    let row = contacts::get(&api.pool, party).await.map_err(failed("reading contacts"))?;
    Ok(Response::new(contacts_to_pb(party, row)))
}

pub async fn set_preferences(api: &NotificationApi, request: Request<pb::SetPreferencesRequest>) -> Result<Response<pb::Preferences>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    let body = request.into_inner();
    let mut switches = Vec::with_capacity(body.channels.len());
    for preference in &body.channels {
        switches.push((category_from_pb(preference.category)?, channel_from_pb(preference.channel)?, preference.enabled));
    }
    if body.interest_tags.len() > TAGS_MAX {
        return Err(fields::invalid(format!("interest_tags: at most {TAGS_MAX}")));
    }
    for tag in &body.interest_tags {
        domain::check_tag(tag)?;
    }
    contacts::set_preferences(&api.pool, &body.party, &switches, &body.interest_tags).await.map_err(failed("storing preferences"))?;
    read_preferences(api, &body.party).await
}

pub async fn get_preferences(api: &NotificationApi, request: Request<pb::GetPreferencesRequest>) -> Result<Response<pb::Preferences>, Status> {
    acting_for(&request, &request.get_ref().party)?;
    read_preferences(api, &request.get_ref().party).await
}

async fn read_preferences(api: &NotificationApi, party: &str) -> Result<Response<pb::Preferences>, Status> {
    let (switches, tags) = contacts::preferences(&api.pool, party).await.map_err(failed("reading preferences"))?;
    let channels = switches
        .into_iter()
        .map(|(category, channel, enabled)| pb::ChannelPreference {
            category: category_to_pb(category).into(),
            channel: channel_to_pb(channel).into(),
            enabled,
        })
        .collect();
    Ok(Response::new(pb::Preferences { party: party.to_owned(), channels, interest_tags: tags }))
}
