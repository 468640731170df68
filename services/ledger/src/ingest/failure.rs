//! A batch that cannot be posted: a permanent failure (an invariant violation, a bug; see
//! [`jinfu_platform::retry`]) stops ingestion with the coordinates needed to find the cause —
//! topic, partitions and offsets, centre, and the account and record where they are known.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{PreparedBatch, Record};
use crate::journal::JournalError;

/// A credit-notice batch that failed permanently. Nothing of it was applied and its offsets
/// were neither stored nor committed: after the fix, it is applied exactly once. Its `Display`
/// gives the coordinates; the cause follows in the error chain (`{:#}`).
#[derive(Debug, thiserror::Error)]
#[error(
    "ingestion stopped: batch {batch} of topic {topic} ({offsets}) failed permanently; centre {}, account {}{}",
    or_unknown(.centre),
    or_unknown(.account),
    record_text(.record)
)]
pub struct BatchFailed {
    pub topic: String,
    /// The batch's number since the consumer started.
    pub batch: u64,
    /// The batch's first and last offset per partition.
    pub offsets: OffsetRanges,
    /// The centre concerned: the failing account's, else every centre of the batch's notices.
    pub centre: Option<String>,
    /// The account whose posting or balance the database or an invariant check refused.
    pub account: Option<String>,
    /// The (partition, offset) of the record that posted to `account` first.
    pub record: Option<(i32, i64)>,
    #[source]
    pub source: anyhow::Error,
}

fn or_unknown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("unknown")
}

fn record_text(record: &Option<(i32, i64)>) -> String {
    record.map(|(partition, offset)| format!(" (first posted by the record at partition {partition}, offset {offset})")).unwrap_or_default()
}

/// First and last offset per partition, shown as `partition 0 offsets 4..=9, partition 2
/// offset 3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetRanges(pub BTreeMap<i32, (i64, i64)>);

impl OffsetRanges {
    pub fn of(records: &[Record]) -> OffsetRanges {
        let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for record in records {
            let range = ranges.entry(record.partition).or_insert((record.offset, record.offset));
            range.0 = range.0.min(record.offset);
            range.1 = range.1.max(record.offset);
        }
        OffsetRanges(ranges)
    }
}

impl fmt::Display for OffsetRanges {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (partition, (first, last))) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str(", ")?;
            }
            if first == last {
                write!(formatter, "partition {partition} offset {first}")?;
            } else {
                write!(formatter, "partition {partition} offsets {first}..={last}")?;
            }
        }
        Ok(())
    }
}

/// The accounts one record posted to.
pub(crate) struct Posted {
    pub partition: i32,
    pub offset: i64,
    pub centre: String,
    /// The credited account (deposit or suspense) first: it names one notice, the collection
    /// account a whole batch.
    pub accounts: [String; 2],
}

/// Where in a batch a write failed: the account named by the failure, and the record that
/// posted to it first. Attached to the error as context by the batch transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub centre: String,
    pub account: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for Located {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "writing account {} of centre {} (record at partition {}, offset {})", self.account, self.centre, self.partition, self.offset)
    }
}

/// Finds the account a failed write names — in an invariant check's error, or in the database
/// error's message or detail (a CHECK violation's "Failing row contains (…)") — among those the
/// batch posted to.
pub(crate) fn locate(error: &anyhow::Error, posted: &[Posted]) -> Option<Located> {
    let text = failure_text(error);
    (0..2).find_map(|slot| {
        posted.iter().find(|record| names(&text, &record.accounts[slot])).map(|record| Located {
            centre: record.centre.clone(),
            account: record.accounts[slot].clone(),
            partition: record.partition,
            offset: record.offset,
        })
    })
}

/// Whether `text` names `account` as a whole word (not as the start of a longer key).
fn names(text: &str, account: &str) -> bool {
    text.match_indices(account).any(|(start, _)| {
        let next = text[start + account.len()..].chars().next();
        !next.is_some_and(|next| next.is_alphanumeric() || matches!(next, ':' | '-' | '_'))
    })
}

/// Every message and detail in `error`'s chain.
fn failure_text(error: &anyhow::Error) -> String {
    let mut text = format!("{error:#}");
    for cause in error.chain() {
        if let Some(sqlx::Error::Database(database)) = cause.downcast_ref::<sqlx::Error>() {
            if let Some(detail) = database.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().and_then(|postgres| postgres.detail()) {
                text.push('\n');
                text.push_str(detail);
            }
        }
    }
    text
}

/// The coordinates of a batch that failed with `source`.
pub(super) fn batch_failed(topic: &str, batch: &PreparedBatch, source: anyhow::Error) -> BatchFailed {
    let located = source.downcast_ref::<Located>().cloned();
    let journal = source.chain().find_map(|cause| cause.downcast_ref::<JournalError>());
    let centre = located
        .as_ref()
        .map(|located| located.centre.clone())
        .or_else(|| journal.and_then(JournalError::centre).map(str::to_owned))
        .or_else(|| batch_centres(batch));
    let account = located.as_ref().map(|located| located.account.clone()).or_else(|| journal.and_then(JournalError::account).map(str::to_owned));
    BatchFailed {
        topic: topic.to_owned(),
        batch: batch.number,
        offsets: OffsetRanges::of(&batch.records),
        centre,
        account,
        record: located.map(|located| (located.partition, located.offset)),
        source,
    }
}

/// The centres of a batch's valid notices, comma-separated.
fn batch_centres(batch: &PreparedBatch) -> Option<String> {
    let centres: BTreeSet<&str> = batch.validated.iter().filter_map(|result| result.as_ref().ok()).map(|notice| notice.centre_id.as_str()).collect();
    (!centres.is_empty()).then(|| centres.into_iter().collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> Record {
        Record { partition, offset, value: Vec::new(), headers: Vec::new(), timestamp: None }
    }

    #[test]
    fn offset_ranges_name_every_partition_of_the_batch() {
        let ranges = OffsetRanges::of(&[record(2, 3), record(0, 5), record(0, 4), record(0, 9)]);
        assert_eq!(ranges.to_string(), "partition 0 offsets 4..=9, partition 2 offset 3");
    }

    #[test]
    fn a_failure_is_located_at_the_credited_account_it_names() {
        let posted = vec![
            Posted { partition: 0, offset: 4, centre: "520100".into(), accounts: ["deposit:S:A".into(), "bank:ICBC:1".into()] },
            Posted { partition: 1, offset: 7, centre: "520100".into(), accounts: ["deposit:S:B".into(), "bank:ICBC:1".into()] },
        ];
        let error = anyhow::anyhow!("new row violates check constraint; Failing row contains (520100, deposit:S:B, liability, -1)");
        assert_eq!(locate(&error, &posted), Some(Located { centre: "520100".into(), account: "deposit:S:B".into(), partition: 1, offset: 7 }));
        assert_eq!(locate(&anyhow::anyhow!("connection reset"), &posted), None);
        assert_eq!(locate(&anyhow::anyhow!("Failing row contains (520100, deposit:S:BC, liability, -1)"), &posted), None);
    }
}
