//! Tender events from the e-trading system (`trading.events`, JSON v1,
//! docs/schemas/trading.event.v1.json): they keep sections' state and trigger refunds
//! (免申即退). Idempotent by source, centre and `event_id` (`crate::domain::tender_events`: a
//! replay changes nothing, a reused id with other content is refused with `event_id_reused`);
//! events arriving out of order are handled, not dropped (a contract signed before its award was
//! seen refunds everyone the award would have). Who is refunded on which event depends on the
//! section's regime (`crate::domain::refund_triggers`: an engineering award refunds nobody, its
//! contract signing everyone), and the period on the centre's rules for that regime and trigger.
//! The contract service's `contract.signed` (`contract.events`, `crate::contracts`) is applied on
//! the same path under its own source, so a section's contract signed twice refunds once.
//! Only `bids.opened` unseals a section
//! (`crate::domain::sealing`); after the deposit deadline `section.changed` may move the opening
//! only later (`opening_moved_earlier`). Effects and log lines name no bidder.
//!
//! A refund whose due date needs a calendar year not loaded yet is stored as
//! `pending_calendar` (no due date) instead of dead-lettering its event; [`schedule_pending`]
//! dates it once the year is loaded (by the load itself, and by [`run_calendar_refresh`] on
//! every replica).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::calendar::{Calendar, CalendarError, DayKind};
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::{info, warn};
use uuid::Uuid;

use crate::consumer::{refused, Handled, RecordHandler, Refused};
use crate::domain::calendar::{self as calendars, refund_dates, RefundClock, SharedCalendar, PENDING_CALENDAR};
use crate::domain::refund_triggers::{refunded_on, RefundTrigger, Refunded, Regime, LAW_REFUND_PERIOD_DAYS};
use crate::domain::sealing::may_move_opening;
use crate::domain::tender_events::{content_hash, seen_again, Seen, Source};
use crate::ingest::Record;
use crate::outbox::OutboxRows;
use crate::store::calendar as calendar_store;
use crate::store::tender_sections::{self as sections, ForfeitureMark, LockedSection};
use crate::store::trading_events::{self as store, AppliedEvent};
use jinfu_platform::events::TradingEventV1;

/// China Standard Time: dates of refund deadlines are Beijing dates.
pub use jinfu_ledger::calendar::china_date;

