//! The reminder sweeper: a bidder whose deposit is still short when the deposit deadline is
//! `lead` away (24 hours by default) is reminded once, as a legal notice; the reminder is
//! cancelled if the deposit is satisfied before it is sent, and re-armed if the deadline moves.

use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::clock::SharedClock;
use jinfu_platform::metrics::NOTIFICATION_REMINDERS_WAITING;
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::compose::Composer;
use crate::consume::deposit_cancel_key;
use crate::domain::plan;
use crate::store::reminders;

/// Reminders recorded per transaction.
const ROUND_MAX: i64 = 500;

pub struct Sweeper {
    pub pool: PgPool,
    pub composer: Arc<Composer>,
    pub clock: SharedClock,
    pub lead: chrono::Duration,
}

impl Sweeper {
    /// Sweeps every `every` until stopping; a failed round is logged and retried next round.
    pub async fn run(self, every: Duration, mut stopping: watch::Receiver<bool>) {
        loop {
            match self.sweep().await {
                Ok(0) => {}
                Ok(count) => info!(count, "deposit reminders recorded"),
                Err(error) => warn!(error = format!("{error:#}"), "a reminder sweep failed; retrying next round"),
            }
            if let Ok(waiting) = reminders::waiting(&self.pool).await {
                metrics::gauge!(NOTIFICATION_REMINDERS_WAITING).set(waiting as f64);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopping.changed() => return,
            }
        }
    }

    /// One round: records the reminders that are due; returns how many.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut transaction = self.pool.begin().await?;
        let due = reminders::due(&mut transaction, now, self.lead, ROUND_MAX).await?;
        for reminder in &due {
            let message = plan::deposit_reminder(
                &reminder.centre_id,
                &reminder.section_id,
                &reminder.bidder_uscc,
                reminder.held_fen,
                reminder.required_fen,
                reminder.deposit_deadline,
            );
            let event_id =
                format!("reminder:deposit:{}:{}:{}:{}", reminder.centre_id, reminder.section_id, reminder.bidder_uscc, reminder.deposit_deadline.timestamp());
            let cancel_key = deposit_cancel_key(&reminder.centre_id, &reminder.section_id, &reminder.bidder_uscc);
            if let Err(failed) = self.composer.record(&mut transaction, &event_id, &reminder.centre_id, &message, Some(&cancel_key), now).await? {
                warn!(error = %failed, "a deposit reminder could not be rendered");
            }
            reminders::mark_reminded(&mut transaction, reminder).await?;
        }
        let deadlines = reminders::due_deadlines(&mut transaction, now, ROUND_MAX).await?;
        for due in &deadlines {
            let Some(template) = crate::domain::templates::TEMPLATES.iter().map(|(name, _)| *name).find(|name| *name == due.template) else { continue };
            let deadline = plan::Deadline {
                key: due.key.clone(),
                recipient: due.recipient.clone(),
                template,
                due_on: jinfu_ledger::beijing::date(due.due_at - chrono::Duration::seconds(1)),
                vars: due.vars.clone(),
            };
            let message = plan::deadline_reminder(&deadline, due.due_at);
            let event_id = format!("reminder:{}:{}", due.key, due.due_at.timestamp());
            if let Err(failed) = self.composer.record(&mut transaction, &event_id, &due.centre_id, &message, Some(&due.key), now).await? {
                warn!(error = %failed, "a deadline reminder could not be rendered");
            }
            reminders::mark_deadline_reminded(&mut transaction, &due.key, now).await?;
        }
        transaction.commit().await?;
        Ok(due.len() + deadlines.len())
    }
}
