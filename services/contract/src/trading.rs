//! Tender events from the e-trading system (`trading.events`, docs/schemas/trading.event.v1.json):
//! an award starts the signing clock of its section (the supplier is its winner); the tender
//! ending, or the e-trading system reporting the contract signed, stops it. Deduplicated by
//! source, centre and event id (`jinfu_proto::tender_events`): a replay changes nothing, an id
//! reused with other content is dead-lettered `event_id_reused`. Other event types are not this
//! service's concern and are skipped.

use chrono::Utc;
use futures::future::BoxFuture;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler};
use jinfu_platform::events::TradingEventV1;
use jinfu_proto::tender_events::{content_hash, seen_again, Seen, Source};
use serde_json::json;
use sqlx::{Postgres, Transaction};

use crate::domain::is_uscc;
use crate::events::Events;
use crate::store::{awards, rules, Tx};

pub struct TradingHandler {
    pub events_topic: String,
    pub calendar: crate::calendar::SharedCalendar,
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
        if !matches!(event.event_type.as_str(), "award.announced" | "contract.signed" | "tender.terminated" | "tender.failed") {
            return Ok(Handled::Applied);
        }
        let occurred_at = event.occurred_at.with_timezone(&Utc);
        let source = Source::Topic(jinfu_platform::topics::TRADING_EVENTS).code();
        let hash = content_hash(&event.event_type, &event.section_id, occurred_at, &event.data);
        if let Some(stored) = awards::recorded_hash(transaction, &source, &event.centre_id, &event.event_id).await? {
            return match seen_again(Some(&stored), &hash) {
                Seen::Replay => Ok(Handled::Applied),
                Seen::Reused => {
                    refused("event_id_reused", format!("event id {} of centre {} was applied before with other content", event.event_id, event.centre_id))
                }
            };
        }
        if jinfu_ledger::ids::CentreCode::parse(&event.centre_id).is_err() {
            return refused("bad_field", "centre_id must be a centre code of six digits");
        }
        let (centre, section) = (event.centre_id.as_str(), event.section_id.as_str());
        match event.event_type.as_str() {
            "award.announced" => {
                let Some(winner) = event.data.get("winner_uscc").and_then(serde_json::Value::as_str).filter(|text| is_uscc(text)) else {
                    return refused(
                        "bad_field",
                        "award.announced needs data.winner_uscc, a unified social credit code (18 characters, upper-case, correct check character)",
                    );
                };
                if !awards::record(transaction, centre, section, winner, occurred_at, &event.event_id).await? {
                    awards::record_event(transaction, &source, centre, &event.event_id, &event.event_type, &hash).await?;
                    return Ok(Handled::Applied);
                }
                let centre_rules = rules::centre_rules(&mut **transaction, centre).await?;
                let sign_by = centre_rules.sign_by(&self.calendar.current(), jinfu_ledger::beijing::date(occurred_at)).ok();
                let mut events = Events::new(&self.events_topic);
                let data =
                    json!({ "section_id": section, "supplier_uscc": winner, "awarded_at": jinfu_ledger::beijing::rfc3339(occurred_at), "sign_by": sign_by });
                events.push(centre, section, "award.recorded", data);
                events.insert(transaction).await?;
            }
            "contract.signed" => awards::close(transaction, centre, section, "contract signed in the e-trading system").await?,
            other => awards::close(transaction, centre, section, if other == "tender.terminated" { "tender terminated" } else { "tender failed" }).await?,
        }
        awards::record_event(transaction, &source, centre, &event.event_id, &event.event_type, &hash).await?;
        Ok(Handled::Applied)
    }
}
