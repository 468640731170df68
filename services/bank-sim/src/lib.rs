//! A simulated bank. It writes credit notices exactly as docs/bank-integration.md tells a real
//! bank to: JSON v1 as the record value, keyed by virtual sub-account number, signed over the
//! value bytes, with the signature and key reference in headers.

pub mod demo;

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use jinfu_platform::signing::SigningKey;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::json;

/// The fields of one credit notice (v1).
#[derive(Debug, Clone)]
pub struct NoticeFields {
    pub event_id: String,
    pub centre_id: String,
    pub bank: String,
    pub bank_serial: String,
    pub account_number: String,
    pub sub_account_number: String,
    /// Yuan as a decimal string, e.g. "50000.00".
    pub amount: String,
    pub payer_name: String,
    pub payer_account: String,
    pub value_time: DateTime<FixedOffset>,
}

impl NoticeFields {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schema_version": 1,
            "event_id": self.event_id,
            "centre_id": self.centre_id,
            "bank": self.bank,
            "bank_serial": self.bank_serial,
            "account_number": self.account_number,
            "sub_account_number": self.sub_account_number,
            "amount": self.amount,
            "currency": "CNY",
            "payer_name": self.payer_name,
            "payer_account": self.payer_account,
            "payer_bank": "模拟银行",
            "value_time": self.value_time.to_rfc3339(),
            "occurred_at": self.value_time.to_rfc3339(),
        }))
        .expect("a notice serialises")
    }
}

/// A record ready to produce: key, value, headers.
#[derive(Debug, Clone)]
pub struct BankRecord {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Signs `value` with `key` and names the key by `key_ref`.
pub fn signed_record(key: &str, value: Vec<u8>, key_ref: &str, signing_key: &SigningKey) -> BankRecord {
    let signature = signing_key.sign(&value);
    BankRecord {
        key: key.to_owned(),
        value,
        headers: vec![
            ("jinfu-signature".into(), signature.into_bytes()),
            ("jinfu-signing-key".into(), key_ref.as_bytes().to_vec()),
        ],
    }
}

/// Produces records in order and waits until the broker has acknowledged every one.
pub async fn produce_all(producer: &FutureProducer, topic: &str, records: &[BankRecord]) -> anyhow::Result<()> {
    let sends = records.iter().map(|record| {
        let headers = jinfu_platform::kafka::with_trace_context(jinfu_platform::kafka::owned_headers(&record.headers));
        producer.send(
            FutureRecord::to(topic).key(&record.key).payload(&record.value).headers(headers),
            Timeout::After(Duration::from_secs(30)),
        )
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(error, _)| anyhow::anyhow!("producing a notice failed: {error}"))?;
    }
    Ok(())
}
