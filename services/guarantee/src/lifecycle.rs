//! The guarantee lifecycle driven by the tender: tender events from `trading.events` (consumed
//! exactly once, docs/schemas/trading.event.v1.json) release a section's bid guarantees when the
//! contract is signed or the tender ends, and surrender (退保) a bidder's bid guarantee when it
//! withdraws before the deadline; `bids.opened` is recorded (the figures count a section's bid
//! guarantees from then on); a sweeper expires guarantees at the end of their validity.
//! Every change is an event on `guarantee.events`.

use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler};
use jinfu_platform::events::TradingEventV1;
use jinfu_platform::outbox::OutboxRows;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::warn;

use crate::seal::Sealer;
use crate::sections::Sections;

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
    async fn apply(&self, transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
        let event = match TradingEventV1::parse(record) {
            Ok(event) => event,
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        let (state, reason) = match event.event_type.as_str() {
            "contract.signed" => ("released", "contract signed"),
            "tender.terminated" => ("released", "tender terminated"),
            "tender.failed" => ("released", "tender failed"),
            "bidder.withdrew" => ("surrendered", "the bidder withdrew before the deadline"),
            // Recorded only: figures count a section's bid guarantees from its opening on.
            "bids.opened" => ("", ""),
            // Other tender events do not concern guarantees.
            _ => return Ok(Handled::Applied),
        };
        let bidder = event.data.get("bidder_uscc").and_then(serde_json::Value::as_str).filter(|text| !text.is_empty());
        if state == "surrendered" {
            let Some(_) = bidder else {
                return refused("bad_field", "bidder.withdrew needs data.bidder_uscc");
            };
            // Withdrawing after the deposit deadline forfeits the guarantee's protection: it
            // stays in force so the tenderer can claim (withdrew_after_deadline).
            let Some(section) = self.sections.get(&event.centre_id, &event.section_id).await? else {
                return Ok(Handled::Applied);
            };
            // As the ledger counts it: a withdrawal at the deadline instant is still in time.
            if event.occurred_at.with_timezone(&Utc) > section.deposit_deadline {
                return Ok(Handled::Applied);
            }
        }
        let first = sqlx::query(
            "INSERT INTO trading_events (event_id, centre_id, section_id, event_type) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(&event.centre_id)
        .bind(&event.section_id)
        .bind(&event.event_type)
        .execute(&mut **transaction)
        .await?
        .rows_affected()
            > 0;
        if !first || state.is_empty() {
            return Ok(Handled::Applied);
        }
        let changed = if let (true, Some(bidder)) = (state == "surrendered", bidder) {
            let tag = self.sealer.bidder_tag(&event.centre_id, bidder);
            sqlx::query(
                "UPDATE guarantees g SET state = 'surrendered', state_reason = $4, state_changed_at = $5
                 FROM applications a
                 WHERE a.application_id = g.application_id AND g.centre_id = $1 AND g.section_id = $2 AND a.bidder_tag = $3
                   AND g.kind = 'bid' AND g.state = 'issued'
                 RETURNING g.guarantee_no",
            )
            .bind(&event.centre_id)
            .bind(&event.section_id)
            .bind(&tag)
            .bind(reason)
            .bind(event.occurred_at.with_timezone(&Utc))
            .fetch_all(&mut **transaction)
            .await?
        } else {
            sqlx::query(
                "UPDATE guarantees SET state = 'released', state_reason = $3, state_changed_at = $4
                 WHERE centre_id = $1 AND section_id = $2 AND kind = 'bid' AND state = 'issued'
                 RETURNING guarantee_no",
            )
            .bind(&event.centre_id)
            .bind(&event.section_id)
            .bind(reason)
            .bind(event.occurred_at.with_timezone(&Utc))
            .fetch_all(&mut **transaction)
            .await?
        };
        let mut outbox = OutboxRows::default();
        for row in &changed {
            outbox.push_event(&self.events_topic, &event.section_id, &format!("guarantee.{state}"), &event.centre_id, serde_json::json!({
                "guarantee_no": row.get::<String, _>(0),
                "section_id": event.section_id,
                "reason": reason,
                "trading_event_id": event.event_id,
            }));
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
    let expired = sqlx::query(
        "UPDATE guarantees SET state = 'expired', state_reason = 'validity ended', state_changed_at = now()
         WHERE state = 'issued' AND valid_to < (now() AT TIME ZONE 'Asia/Shanghai')::date
         RETURNING guarantee_no, centre_id, section_id, valid_to",
    )
    .fetch_all(&mut *transaction)
    .await?;
    let mut outbox = OutboxRows::default();
    for row in &expired {
        let section: String = row.get(2);
        outbox.push_event(events_topic, &section, "guarantee.expired", row.get::<&str, _>(1), serde_json::json!({
            "guarantee_no": row.get::<String, _>(0),
            "section_id": section,
            "valid_to": row.get::<Option<chrono::NaiveDate>, _>(3),
        }));
    }
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(expired.len())
}
