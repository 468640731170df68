//! Simulated message gateways for the demo and the tests: an SMS gateway that takes the
//! notification service's SendSms calls (docs/notifications.md, "SMS gateway") and a webhook
//! receiver that checks Standard Webhooks signatures. Both keep what they accepted, deduplicate
//! on the caller's idempotency key (`OutId`, `webhook-id`) as a real provider or receiver should,
//! and list it over HTTP (`GET /sms/messages`, `GET /webhooks/messages`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One SMS the gateway accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Sms {
    pub biz_id: String,
    pub out_id: String,
    pub phone: String,
    pub sign_name: String,
    pub template_code: String,
    pub template_param: String,
    pub traceparent: Option<String>,
    /// When the gateway accepted it (benchmarks measure latency to here).
    #[serde(skip)]
    pub received: std::time::Instant,
}

/// One webhook call the receiver accepted (its signature verified).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: String,
    pub timestamp: i64,
    pub body: Value,
    pub traceparent: Option<String>,
}

#[derive(Default)]
struct Inner {
    sms: Vec<Sms>,
    sms_by_out_id: HashMap<String, String>,
    webhooks: Vec<Webhook>,
    webhook_ids: HashMap<String, ()>,
    /// Requests seen, including repeats (what deduplication absorbed).
    sms_requests: u64,
    webhook_requests: u64,
    /// Refuse every SMS request with a transient provider error (a gateway outage).
    sms_down: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    sms_secret: Vec<u8>,
    webhook_key: Vec<u8>,
    /// While true, an accepted SMS is recorded but its answer is held back (a lost answer).
    hold: watch::Sender<bool>,
}

/// A running pair of gateways.
#[derive(Clone)]
pub struct Gateways {
    pub address: SocketAddr,
    shared: Arc<Shared>,
}

