//! The ledger's Prometheus metrics (names in `jinfu_platform::metrics`): what a credit-notice
//! batch did, and gauges measured every [`GAUGE_INTERVAL`] — open suspense items and refunds
//! past due per centre, and consumer lag per group and partition against the offsets the
//! ledger stores in PostgreSQL. The calendar's days left are set by the calendar refresher
//! (`crate::trading::run_calendar_refresh`), which holds the calendar in force.
//!
//! Recording goes through the `metrics` facade: without an installed recorder (tests that
//! start the ledger in-process) it costs next to nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::metrics::{
    CALENDAR_DAYS_LEFT, CONSUMER_LAG, DLQ_MESSAGES, INGEST_BATCH_DURATION, INGEST_BATCH_SIZE, NOTICES, REFUNDS_PAST_DUE, STATEMENT_DISCREPANCIES,
    SUSPENSE_OPEN_ITEMS,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::warn;

use crate::domain::deposits::stale_as_of;
use crate::ingest::BatchReport;

/// How often the gauges are measured.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(15);
/// Longest wait for one partition's watermarks; a round stops at the first that times out.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);
/// Most partitions measured in one round, so a round stays bounded however many rows
/// `consumer_offsets` holds.
const LAG_PARTITIONS_MAX: usize = 1_000;

/// Records what one applied credit-notice batch did: one increment per outcome, not per
/// notice. `records` counts every record of the batch, `elapsed` runs from the first record's
/// arrival to the commit.
pub fn record_batch(topic: &str, records: usize, elapsed: Duration, report: &BatchReport) {
    metrics::histogram!(INGEST_BATCH_SIZE).record(records as f64);
    metrics::histogram!(INGEST_BATCH_DURATION).record(elapsed.as_secs_f64());
    for (outcome, count) in &report.outcomes {
        metrics::counter!(NOTICES, "outcome" => *outcome).increment(*count as u64);
    }
    for (outcome, count) in [("duplicate", report.duplicates), ("conflict", report.conflicts), ("dead_letter", report.dead_lettered)] {
        if count > 0 {
            metrics::counter!(NOTICES, "outcome" => outcome).increment(count as u64);
        }
    }
    for (reason, count) in &report.dead_letter_reasons {
        metrics::counter!(DLQ_MESSAGES, "topic" => topic.to_owned(), "reason" => *reason).increment(*count as u64);
    }
}

/// Sets CALENDAR_DAYS_LEFT: days from today to the last day the calendar in force covers.
pub fn record_calendar_days_left(days: i64) {
    metrics::gauge!(CALENDAR_DAYS_LEFT).set(days as f64);
}

/// Records the discrepancies of one persisted reconciliation report, by kind.
pub fn record_discrepancies<'a>(centre_id: &str, kinds: impl Iterator<Item = &'a str>) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for kind in kinds {
        *counts.entry(kind).or_default() += 1;
    }
    for (kind, count) in counts {
        metrics::counter!(STATEMENT_DISCREPANCIES, "centre" => centre_id.to_owned(), "kind" => kind.to_owned()).increment(count);
    }
}

/// Measures the gauges now and then every [`GAUGE_INTERVAL`] until `shutdown` turns true. A
/// failed measurement is logged and retried next round; the gauges keep their last values.
pub async fn run_gauges(pool: PgPool, kafka: KafkaSettings, mut shutdown: watch::Receiver<bool>) {
    let consumer = match kafka.metadata_consumer() {
        Ok(consumer) => Some(std::sync::Arc::new(consumer)),
        Err(error) => {
            warn!(error = %error, "cannot create the watermark client; consumer lag is not measured");
            None
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        let round = async {
            if let Err(error) = measure_centres(&pool).await {
                warn!(error = %error, "measuring suspense and refund gauges failed; retrying next round");
            }
            if let Some(consumer) = &consumer {
                if let Err(error) = measure_lag(&pool, &kafka.topic_prefix, consumer.clone()).await {
                    warn!(error = %error, "measuring consumer lag failed; retrying next round");
                }
            }
        };
        tokio::select! {
            _ = shutdown.changed() => break,
            () = round => {},
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(GAUGE_INTERVAL) => {},
        }
    }
}

/// Sets SUSPENSE_OPEN_ITEMS and REFUNDS_PAST_DUE for every registered centre (zero included,
/// so a cleared backlog shows as zero rather than as a stale value).
pub async fn measure_centres(pool: &PgPool) -> anyhow::Result<()> {
    // Open: a suspense outcome with no decision in force (a failed return opens it again).
    for (centre, count) in crate::store::suspense::open_items_by_centre(pool).await? {
        metrics::gauge!(SUSPENSE_OPEN_ITEMS, "centre" => centre).set(count as f64);
    }
    // Past due: the refunds `report_stale` reports (the rule of `domain::deposits::is_stale`,
    // held money aside).
    let today = stale_as_of(Utc::now());
    for (centre, count) in crate::store::refunds::past_due_by_centre(pool, today).await? {
        metrics::gauge!(REFUNDS_PAST_DUE, "centre" => centre).set(count as f64);
    }
    Ok(())
}

/// Sets CONSUMER_LAG for every (group, topic, partition) in `consumer_offsets` whose topic
/// carries this deployment's prefix: the partition's high watermark less the next offset
/// stored in PostgreSQL (the truth; Kafka's committed offsets are only a copy). A partition
/// with no stored offset yet (-1) lags by everything the broker still holds. Topic labels are
/// the broker's names, prefix included, as the rows store them.
pub async fn measure_lag(pool: &PgPool, topic_prefix: &str, consumer: std::sync::Arc<BaseConsumer>) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i32, i64)> = sqlx::query_as(
        "SELECT consumer_group, topic, kafka_partition, next_offset FROM consumer_offsets
         WHERE starts_with(topic, $1) ORDER BY topic, kafka_partition, consumer_group LIMIT $2",
    )
    .bind(topic_prefix)
    .bind(i64::try_from(LAG_PARTITIONS_MAX).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    // librdkafka's watermark query blocks; keep it off the async workers.
    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(String, String, i32, i64)>> {
        let mut watermarks: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        let mut lags = Vec::with_capacity(rows.len());
        for (group, topic, partition, next_offset) in rows {
            let key = (topic.clone(), partition);
            let (low, high) = match watermarks.get(&key) {
                Some(marks) => *marks,
                None => {
                    let marks = consumer
                        .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
                        .map_err(|error| anyhow::anyhow!("watermarks of {topic}/{partition}: {error}"))?;
                    watermarks.insert(key, marks);
                    marks
                }
            };
            let consumed_to = if next_offset < 0 { low } else { next_offset };
            lags.push((group, topic, partition, (high - consumed_to).max(0)));
        }
        Ok(lags)
    })
    .await??;
    for (group, topic, partition, lag) in measured {
        metrics::gauge!(CONSUMER_LAG, "group" => group, "topic" => topic, "partition" => partition.to_string()).set(lag as f64);
    }
    Ok(())
}
