//! The other services' facts that become proposals (`domain::facts` decides which): consumed
//! from `contract.events` and `ledger.events` (verified against their publishers' keys by the
//! platform),
//! each stored as a pending proposal in the transaction that stores the consumer's offset, with
//! `credit.proposal_received`. The proposer is the publishing service (`jinfu-contract`,
//! `jinfu-ledger`), so any
//! supervisor of the centre may decide it. A fact told twice proposes once (its proposal id is
//! derived from the fact, not the event). Dead-letter reasons: the platform's envelope and
//! signature codes only; an event that proposes nothing is applied as a no-op.

use futures::future::BoxFuture;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{Handled, Record, RecordHandler};
use jinfu_platform::events::EnvelopeV1;
use serde_json::json;
use sqlx::{Postgres, Transaction};

use crate::domain::facts::proposals_from;
use crate::domain::{proposal_hash, ProposalStatus};
use crate::store::proposals::{self, ProposalRow};

pub struct FactEvents {
    /// The publisher: `contract` or `ledger`.
    pub publisher: &'static str,
    /// `credit.events` (with the deployment's topic prefix).
    pub events_topic: String,
    pub clock: SharedClock,
}

impl RecordHandler for FactEvents {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(async move {
            let envelope = match EnvelopeV1::parse(record) {
                Ok(envelope) => envelope,
                Err(refusal) => return Ok(Handled::Refused(refusal)),
            };
            let proposed_at = self.clock.now();
            for fact in proposals_from(self.publisher, &envelope.event_type, &envelope.event_id, &envelope.data) {
                if !crate::domain::is_uscc(&fact.subject_uscc) {
                    return jinfu_platform::consumer::refused("bad_field", format!("{}: the subject is not a unified social credit code", envelope.event_type));
                }
                let row = ProposalRow {
                    centre_id: envelope.centre_id.clone(),
                    proposal_id: fact.proposal_id.clone(),
                    subject_uscc: fact.subject_uscc.clone(),
                    behaviour: fact.behaviour.code().into(),
                    source: fact.source.clone(),
                    evidence_refs: fact.evidence_refs.clone(),
                    summary: fact.summary.clone(),
                    regime: None,
                    proposed_by: format!("jinfu-{}", self.publisher),
                    proposed_at,
                    content_hash: proposal_hash(&fact.subject_uscc, fact.behaviour, &fact.source, &fact.evidence_refs, &fact.summary, None),
                    status: ProposalStatus::Pending.code().into(),
                    decided_by: None,
                    decided_at: None,
                    decision_reason: None,
                    record_id: None,
                };
                if proposals::insert_new(transaction, &row).await? {
                    let data = json!({ "proposal_id": row.proposal_id, "subject_uscc": row.subject_uscc, "behaviour": row.behaviour, "source": row.source });
                    let mut rows = jinfu_platform::outbox::OutboxRows::default();
                    rows.push_event(&self.events_topic, &format!("{}:{}", row.centre_id, row.subject_uscc), "credit.proposal_received", &row.centre_id, data);
                    rows.insert(transaction).await?;
                }
            }
            Ok(Handled::Applied)
        })
    }
}
