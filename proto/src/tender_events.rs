//! Tender events as facts (trading.events v1), shared by every service that consumes them (the
//! ledger and the e-guarantee service deduplicate with exactly this content text). An event id
//! is unique only within its source —
//! the topic, or the gRPC caller that submitted it — and its centre: another centre's operator
//! who happens to use (or guesses) the same id must not make this centre's event a silent
//! no-op. Within a source and centre, the same id with the same content is a replay (applied
//! once); the same id with different content is refused (`event_id_reused`), never dropped.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Where a tender event came from: part of the key it is deduplicated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// Consumed from a topic, named without the deployment's prefix (`trading.events`).
    Topic(&'a str),
    /// Submitted over gRPC by `party` of centre `centre` (`SubmitTenderEvent`).
    Caller { centre: &'a str, party: &'a str },
}

impl Source<'_> {
    /// The stored text: `kafka:<topic>` or `grpc:<party>@<centre>`.
    pub fn code(&self) -> String {
        match self {
            Source::Topic(topic) => format!("kafka:{topic}"),
            Source::Caller { centre, party } => format!("grpc:{party}@{centre}"),
        }
    }
}

/// What an event says, as the text its content hash is taken of: type, section, instant (in
/// UTC, so the same instant written with another offset is the same event) and data, with
/// object keys sorted so that the order a producer wrote them in does not matter.
pub fn content_text(event_type: &str, section_id: &str, occurred_at: DateTime<Utc>, data: &Value) -> String {
    let mut text = String::new();
    canonical(&serde_json::json!([event_type, section_id, occurred_at.to_rfc3339(), data]), &mut text);
    text
}

/// The SHA-256 of [`content_text`], as stored in `trading_events.content_hash`.
pub fn content_hash(event_type: &str, section_id: &str, occurred_at: DateTime<Utc>, data: &Value) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(content_text(event_type, section_id, occurred_at, data).as_bytes()).to_vec()
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(key) {
                    canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// An event id met again in the same source and centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The same content: a redelivery or a replay, which changes nothing.
    Replay,
    /// Different content under a used id: refused with `event_id_reused`.
    Reused,
}

/// Compares an event with the one stored under its id. `stored_hash` is `None` for rows
/// recorded before content hashes were kept (each service's migration that added them): they
/// count as replays.
pub fn seen_again(stored_hash: Option<&[u8]>, hash: &[u8]) -> Seen {
    match stored_hash {
        Some(stored) if stored != hash => Seen::Reused,
        _ => Seen::Replay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).expect("time")
    }

    #[test]
    fn the_source_is_the_topic_or_the_caller_and_its_centre() {
        assert_eq!(Source::Topic("trading.events").code(), "kafka:trading.events");
        assert_eq!(Source::Caller { centre: "520100", party: "operator-1" }.code(), "grpc:operator-1@520100");
    }

    #[test]
    fn the_content_hash_ignores_key_order_and_offsets_but_not_what_the_event_says() {
        let opened = at("2026-12-01T09:30:00+08:00");
        let hash = content_hash("bids.opened", "GY-1", opened, &json!({ "a": 1, "b": { "y": 2, "x": [1, 2] } }));
        assert_eq!(hash, content_hash("bids.opened", "GY-1", at("2026-12-01T01:30:00Z"), &json!({ "b": { "x": [1, 2], "y": 2 }, "a": 1 })));
        assert_ne!(hash, content_hash("bids.opened", "GY-2", opened, &json!({ "a": 1, "b": { "y": 2, "x": [1, 2] } })));
        assert_ne!(hash, content_hash("section.changed", "GY-1", opened, &json!({ "a": 1, "b": { "y": 2, "x": [1, 2] } })));
        assert_ne!(hash, content_hash("bids.opened", "GY-1", opened + chrono::Duration::seconds(1), &json!({ "a": 1, "b": { "y": 2, "x": [1, 2] } })));
        assert_ne!(hash, content_hash("bids.opened", "GY-1", opened, &json!({ "a": 1, "b": { "y": 2, "x": [2, 1] } })));
        assert_eq!(content_text("bids.opened", "GY-1", opened, &json!({})), r#"["bids.opened","GY-1","2026-12-01T01:30:00+00:00",{}]"#);
    }

    #[test]
    fn the_same_id_is_a_replay_with_the_same_content_and_refused_with_other_content() {
        let hash = content_hash("bids.opened", "GY-1", at("2026-12-01T09:30:00+08:00"), &json!({}));
        assert_eq!(seen_again(Some(&hash), &hash), Seen::Replay);
        assert_eq!(seen_again(Some(&[0; 32]), &hash), Seen::Reused);
        assert_eq!(seen_again(None, &hash), Seen::Replay, "rows from before content hashes count as replays");
    }
}
