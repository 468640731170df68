//! The ledger's outbox is the platform's (`jinfu_platform::outbox`); `ledger.events` messages use
//! its envelope (docs/schemas/ledger.event.v1.json).

pub use jinfu_platform::outbox::{relay_once, run_relay, trace_headers, OutboxRows};

/// The envelope of every `ledger.events` message.
pub fn ledger_event(event_type: &str, centre_id: &str, data: serde_json::Value) -> Vec<u8> {
    jinfu_platform::outbox::event_envelope(event_type, centre_id, data)
}
