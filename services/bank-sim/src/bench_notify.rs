//! The notification benchmark's driver (scripts/bench-notify.sh): registers contacts for a set
//! of bidders, produces signed `ledger.events` (`deposit.received`, one section per event so an
//! SMS names its event), and watches the simulated gateways, run in this process, receive the
//! SMS and webhooks; the service's own counters give the inbox and e-mail deliveries.
//!
//! Figures: deliveries per second (every channel) from the first event produced to the last
//! delivery observed; p50/p99 from an event's production to its SMS at the gateway; exactly
//! once: each event's SMS arrived once, each webhook once, the gateway saw no repeat, and the
//! service counted as many inbox deliveries as events.

// Rates and quantiles of a measurement: floating point is what they are.
#![allow(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::signing::{Signer, SigningSettings};
use jinfu_proto::notification::v1 as pb;
use jinfu_proto::notification::v1::notification_service_client::NotificationServiceClient;
use serde_json::json;

use crate::gateways::Gateways;
use crate::notifications::Counters;
use crate::BankRecord;

pub struct BenchNotify {
    pub url: String,
    pub metrics_url: String,
    pub gateways: Gateways,
    pub webhook_secret: String,
    pub kafka: KafkaSettings,
    pub signing: SigningSettings,
    pub events: usize,
    pub bidders: usize,
    /// One bidder in this many has an e-mail address (the SMTP sink is a Python process).
    pub email_every: usize,
    /// Events produced per second; 0: all at once (a burst, to measure the drain).
    pub rate: usize,
    pub wait: Duration,
}

#[derive(Debug)]
pub struct Figures {
    pub deliveries: u64,
    pub by_channel: Counters,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub exactly_once: bool,
    pub detail: String,
}

fn bidder(index: usize) -> String {
    format!("91520100BN{index:07}X")
}

pub async fn run(bench: &BenchNotify, tokens: &TokenKeys) -> anyhow::Result<Figures> {
    let mut client = NotificationServiceClient::connect(bench.url.clone()).await?;
    let (mut expected_email, mut expected_webhook) = (0u64, 0u64);
    for index in 0..bench.bidders {
        let party = bidder(index);
        let webhook = index % 5 == 0;
        let request = pb::SetContactsRequest {
            party: party.clone(),
            email: if index % bench.email_every.max(1) == 0 { format!("{}@bench.jinfu.cn", party.to_ascii_lowercase()) } else { String::new() },
            phone: format!("137{index:08}"),
            webhook_url: if webhook { format!("http://{}/webhooks/{party}", bench.gateways.address) } else { String::new() },
            webhook_secret: if webhook { bench.webhook_secret.clone() } else { String::new() },
        };
        client.set_contacts(tokens.request(Role::Admin, "520000", "bench", 600, request)?).await?;
    }
    for event in 0..bench.events {
        let index = event % bench.bidders;
        expected_email += u64::from(index % bench.email_every.max(1) == 0);
        expected_webhook += u64::from(index % 5 == 0);
    }
    let signer = Signer::from_settings(&bench.signing)?;
    let producer = bench.kafka.producer()?;
    let topic = bench.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS);
    let started = Instant::now();
    let mut produced_at = Vec::with_capacity(bench.events);
    // At a rate: a tenth of a second's events every 100 ms, on schedule.
    let chunk_size = if bench.rate == 0 { 1_000 } else { (bench.rate / 10).max(1) };
    for (number, chunk) in (0..bench.events).collect::<Vec<_>>().chunks(chunk_size).enumerate() {
        if bench.rate > 0 {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started) + Duration::from_millis(100 * number as u64)).await;
        }
        let mut records = Vec::with_capacity(chunk.len());
        for &event in chunk {
            let party = bidder(event % bench.bidders);
            let data = json!({
                "bank": "ICBC", "bank_serial": format!("BENCH{event:09}"), "sub_account_number": format!("95588{event:011}"), "amount_fen": 5_000_000,
                "value_time": "2026-12-01T10:00:00+08:00", "entry_sequence": event, "section_id": format!("BENCH-{event:07}"), "bidder_uscc": party,
                "held_fen": 5_000_000, "required_fen": 5_000_000, "satisfied": true, "status": "matched",
            });
            let value = jinfu_platform::outbox::event_envelope("deposit.received", "520100", data);
            let mut headers = Vec::new();
            signer.sign_record(&value, &mut headers);
            records.push(BankRecord { key: party, value, headers });
        }
        let sent_at = started.elapsed();
        crate::produce_all(&producer, &topic, &records).await?;
        produced_at.extend(std::iter::repeat_n(sent_at, chunk.len()));
    }
    println!("[bench] produced {} events in {:.1} s", bench.events, started.elapsed().as_secs_f64());

    let events = bench.events as u64;
    let deadline = Instant::now() + bench.wait;
    let mut arrival: HashMap<usize, Duration> = HashMap::new();
    let mut counted = 0;
    let counters = loop {
        let sms = bench.gateways.sms();
        for message in &sms[counted..] {
            if let Some(event) = message.template_param.split("BENCH-").nth(1).and_then(|rest| rest.get(..7)).and_then(|digits| digits.parse::<usize>().ok()) {
                arrival.entry(event).or_insert_with(|| message.received.saturating_duration_since(started));
            }
        }
        counted = sms.len();
        let counters = crate::notifications::counters(&bench.metrics_url).await?;
        let sent = |channel: &str| counters.sent.get(channel).copied().unwrap_or(0);
        let done = sms.len() as u64 >= events && sent("inbox") >= events && sent("webhook") >= expected_webhook && sent("email") >= expected_email;
        if done || Instant::now() > deadline {
            break counters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let sent = |channel: &str| counters.sent.get(channel).copied().unwrap_or(0);
    let deliveries: u64 = counters.sent.values().sum();
    let mut latencies: Vec<f64> = arrival.iter().map(|(event, at)| (at.saturating_sub(produced_at[*event])).as_secs_f64() * 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    let sms = bench.gateways.sms();
    let (sms_requests, webhook_requests) = bench.gateways.requests();
    let webhooks = bench.gateways.webhooks().len() as u64;
    let exactly_once = sms.len() as u64 == events
        && arrival.len() as u64 == events
        && sms_requests == events
        && webhooks == expected_webhook
        && webhook_requests == expected_webhook
        && sent("inbox") == events
        && sent("email") == expected_email
        && counters.duplicates == 0
        && counters.failed == 0;
    let detail = format!(
        "{} SMS for {events} events ({sms_requests} requests), {webhooks} webhooks of {expected_webhook} ({webhook_requests} requests), {} e-mail of {expected_email}, {} inbox, {} duplicates, {} failed",
        sms.len(),
        sent("email"),
        sent("inbox"),
        counters.duplicates,
        counters.failed
    );
    Ok(Figures {
        deliveries,
        per_second: deliveries as f64 / seconds,
        seconds,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        exactly_once,
        detail,
        by_channel: counters,
    })
}
