//! Tender events from the e-trading system (`trading.events`, JSON v1,
//! docs/schemas/trading.event.v1.json): they keep sections' state and trigger refunds
//! (免申即退). Idempotent by source, centre and `event_id` (`crate::domain::tender_events`: a
//! replay changes nothing, a reused id with other content is refused with `event_id_reused`);
//! events arriving out of order are handled, not dropped (a contract signed before its award was
//! seen refunds everyone the award would have). Only `bids.opened` unseals a section
//! (`crate::domain::sealing`); after the deposit deadline `section.changed` may move the opening
//! only later (`opening_moved_earlier`). Effects and log lines name no bidder.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::calendar::{Calendar, DayKind};
use serde_json::json;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::consumer::{refused, Handled, RecordHandler, Refused};
use crate::domain::sealing::may_move_opening;
use crate::domain::tender_events::{content_hash, seen_again, Seen, Source};
use crate::ingest::Record;
use crate::outbox::OutboxRows;
use crate::store::trading_events::{self as store, AppliedEvent};
use jinfu_platform::events::TradingEventV1;

/// China Standard Time: dates of refund deadlines are Beijing dates.
pub use jinfu_ledger::calendar::china_date;

pub struct TradingHandler {
    pub calendar: Calendar,
    pub events_topic: String,
}

impl RecordHandler for TradingHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

fn text_field<'a>(data: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    data.get(name).and_then(serde_json::Value::as_str).filter(|text| !text.trim().is_empty() && !text.chars().any(char::is_control))
}

impl TradingHandler {
    /// Applies one event from the topic, now.
    pub async fn apply(&self, transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
        self.apply_from(transaction, record, Source::Topic(jinfu_platform::topics::TRADING_EVENTS), Utc::now()).await
    }

