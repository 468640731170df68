//! From a planned message to recorded deliveries, inside the transaction of what caused it:
//! render once, choose the channels (contacts, preferences, legal notices), hold an SMS for the
//! end of quiet hours, and record one delivery per channel — or nothing, if it was recorded
//! before.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jinfu_platform::metrics::{NOTIFICATIONS_DUPLICATES, NOTIFICATIONS_SENT};
use serde_json::json;

use crate::domain::plan::Message;
use crate::domain::policy::{self, QuietHours};
use crate::domain::templates::Templates;
use crate::domain::Channel;
use crate::store::deliveries::{self, NewDelivery};
use crate::store::{contacts, Tx};

/// The channels this deployment can send on (e-mail without SMTP settings is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    pub email: bool,
    pub sms: bool,
    pub webhook: bool,
}

impl Enabled {
    fn allows(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.sms,
            Channel::Webhook => self.webhook,
            Channel::Inbox => true,
        }
    }
}

/// What recording one message did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub new: u32,
    pub duplicates: u32,
}

/// A template failed to render (a field its event lacks): the event is refused with this.
#[derive(Debug, thiserror::Error)]
#[error("template {template} could not be rendered: {cause}")]
pub struct RenderFailed {
    pub template: &'static str,
    pub cause: String,
}

pub struct Composer {
    pub templates: Arc<Templates>,
    pub quiet: QuietHours,
    pub enabled: Enabled,
}

impl Composer {
    /// Records `message`'s deliveries for `event_id` (`<publisher>:<id>`).
    pub async fn record(
        &self,
        transaction: &mut Tx,
        event_id: &str,
        centre_id: &str,
        message: &Message,
        cancel_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Recorded, RenderFailed>> {
        let rendered = match self.templates.render(message) {
            Ok(rendered) => rendered,
            Err(error) => return Ok(Err(RenderFailed { template: message.template, cause: format!("{error:#}") })),
        };
        let (contacts, switches) = contacts::for_recipient(transaction, &message.recipient).await?;
        let traceparent = jinfu_platform::kafka::current_trace_headers().into_iter().find(|(key, _)| key == "traceparent").map(|(_, value)| value);
        let sms_code = sms_template_code(message.template);
        let mut planned = Vec::new();
        for (channel, destination) in policy::channels(&message.recipient, message.category, message.legal, &contacts, &switches) {
            if !self.enabled.allows(channel) {
                continue;
            }
            planned.push((channel, destination));
        }
        let batch: Vec<NewDelivery<'_>> = planned
            .iter()
            .map(|(channel, destination)| {
                let sms = *channel == Channel::Sms;
                NewDelivery {
                    event_id,
                    recipient: &message.recipient,
                    channel: channel.code(),
                    centre_id,
                    category: message.category.code(),
                    template: message.template,
                    legal: message.legal,
                    destination,
                    subject: &rendered.subject,
                    body: if sms { &rendered.sms } else { &rendered.body },
                    sms_template: sms.then_some(sms_code.as_str()),
                    sms_params: sms.then(|| json!({ "content": rendered.sms })),
                    traceparent: traceparent.as_deref(),
                    cancel_key,
                    next_attempt_at: policy::first_attempt(*channel, message.deadline, &self.quiet, now),
                }
            })
            .collect();
        let inserted = deliveries::insert_all(transaction, &batch, now).await?;
        let recorded = Recorded { new: inserted.len() as u32, duplicates: (batch.len() - inserted.len()) as u32 };
        if inserted.iter().any(|channel| channel == "inbox") {
            metrics::counter!(NOTIFICATIONS_SENT, "channel" => "inbox").increment(1);
        }
        if recorded.duplicates > 0 {
            metrics::counter!(NOTIFICATIONS_DUPLICATES).increment(u64::from(recorded.duplicates));
        }
        Ok(Ok(recorded))
    }
}

/// The SMS gateway's template code for one of ours: `JINFU_` and the name in capitals.
pub fn sms_template_code(template: &str) -> String {
    format!("JINFU_{}", template.to_ascii_uppercase())
}
