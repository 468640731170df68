//! The guarantee lifecycle driven by the tender: tender events from `trading.events` (consumed
//! exactly once, docs/schemas/trading.event.v1.json) release a section's bid guarantees when the
//! contract is signed or the tender ends, and surrender (退保) a bidder's bid guarantee when it
//! withdraws before the deadline; `bids.opened` is recorded (the figures count a section's bid
//! guarantees from then on); a sweeper expires guarantees at the end of their validity.
//! Every change is an event on `guarantee.events`. Events are deduplicated per source (the
//! topic), centre and event id: a replay is a no-op, an id reused with other content is
//! dead-lettered with `event_id_reused` (`crate::domain::tender_events`). The contract service's
//! `contract.signed` (`contract.events`, `crate::contracts`) takes the same path under its own
//! source; only guarantees still in force are released, so a second signing releases nothing.

use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler};
use jinfu_platform::events::TradingEventV1;
use jinfu_platform::outbox::OutboxRows;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;
use tracing::warn;

use crate::domain::guarantees::{self, TenderEffect};
use crate::domain::tender_events::{content_hash, seen_again, topic_source, Seen};
use crate::domain::GuaranteeState;
use crate::seal::Sealer;
use crate::sections::Sections;
use crate::store::{self, Tx};

/// Applies tender events to guarantees.
pub struct TradingHandler {
    pub sealer: Sealer,
    pub events_topic: String,
    /// The ledger's sections: a withdrawal surrenders only before the deposit deadline.
    pub sections: Sections,
}

impl RecordHandler for TradingHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

impl TradingHandler {
    async fn apply(&self, transaction: &mut Tx, record: &Record) -> anyhow::Result<Handled> {
        let event = match TradingEventV1::parse(record) {
            Ok(event) => event,
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        self.apply_event(transaction, &event, &topic_source(jinfu_platform::topics::TRADING_EVENTS)).await
    }

    /// Applies one tender event parsed already — from `trading.events`, or the contract
    /// service's `contract.signed` (`crate::contracts`) — deduplicated under `source`
    /// (`kafka:<topic>`).
    pub async fn apply_event(&self, transaction: &mut Tx, event: &TradingEventV1, source: &str) -> anyhow::Result<Handled> {
        // Other tender events do not concern guarantees.
        let Some(effect) = guarantees::tender_effect(&event.event_type) else { return Ok(Handled::Applied) };
        let bidder = event.data.get("bidder_uscc").and_then(serde_json::Value::as_str).filter(|text| !text.is_empty());
        let occurred_at = event.occurred_at.with_timezone(&Utc);
        let hash = content_hash(&event.event_type, &event.section_id, occurred_at, &event.data);
        if let Some(stored) = store::trading_events::recorded_hash(transaction, source, &event.centre_id, &event.event_id).await? {
            return match seen_again(stored.as_deref(), &hash) {
                Seen::Replay => Ok(Handled::Applied),
                Seen::Reused => refused(
                    "event_id_reused",
                    format!("event id {} of centre {} was applied before from {source} with other content", event.event_id, event.centre_id),
                ),
            };
        }
        if let TenderEffect::Surrender { .. } = effect {
            if bidder.is_none() {
                return refused("bad_field", "bidder.withdrew needs data.bidder_uscc");
            }
            let Some(section) = self.sections.get(&event.centre_id, &event.section_id).await? else {
                return Ok(Handled::Applied);
            };
            if !guarantees::withdrawal_in_time(occurred_at, section.deposit_deadline) {
                return Ok(Handled::Applied);
            }
        }
        let applied = store::trading_events::AppliedEvent {
            source,
            centre_id: &event.centre_id,
            event_id: &event.event_id,
            section_id: &event.section_id,
            event_type: &event.event_type,
            content_hash: &hash,
        };
        let first = store::trading_events::record(transaction, &applied).await?;
        if !first {
            return Ok(Handled::Applied);
        }
        let (state, reason, changed) = match (effect, bidder) {
            (TenderEffect::Record, _) => return Ok(Handled::Applied),
            (TenderEffect::Surrender { reason }, Some(bidder)) => {
                let tag = self.sealer.bidder_tag(&event.centre_id, bidder);
                let changed = store::guarantees::surrender_bids_of(transaction, &event.centre_id, &event.section_id, &tag, reason, occurred_at).await?;
                (GuaranteeState::Surrendered, reason, changed)
            }
            (TenderEffect::Surrender { reason } | TenderEffect::Release { reason }, _) => {
                let changed = store::guarantees::release_bids(transaction, &event.centre_id, &event.section_id, reason, occurred_at).await?;
                (GuaranteeState::Released, reason, changed)
            }
        };
        let mut outbox = OutboxRows::default();
        for guarantee in &changed {
            outbox.push_event(
                &self.events_topic,
                &event.section_id,
                &format!("guarantee.{}", state.code()),
                &event.centre_id,
                serde_json::json!({
                    "guarantee_no": guarantee.guarantee_no,
                    "section_id": event.section_id,
                    "reason": reason,
                    "trading_event_id": event.event_id,
                }),
            );
        }
        outbox.insert(transaction).await?;
        Ok(Handled::Applied)
    }
}

/// Marks guarantees in force whose validity ended (Beijing date) as expired, every `interval`,
/// until `shutdown` turns true.
pub async fn run_expiry(pool: PgPool, events_topic: String, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(error) = expire_once(&pool, &events_topic).await {
            warn!(error = %error, "expiring guarantees failed; retried next round");
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(interval) => {},
        }
    }
}

/// One expiry round; returns how many guarantees expired.
pub async fn expire_once(pool: &PgPool, events_topic: &str) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let expired = store::guarantees::expire(&mut transaction).await?;
    let mut outbox = OutboxRows::default();
    for guarantee in &expired {
        outbox.push_event(
            events_topic,
            &guarantee.section_id,
            "guarantee.expired",
            &guarantee.centre_id,
            serde_json::json!({
                "guarantee_no": guarantee.guarantee_no,
                "section_id": guarantee.section_id,
                "valid_to": guarantee.valid_to,
            }),
        );
    }
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(expired.len())
}