impl Gateways {
    /// Starts both gateways on `listen`. `sms_secret` is the access key secret the SMS gateway
    /// checks each body's HMAC with; `webhook_secret` (`whsec_…`) the receiver's signing secret.
    pub async fn start(listen: &str, sms_secret: &str, webhook_secret: &str) -> anyhow::Result<Gateways> {
        let webhook_key = base64::engine::general_purpose::STANDARD
            .decode(webhook_secret.strip_prefix("whsec_").ok_or_else(|| anyhow::anyhow!("the webhook secret starts with whsec_"))?)?;
        let shared = Arc::new(Shared { inner: Mutex::default(), sms_secret: sms_secret.as_bytes().to_vec(), webhook_key, hold: watch::channel(false).0 });
        let router = Router::new()
            .route("/sms/send", post(send_sms))
            .route("/sms/messages", get(list_sms))
            .route("/webhooks/{party}", post(receive_webhook))
            .route("/webhooks/messages", get(list_webhooks))
            .with_state(shared.clone());
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Gateways { address, shared })
    }

    pub fn sms_url(&self) -> String {
        format!("http://{}/sms/send", self.address)
    }

    pub fn webhook_url(&self, party: &str) -> String {
        format!("http://{}/webhooks/{party}", self.address)
    }

    pub fn sms(&self) -> Vec<Sms> {
        self.shared.inner.lock().map(|inner| inner.sms.clone()).unwrap_or_default()
    }

    pub fn webhooks(&self) -> Vec<Webhook> {
        self.shared.inner.lock().map(|inner| inner.webhooks.clone()).unwrap_or_default()
    }

    /// (SMS requests, webhook requests) received, repeats included.
    pub fn requests(&self) -> (u64, u64) {
        self.shared.inner.lock().map(|inner| (inner.sms_requests, inner.webhook_requests)).unwrap_or_default()
    }

    /// Holds back (true) or releases (false) the answers to SMS requests.
    pub fn hold_answers(&self, hold: bool) {
        self.shared.hold.send_replace(hold);
    }

    /// Makes the SMS gateway refuse everything with a transient error (true) or work (false).
    pub fn set_sms_down(&self, down: bool) {
        if let Ok(mut inner) = self.shared.inner.lock() {
            inner.sms_down = down;
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

async fn send_sms(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
    let refuse = |code: &str, message: &str| (StatusCode::OK, Json(json!({"Code": code, "Message": message, "RequestId": uuid::Uuid::new_v4().to_string()})));
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&shared.sms_secret) else { return refuse("isp.SYSTEM_ERROR", "key") };
    mac.update(body.as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    if header(&headers, "x-jinfu-signature").as_deref() != Some(expected.as_str()) {
        return (StatusCode::FORBIDDEN, Json(json!({"Code": "SignatureDoesNotMatch", "Message": "the body's HMAC does not match"})));
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else { return refuse("isv.INVALID_PARAMETERS", "body is not JSON") };
    let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (phone, out_id) = (field("PhoneNumbers"), field("OutId"));
    if phone.len() != 11 || !phone.starts_with('1') {
        return refuse("isv.MOBILE_NUMBER_ILLEGAL", "the number is not a mainland mobile number");
    }
    let biz_id = {
        let Ok(mut inner) = shared.inner.lock() else { return refuse("isp.SYSTEM_ERROR", "lock") };
        inner.sms_requests += 1;
        if inner.sms_down {
            return refuse("isp.SYSTEM_ERROR", "the gateway is down");
        }
        match inner.sms_by_out_id.get(&out_id) {
            Some(biz_id) if !out_id.is_empty() => biz_id.clone(),
            _ => {
                let biz_id = format!("{}^0", uuid::Uuid::new_v4().simple());
                inner.sms_by_out_id.insert(out_id.clone(), biz_id.clone());
                let sms = Sms {
                    biz_id: biz_id.clone(),
                    out_id,
                    phone,
                    sign_name: field("SignName"),
                    template_code: field("TemplateCode"),
                    template_param: field("TemplateParam"),
                    traceparent: header(&headers, "traceparent"),
                    received: std::time::Instant::now(),
                };
                inner.sms.push(sms);
                biz_id
            }
        }
    };
    let mut hold = shared.hold.subscribe();
    while *hold.borrow_and_update() {
        if hold.changed().await.is_err() {
            break;
        }
    }
    (StatusCode::OK, Json(json!({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": uuid::Uuid::new_v4().to_string()})))
}

async fn list_sms(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let inner = shared.inner.lock().ok();
    Json(json!({"messages": inner.as_ref().map(|inner| inner.sms.clone()).unwrap_or_default(), "requests": inner.map_or(0, |inner| inner.sms_requests)}))
}

/// Verifies a Standard Webhooks signature: `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`,
/// any of the space-separated signatures, timestamp within five minutes.
pub fn verify_webhook(key: &[u8], id: &str, timestamp: &str, signatures: &str, body: &str, now: i64) -> bool {
    let Ok(seconds) = timestamp.parse::<i64>() else { return false };
    if (now - seconds).abs() > 300 {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return false };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|candidate| candidate == expected)
}

async fn receive_webhook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> StatusCode {
    let (Some(id), Some(timestamp), Some(signatures)) =
        (header(&headers, "webhook-id"), header(&headers, "webhook-timestamp"), header(&headers, "webhook-signature"))
    else {
        return StatusCode::BAD_REQUEST;
    };
    if !verify_webhook(&shared.webhook_key, &id, &timestamp, &signatures, &body, chrono::Utc::now().timestamp()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(mut inner) = shared.inner.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
    inner.webhook_requests += 1;
    if inner.webhook_ids.insert(id.clone(), ()).is_none() {
        let body = serde_json::from_str(&body).unwrap_or(Value::Null);
        inner.webhooks.push(Webhook { id, timestamp: timestamp.parse().unwrap_or_default(), body, traceparent: header(&headers, "traceparent") });
    }
    StatusCode::NO_CONTENT
}

async fn list_webhooks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let inner = shared.inner.lock().ok();
    Json(
        json!({"messages": inner.as_ref().map(|inner| inner.webhooks.clone()).unwrap_or_default(), "requests": inner.map_or(0, |inner| inner.webhook_requests)}),
    )
}