    /// Applies one event from `source` (the topic, or the gRPC call of the same name) at `now`.
    pub async fn apply_from(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        record: &Record,
        source: Source<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Handled> {
        let event = match TradingEventV1::parse(record) {
            Ok(event) => event,
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        let source = source.code();
        let hash = content_hash(&event.event_type, &event.section_id, event.occurred_at.with_timezone(&Utc), &event.data);
        if let Some(stored) = store::recorded_hash(transaction, &source, &event.centre_id, &event.event_id).await? {
            return match seen_again(stored.as_deref(), &hash) {
                Seen::Replay => Ok(Handled::Applied),
                Seen::Reused => refused(
                    "event_id_reused",
                    format!("event id {} of centre {} was applied before from {source} with other content", event.event_id, event.centre_id),
                ),
            };
        }
        // Two deliveries of one event that both find it new cannot both apply: the second
        // one's insert violates the key and its transaction rolls back.
        let section =
            sqlx::query("SELECT regime, deposit_deadline, winner_uscc, bid_opening_time FROM sections WHERE centre_id = $1 AND section_id = $2 FOR UPDATE")
                .bind(&event.centre_id)
                .bind(&event.section_id)
                .fetch_optional(&mut **transaction)
                .await?;
        let Some(section) = section else {
            return refused("unknown_section", format!("section {} of centre {} is not registered", event.section_id, event.centre_id));
        };
        let regime: String = section.get(0);
        let deadline: DateTime<Utc> = section.get(1);
        let known_winner: Option<String> = section.get(2);
        let opening: DateTime<Utc> = section.get(3);
        let occurred_at = event.occurred_at.with_timezone(&Utc);
        let trigger = Trigger { event: &event, regime: &regime, occurred_at };
        let data = &event.data;

        let effect = match event.event_type.as_str() {
            "section.changed" => {
                let parse = |name: &str| text_field(data, name).map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)));
                let new_deadline = parse("deposit_deadline").transpose();
                let new_opening = parse("bid_opening_time").transpose();
                let (Ok(new_deadline), Ok(new_opening)) = (new_deadline, new_opening) else {
                    return refused("bad_field", "deposit_deadline and bid_opening_time must be RFC 3339 times with an offset");
                };
                if let Some(Err(refusal)) = new_opening.map(|requested| may_move_opening(deadline, opening, requested, now)) {
                    return Ok(Handled::Refused(Refused(refusal.code(), refusal.to_string())));
                }
                sqlx::query(
                    "UPDATE sections SET deposit_deadline = coalesce($3, deposit_deadline), bid_opening_time = coalesce($4, bid_opening_time)
                     WHERE centre_id = $1 AND section_id = $2",
                )
                .bind(&event.centre_id)
                .bind(&event.section_id)
                .bind(new_deadline)
                .bind(new_opening)
                .execute(&mut **transaction)
                .await?;
                "section updated".to_owned()
            }
            "bidder.withdrew" => {
                let Some(bidder) = text_field(data, "bidder_uscc") else {
                    return refused("bad_field", "data.bidder_uscc is required");
                };
                if occurred_at <= deadline {
                    let scheduled = match self.schedule(transaction, &trigger, "withdrawal", Bidders::Only(bidder)).await? {
                        Ok(count) => count,
                        Err(refusal) => return Ok(Handled::Refused(refusal)),
                    };
                    format!("withdrawal before the deadline: {scheduled} refund scheduled")
                } else {
                    "withdrawal after the deadline: no automatic refund; the deposit may be marked for forfeiture".to_owned()
                }
            }
            "bids.opened" => {
                sqlx::query("UPDATE sections SET bids_opened_at = $3 WHERE centre_id = $1 AND section_id = $2")
                    .bind(&event.centre_id)
                    .bind(&event.section_id)
                    .bind(occurred_at)
                    .execute(&mut **transaction)
                    .await?;
                "bids opened".to_owned()
            }
            "award.announced" => {
                let Some(winner) = text_field(data, "winner_uscc") else {
                    return refused("bad_field", "data.winner_uscc is required");
                };
                sqlx::query("UPDATE sections SET winner_uscc = $3, awarded_at = $4 WHERE centre_id = $1 AND section_id = $2")
                    .bind(&event.centre_id)
                    .bind(&event.section_id)
                    .bind(winner)
                    .bind(occurred_at)
                    .execute(&mut **transaction)
                    .await?;
                match self.schedule(transaction, &trigger, "award", Bidders::AllBut(winner)).await? {
                    Ok(count) => format!("award announced: {count} refunds scheduled for the other bidders"),
                    Err(refusal) => return Ok(Handled::Refused(refusal)),
                }
            }
            "contract.signed" => {
                let winner = text_field(data, "winner_uscc").map(str::to_owned).or(known_winner);
                let Some(winner) = winner else {
                    return refused("bad_field", "data.winner_uscc is required when no award was seen");
                };
                sqlx::query("UPDATE sections SET winner_uscc = coalesce(winner_uscc, $3), contract_signed_at = $4 WHERE centre_id = $1 AND section_id = $2")
                    .bind(&event.centre_id)
                    .bind(&event.section_id)
                    .bind(&winner)
                    .bind(occurred_at)
                    .execute(&mut **transaction)
                    .await?;
                // Everyone not yet scheduled: the winner, and the others if the award was missed.
                match self.schedule(transaction, &trigger, "contract_signed", Bidders::All).await? {
                    Ok(count) => format!("contract signed: {count} refunds scheduled"),
                    Err(refusal) => return Ok(Handled::Refused(refusal)),
                }
            }
            "tender.terminated" | "tender.failed" => {
                sqlx::query("UPDATE sections SET open = false, closed_reason = $3 WHERE centre_id = $1 AND section_id = $2")
                    .bind(&event.centre_id)
                    .bind(&event.section_id)
                    .bind(&event.event_type)
                    .execute(&mut **transaction)
                    .await?;
                let trigger_name = if event.event_type == "tender.terminated" { "terminated" } else { "failed_tender" };
                match self.schedule(transaction, &trigger, trigger_name, Bidders::All).await? {
                    Ok(count) => format!("section closed: {count} refunds scheduled"),
                    Err(refusal) => return Ok(Handled::Refused(refusal)),
                }
            }
            "deposit.forfeiture_marked" => {
                let (Some(bidder), Some(reason), Some(evidence)) =
                    (text_field(data, "bidder_uscc"), text_field(data, "reason"), text_field(data, "evidence_ref"))
                else {
                    return refused("bad_field", "data.bidder_uscc, data.reason and data.evidence_ref are required");
                };
                let status: Option<String> = sqlx::query_scalar("SELECT status FROM refunds WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3")
                    .bind(&event.centre_id)
                    .bind(&event.section_id)
                    .bind(bidder)
                    .fetch_optional(&mut **transaction)
                    .await?;
                sqlx::query(
                    "INSERT INTO forfeiture_marks (centre_id, section_id, bidder_uscc, reason, evidence_ref, event_id, marked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&event.centre_id)
                .bind(&event.section_id)
                .bind(bidder)
                .bind(reason)
                .bind(evidence)
                .bind(&event.event_id)
                .bind(occurred_at)
                .execute(&mut **transaction)
                .await?;
                match status.as_deref() {
                    None | Some("scheduled") => "forfeiture of a deposit marked; it will not be refunded".to_owned(),
                    Some(other) => format!("forfeiture of a deposit marked too late: its refund is already {other}"),
                }
            }
            "performance_deposit.required" => "recorded".to_owned(),
            other => return refused("unknown_event_type", format!("event type {other:?} is not part of v1")),
        };
        let applied = AppliedEvent {
            source: &source,
            centre_id: &event.centre_id,
            event_id: &event.event_id,
            section_id: &event.section_id,
            event_type: &event.event_type,
            occurred_at,
            payload: &record.value,
            content_hash: &hash,
            effect: &effect,
        };
        store::record(transaction, &applied).await?;
        tracing::info!(event = %event.event_id, source = %source, kind = %event.event_type, section = %event.section_id, effect = %effect, "tender event applied");
        Ok(Handled::Applied)
    }

