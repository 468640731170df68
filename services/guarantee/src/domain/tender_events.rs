//! Tender events as facts: the rules live with the wire format in `jinfu_proto::tender_events`,
//! shared with the ledger (the content text must be the same in both).

pub use jinfu_proto::tender_events::*;

/// The source of events consumed from `topic` (named without the deployment's prefix), as
/// stored in `trading_events.source`.
pub fn topic_source(topic: &str) -> String {
    Source::Topic(topic).code()
}
