//! Reading the platform's JSON events off Kafka: one size limit, one set of refusal codes
//! (`oversized`, `malformed_json`, `unsupported_schema_version`, `bad_field`), and the tender
//! event every service consumes from `trading.events` (docs/schemas/trading.event.v1.json).

use chrono::{DateTime, FixedOffset};
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
