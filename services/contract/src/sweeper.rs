//! The clock sweeper: every interval, on the service's clock, it publishes what the legal clocks
//! say, each fact once (`clock_notices`): a breached deadline (`contract.deadline_breached`, for
//! an award nobody drafted a contract for, and for each clock of a contract), an invoice deemed
//! received when its objection window closed (`invoice.accepted`, `deemed: true`), a reminder
//! before a due date (`payment.reminder`) and a warning after it (`payment.overdue`). It also sets
//! the overdue gauges. A failed round is logged and retried next round.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::metrics::{CONTRACT_DEADLINE_BREACHES, CONTRACT_OVERDUE_FEN, CONTRACT_OVERDUE_INVOICES};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::domain::clocks::clocks;
use crate::domain::invoices::deemed_accepted;
use crate::domain::InvoiceStatus;
use crate::events::{yuan, Events};
use crate::facts::{invoice_facts, FactsCache};
use crate::store::{awards, contracts, invoices, notices, pending, rules};

/// Calendar days before a due date that the reminder goes out.
pub const REMINDER_DAYS: i64 = 3;
/// Rows looked at per kind per round.
const ROUND_MAX: i64 = 2_000;

pub struct Sweeper {
    pub pool: PgPool,
    pub events_topic: String,
    pub calendar: crate::calendar::SharedCalendar,
    pub clock: SharedClock,
}

/// What one round published.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Deadlines pending the calendar dated this round.
    pub dated: u64,
    pub breaches: u64,
    pub deemed: u64,
    pub reminders: u64,
    pub overdue: u64,
}

