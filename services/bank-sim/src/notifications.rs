//! The notification part of the demo: every bidder registers where it wants to be told (an
//! e-mail address at the SMTP sink, a phone at the simulated SMS gateway, and for every fifth
//! bidder a webhook at the simulated receiver) before the first transfer; at the end the
//! service's own counters give the summary line, and one message of each kind is shown as the
//! gateways and the SMTP sink received it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::notification::v1 as pb;
use jinfu_proto::notification::v1::notification_service_client::NotificationServiceClient;

pub struct NotificationDemo {
    /// The service's gRPC endpoint.
    pub url: String,
    /// Its Prometheus endpoint, `http://…/metrics`.
    pub metrics_url: String,
    /// The simulated gateways' base URL, `http://127.0.0.1:8025`.
    pub gateways_url: String,
    /// The webhook receiver's `whsec_` secret.
    pub webhook_secret: String,
    /// The SMTP sink's Maildir.
    pub maildir: Option<std::path::PathBuf>,
}

/// The demo's mobile number of bidder `index`.
fn phone(index: usize) -> String {
    format!("139{:08}", index % 100_000_000)
}

/// Registers contacts for `bidders` — (centre, USCC), each as itself with a bidder token of its
/// centre — and says so.
pub async fn register(demo: &NotificationDemo, tokens: &TokenKeys, bidders: &[(String, String)]) -> anyhow::Result<()> {
    let mut client = NotificationServiceClient::connect(demo.url.clone()).await?;
    for (index, (centre, uscc)) in bidders.iter().enumerate() {
        let webhook = index % 5 == 0;
        let request = pb::SetContactsRequest {
            party: uscc.clone(),
            email: format!("{}@bidders.demo.jinfu.cn", uscc.to_ascii_lowercase()),
            phone: phone(index),
            webhook_url: if webhook { format!("{}/webhooks/{uscc}", demo.gateways_url) } else { String::new() },
            webhook_secret: if webhook { demo.webhook_secret.clone() } else { String::new() },
        };
        client.set_contacts(tokens.request(Role::Bidder, centre, uscc, 600, request)?).await?;
    }
    println!("{} bidders registered their e-mail, phone and (one in five) webhook with the notification service", bidders.len());
    Ok(())
}

/// The service's counters: sent by channel, duplicates, failed, backlog.
#[derive(Debug, Default, PartialEq)]
pub struct Counters {
    pub sent: BTreeMap<String, u64>,
    pub duplicates: u64,
    pub failed: u64,
    pub backlog: u64,
}

/// Reads the counters from the service's Prometheus endpoint.
pub async fn counters(metrics_url: &str) -> anyhow::Result<Counters> {
    let text = reqwest::get(metrics_url).await?.text().await?;
    let mut counters = Counters::default();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        // Counters and gauges of whole things, printed as integers (a fraction is cut off).
        let value = value.split('.').next().and_then(|whole| whole.parse::<u64>().ok()).unwrap_or(0);
        let channel = name.split("channel=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_owned();
        if name.starts_with("jinfu_notifications_sent_total") {
            *counters.sent.entry(channel).or_default() += value;
        } else if name.starts_with("jinfu_notifications_duplicates_total") {
            counters.duplicates += value;
        } else if name.starts_with("jinfu_notifications_failed_total") {
            counters.failed += value;
        } else if name.starts_with("jinfu_notification_backlog") {
            counters.backlog += value;
        }
    }
    Ok(counters)
}

/// Waits until nothing is waiting and the counters stood still for three seconds (at most
/// `wait`), then prints the summary line and one message of each kind.
pub async fn summarise(demo: &NotificationDemo, wait: Duration) -> anyhow::Result<Counters> {
    let started = Instant::now();
    let mut last = counters(&demo.metrics_url).await?;
    let mut still = Instant::now();
    while started.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = counters(&demo.metrics_url).await?;
        if now != last {
            last = now;
            still = Instant::now();
        } else if last.backlog == 0 && still.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let count = |channel: &str| last.sent.get(channel).copied().unwrap_or(0);
    let total: u64 = last.sent.values().sum();
    println!(
        "notifications: {total} sent ({} e-mail, {} SMS, {} webhook, {} inbox), {} duplicates suppressed, {} failed",
        count("email"),
        count("sms"),
        count("webhook"),
        count("inbox"),
        last.duplicates,
        last.failed
    );
    show_examples(demo).await;
    Ok(last)
}

async fn show_examples(demo: &NotificationDemo) {
    let first = |url: String| async move {
        let listing: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        listing["messages"].as_array()?.iter().find(|message| message.to_string().contains("尚差")).or_else(|| listing["messages"].as_array()?.first()).cloned()
    };
    if let Some(sms) = first(format!("{}/sms/messages", demo.gateways_url)).await {
        let text = serde_json::from_str::<serde_json::Value>(sms["template_param"].as_str().unwrap_or("{}")).ok();
        println!(
            "  an SMS ({} to {}): {}",
            sms["template_code"].as_str().unwrap_or(""),
            sms["phone"].as_str().unwrap_or(""),
            text.as_ref().and_then(|text| text["content"].as_str()).unwrap_or("")
        );
    }
    if let Some(webhook) = first(format!("{}/webhooks/messages", demo.gateways_url)).await {
        println!("  a webhook body (webhook-id {}): {}", webhook["id"].as_str().unwrap_or(""), webhook["body"]);
    }
    if let Some(maildir) = &demo.maildir {
        let newest = std::fs::read_dir(maildir.join("new"))
            .ok()
            .and_then(|entries| entries.flatten().max_by_key(|entry| entry.metadata().and_then(|meta| meta.modified()).ok()));
        if let Some(text) = newest.and_then(|entry| std::fs::read_to_string(entry.path()).ok()) {
            println!("  an e-mail as the SMTP sink stored it (headers as received, the base64 body decoded):");
            let (headers, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            for line in headers.lines().filter(|line| ["From:", "To:", "Subject:", "Message-ID:", "Content-Type:"].iter().any(|name| line.starts_with(name))) {
                println!("    {line}");
            }
            let encoded: String = body.split_whitespace().collect();
            let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok().and_then(|bytes| String::from_utf8(bytes).ok());
            for line in decoded.as_deref().unwrap_or(body).lines() {
                println!("    | {}", line.trim_end_matches('\r'));
            }
        }
    }
}
