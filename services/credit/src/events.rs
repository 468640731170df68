//! Events on `credit.events` (docs/schemas/credit.event.v1.json), written to the outbox in the
//! transaction of the change they report, keyed by `<centre>:<subject>` so one subject's events
//! stay in order. Consumers that cache eligibility answers drop a subject's on any of them.

use jinfu_platform::outbox::OutboxRows;
use serde_json::Value;
use tonic::Status;

use crate::store::Tx;

pub async fn push(transaction: &mut Tx, topic: &str, centre_id: &str, subject: &str, event_type: &str, data: Value) -> Result<(), Status> {
    let mut rows = OutboxRows::default();
    rows.push_event(topic, &format!("{centre_id}:{subject}"), event_type, centre_id, data);
    rows.insert(transaction).await.map_err(|error| jinfu_platform::fields::internal("writing an event", error))
}
