//! SMS through an HTTP gateway shaped like the common Chinese providers' SendSms call: a JSON
//! POST of `PhoneNumbers`, `SignName`, `TemplateCode`, `TemplateParam` (a JSON text) and `OutId`
//! (our delivery id: the gateway's idempotency key, so a request sent again after a lost answer
//! is one SMS), answered `{"Code": "OK", "BizId": …}`. The body is signed with the access key
//! secret (`x-jinfu-signature`: hex HMAC-SHA256) and carries `traceparent`.
//! docs/notifications.md has the whole contract.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::{http_transient, SendError};
use crate::settings::SmsSettings;
use crate::store::deliveries::Claimed;

pub struct SmsSender {
    client: reqwest::Client,
    settings: SmsSettings,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    biz_id: String,
}

/// Gateway codes that may pass: flow control and the provider's own errors.
fn code_transient(code: &str) -> bool {
    code.starts_with("isp.") || code.contains("LIMIT_CONTROL") || code.eq_ignore_ascii_case("Throttling")
}

impl SmsSender {
    pub fn new(settings: &SmsSettings) -> anyhow::Result<SmsSender> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(settings.timeout_seconds.max(1))).build()?;
        Ok(SmsSender { client, settings: settings.clone() })
    }

    pub async fn send(&self, delivery: &Claimed) -> Result<String, SendError> {
        let params = delivery.sms_params.clone().unwrap_or_else(|| json!({ "content": delivery.body }));
        let body = json!({
            "PhoneNumbers": delivery.destination,
            "SignName": self.settings.sign_name,
            "TemplateCode": delivery.sms_template.clone().unwrap_or_default(),
            "TemplateParam": params.to_string(),
            "OutId": delivery.id.to_string(),
        })
        .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.settings.access_key_secret.expose_secret().as_bytes())
            .map_err(|error| SendError::permanent("channel_not_configured", format!("{error}")))?;
        mac.update(body.as_bytes());
        let mut request = self
            .client
            .post(&self.settings.endpoint)
            .header("content-type", "application/json")
            .header("x-jinfu-access-key-id", &self.settings.access_key_id)
            .header("x-jinfu-signature", hex_encode(&mac.finalize().into_bytes()));
        for (key, value) in jinfu_platform::kafka::current_trace_headers() {
            request = request.header(key, value);
        }
        let response = request.body(body).send().await.map_err(|error| SendError::transient("gateway_unreachable", format!("{error}")))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let error = format!("HTTP {status}");
            return Err(if http_transient(status) { SendError::transient("gateway_status", error) } else { SendError::permanent("gateway_status", error) });
        }
        let answer: Answer = response.json().await.map_err(|error| SendError::transient("gateway_answer", format!("{error}")))?;
        match answer.code.as_str() {
            "OK" if !answer.biz_id.is_empty() => Ok(answer.biz_id),
            "OK" => Err(SendError::transient("gateway_answer", "OK without a BizId")),
            code if code_transient(code) => Err(SendError::transient("gateway_error", format!("{code} {}", answer.message))),
            code => Err(SendError::permanent("gateway_refused", format!("{code} {}", answer.message))),
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
