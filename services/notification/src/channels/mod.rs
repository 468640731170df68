//! The channels' adapters: SMTP e-mail, an HTTP SMS gateway, Standard Webhooks. Each sends one
//! claimed delivery and says whether a failure may pass (retry) or will not (dead letter).

pub mod email;
pub mod sms;
pub mod webhook;

use crate::store::deliveries::Claimed;

/// Why a send failed: `code` is stable (metrics label, first word of `last_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub code: &'static str,
    pub detail: String,
    /// Whether another attempt may succeed.
    pub transient: bool,
}

impl SendError {
    pub fn transient(code: &'static str, detail: impl Into<String>) -> SendError {
        SendError { code, detail: detail.into(), transient: true }
    }

    pub fn permanent(code: &'static str, detail: impl Into<String>) -> SendError {
        SendError { code, detail: detail.into(), transient: false }
    }

    /// `code: detail`, bounded, as stored in `last_error`.
    pub fn text(&self) -> String {
        let mut text = format!("{}: {}", self.code, self.detail);
        if text.len() > 1000 {
            let mut end = 1000;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

/// The configured adapters.
pub struct Senders {
    pub email: Option<email::EmailSender>,
    pub sms: Option<sms::SmsSender>,
    pub webhook: webhook::WebhookSender,
}

impl Senders {
    /// Sends `delivery`; the channel's message id on success. `webhook_secret` is the
    /// recipient's current secret (webhooks only).
    pub async fn send(&self, delivery: &Claimed, webhook_secret: Option<&str>) -> Result<String, SendError> {
        match delivery.channel.as_str() {
            "email" => match &self.email {
                Some(sender) => sender.send(delivery).await,
                None => Err(SendError::permanent("channel_not_configured", "no SMTP settings")),
            },
            "sms" => match &self.sms {
                Some(sender) => sender.send(delivery).await,
                None => Err(SendError::permanent("channel_not_configured", "no SMS gateway settings")),
            },
            "webhook" => match webhook_secret {
                Some(secret) => self.webhook.send(delivery, secret).await,
                None => Err(SendError::permanent("contact_removed", "the recipient no longer has a webhook")),
            },
            other => Err(SendError::permanent("unknown_channel", other.to_owned())),
        }
    }
}

/// An HTTP status's class: 408, 425, 429 and 5xx may pass; other 4xx will not.
pub fn http_transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || status >= 500
}
