//! The sweeper: every `sweep_interval_seconds` it
//! - marks active loans past maturity delinquent (`loan.delinquent`), and in default once the
//!   product's grace days have passed (`loan.defaulted`, and a `loan_default` proposal to the
//!   credit service);
//! - flags receivable confirmations the purchaser left past their 30 days
//!   (`loan.confirmation_overdue`);
//! - lifts, through the contract service, the lock of loans that closed (or whose disbursement
//!   was undone while the contract service could not answer);
//! - delivers proposals to the credit service until it has them.
//!
//! Each loan in its own transaction; a failing peer is retried next round.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::metrics::{LOANS_PROPOSALS_UNDELIVERED, LOANS_SWEEP_ERRORS};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::warn;

use crate::domain::interest::{days_past_due, in_default};
use crate::domain::LoanStatus;
use crate::events::{push, yuan};
use crate::peers::{Contracts, Credit, Proposal};
use crate::store::{loans, proposals};

/// Loans looked at per round.
const ROUND_MAX: i64 = 500;

pub struct Sweeper {
    pub pool: PgPool,
    pub clock: SharedClock,
    pub events_topic: String,
    pub contracts: Arc<Contracts>,
    pub credit: Arc<Credit>,
}

/// The proposal id for a loan's `kind` (`default`, `fraud`, `diverted_funds`): unique in the
/// centre, at most 64 characters (a long loan id is hashed).
pub fn proposal_id(kind: &str, loan_id: &str) -> String {
    let plain = format!("loans:{kind}:{loan_id}");
    if plain.len() <= 64 {
        return plain;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(loan_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    format!("loans:{kind}:{hex}")
}

impl Sweeper {
    pub async fn run(self, every: Duration, mut stopping: watch::Receiver<bool>) {
        // Every series exists from the start, so `increase()` in the alerts sees the first error.
        for reason in ["round", "unlock", "propose"] {
            metrics::counter!(LOANS_SWEEP_ERRORS, "reason" => reason).increment(0);
        }
        metrics::gauge!(LOANS_PROPOSALS_UNDELIVERED).set(0.0);
        loop {
            if let Err(error) = self.round().await {
                metrics::counter!(LOANS_SWEEP_ERRORS, "reason" => "round").increment(1);
                warn!(error = format!("{error:#}"), "loan sweep failed; retrying next round");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopping.changed() => return,
            }
        }
    }

    /// One pass over what is due.
    pub async fn round(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let today = jinfu_ledger::beijing::date(now);
        for (centre_id, loan_id) in loans::to_sweep(&self.pool, today, ROUND_MAX).await? {
            if let Some(unlock) = self.review(&centre_id, &loan_id, now).await? {
                self.unlock(&centre_id, &loan_id, &unlock, now).await?;
            }
        }
        self.deliver(now).await
    }

    /// Dates a loan's delinquency, default and overdue confirmation; returns `(contract, lock)`
    /// when the loan holds a lock it should no longer hold (closed, overpaid, or its
    /// disbursement undone).
    async fn review(&self, centre_id: &str, loan_id: &str, now: DateTime<Utc>) -> anyhow::Result<Option<(String, String)>> {
        let today = jinfu_ledger::beijing::date(now);
        let mut transaction = self.pool.begin().await?;
        let Some(mut loan) = loans::lock(&mut transaction, centre_id, loan_id).await? else { return Ok(None) };
        if loan.state() != LoanStatus::Active {
            let stale = loan.lock_ref.clone().filter(|_| loan.unlocked_at.is_none()).map(|lock| (loan.contract_id.clone(), lock));
            if stale.is_some() || !loan.state().is_open() {
                return Ok(stale);
            }
        }
        let topic = self.events_topic.as_str();
        let confirmation_late = loan.confirmation.as_deref() == Some("requested") && loan.confirmation_due_on.is_some_and(|due| due < today);
        if confirmation_late && loan.confirmation_overdue_at.is_none() {
            loan.confirmation_overdue_at = Some(now);
            let data = json!({
                "loan_id": loan.loan_id, "lender_id": loan.lender_id, "supplier_uscc": loan.supplier_uscc, "purchaser_uscc": loan.purchaser_uscc,
                "contract_id": loan.contract_id, "due_on": loan.confirmation_due_on,
            });
            push(&mut transaction, topic, centre_id, loan_id, "loan.confirmation_overdue", data).await?;
        }
        if let (Some(position), Some(maturity), LoanStatus::Active) = (loan.position(), loan.maturity_on, loan.state()) {
            let owed = position.accrued(today);
            let late = days_past_due(maturity, owed.owed_fen(), today);
            let facts = json!({
                "loan_id": loan.loan_id, "lender_id": loan.lender_id, "supplier_uscc": loan.supplier_uscc, "contract_id": loan.contract_id,
                "maturity_on": maturity, "days_past_due": late, "grace_days": loan.grace_days, "principal_outstanding": yuan(owed.principal_fen),
                "interest_due": yuan(owed.interest_due_fen()),
            });
            if late > 0 && loan.delinquent_at.is_none() {
                loan.delinquent_at = Some(now);
                push(&mut transaction, topic, centre_id, loan_id, "loan.delinquent", facts.clone()).await?;
            }
            if in_default(late, u32::try_from(loan.grace_days).unwrap_or(0)) && loan.defaulted_at.is_none() {
                loan.defaulted_at = Some(now);
                let proposal = Proposal {
                    centre_id: centre_id.to_owned(),
                    proposal_id: proposal_id("default", loan_id),
                    subject_uscc: loan.supplier_uscc.clone(),
                    behaviour: "loan_default".into(),
                    evidence_refs: vec![format!("loan:{centre_id}:{loan_id}")],
                    summary: format!("贷款 {loan_id} 逾期 {late} 天（宽限期 {} 天），未还本金 {} 元", loan.grace_days, yuan(owed.principal_fen)),
                };
                proposals::insert(&mut transaction, loan_id, &proposal, now).await?;
                let mut data = facts;
                data["proposal_id"] = json!(proposal.proposal_id);
                push(&mut transaction, topic, centre_id, loan_id, "loan.defaulted", data).await?;
            }
        }
        loans::save(&mut transaction, &loan).await?;
        transaction.commit().await?;
        Ok(None)
    }

    async fn unlock(&self, centre_id: &str, loan_id: &str, (contract_id, lock): &(String, String), now: DateTime<Utc>) -> anyhow::Result<()> {
        if let Err(status) = self.contracts.unlock(centre_id, contract_id, lock, format!("贷款 {loan_id} 已结清或放款已撤销")).await {
            metrics::counter!(LOANS_SWEEP_ERRORS, "reason" => "unlock").increment(1);
            warn!(loan_id, error = %status.message(), "could not lift the collection account's lock; retrying next round");
            return Ok(());
        }
        loans::mark_unlocked(&self.pool, centre_id, loan_id, now).await?;
        Ok(())
    }

    async fn deliver(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let waiting = proposals::undelivered(&self.pool, now, ROUND_MAX).await?;
        for proposal in &waiting {
            let error = self.credit.propose(proposal).await.err().map(|status| status.message().to_owned());
            if let Some(error) = &error {
                metrics::counter!(LOANS_SWEEP_ERRORS, "reason" => "propose").increment(1);
                warn!(proposal_id = proposal.proposal_id, error, "the credit service did not take the proposal; retrying next round");
            }
            proposals::attempted(&self.pool, proposal, error.as_deref(), now).await?;
        }
        let left = proposals::count_undelivered(&self.pool).await?;
        metrics::gauge!(LOANS_PROPOSALS_UNDELIVERED).set(left as f64);
        Ok(())
    }
}
