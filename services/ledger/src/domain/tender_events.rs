//! Tender events as facts: the rules live with the wire format in `jinfu_proto::tender_events`,
//! shared with the e-guarantee service.

pub use jinfu_proto::tender_events::*;