pub struct TradingHandler {
    /// The national calendar in force (seed and loaded years), shared with the refresher.
    pub calendar: SharedCalendar,
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
        self.apply_event(transaction, &event, &record.value, source, now).await
    }

    /// Applies one tender event parsed already — from a record of `trading.events`, a gRPC
    /// call, or the contract service's `contract.signed` (`crate::contracts`) — deduplicated
    /// under `source`, at `now`. `payload` is what was received, kept with the event.
    pub async fn apply_event(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        event: &TradingEventV1,
        payload: &[u8],
        source: Source<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Handled> {
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
        let Some(section) = sections::lock(transaction, &event.centre_id, &event.section_id).await? else {
            return refused("unknown_section", format!("section {} of centre {} is not registered", event.section_id, event.centre_id));
        };
        let effect = match self.effect(transaction, event, &section, now).await? {
            Ok(effect) => effect,
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        let occurred_at = event.occurred_at.with_timezone(&Utc);
        let applied = AppliedEvent {
            source: &source,
            centre_id: &event.centre_id,
            event_id: &event.event_id,
            section_id: &event.section_id,
            event_type: &event.event_type,
            occurred_at,
            payload,
            content_hash: &hash,
            effect: &effect,
        };
        store::record(transaction, &applied).await?;
        tracing::info!(event = %event.event_id, source = %source, kind = %event.event_type, section = %event.section_id, effect = %effect, "tender event applied");
        Ok(Handled::Applied)
    }

    /// What the event does to its section and its bidders' refunds: a sentence naming no bidder,
    /// or the refusal of the event.
    async fn effect(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        event: &TradingEventV1,
        section: &LockedSection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<String, Refused>> {
        let occurred_at = event.occurred_at.with_timezone(&Utc);
        let regime =
            Regime::parse(&section.regime).ok_or_else(|| anyhow::anyhow!("section {} has an unknown regime {:?}", event.section_id, section.regime))?;
        let trigger = Trigger { event, regime, occurred_at };
        let (centre, section_id, data) = (event.centre_id.as_str(), event.section_id.as_str(), &event.data);
        let refuse = |code: &'static str, sentence: &str| Ok(Err(Refused(code, sentence.to_owned())));
        Ok(Ok(match event.event_type.as_str() {
            "section.changed" => return Self::reschedule(transaction, event, section, now).await,
            "bidder.withdrew" => {
                let Some(bidder) = text_field(data, "bidder_uscc") else {
                    return refuse("bad_field", "data.bidder_uscc is required");
                };
                if occurred_at <= section.deposit_deadline {
                    let outcome = self.schedule(transaction, &trigger, RefundTrigger::Withdrawal, Bidders::Only(bidder)).await?;
                    format!("withdrawal before the deadline: {outcome}")
                } else {
                    "withdrawal after the deadline: no automatic refund; the deposit may be marked for forfeiture".to_owned()
                }
            }
            "bids.opened" => {
                sections::mark_opened(transaction, centre, section_id, occurred_at).await?;
                "bids opened".to_owned()
            }
            "award.announced" => {
                let Some(winner) = text_field(data, "winner_uscc") else {
                    return refuse("bad_field", "data.winner_uscc is required");
                };
                sections::record_award(transaction, centre, section_id, winner, occurred_at).await?;
                match refunded_on(regime, RefundTrigger::Award) {
                    Refunded::AllButTheWinner => {
                        let outcome = self.schedule(transaction, &trigger, RefundTrigger::Award, Bidders::AllBut(winner)).await?;
                        format!("award announced: {outcome} for the other bidders")
                    }
                    // Engineering (实施条例 art. 55, 57): a runner-up may still be awarded; everyone waits for the contract.
                    _ => "award announced: no refund until the contract is signed".to_owned(),
                }
            }
            "contract.signed" => {
                let Some(winner) = text_field(data, "winner_uscc").map(str::to_owned).or_else(|| section.winner_uscc.clone()) else {
                    return refuse("bad_field", "data.winner_uscc is required when no award was seen");
                };
                sections::record_contract(transaction, centre, section_id, &winner, occurred_at).await?;
                // Everyone not yet scheduled: the winner, and the others (engineering: always;
                // procurement: if the award was missed).
                let outcome = self.schedule(transaction, &trigger, RefundTrigger::ContractSigned, Bidders::All).await?;
                format!("contract signed: {outcome}")
            }
            "tender.terminated" | "tender.failed" => {
                sections::close(transaction, centre, section_id, &event.event_type).await?;
                let kind = if event.event_type == "tender.terminated" { RefundTrigger::Terminated } else { RefundTrigger::FailedTender };
                let outcome = self.schedule(transaction, &trigger, kind, Bidders::All).await?;
                format!("section closed: {outcome}")
            }
            "deposit.forfeiture_marked" => return Self::mark_forfeiture(transaction, event, occurred_at).await,
            "performance_deposit.required" => "recorded".to_owned(),
            other => return Ok(Err(Refused("unknown_event_type", format!("event type {other:?} is not part of v1")))),
        }))
    }

    /// `section.changed`: new times, the opening moved earlier only before the deposit deadline.
    async fn reschedule(
        transaction: &mut Transaction<'static, Postgres>,
        event: &TradingEventV1,
        section: &LockedSection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<String, Refused>> {
        let parse = |name: &str| text_field(&event.data, name).map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)));
        let (Ok(new_deadline), Ok(new_opening)) = (parse("deposit_deadline").transpose(), parse("bid_opening_time").transpose()) else {
            return Ok(Err(Refused("bad_field", "deposit_deadline and bid_opening_time must be RFC 3339 times with an offset".into())));
        };
        if let Some(Err(refusal)) = new_opening.map(|requested| may_move_opening(section.deposit_deadline, section.bid_opening_time, requested, now)) {
            return Ok(Err(Refused(refusal.code(), refusal.to_string())));
        }
        sections::reschedule(transaction, &event.centre_id, &event.section_id, new_deadline, new_opening).await?;
        Ok(Ok("section updated".to_owned()))
    }

    /// `deposit.forfeiture_marked`: the mark, and whether it came before the refund was ordered.
    async fn mark_forfeiture(
        transaction: &mut Transaction<'static, Postgres>,
        event: &TradingEventV1,
        occurred_at: DateTime<Utc>,
    ) -> anyhow::Result<Result<String, Refused>> {
        let data = &event.data;
        let (Some(bidder), Some(reason), Some(evidence)) = (text_field(data, "bidder_uscc"), text_field(data, "reason"), text_field(data, "evidence_ref"))
        else {
            return Ok(Err(Refused("bad_field", "data.bidder_uscc, data.reason and data.evidence_ref are required".into())));
        };
        let mark = ForfeitureMark {
            centre_id: &event.centre_id,
            section_id: &event.section_id,
            bidder_uscc: bidder,
            reason,
            evidence_ref: evidence,
            event_id: &event.event_id,
            marked_at: occurred_at,
        };
        Ok(Ok(match sections::mark_forfeiture(transaction, &mark).await?.as_deref() {
            None | Some("scheduled" | PENDING_CALENDAR) => "forfeiture of a deposit marked; it will not be refunded".to_owned(),
            Some(other) => format!("forfeiture of a deposit marked too late: its refund is already {other}"),
        }))
    }

    /// Schedules a refund for each chosen bidder holding a sub-account in the section, unless
    /// one exists. When the due date needs a calendar year with no data yet, the refunds wait
    /// as `pending_calendar` (no `refund.scheduled` event until they are dated).
    async fn schedule(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        trigger: &Trigger<'_>,
        kind: RefundTrigger,
        bidders: Bidders<'_>,
    ) -> anyhow::Result<Outcome> {
        let event = trigger.event;
        let name = kind.code();
        // The centre's period for this regime and trigger, else its general one (default 5, the law).
        let centre = sqlx::query(
            "SELECT coalesce(p.period_days, c.refund_period_days), c.refund_hold_working_days
             FROM centres c LEFT JOIN centre_refund_periods p ON p.centre_id = c.centre_id AND p.regime = $2 AND p.trigger = $3
             WHERE c.centre_id = $1",
        )
        .bind(&event.centre_id)
        .bind(trigger.regime.code())
        .bind(name)
        .fetch_one(&mut **transaction)
        .await?;
        let rules = RefundClock {
            regime: trigger.regime.code(),
            period_days: u32::try_from(centre.get::<i32, _>(0)).unwrap_or(LAW_PERIOD),
            hold_working_days: u32::try_from(centre.get::<i32, _>(1)).unwrap_or(1),
        };
        let calendar = centre_calendar(transaction, &self.calendar.current(), &event.centre_id).await?;
        let dates = match refund_dates(&calendar, rules, trigger.occurred_at) {
            Ok(dates) => Some(dates),
            Err(CalendarError::NoDataForYear(year)) => {
                warn!(centre = %event.centre_id, section = %event.section_id, year, "refund due date needs a calendar year not loaded: refunds wait as pending_calendar");
                None
            }
            Err(other) => return Err(other.into()),
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
        let mut outcome = Outcome::default();
        let mut outbox = OutboxRows::default();
        let (due, order_after) = (dates.map(|(due, _)| due), dates.map(|(_, order_after)| order_after));
        let status = if dates.is_some() { "scheduled" } else { PENDING_CALENDAR };
        for bidder in chosen {
            let inserted = sqlx::query(
                "INSERT INTO refunds (refund_id, centre_id, section_id, bidder_uscc, trigger, trigger_event_id, triggered_at, due_on, order_after, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (centre_id, section_id, bidder_uscc) DO NOTHING",
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
            .bind(status)
            .execute(&mut **transaction)
            .await?;
            if inserted.rows_affected() != 1 {
                continue;
            }
            match (due, order_after) {
                (Some(due), Some(order_after)) => {
                    outcome.scheduled += 1;
                    let data = json!({ "section_id": event.section_id, "bidder_uscc": bidder, "trigger": name, "due_on": due, "order_after": order_after });
                    outbox.push_event(&self.events_topic, &format!("{}:{}", event.centre_id, event.section_id), "refund.scheduled", &event.centre_id, data);
                }
                _ => outcome.pending += 1,
            }
        }
        outbox.insert(transaction).await?;
        Ok(outcome)
    }
}

/// What scheduling did: refunds dated, and refunds waiting for the calendar.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    scheduled: u64,
    pending: u64,
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |count: u64| if count == 1 { "" } else { "s" };
        write!(formatter, "{} refund{} scheduled", self.scheduled, plural(self.scheduled))?;
        if self.pending > 0 {
            write!(formatter, ", {} refund{} pending the calendar (due date needs a year not loaded yet)", self.pending, plural(self.pending))?;
        }
        Ok(())
    }
}

