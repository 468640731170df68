//! Events on `contract.events` (docs/schemas/contract.event.v1.json), written to the outbox in
//! the transaction of the change they report. Every event is keyed by `<centre>:<contract_id>`
//! (or `<centre>:<section_id>` for an award's clock), so one contract's events stay in order.

use jinfu_ledger::Fen;
use jinfu_platform::outbox::OutboxRows;
use serde_json::Value;

use crate::store::Tx;

/// Events of one transaction.
pub struct Events<'a> {
    topic: &'a str,
    rows: OutboxRows,
}

impl<'a> Events<'a> {
    pub fn new(topic: &'a str) -> Events<'a> {
        Events { topic, rows: OutboxRows::default() }
    }

    /// Queues `event_type` about `subject` (a contract id, or a section id) of `centre_id`.
    pub fn push(&mut self, centre_id: &str, subject: &str, event_type: &str, data: Value) {
        self.rows.push_event(self.topic, &format!("{centre_id}:{subject}"), event_type, centre_id, data);
    }

    pub async fn insert(self, transaction: &mut Tx) -> anyhow::Result<()> {
        self.rows.insert(transaction).await
    }
}

/// An amount as events carry it: yuan with two decimals, as text.
pub fn yuan(fen: i64) -> String {
    Fen::from_fen(fen).to_yuan_string()
}
