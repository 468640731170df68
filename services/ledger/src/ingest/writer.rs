//! The rows of one batch (journal entries, notices, events, dead letters, conflicts, payer
//! links), gathered while the batch is matched and written with one statement per table.

use std::collections::BTreeSet;

use jinfu_ledger::matching::{is_collusion_lead, Target};
use jinfu_ledger::Outcome;
use jinfu_platform::kafka;
use serde_json::json;
use sqlx::{Postgres, Transaction};
use tracing::warn;

use super::failure::Posted;
use super::{BatchContext, Record};
use crate::journal::JournalWriter;
use crate::notice::{CreditNotice, Refusal};
use crate::outbox::OutboxRows;
use crate::store::ingest_writes::{self, ConflictRow, DeadLetterRow, NoticeRows, PayerLink};

/// Rows of one batch, written with one multi-row statement per table.
#[derive(Default)]
pub(crate) struct BatchWriter {
    pub(super) journal: JournalWriter,
    notices: NoticeRows,
    outbox: OutboxRows,
    dead_letters: Vec<DeadLetterRow>,
    dead_letter_source_topic: String,
    conflicts: Vec<ConflictRow>,
    pub(super) payer_links: BTreeSet<PayerLink>,
    /// Which record posted to which accounts, to name them if writing fails.
    pub(super) posted: Vec<Posted>,
}

impl BatchWriter {
    pub(super) fn notice(&mut self, record: &Record, notice: &CreditNotice, target: Option<&Target>, outcome: Outcome, sequence: i64, late_notified: bool) {
        let rows = &mut self.notices;
        rows.bank.push(notice.bank.clone());
        rows.bank_serial.push(notice.bank_serial.clone());
        rows.content_hash.push(notice.content_hash.to_vec());
        rows.event_id.push(notice.event_id.clone());
        rows.centre_id.push(notice.centre_id.clone());
        rows.account_number.push(notice.account_number.clone());
        rows.sub_account_number.push(notice.sub_account_number.clone());
        rows.amount_fen.push(notice.amount.fen());
        rows.payer_name.push(notice.payer_name.clone());
        rows.payer_account.push(notice.payer_account.clone());
        rows.value_time.push(notice.value_time);
        rows.section_id.push(target.map(|t| t.section_id.clone()));
        rows.bidder_uscc.push(target.map(|t| t.bidder_uscc.clone()));
        rows.outcome.push(outcome.code().to_owned());
        rows.entry_sequence.push(sequence);
        rows.partition.push(record.partition);
        rows.offset.push(record.offset);
        rows.produced_at.push(record.timestamp);
        rows.late_notified.push(late_notified);
    }

    pub(super) fn event(
        &mut self,
        context: &BatchContext<'_>,
        notice: &CreditNotice,
        target: Option<&Target>,
        outcome: Outcome,
        sequence: i64,
        late_notified: bool,
    ) {
        let (event_type, mut data) = match (outcome, target) {
            (Outcome::Deposit { progress, held_after }, Some(target)) => (
                "deposit.received",
                json!({
                    "section_id": target.section_id,
                    "bidder_uscc": target.bidder_uscc,
                    "held_fen": held_after.fen(),
                    "required_fen": target.required.fen(),
                    "satisfied": progress.is_satisfied(),
                    "status": progress.code(),
                }),
            ),
            (_, target) => (
                "deposit.suspended",
                json!({
                    "section_id": target.map(|t| t.section_id.clone()),
                    "bidder_uscc": target.map(|t| t.bidder_uscc.clone()),
                    "reason": outcome.code(),
                }),
            ),
        };
        let common = json!({
            "bank": notice.bank,
            "bank_serial": notice.bank_serial,
            "sub_account_number": notice.sub_account_number,
            "amount_fen": notice.amount.fen(),
            "value_time": notice.value_time,
            "entry_sequence": sequence,
            "late_notified": late_notified,
        });
        if let (Some(data), Some(common)) = (data.as_object_mut(), common.as_object()) {
            data.extend(common.clone());
        }
        self.outbox.push_event(context.events_topic, &notice.sub_account_number, event_type, &notice.centre_id, data);
    }

