//! Reading the platform's JSON events off Kafka: one size limit, one set of refusal codes
//! (`oversized`, `malformed_json`, `unsupported_schema_version`, `bad_field`), the tender
//! event every service consumes from `trading.events` (docs/schemas/trading.event.v1.json),
//! the envelope of Jinfu services' own events ([`EnvelopeV1`]) and the contract service's
//! `contract.signed` on `contract.events` ([`ContractSignedV1`]).

use chrono::{DateTime, FixedOffset};
use jinfu_ledger::ids::Uscc;
use jinfu_ledger::money::Fen;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::consumer::{Record, Refused};

/// The largest event value accepted; larger ones are refused as `oversized`.
pub const EVENT_BYTES_MAX: usize = 16 * 1024;

/// An event type with a `schema_version` field.
pub trait Versioned {
    fn schema_version(&self) -> i64;
}

/// Parses a record's value as a version-1 event of type `T`.
pub fn parse_v1<T: DeserializeOwned + Versioned>(record: &Record) -> Result<T, Refused> {
    if record.value.len() > EVENT_BYTES_MAX {
        return Err(Refused("oversized", format!("{} bytes, more than {EVENT_BYTES_MAX}", record.value.len())));
    }
    let event: T = serde_json::from_slice(&record.value).map_err(|error| Refused("malformed_json", error.to_string().replace(char::is_control, "?")))?;
    if event.schema_version() != 1 {
        return Err(Refused("unsupported_schema_version", format!("schema_version {} (expected 1)", event.schema_version())));
    }
    Ok(event)
}

/// A tender event from the e-trading system (trading.events v1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradingEventV1 {
    pub schema_version: i64,
    pub event_id: String,
    pub centre_id: String,
    pub section_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Versioned for TradingEventV1 {
    fn schema_version(&self) -> i64 {
        self.schema_version
    }
}

impl TradingEventV1 {
    /// Parses and checks a record of trading.events.
    pub fn parse(record: &Record) -> Result<TradingEventV1, Refused> {
        let event: TradingEventV1 = parse_v1(record)?;
        if [&event.event_id, &event.centre_id, &event.section_id].iter().any(|text| text.is_empty() || text.chars().any(char::is_control)) {
            return Err(Refused("bad_field", "event_id, centre_id and section_id must be non-empty text".into()));
        }
        Ok(event)
    }
}

/// Non-empty text without control characters: what an identifier from outside must be.
fn is_text(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(char::is_control)
}

/// An event of a Jinfu service in the platform envelope (`crate::outbox::event_envelope`), as
/// its outbox relay publishes it on one of [`crate::consumer::SIGNED_EVENT_TOPICS`].
#[derive(Debug, Clone, Deserialize)]
pub struct EnvelopeV1 {
    pub schema_version: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub centre_id: String,
    pub occurred_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Versioned for EnvelopeV1 {
    fn schema_version(&self) -> i64 {
        self.schema_version
    }
}

impl EnvelopeV1 {
    /// Parses and checks a record in the platform envelope.
    pub fn parse(record: &Record) -> Result<EnvelopeV1, Refused> {
        let envelope: EnvelopeV1 = parse_v1(record)?;
        if [&envelope.event_id, &envelope.event_type, &envelope.centre_id].iter().any(|text| !is_text(text)) {
            return Err(Refused("bad_field", "event_id, type and centre_id must be non-empty text".into()));
        }
        Ok(envelope)
    }
}

/// `contract.signed` on `contract.events`: the contract service records that a section's
/// contract was signed. It is the same fact as the e-trading system's `contract.signed` on
/// `trading.events` ([`ContractSignedV1::as_tender_event`]), so a consumer applies it on the
/// path it applies that one on, and once per section whichever of the two comes first.
#[derive(Debug, Clone)]
pub struct ContractSignedV1 {
    event_id: String,
    centre_id: String,
    section_id: String,
    supplier_uscc: Uscc,
    signed_at: DateTime<FixedOffset>,
    /// The event's data as published, the supplier's code added as `winner_uscc`: what the
    /// tender event carries, so an event id reused with other content is told from a replay.
    data: serde_json::Value,
}

/// The data of `contract.signed`, as written.
#[derive(Deserialize)]
struct SignedData {
    contract_id: String,
    section_id: String,
    supplier_uscc: String,
    purchaser_uscc: String,
    /// Yuan with at most two decimals, as text; not negative.
    amount: String,
    signed_at: DateTime<FixedOffset>,
}

impl ContractSignedV1 {
    /// The event type this is.
    pub const TYPE: &'static str = "contract.signed";

    /// The contract signing `envelope` carries, checked; `Ok(None)` for an event of any other
    /// type (drafts, invoices, payments), which does not concern deposits or bid guarantees.
    pub fn from_envelope(envelope: &EnvelopeV1) -> Result<Option<ContractSignedV1>, Refused> {
        if envelope.event_type != Self::TYPE {
            return Ok(None);
        }
        let bad = |sentence: String| Refused("bad_field", sentence);
        let data: SignedData = serde_json::from_value(envelope.data.clone()).map_err(|error| bad(format!("contract.signed data: {error}")))?;
        if !is_text(&data.contract_id) || !is_text(&data.section_id) {
            return Err(bad("contract.signed data: contract_id and section_id must be non-empty text".into()));
        }
        let uscc = |name: &str, text: &str| Uscc::parse(text).map_err(|error| bad(format!("contract.signed data.{name}: {error}")));
        let supplier_uscc = uscc("supplier_uscc", &data.supplier_uscc)?;
        uscc("purchaser_uscc", &data.purchaser_uscc)?;
        Fen::parse_balance_yuan(&data.amount).map_err(|error| bad(format!("contract.signed data.amount: {error}")))?;
        let mut tender_data = envelope.data.clone();
        if let Some(fields) = tender_data.as_object_mut() {
            fields.insert("winner_uscc".into(), serde_json::Value::String(supplier_uscc.to_string()));
        }
        Ok(Some(ContractSignedV1 {
            event_id: envelope.event_id.clone(),
            centre_id: envelope.centre_id.clone(),
            section_id: data.section_id,
            supplier_uscc,
            signed_at: data.signed_at,
            data: tender_data,
        }))
    }