/// The centre's calendar: the national one with the centre's overrides on top.
async fn centre_calendar(transaction: &mut Transaction<'_, Postgres>, national: &Calendar, centre_id: &str) -> anyhow::Result<Calendar> {
    let overrides: Vec<(NaiveDate, DayKind)> = sqlx::query("SELECT day, kind FROM calendar_overrides WHERE centre_id = $1")
        .bind(centre_id)
        .fetch_all(&mut **transaction)
        .await?
        .iter()
        .map(|row| (row.get(0), if row.get::<String, _>(1) == "holiday" { DayKind::Holiday } else { DayKind::Workday }))
        .collect();
    Ok(national.with_overrides(&overrides))
}

/// Waiting refunds dated per round, at most.
const PENDING_PER_ROUND_MAX: i64 = 1_000;

/// Dates every refund waiting for the calendar that `national` (with each centre's overrides)
/// can date now, inside `transaction`, and publishes `refund.scheduled` for each. Refunds still
/// needing a missing year keep waiting. Returns how many were scheduled.
pub async fn schedule_pending(
    transaction: &mut Transaction<'_, Postgres>,
    national: &Calendar,
    events_topic: &str,
    locked: calendar_store::Locked,
) -> anyhow::Result<u64> {
    let pending = calendar_store::lock_pending(transaction, PENDING_PER_ROUND_MAX, locked).await?;
    let mut calendars: BTreeMap<String, Calendar> = BTreeMap::new();
    let mut outbox = OutboxRows::default();
    let mut scheduled = 0;
    for refund in &pending {
        if !calendars.contains_key(&refund.centre_id) {
            let calendar = centre_calendar(transaction, national, &refund.centre_id).await?;
            calendars.insert(refund.centre_id.clone(), calendar);
        }
        let Some(calendar) = calendars.get(&refund.centre_id) else { continue };
        let rules = RefundClock {
            regime: &refund.regime,
            period_days: u32::try_from(refund.period_days).unwrap_or(LAW_PERIOD),
            hold_working_days: u32::try_from(refund.hold_working_days).unwrap_or(1),
        };
        let (due, order_after) = match refund_dates(calendar, rules, refund.triggered_at) {
            Ok(dates) => dates,
            Err(CalendarError::NoDataForYear(_)) => continue,
            Err(other) => return Err(other.into()),
        };
        calendar_store::schedule_pending(transaction, refund.refund_id, due, order_after).await?;
        scheduled += 1;
        let data = json!({
            "section_id": refund.section_id, "bidder_uscc": refund.bidder_uscc, "trigger": refund.trigger, "due_on": due, "order_after": order_after,
        });
        outbox.push_event(events_topic, &format!("{}:{}", refund.centre_id, refund.section_id), "refund.scheduled", &refund.centre_id, data);
    }
    outbox.insert(transaction).await?;
    Ok(scheduled)
}

