//! Bid guarantees that replace deposits: the ledger consumes `guarantee.events` (published by
//! the e-guarantee service, docs/schemas/guarantee.event.v1.json) and records each issued bid
//! guarantee against the bidder's deposit for the section; when the guarantee leaves force
//! (surrendered, released, expired, paid out) it stops counting. A record that is not a valid
//! event goes to `guarantee.events.dlq` with its reason; events of other types are skipped.

use futures::future::BoxFuture;
use serde::Deserialize;
use sqlx::{Postgres, Transaction};

use crate::consumer::{refused, Handled, RecordHandler};
use crate::ingest::Record;
use crate::store::guarantee_covers as store;
use jinfu_platform::events::{parse_v1, Versioned};

/// Events after which a guarantee no longer stands in for a deposit.
const ENDING: [&str; 4] = ["guarantee.surrendered", "guarantee.released", "guarantee.expired", "guarantee.claim_paid"];

pub struct GuaranteeHandler;

#[derive(Deserialize)]
struct Envelope {
    schema_version: i64,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    centre_id: String,
    #[serde(default)]
    data: serde_json::Value,
}

impl Versioned for Envelope {
    fn schema_version(&self) -> i64 {
        self.schema_version
    }
}

#[derive(Deserialize)]
struct Issued {
    guarantee_no: String,
    section_id: String,
    #[serde(rename = "type")]
    kind: String,
    bidder_uscc: String,
    amount_fen: i64,
    valid_to: chrono::NaiveDate,
}

impl RecordHandler for GuaranteeHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(apply(transaction, record))
    }
}

async fn apply(transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
    let envelope: Envelope = match parse_v1(record) {
        Ok(envelope) => envelope,
        Err(refusal) => return Ok(Handled::Refused(refusal)),
    };
    if ENDING.contains(&envelope.event_type.as_str()) {
        return end_cover(transaction, &envelope).await;
    }
    if envelope.event_type != "guarantee.issued" {
        return Ok(Handled::Applied);
    }
    let issued: Issued = match serde_json::from_value(envelope.data) {
        Ok(issued) => issued,
        Err(error) => return refused("bad_field", format!("guarantee.issued data: {error}")),
    };
    if issued.kind != "bid" {
        return Ok(Handled::Applied);
    }
    if issued.amount_fen <= 0 || [&issued.guarantee_no, &issued.section_id, &issued.bidder_uscc].iter().any(|text| text.is_empty()) {
        return refused("bad_field", "guarantee_no, section_id and bidder_uscc must be set and amount_fen positive");
    }
    if !store::section_exists(transaction, &envelope.centre_id, &issued.section_id).await? {
        return refused("unknown_section", format!("section {} of centre {} is not registered", issued.section_id, envelope.centre_id));
    }
    let cover = store::Cover {
        centre_id: &envelope.centre_id,
        section_id: &issued.section_id,
        bidder_uscc: &issued.bidder_uscc,
        guarantee_no: &issued.guarantee_no,
        amount_fen: issued.amount_fen,
        valid_to: issued.valid_to,
        event_id: &envelope.event_id,
    };
    store::insert(transaction, &cover).await?;
    Ok(Handled::Applied)
}

/// Marks the cover of the event's guarantee ended (idempotent: the first end is kept).
async fn end_cover(transaction: &mut Transaction<'static, Postgres>, envelope: &Envelope) -> anyhow::Result<Handled> {
    let Some(number) = envelope.data.get("guarantee_no").and_then(serde_json::Value::as_str).filter(|text| !text.is_empty()) else {
        return refused("bad_field", format!("{} needs data.guarantee_no", envelope.event_type));
    };
    store::end(transaction, &envelope.centre_id, number, &envelope.event_type).await?;
    Ok(Handled::Applied)
}
