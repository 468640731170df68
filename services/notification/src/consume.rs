//! The consumers: each event of ledger.events, guarantee.events, contract.events and
//! credit.events (verified against its publisher's keys by the platform) and of trading.events
//! becomes deliveries in the transaction that stores the consumer's offset, so a redelivered
//! event records nothing twice.
//!
//! Refusal codes (dead-letter reasons): the platform's envelope codes (`malformed_json`,
//! `unsupported_schema_version`, `bad_field`), the signature codes, and `template_failed` (an
//! event lacks a field its template needs; replay it once the template is fixed).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler};
use jinfu_platform::events::{EnvelopeV1, TradingEventV1};
use serde_json::Value;
use sqlx::{Postgres, Transaction};

use crate::compose::Composer;
use crate::domain::plan::{self, Incoming, Message};
use crate::domain::policy;
use crate::domain::tender_tags;
use crate::store::{contacts, deliveries, reminders, Tx};
use jinfu_ledger::calendar::Calendar;

/// Most parties told about one tender (interest tags).
const TENDER_AUDIENCE_MAX: i64 = 10_000;

/// The key that cancels a bidder's pending deposit reminder once its deposit is satisfied.
pub fn deposit_cancel_key(centre_id: &str, section_id: &str, bidder_uscc: &str) -> String {
    format!("deposit:{centre_id}:{section_id}:{bidder_uscc}")
}

/// Consumes one Jinfu service's `*.events` topic (wrap it in `consumer::Verified`).
pub struct ServiceEvents {
    /// The publisher: `ledger`, `guarantee`, `contract` or `credit`.
    pub source: &'static str,
    pub composer: Arc<Composer>,
    pub clock: SharedClock,
    /// The national working-day calendar, for deadline reminders.
    pub calendar: Arc<Calendar>,
}

impl RecordHandler for ServiceEvents {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(async move {
            relaxed_commit(transaction).await?;
            let envelope = match EnvelopeV1::parse(record) {
                Ok(envelope) => envelope,
                Err(refusal) => return Ok(Handled::Refused(refusal)),
            };
            let now = self.clock.now();
            let incoming = Incoming {
                source: self.source,
                event_type: &envelope.event_type,
                centre_id: &envelope.centre_id,
                occurred_at: envelope.occurred_at.with_timezone(&Utc),
                data: &envelope.data,
            };
            if self.source == "ledger" && envelope.event_type == "deposit.received" {
                track_deposit(transaction, &envelope.centre_id, &envelope.data, now).await?;
            }
            track_deadlines(transaction, &self.calendar, &incoming, now).await?;
            let event_id = format!("{}:{}", self.source, envelope.event_id);
            record_all(&self.composer, transaction, &event_id, &envelope.centre_id, &plan::plan(&incoming), now).await
        })
    }
}

/// Commits the record's transaction without waiting for the WAL flush. A PostgreSQL crash can
/// then lose the last instants of consumption — offsets and deliveries together, atomically —
/// and the records are consumed again: the deliveries come back with the same derived ids
/// (`store::deliveries::delivery_id`), so what was already sent is sent again with the same
/// idempotency key, which the SMS gateway and webhook receivers deduplicate (e-mail: the same
/// Message-ID). Nothing is lost; the money is not here.
async fn relaxed_commit(transaction: &mut Tx) -> anyhow::Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut **transaction).await?;
    Ok(())
}

/// Records the deadlines an event starts (reminded the working day before) and marks done those
/// it fulfils, cancelling a reminder not yet sent.
async fn track_deadlines(transaction: &mut Tx, calendar: &Calendar, incoming: &Incoming<'_>, now: DateTime<Utc>) -> anyhow::Result<()> {
    for deadline in plan::deadlines(incoming) {
        let due_at = jinfu_ledger::beijing::start_of(deadline.due_on.succ_opt().unwrap_or(deadline.due_on));
        let remind_at = policy::reminder_time(calendar, deadline.due_on);
        reminders::set_deadline_reminder(transaction, &deadline, incoming.centre_id, due_at, remind_at, now).await?;
    }
    for key in plan::fulfilled(incoming) {
        reminders::fulfil(transaction, &key, now).await?;
        deliveries::cancel(transaction, &key).await?;
    }
    Ok(())
}

/// Keeps the bidder's deposit position for reminders; a satisfied deposit cancels a pending one.
async fn track_deposit(transaction: &mut Tx, centre_id: &str, data: &Value, now: DateTime<Utc>) -> anyhow::Result<()> {
    let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let number = |key: &str| data.get(key).and_then(Value::as_i64).unwrap_or_default();
    let (section, bidder) = (text("section_id"), text("bidder_uscc"));
    if section.is_empty() || bidder.is_empty() {
        return Ok(());
    }
    let satisfied = data.get("satisfied").and_then(Value::as_bool).unwrap_or(false);
    let position = reminders::Position {
        centre_id,
        section_id: &section,
        bidder_uscc: &bidder,
        held_fen: number("held_fen"),
        required_fen: number("required_fen"),
        satisfied,
    };
    reminders::record_deposit(transaction, &position, now).await?;
    if satisfied {
        deliveries::cancel(transaction, &deposit_cancel_key(centre_id, &section, &bidder)).await?;
    }
    Ok(())
}

async fn record_all(
    composer: &Composer,
    transaction: &mut Tx,
    event_id: &str,
    centre_id: &str,
    messages: &[Message],
    now: DateTime<Utc>,
) -> anyhow::Result<Handled> {
    for message in messages {
        if let Err(failed) = composer.record(transaction, event_id, centre_id, message, None, now).await? {
            return refused("template_failed", failed.to_string());
        }
    }
    Ok(Handled::Applied)
}

/// Consumes trading.events: deposit deadlines (for reminders) and tender notices to the parties
/// whose interest tags match.
pub struct TradingEvents {
    pub composer: Arc<Composer>,
    pub clock: SharedClock,
}

impl RecordHandler for TradingEvents {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(async move {
            relaxed_commit(transaction).await?;
            let event = match TradingEventV1::parse(record) {
                Ok(event) => event,
                Err(refusal) => return Ok(Handled::Refused(refusal)),
            };
            if event.event_type != "section.changed" {
                return Ok(Handled::Applied);
            }
            let Some(deadline) = event.data.get("deposit_deadline").and_then(Value::as_str).and_then(|text| DateTime::parse_from_rfc3339(text).ok()) else {
                return Ok(Handled::Applied);
            };
            let now = self.clock.now();
            if !reminders::set_deadline(transaction, &event.centre_id, &event.section_id, deadline.with_timezone(&Utc)).await? {
                return Ok(Handled::Applied);
            }
            let regime = event.data.get("regime").and_then(Value::as_str);
            let audience = contacts::parties_tagged(transaction, &tender_tags(&event.centre_id, regime), TENDER_AUDIENCE_MAX).await?;
            let messages: Vec<Message> = audience.iter().map(|party| plan::tender_notice(&event.centre_id, &event.section_id, party, &event.data)).collect();
            let event_id = format!("trading:{}:{}", event.centre_id, event.event_id);
            record_all(&self.composer, transaction, &event_id, &event.centre_id, &messages, now).await
        })
    }
}