/// The national calendar as stored now: the seed with every loaded year, and its version.
pub async fn load_calendar(pool: &PgPool) -> anyhow::Result<(Calendar, i64)> {
    let version = calendar_store::version(pool).await?;
    let loaded: Vec<_> = calendar_store::loaded_years(pool).await?.into_iter().map(|year| year.data).collect();
    Ok((calendars::build(&Calendar::china(), &loaded), version))
}

/// Every `interval` until `shutdown` turns true: rebuilds `shared` when the stored version
/// moved (a year loaded through another replica or the CLI), dates the refunds waiting for the
/// calendar, and sets `jinfu_calendar_days_left`. A failed round is logged and retried.
pub async fn run_calendar_refresh(pool: PgPool, shared: SharedCalendar, events_topic: String, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(error) = refresh_calendar(&pool, &shared, &events_topic).await {
            warn!(error = %error, "refreshing the calendar failed; retrying next round");
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(interval) => {},
        }
    }
}

/// One refresher round (see [`run_calendar_refresh`]). Returns how many waiting refunds it dated.
pub async fn refresh_calendar(pool: &PgPool, shared: &SharedCalendar, events_topic: &str) -> anyhow::Result<u64> {
    let version = calendar_store::version(pool).await?;
    if version != shared.version() {
        let (calendar, version) = load_calendar(pool).await?;
        info!(version, years = ?calendar.years().collect::<Vec<_>>(), "calendar refreshed");
        shared.replace(calendar, version);
    }
    let calendar = shared.current();
    crate::observe::record_calendar_days_left(calendars::days_left(&calendar, Utc::now()));
    let mut transaction = pool.begin().await?;
    let scheduled = schedule_pending(&mut transaction, &calendar, events_topic, calendar_store::Locked::Skip).await?;
    transaction.commit().await?;
    if scheduled > 0 {
        info!(scheduled, "refunds waiting for the calendar scheduled");
    }
    Ok(scheduled)
}

