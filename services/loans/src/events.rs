//! Events on `loan.events` (docs/schemas/loan.event.v1.json), written to the outbox in the
//! transaction of the change they report, keyed by `<centre>:<loan_id>` so one loan's events
//! stay in order (lender events: `<province>:<lender_id>`).

use jinfu_ledger::Fen;
use jinfu_platform::outbox::OutboxRows;
use serde_json::Value;

use crate::store::Tx;

pub async fn push(transaction: &mut Tx, topic: &str, centre_id: &str, subject: &str, event_type: &str, data: Value) -> anyhow::Result<()> {
    let mut rows = OutboxRows::default();
    rows.push_event(topic, &format!("{centre_id}:{subject}"), event_type, centre_id, data);
    rows.insert(transaction).await?;
    metrics::counter!(jinfu_platform::metrics::LOANS_EVENTS, "type" => event_type.to_owned()).increment(1);
    Ok(())
}

/// An amount as events carry it: yuan with two decimals, as text.
pub fn yuan(fen: i64) -> String {
    Fen::from_fen(fen).to_yuan_string()
}