    /// Schedules a refund for each chosen bidder holding a sub-account in the section, unless
    /// one exists. Returns how many were scheduled, or a refusal when the calendar lacks data.
    async fn schedule(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        trigger: &Trigger<'_>,
        name: &str,
        bidders: Bidders<'_>,
    ) -> anyhow::Result<Result<u64, Refused>> {
        let event = trigger.event;
        let centre = sqlx::query("SELECT refund_period_days, refund_hold_working_days FROM centres WHERE centre_id = $1")
            .bind(&event.centre_id)
            .fetch_one(&mut **transaction)
            .await?;
        let period = u32::try_from(centre.get::<i32, _>(0)).unwrap_or(5);
        let hold = u32::try_from(centre.get::<i32, _>(1)).unwrap_or(1);
        let overrides: Vec<(NaiveDate, DayKind)> = sqlx::query("SELECT day, kind FROM calendar_overrides WHERE centre_id = $1")
            .bind(&event.centre_id)
            .fetch_all(&mut **transaction)
            .await?
            .iter()
            .map(|row| (row.get(0), if row.get::<String, _>(1) == "holiday" { DayKind::Holiday } else { DayKind::Workday }))
            .collect();
        let calendar = self.calendar.with_overrides(&overrides);
        let day = china_date(trigger.occurred_at);
        let due = if trigger.regime == "engineering" { calendar.add_calendar_days(day, period) } else { calendar.add_working_days(day, period) };
        let hold_until = if hold == 0 { Ok(day) } else { calendar.add_working_days(day, hold) };
        let (due, hold_until) = match (due, hold_until) {
            (Ok(due), Ok(hold_until)) => (due, hold_until),
            (Err(error), _) | (_, Err(error)) => return Ok(Err(Refused("calendar_missing_year", error.to_string()))),
        };
        let order_after = if hold == 0 {
            trigger.occurred_at
        } else {
            let start = hold_until.min(due).and_hms_opt(0, 0, 0).expect("midnight exists");
            jinfu_ledger::beijing::instant(start)
        };
        let all: Vec<String> = sqlx::query_scalar("SELECT bidder_uscc FROM sub_accounts WHERE centre_id = $1 AND section_id = $2 ORDER BY bidder_uscc")
            .bind(&event.centre_id)
            .bind(&event.section_id)
            .fetch_all(&mut **transaction)
            .await?;
        let chosen: BTreeSet<&String> = all
            .iter()
            .filter(|bidder| match bidders {
                Bidders::All => true,
                Bidders::Only(only) => bidder.as_str() == only,
                Bidders::AllBut(winner) => bidder.as_str() != winner,
            })
            .collect();
        let mut scheduled = 0;
        let mut outbox = OutboxRows::default();
        for bidder in chosen {
            let inserted = sqlx::query(
                "INSERT INTO refunds (refund_id, centre_id, section_id, bidder_uscc, trigger, trigger_event_id, triggered_at, due_on, order_after, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'scheduled') ON CONFLICT (centre_id, section_id, bidder_uscc) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(&event.centre_id)
            .bind(&event.section_id)
            .bind(bidder)
            .bind(name)
            .bind(&event.event_id)
            .bind(trigger.occurred_at)
            .bind(due)
            .bind(order_after)
            .execute(&mut **transaction)
            .await?;
            if inserted.rows_affected() == 1 {
                scheduled += 1;
                let data = json!({ "section_id": event.section_id, "bidder_uscc": bidder, "trigger": name, "due_on": due, "order_after": order_after });
                outbox.push_event(&self.events_topic, &format!("{}:{}", event.centre_id, event.section_id), "refund.scheduled", &event.centre_id, data);
            }
        }
        outbox.insert(transaction).await?;
        Ok(Ok(scheduled))
    }
}

struct Trigger<'a> {
    event: &'a TradingEventV1,
    regime: &'a str,
    occurred_at: DateTime<Utc>,
}

enum Bidders<'a> {
    All,
    Only(&'a str),
    AllBut(&'a str),
}