    pub fn section_id(&self) -> &str {
        &self.section_id
    }

    pub fn supplier_uscc(&self) -> &Uscc {
        &self.supplier_uscc
    }

    /// The signing as the e-trading system's `contract.signed` would say it: the envelope's
    /// event id and centre, the data's section, signed at `signed_at`, the supplier as the
    /// winner (`data.winner_uscc`). Deduplicated by the consumer under its own source
    /// (`kafka:contract.events`), so ids of the two systems never meet.
    pub fn as_tender_event(&self) -> TradingEventV1 {
        TradingEventV1 {
            schema_version: 1,
            event_id: self.event_id.clone(),
            centre_id: self.centre_id.clone(),
            section_id: self.section_id.clone(),
            event_type: Self::TYPE.to_owned(),
            occurred_at: self.signed_at,
            data: self.data.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: serde_json::Value) -> Record {
        Record { partition: 0, offset: 0, value: serde_json::to_vec(&value).expect("json"), headers: vec![], timestamp: None }
    }

    fn envelope(event_type: &str, data: serde_json::Value) -> EnvelopeV1 {
        let value = json!({
            "schema_version": 1, "event_id": "0190a1b2-0000-7000-8000-000000000001", "type": event_type, "centre_id": "520100",
            "occurred_at": "2026-12-01T02:00:00Z", "data": data,
        });
        EnvelopeV1::parse(&record(value)).expect("a valid envelope")
    }

    fn signed_data() -> serde_json::Value {
        json!({
            "contract_id": "HT-2026-0001", "section_id": "GY-1", "supplier_uscc": supplier(), "purchaser_uscc": supplier(),
            "amount": "1200000.00", "signed_at": "2026-12-01T10:00:00+08:00",
        })
    }

    fn supplier() -> String {
        Uscc::with_check_character("91520100000000701").expect("a valid code").to_string()
    }

    fn code(data: serde_json::Value) -> &'static str {
        ContractSignedV1::from_envelope(&envelope("contract.signed", data)).expect_err("refused").0
    }

    #[test]
    fn a_contract_signing_reads_as_the_trading_systems_contract_signed_with_the_supplier_as_winner() {
        let signed = ContractSignedV1::from_envelope(&envelope("contract.signed", signed_data())).expect("valid").expect("a signing");
        let event = signed.as_tender_event();
        assert_eq!((event.event_type.as_str(), event.section_id.as_str(), event.centre_id.as_str()), ("contract.signed", "GY-1", "520100"));
        assert_eq!(event.event_id, "0190a1b2-0000-7000-8000-000000000001");
        assert_eq!(event.occurred_at, DateTime::parse_from_rfc3339("2026-12-01T10:00:00+08:00").expect("time"), "signed_at, not the envelope's time");
        assert_eq!(event.data["winner_uscc"], supplier());
        assert_eq!(event.data["contract_id"], "HT-2026-0001", "the rest of the data is kept for the content hash");
    }

    #[test]
    fn other_types_are_not_a_signing_and_a_bad_signing_is_refused_with_bad_field() {
        for other in ["contract.drafted", "invoice.received", "payment.recorded"] {
            assert!(ContractSignedV1::from_envelope(&envelope(other, json!({}))).expect("not refused").is_none(), "{other}");
        }
        let without = |name: &str| {
            let mut data = signed_data();
            data.as_object_mut().expect("an object").remove(name);
            data
        };
        let with = |name: &str, value: serde_json::Value| {
            let mut data = signed_data();
            data[name] = value;
            data
        };
        assert_eq!(code(without("section_id")), "bad_field");
        assert_eq!(code(without("signed_at")), "bad_field");
        assert_eq!(code(with("section_id", json!(" "))), "bad_field");
        assert_eq!(code(with("supplier_uscc", json!("91520100000000701"))), "bad_field");
        assert_eq!(code(with("purchaser_uscc", json!("91520100000000701O"))), "bad_field");
        assert_eq!(code(with("amount", json!("12.345"))), "bad_field");
        assert_eq!(code(with("amount", json!("-1.00"))), "bad_field");
        assert_eq!(code(with("amount", json!(1200000))), "bad_field", "the amount is text");
        assert_eq!(code(with("signed_at", json!("2026-12-01 10:00"))), "bad_field");
        assert_eq!(code(json!("not an object")), "bad_field");
    }

    #[test]
    fn an_envelope_without_an_id_or_in_another_version_is_refused() {
        let value = |id: &str, version: i64| json!({ "schema_version": version, "event_id": id, "type": "contract.signed", "centre_id": "520100", "occurred_at": "2026-12-01T02:00:00Z", "data": {} });
        assert_eq!(EnvelopeV1::parse(&record(value("", 1))).expect_err("refused").0, "bad_field");
        assert_eq!(EnvelopeV1::parse(&record(value("e-1", 2))).expect_err("refused").0, "unsupported_schema_version");
        assert_eq!(EnvelopeV1::parse(&Record { value: b"{".to_vec(), ..record(json!({})) }).expect_err("refused").0, "malformed_json");
    }
}