struct Trigger<'a> {
    event: &'a TradingEventV1,
    regime: Regime,
    occurred_at: DateTime<Utc>,
}

/// The law's refund period, when a stored one cannot be read as days.
const LAW_PERIOD: u32 = LAW_REFUND_PERIOD_DAYS.unsigned_abs();

enum Bidders<'a> {
    All,
    Only(&'a str),
    AllBut(&'a str),
}

/// What loading a calendar year did.
#[derive(Debug, Clone, Copy)]
pub struct YearLoaded {
    pub outcome: calendars::Reload,
    pub load_id: i64,
    pub refunds_scheduled: u64,
}

/// Why loading a calendar year failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadYearError {
    #[error(transparent)]
    Refused(#[from] calendars::LoadRefused),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Loads one year of the national calendar (checked already: a [`YearData`] is consistent) on
/// behalf of `loaded_by`, in one transaction: decides it against the year in force and the
/// scheduled refunds depending on it, records the load (audit) and the year, and dates the
/// refunds waiting for the calendar with the new calendar. After the commit `shared` (this
/// process's calendar, when there is one) is replaced; other replicas follow by polling.
pub async fn load_calendar_year(
    pool: &PgPool,
    shared: Option<&SharedCalendar>,
    data: &jinfu_ledger::calendar::YearData,
    source: &str,
    loaded_by: &str,
    now: DateTime<Utc>,
    events_topic: &str,
) -> Result<YearLoaded, LoadYearError> {
    let failed = |error: sqlx::Error| LoadYearError::Failed(error.into());
    let mut transaction = pool.begin().await.map_err(failed)?;
    let in_force = calendar_store::lock_year(&mut transaction, data.year()).await.map_err(failed)?;
    let dependent = match calendars::year_span(data.year()) {
        Some((first, last)) => calendar_store::scheduled_refunds_spanning(&mut transaction, first, last).await.map_err(failed)?,
        None => 0,
    };
    let seed_has_year = Calendar::china().years().any(|year| year == data.year());
    let outcome = calendars::may_load(in_force.as_ref().map(|year| &year.data), seed_has_year, data, dependent)?;
    let load = calendar_store::NewLoad { data, source, loaded_by, now, outcome: outcome.code() };
    let load_id = calendar_store::record_load(&mut transaction, &load).await.map_err(failed)?;
    let loaded: Vec<_> = calendar_store::loaded_years_in(&mut transaction).await.map_err(failed)?.into_iter().map(|year| year.data).collect();
    let national = calendars::build(&Calendar::china(), &loaded);
    // Waits for rows a refresher round holds, so the answer counts every refund now dated.
    let refunds_scheduled = schedule_pending(&mut transaction, &national, events_topic, calendar_store::Locked::Wait).await?;
    calendar_store::set_refunds_scheduled(&mut transaction, load_id, refunds_scheduled).await.map_err(failed)?;
    transaction.commit().await.map_err(failed)?;
    info!(year = data.year(), outcome = outcome.code(), load_id, refunds_scheduled, by = %loaded_by, source = %source, "calendar year loaded");
    if let Some(shared) = shared {
        shared.replace(national, load_id);
    }
    Ok(YearLoaded { outcome, load_id, refunds_scheduled })
}
