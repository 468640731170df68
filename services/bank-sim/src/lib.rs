//! A simulated bank. It writes credit notices exactly as docs/bank-integration.md tells a real
//! bank to: JSON v1 as the record value, keyed by virtual sub-account number, signed over the
//! value bytes, with the signature and key reference in headers.

pub mod bench;
pub mod bench_credit;
pub mod bench_notify;
pub mod contracts;
pub mod credit;
pub mod demo;
pub mod gateways;
pub mod guarantees;
pub mod loans;
pub mod notifications;

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
        headers: vec![("jinfu-signature".into(), signature.into_bytes()), ("jinfu-signing-key".into(), key_ref.as_bytes().to_vec())],
    }
}

/// One line of an end-of-day statement (v1, docs/schemas/bank.statement.v1.json).
#[derive(Debug, Clone)]
pub struct StatementLine {
    pub serial: String,
    /// `credit` (money in) or `debit` (money out).
    pub direction: &'static str,
    pub amount: String,
    pub counterparty_name: String,
    pub counterparty_account: String,
    /// For credits to a virtual sub-account.
    pub sub_account_number: Option<String>,
    pub value_time: DateTime<FixedOffset>,
}

/// The header every part of a statement repeats.
#[derive(Debug, Clone)]
pub struct StatementHeader {
    pub statement_id: String,
    pub bank: String,
    pub account_number: String,
    pub centre_id: String,
    pub statement_date: chrono::NaiveDate,
    pub period_start: DateTime<FixedOffset>,
    pub cut_off: DateTime<FixedOffset>,
    pub opening_balance: String,
    pub closing_balance: String,
}

/// Most lines per statement part, as docs/bank-integration.md sets.
pub const STATEMENT_LINES_PER_PART: usize = 2000;

/// A statement as the records a bank sends: parts of at most 2,000 lines, each signed over its
/// value bytes, keyed by the statement id (so its parts stay in order on one partition).
pub fn statement_records(header: &StatementHeader, lines: &[StatementLine], key_ref: &str, signing_key: &SigningKey) -> Vec<BankRecord> {
    let parts = lines.len().div_ceil(STATEMENT_LINES_PER_PART).max(1);
    (0..parts)
        .map(|index| {
            let chunk = lines.iter().skip(index * STATEMENT_LINES_PER_PART).take(STATEMENT_LINES_PER_PART);
            let value = serde_json::to_vec(&json!({
                "schema_version": 1,
                "statement_id": header.statement_id,
                "bank": header.bank,
                "account_number": header.account_number,
                "centre_id": header.centre_id,
                "statement_date": header.statement_date,
                "period_start": header.period_start.to_rfc3339(),
                "cut_off": header.cut_off.to_rfc3339(),
                "opening_balance": header.opening_balance,
                "closing_balance": header.closing_balance,
                "part": index + 1,
                "parts": parts,
                "line_count": lines.len(),
                "lines": chunk.map(|line| {
                    let mut value = json!({
                        "serial": line.serial,
                        "direction": line.direction,
                        "amount": line.amount,
                        "counterparty_name": line.counterparty_name,
                        "counterparty_account": line.counterparty_account,
                        "value_time": line.value_time.to_rfc3339(),
                    });
                    if let (Some(number), Some(object)) = (&line.sub_account_number, value.as_object_mut()) {
                        object.insert("sub_account_number".into(), json!(number));
                    }
                    value
                }).collect::<Vec<_>>(),
            }))
            .expect("a statement part serialises");
            signed_record(&header.statement_id, value, key_ref, signing_key)
        })
        .collect()
}

/// Produces records in order and waits until the broker has acknowledged every one.
pub async fn produce_all(producer: &FutureProducer, topic: &str, records: &[BankRecord]) -> anyhow::Result<()> {
    let sends = records.iter().map(|record| {
        let headers = jinfu_platform::kafka::with_trace_context(jinfu_platform::kafka::owned_headers(&record.headers));
        producer.send(FutureRecord::to(topic).key(&record.key).payload(&record.value).headers(headers), Timeout::After(Duration::from_secs(30)))
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(error, _)| anyhow::anyhow!("producing a notice failed: {error}"))?;
    }
    Ok(())
}
