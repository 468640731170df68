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
        let stored = contacts::get(&mut **transaction, &message.recipient).await?;
        let contacts = stored.map(|row| row.contacts()).unwrap_or_default();
        let switches = contacts::switches(transaction, &message.recipient).await?;
        let traceparent = jinfu_platform::kafka::current_trace_headers().into_iter().find(|(key, _)| key == "traceparent").map(|(_, value)| value);
        let mut recorded = Recorded::default();
        for (channel, destination) in policy::channels(&message.recipient, message.category, message.legal, &contacts, &switches) {
            if !self.enabled.allows(channel) {
                continue;
            }
            let sms = channel == Channel::Sms;
            let sms_code = sms.then(|| sms_template_code(message.template));
            let delivery = NewDelivery {
                event_id,
                recipient: &message.recipient,
                channel: channel.code(),
                centre_id,
                category: message.category.code(),
                template: message.template,
                legal: message.legal,
                destination: &destination,
                subject: &rendered.subject,
                body: if sms { &rendered.sms } else { &rendered.body },
                sms_template: sms_code.as_deref(),
                sms_params: sms.then(|| json!({ "content": rendered.sms })),
                traceparent: traceparent.as_deref(),
                cancel_key,
                next_attempt_at: policy::first_attempt(channel, message.deadline, &self.quiet, now),
            };
            if deliveries::insert(transaction, &delivery, now).await? {
                recorded.new += 1;
                if channel == Channel::Inbox {
                    metrics::counter!(NOTIFICATIONS_SENT, "channel" => "inbox").increment(1);
                }
            } else {
                recorded.duplicates += 1;
                metrics::counter!(NOTIFICATIONS_DUPLICATES).increment(1);
            }
        }
        Ok(Ok(recorded))
    }
}

/// The SMS gateway's template code for one of ours: `JINFU_` and the name in capitals.
pub fn sms_template_code(template: &str) -> String {
    format!("JINFU_{}", template.to_ascii_uppercase())
}