impl Sweeper {
    /// Runs a round every `interval` until `shutdown` turns true.
    pub async fn run(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.round().await {
                Ok(round) if round != Round::default() => info!(?round, "clock sweep published"),
                Ok(_) => {}
                Err(error) => warn!(error = %format!("{error:#}"), "clock sweep failed; retrying next round"),
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                () = tokio::time::sleep(interval) => {},
            }
        }
    }

    /// One round at the clock's now.
    pub async fn round(&self) -> anyhow::Result<Round> {
        let now = self.clock.now();
        let today = jinfu_ledger::beijing::date(now);
        let mut round = Round { dated: self.date_pending().await?, ..Round::default() };
        round.breaches += self.undrafted_awards(now, today).await?;
        round.breaches += self.contract_clocks(now, today).await?;
        let (deemed, reminders, overdue) = self.invoices(now, today).await?;
        round.deemed = deemed;
        round.reminders = reminders;
        round.overdue = overdue;
        Ok(round)
    }

    /// Claims the notice `clock` of `subject` and publishes its event (keyed by `key`) in one
    /// transaction; `true` when it was new.
    async fn notice(
        &self,
        centre: &str,
        (subject, key): (&str, &str),
        clock: &str,
        event_type: &str,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut transaction = self.pool.begin().await?;
        if !notices::claim(&mut transaction, centre, subject, clock, now).await? {
            return Ok(false);
        }
        let mut events = Events::new(&self.events_topic);
        events.push(centre, key, event_type, data);
        events.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Dates every deadline stored pending (NULL) that the calendar in hand can date now.
    async fn date_pending(&self) -> anyhow::Result<u64> {
        let calendar = self.calendar.current();
        let day = jinfu_ledger::beijing::date;
        let mut cache = FactsCache::default();
        let mut dated = 0;
        for contract in pending::contracts(&self.pool, ROUND_MAX).await? {
            let centre_rules = cache.rules(&self.pool, &contract.centre_id).await?;
            let sign_by = if contract.sign_by.is_none() { centre_rules.sign_by(&calendar, day(contract.awarded_at)).ok() } else { None };
            let disclose_by =
                contract.signed_at.filter(|_| contract.publish_by.is_none()).and_then(|signed_at| centre_rules.disclose_by(&calendar, day(signed_at)).ok());
            if sign_by.is_some() || disclose_by.is_some() {
                pending::date_contract(&self.pool, &contract, sign_by, disclose_by).await?;
                dated += 1;
            }
        }
        for acceptance in pending::acceptances(&self.pool, ROUND_MAX).await? {
            let centre_rules = cache.rules(&self.pool, &acceptance.centre_id).await?;
            if let Ok(organise_by) = centre_rules.organise_by(&calendar, day(acceptance.from)) {
                pending::date_acceptance(&self.pool, &acceptance, organise_by).await?;
                dated += 1;
            }
        }
        for invoice in pending::invoices(&self.pool, ROUND_MAX).await? {
            let centre_rules = cache.rules(&self.pool, &invoice.centre_id).await?;
            if let Ok(object_by) = centre_rules.object_by(&calendar, day(invoice.from)) {
                pending::date_invoice(&self.pool, &invoice, object_by).await?;
                dated += 1;
            }
        }
        Ok(dated)
    }

    async fn undrafted_awards(&self, now: DateTime<Utc>, today: NaiveDate) -> anyhow::Result<u64> {
        let (calendar, mut cache, mut published) = (self.calendar.current(), FactsCache::default(), 0);
        for award in awards::undrafted(&self.pool, now, ROUND_MAX).await? {
            let centre_rules = cache.rules(&self.pool, &award.centre_id).await?;
            let Ok(sign_by) = centre_rules.sign_by(&calendar, jinfu_ledger::beijing::date(award.awarded_at)) else { continue };
            if today <= sign_by {
                continue;
            }
            let data = json!({
                "clock": "signing", "section_id": award.section_id, "contract_id": null, "due_on": sign_by, "parties": "purchaser,supplier",
                "supplier_uscc": award.winner_uscc, "purchaser_uscc": null, "detail": "no contract was drafted for the award",
            });
            let subject = format!("section:{}", award.section_id);
            if self.notice(&award.centre_id, (&subject, &award.section_id), "signing", "contract.deadline_breached", data, now).await? {
                metrics::counter!(CONTRACT_DEADLINE_BREACHES, "clock" => "signing").increment(1);
                published += 1;
            }
        }
        Ok(published)
    }

    async fn contract_clocks(&self, now: DateTime<Utc>, today: NaiveDate) -> anyhow::Result<u64> {
        let mut published = 0;
        for contract in contracts::running(&self.pool, ROUND_MAX).await? {
            if contract.status == "terminated" {
                continue;
            }
            let acceptances = contracts::acceptances(&self.pool, &contract.centre_id, &contract.contract_id).await?;
            for clock in clocks(&crate::facts::clock_facts(&contract, &acceptances)).iter().filter(|clock| clock.breached(today)) {
                let kind = clock.name.split('.').next().unwrap_or("acceptance");
                let data = json!({
                    "clock": clock.name, "section_id": contract.section_id, "contract_id": contract.contract_id, "due_on": clock.due_on,
                    "parties": clock.party_codes(), "supplier_uscc": contract.supplier_uscc, "purchaser_uscc": contract.purchaser_uscc, "detail": null,
                });
                if self
                    .notice(&contract.centre_id, (&contract.contract_id, &contract.contract_id), &clock.name, "contract.deadline_breached", data, now)
                    .await?
                {
                    metrics::counter!(CONTRACT_DEADLINE_BREACHES, "clock" => kind.to_owned()).increment(1);
                    published += 1;
                }
            }
        }
        Ok(published)
    }

    async fn invoices(&self, now: DateTime<Utc>, today: NaiveDate) -> anyhow::Result<(u64, u64, u64)> {
        let (lpr, calendar, mut cache) = (rules::lpr_history(&self.pool).await?, self.calendar.current(), FactsCache::default());
        let (mut deemed, mut reminders, mut warnings) = (0, 0, 0);
        let (mut overdue, mut overdue_fen) = (0_u64, 0_i64);
        for invoice in invoices::open(&self.pool, None, ROUND_MAX).await? {
            let status = InvoiceStatus::parse(&invoice.status).unwrap_or(InvoiceStatus::Paid);
            if deemed_accepted(status, invoice.object_by, today)
                && self.deem(&invoice.centre_id, (&invoice.invoice_no, &invoice.contract_id), (&invoice.seller_uscc, &invoice.buyer_uscc), now).await?
            {
                deemed += 1;
            }
            let Some(facts) = cache.contract(&self.pool, &invoice.centre_id, &invoice.contract_id).await? else { continue };
            let facts = invoice_facts(&self.pool, facts, invoice, &calendar, &lpr, today).await?;
            let (Some((due_on, due_by)), outstanding) = (facts.due, facts.invoice.amounts().outstanding()) else { continue };
            if !outstanding.is_positive() {
                continue;
            }
            let invoice = &facts.invoice;
            let base = json!({
                "invoice_no": invoice.invoice_no, "contract_id": invoice.contract_id, "due_on": due_on, "due_by": due_by.code(),
                "outstanding": yuan(outstanding.fen()), "purchaser_uscc": invoice.buyer_uscc, "supplier_uscc": invoice.seller_uscc,
            });
            if today > due_on {
                overdue += 1;
                overdue_fen += outstanding.fen();
                let mut data = base;
                data["interest_so_far"] = json!(yuan(facts.interest.as_ref().map_or(0, |interest| interest.fen.fen())));
                if self.notice(&invoice.centre_id, (&invoice.invoice_no, &invoice.contract_id), "payment.overdue", "payment.overdue", data, now).await? {
                    warnings += 1;
                }
            } else if (due_on - today).num_days() <= REMINDER_DAYS
                && self.notice(&invoice.centre_id, (&invoice.invoice_no, &invoice.contract_id), "payment.reminder", "payment.reminder", base, now).await?
            {
                reminders += 1;
            }
        }
        metrics::gauge!(CONTRACT_OVERDUE_INVOICES).set(overdue as f64);
        metrics::gauge!(CONTRACT_OVERDUE_FEN).set(overdue_fen as f64);
        Ok((deemed, reminders, warnings))
    }

    /// The invoice's window closed without objection: deemed received (accepted).
    async fn deem(
        &self,
        centre: &str,
        (invoice_no, contract_id): (&str, &str),
        (supplier, purchaser): (&str, &str),
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut transaction = self.pool.begin().await?;
        if !invoices::accept(&mut transaction, centre, invoice_no, true, now).await? {
            return Ok(false);
        }
        let mut events = Events::new(&self.events_topic);
        events.push(
            centre,
            contract_id,
            "invoice.accepted",
            json!({ "invoice_no": invoice_no, "contract_id": contract_id, "deemed": true, "supplier_uscc": supplier, "purchaser_uscc": purchaser }),
        );
        events.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }
}
