//! The dispatcher: claims due deliveries with a lease, sends them concurrently, records each
//! answer. A crash after a send and before its record leaves the delivery `sending`; when the
//! lease ends it is sent again with the same idempotency key (the SMS `OutId`, the
//! `webhook-id`, the e-mail Message-ID), so a gateway that honours the key sends one message.
//! A transient failure is retried with capped exponential backoff; a permanent one, or
//! `max_attempts` failures, leaves the delivery dead with its reason.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::metrics::{NOTIFICATIONS_FAILED, NOTIFICATIONS_RETRIED, NOTIFICATIONS_SENT, NOTIFICATION_BACKLOG};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{info_span, warn, Instrument};
use uuid::Uuid;

use crate::channels::Senders;
use crate::domain::policy;
use crate::settings::DispatchSettings;
use crate::store::contacts;
use crate::store::deliveries::{self, Claimed};

pub struct Dispatcher {
    pub pool: PgPool,
    pub senders: Arc<Senders>,
    pub clock: SharedClock,
    pub settings: DispatchSettings,
}

impl Dispatcher {
    /// Runs rounds until stopping; an empty round waits `poll_millis`. A database error is
    /// logged and the round retried (the deliveries stay recorded).
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut last_gauge = std::time::Instant::now();
        loop {
            if *stopping.borrow() {
                return;
            }
            let sent = match self.round().await {
                Ok(count) => count,
                Err(error) => {
                    warn!(error = format!("{error:#}"), "a dispatch round failed; retrying");
                    0
                }
            };
            if last_gauge.elapsed() > Duration::from_secs(5) {
                last_gauge = std::time::Instant::now();
                if let Ok(backlog) = deliveries::backlog(&self.pool).await {
                    for channel in ["email", "sms", "webhook"] {
                        let waiting = backlog.iter().find(|(name, _)| name == channel).map_or(0, |(_, count)| *count);
                        metrics::gauge!(NOTIFICATION_BACKLOG, "channel" => channel).set(waiting as f64);
                    }
                }
            }
            if sent == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(self.settings.poll_millis.max(10))) => {}
                    _ = stopping.changed() => return,
                }
            }
        }
    }

    /// One round: claims what is due, sends it, records the acceptances together; returns how
    /// many were claimed.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let lease = chrono::Duration::seconds(i64::try_from(self.settings.lease_seconds.max(1)).unwrap_or(60));
        let claimed = deliveries::claim_due(&self.pool, now, now + lease, self.settings.batch_max).await?;
        let count = claimed.len();
        // The webhook recipients' current secrets, read once for the round.
        let recipients: Vec<String> = claimed.iter().filter(|delivery| delivery.channel == "webhook").map(|delivery| delivery.recipient.clone()).collect();
        let secrets = if recipients.is_empty() { Default::default() } else { contacts::webhook_secrets(&self.pool, &recipients).await? };
        let secrets = &secrets;
        let sent: Vec<(Uuid, i32, String)> = futures::stream::iter(claimed)
            .map(|delivery| async move {
                let span = info_span!("deliver", channel = %delivery.channel, delivery_id = %delivery.id, template = %delivery.template);
                if let Some(parent) = &delivery.traceparent {
                    jinfu_platform::kafka::adopt_trace_context_from_pairs(&span, &[("traceparent".to_owned(), parent.as_bytes().to_vec())]);
                }
                let secret = secrets.get(&delivery.recipient).map(String::as_str);
                match self.deliver(&delivery, secret).instrument(span).await {
                    Ok(provider_id) => provider_id.map(|provider_id| (delivery.id, delivery.attempts, provider_id)),
                    Err(error) => {
                        warn!(delivery_id = %delivery.id, error = format!("{error:#}"), "recording a delivery's failure failed; it is sent again after its lease");
                        None
                    }
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .filter_map(|sent| async move { sent })
            .collect()
            .await;
        if !sent.is_empty() {
            for channel in deliveries::mark_sent(&self.pool, &sent, self.clock.now()).await? {
                metrics::counter!(NOTIFICATIONS_SENT, "channel" => channel).increment(1);
            }
        }
        Ok(count)
    }

    /// Sends one delivery: the provider's id when accepted (recorded with the round's others);
    /// a failure is recorded here (retry or dead letter).
    async fn deliver(&self, delivery: &Claimed, webhook_secret: Option<&str>) -> anyhow::Result<Option<String>> {
        let error = match self.senders.send(delivery, webhook_secret).await {
            Ok(provider_id) => return Ok(Some(provider_id)),
            Err(error) => error,
        };
        let channel = delivery.channel.clone();
        let retry = error.transient && delivery.attempts < self.settings.max_attempts;
        let retry_at = retry.then(|| {
            let wait = policy::backoff(delivery.attempts, Duration::from_secs(self.settings.backoff_cap_seconds));
            self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default()
        });
        if deliveries::mark_failed(&self.pool, delivery.id, delivery.attempts, &error.text(), retry_at).await? {
            if retry {
                metrics::counter!(NOTIFICATIONS_RETRIED, "channel" => channel, "reason" => error.code).increment(1);
            } else {
                warn!(delivery_id = %delivery.id, channel = %delivery.channel, reason = %error.text(), "a delivery is dead-lettered");
                metrics::counter!(NOTIFICATIONS_FAILED, "channel" => channel, "reason" => error.code).increment(1);
            }
        }
        Ok(None)
    }
}