    pub(super) fn dead_letter(&mut self, context: &BatchContext<'_>, record: &Record, refusal: &Refusal) {
        let reason = refusal.reason();
        warn!(partition = record.partition, offset = record.offset, reason = %reason, "credit notice refused; sent to the dead-letter topic");
        let origin = kafka::Origin { topic: context.topic, partition: record.partition, offset: record.offset };
        let dead = kafka::dead_letter(&record.value, &record.headers, &reason, origin);
        self.outbox.push(context.dead_letter_topic, &format!("{}:{}", record.partition, record.offset), dead.value, &dead.headers);
        self.dead_letters.push(DeadLetterRow { partition: record.partition, offset: record.offset, reason, payload: record.value.clone() });
        context.topic.clone_into(&mut self.dead_letter_source_topic);
    }

    pub(super) fn conflict(&mut self, context: &BatchContext<'_>, record: &Record, notice: &CreditNotice, stored_hash: &[u8]) {
        warn!(bank = %notice.bank, serial = %notice.bank_serial, "ALERT: bank serial reused with different content; no money moved");
        self.conflicts.push(ConflictRow {
            bank: notice.bank.clone(),
            bank_serial: notice.bank_serial.clone(),
            centre_id: notice.centre_id.clone(),
            stored_hash: stored_hash.to_vec(),
            incoming_hash: notice.content_hash.to_vec(),
            payload: record.value.clone(),
            partition: record.partition,
            offset: record.offset,
        });
        let data = json!({
            "bank": notice.bank,
            "bank_serial": notice.bank_serial,
            "kafka_partition": record.partition,
            "kafka_offset": record.offset,
            "explanation": "the bank serial was already applied with different content; this notice moved no money",
        });
        self.outbox.push_event(context.events_topic, &notice.sub_account_number, "alert.notice_conflict", &notice.centre_id, data);
    }

    pub(super) async fn flush(&mut self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        if !self.journal.is_empty() {
            self.journal.flush(transaction).await?;
            ingest_writes::insert_notices(transaction, &self.notices).await?;
        }
        ingest_writes::insert_dead_letters(transaction, &self.dead_letter_source_topic, &self.dead_letters).await?;
        ingest_writes::insert_conflicts(transaction, &self.conflicts).await?;
        ingest_writes::insert_payer_links(transaction, &self.payer_links).await?;
        self.outbox.insert(transaction).await?;
        Ok(())
    }
}

/// Records which payer funded which bidders and raises a lead the first time one payer account
/// funds two or more bidders of one section; its event waits for the section's bid opening. Runs under the centre's chain-head lock, so two
/// batches of one centre cannot both miss each other's links.
pub(super) async fn raise_collusion_leads(transaction: &mut Transaction<'_, Postgres>, links: &BTreeSet<PayerLink>) -> anyhow::Result<()> {
    let triples: BTreeSet<(&str, &str, &str)> = links.iter().map(|l| (l.0.as_str(), l.1.as_str(), l.2.as_str())).collect();
    if triples.is_empty() {
        return Ok(());
    }
    for shared in ingest_writes::shared_payers(transaction, &triples).await? {
        let bidder_set: BTreeSet<String> = shared.bidders.iter().cloned().collect();
        if !is_collusion_lead(&bidder_set) {
            continue;
        }
        if !ingest_writes::insert_collusion_lead(transaction, &shared.centre_id, &shared.section_id, &shared.payer_account).await? {
            continue;
        }
        // The event names the bidders: it waits for the section's bids to be opened
        // (`crate::refunds::publish_opened_leads`).
        let (centre, section, payer) = (&shared.centre_id, &shared.section_id, &shared.payer_account);
        warn!(centre = %centre, section = %section, payer = %payer, "collusion lead: one payer account funded several bidders");
    }
    Ok(())
}
