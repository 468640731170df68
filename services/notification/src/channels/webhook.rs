//! Webhooks as the Standard Webhooks specification says: a JSON POST with headers
//! `webhook-id` (the delivery id: receivers deduplicate on it), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the
//! key in the receiver's `whsec_` secret), plus `traceparent`.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{http_transient, SendError};
use crate::domain::webhook_key;
use crate::store::deliveries::Claimed;

pub struct WebhookSender {
    client: reqwest::Client,
}

/// The `webhook-signature` value for `id`, `timestamp` and `body` under `secret` (`whsec_…`).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&webhook_key(secret)?).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

impl WebhookSender {
    pub fn new(timeout: Duration) -> anyhow::Result<WebhookSender> {
        Ok(WebhookSender { client: reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build()? })
    }

    pub async fn send(&self, delivery: &Claimed, secret: &str) -> Result<String, SendError> {
        let id = delivery.id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let body = json!({
            "type": format!("jinfu.{}", delivery.template),
            "timestamp": chrono::DateTime::from_timestamp(timestamp, 0).unwrap_or_default().to_rfc3339(),
            "data": {
                "delivery_id": id, "event_id": delivery.event_id, "recipient": delivery.recipient, "centre_id": delivery.centre_id,
                "category": delivery.category, "template": delivery.template, "legal": delivery.legal,
                "title": delivery.subject, "text": delivery.body, "created_at": delivery.created_at.to_rfc3339(),
            }
        })
        .to_string();
        let signature =
            signature(secret, &id, timestamp, &body).ok_or_else(|| SendError::permanent("bad_secret", "the recipient's webhook secret is not valid"))?;
        let mut request = self
            .client
            .post(&delivery.destination)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
        for (key, value) in jinfu_platform::kafka::current_trace_headers() {
            request = request.header(key, value);
        }
        let response = request.body(body).send().await.map_err(|error| SendError::transient("webhook_unreachable", format!("{error}")))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(id)
        } else if http_transient(status) {
            Err(SendError::transient("webhook_status", format!("HTTP {status}")))
        } else {
            Err(SendError::permanent("webhook_status", format!("HTTP {status}")))
        }
    }
}
