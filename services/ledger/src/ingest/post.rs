//! The batch transaction: offsets locked, replays sorted out, notices matched and posted,
//! offsets stored, all committed together.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jinfu_ledger::matching::{self, classify_replay, CreditFacts, Replay, Target};
use jinfu_ledger::{AccountKey, EntryKind, Fen, JournalEntry, Outcome};
use jinfu_platform::retry::{self, Failure};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;
use tracing::field::Empty;
use tracing::{info, warn, Span};

use super::failure::{locate, Posted};
use super::registry::load_registry;
use super::validate::validate_all;
use super::writer::{raise_collusion_leads, BatchWriter};
use super::{BatchContext, BatchReport, PreparedBatch, Record};
use crate::journal::{lock_chain_heads, store_chain_heads, ChainHead};
use crate::notice::{CreditNotice, Refusal, Registry};
use crate::settings::FaultSettings;
use crate::store::{ingest_offsets, ingest_reads};

/// Applies one batch in one transaction, retrying transient failures (see
/// [`jinfu_platform::retry`]). The batch is never skipped: while the database is unavailable
/// the consumer waits (and lag alerts fire), until `shutdown`. A permanent failure is returned
/// at once: the batch was not applied and must not be retried.
pub async fn apply_batch_with_retry(
    pool: &PgPool,
    context: &BatchContext<'_>,
    batch: &PreparedBatch,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<BatchReport, Failure> {
    retry::until_ok("applying the batch (the same batch is retried)", shutdown, || apply_batch(pool, context, batch)).await
}

fn crash_if(fault: &FaultSettings, point: &str, batch_number: u64) {
    if fault.crash_point.as_deref() == Some(point) && fault.crash_on_batch == batch_number {
        eprintln!("fault injection: aborting at {point} of batch {batch_number}");
        std::process::abort();
    }
}

/// Applies one batch; see the module documentation of [`crate::ingest`].
pub async fn apply_batch(pool: &PgPool, context: &BatchContext<'_>, batch: &PreparedBatch) -> anyhow::Result<BatchReport> {
    let mut report = BatchReport::default();
    let mut transaction = pool.begin().await?;
    ingest_reads::prefer_index_probes(&mut transaction).await?;
    let partitions: Vec<i32> = batch.records.iter().map(|r| r.partition).collect::<BTreeSet<_>>().into_iter().collect();
    let stored = ingest_offsets::lock_offsets(&mut transaction, context.group_id, context.topic, &partitions).await?;
    // The batch was validated against the registry as it was when its first record arrived;
    // if an account or centre has been registered or changed since, validate it again now.
    let registry = load_registry(&mut transaction).await?;
    let revalidated;
    let validated: &[Result<CreditNotice, Refusal>] = if registry == *batch.registry {
        &batch.validated
    } else {
        info!(batch = context.batch_number, "collection accounts or centres changed while the batch was received; validating it again");
        revalidated = validate_all(&batch.records, &Registry { accounts: &registry.0, centres: &registry.1, keys: &batch.keys });
        &revalidated
    };
    let fresh = select_fresh(context, batch, validated, &stored, &mut report);
    let classified = classify_replays(&mut transaction, &fresh.validated).await?;
    crash_if(context.fault, "after_validation", context.batch_number);

    let (writer, new_notices) = route(context, &fresh, &classified, &mut report);
    report.new_notices = new_notices.len();
    report.outcomes = post_notices(&mut transaction, context, writer, &new_notices, false).await?;
    report.next_offsets = next_offsets(&fresh.records);
    ingest_offsets::store_offsets(&mut transaction, context.group_id, context.topic, &report.next_offsets).await?;
    crash_if(context.fault, "before_commit", context.batch_number);
    transaction.commit().await?;
    crash_if(context.fault, "after_commit", context.batch_number);
    Ok(report)
}

/// The records of a batch not applied before, with their spans and validations.
struct Fresh<'b> {
    records: Vec<&'b Record>,
    spans: Vec<&'b Span>,
    validated: Vec<&'b Result<CreditNotice, Refusal>>,
}

/// Skips records below their partition's stored offset (applied before), and every record of
/// a partition whose first record after an assignment lies beyond its stored offset (the
/// consumer must seek back and receive them again).
fn select_fresh<'b>(
    context: &BatchContext<'_>,
    batch: &'b PreparedBatch,
    validated: &'b [Result<CreditNotice, Refusal>],
    stored: &HashMap<i32, i64>,
    report: &mut BatchReport,
) -> Fresh<'b> {
    let count = batch.records.len();
    let mut fresh = Fresh { records: Vec::with_capacity(count), spans: Vec::with_capacity(count), validated: Vec::with_capacity(count) };
    let mut first_seen: HashSet<i32> = HashSet::new();
    let mut rewound: HashSet<i32> = HashSet::new();
    for ((record, span), validated) in batch.records.iter().zip(&batch.spans).zip(validated) {
        let next = stored.get(&record.partition).copied().unwrap_or(-1);
        if record.offset < next {
            report.already_applied += 1;
            span.record("outcome", "already_applied");
            continue;
        }
        let unchecked = context.unchecked_partitions.contains(&record.partition);
        if unchecked && first_seen.insert(record.partition) {
            report.checked_partitions.push(record.partition);
            if next >= 0 && record.offset > next {
                warn!(
                    partition = record.partition,
                    stored = next,
                    received = record.offset,
                    "first record after assignment is beyond the stored offset; seeking back once"
                );
                report.rewinds.push((record.partition, next));
                rewound.insert(record.partition);
            }
        }
        if rewound.contains(&record.partition) {
            span.record("outcome", "rewound");
            continue;
        }
        fresh.records.push(record);
        fresh.spans.push(span);
        fresh.validated.push(validated);
    }
    report.considered = fresh.records.len();
    fresh
}

/// What to do with one fresh record.
enum Classified {
    New(CreditNotice),
    Duplicate,
    Conflict(CreditNotice, Vec<u8>),
    Refused(Refusal),
}

/// Sorts out replays against stored notices and earlier records of this batch.
async fn classify_replays(transaction: &mut Transaction<'_, Postgres>, validated: &[&Result<CreditNotice, Refusal>]) -> anyhow::Result<Vec<Classified>> {
    let (banks, serials): (Vec<&str>, Vec<&str>) =
        validated.iter().filter_map(|result| result.as_ref().ok()).map(|notice| (notice.bank.as_str(), notice.bank_serial.as_str())).unzip();
    let stored_hashes = ingest_reads::stored_hashes(transaction, &banks, &serials).await?;
    let mut batch_hashes: HashMap<(String, String), [u8; 32]> = HashMap::new();
    let mut classified: Vec<Classified> = Vec::with_capacity(validated.len());
    for result in validated {
        let notice = match result {
            Ok(notice) => notice.clone(),
            Err(refusal) => {
                classified.push(Classified::Refused(refusal.clone()));
                continue;
            }
        };
        let key = (notice.bank.clone(), notice.bank_serial.clone());
        let known = stored_hashes.get(&key).map(Vec::as_slice).or_else(|| batch_hashes.get(&key).map(<[u8; 32]>::as_slice));
        match classify_replay(known, &notice.content_hash) {
            Replay::New => {
                batch_hashes.insert(key, notice.content_hash);
                classified.push(Classified::New(notice));
            }
            Replay::Duplicate => classified.push(Classified::Duplicate),
            Replay::Conflict => {
                let stored = known.map(<[u8]>::to_vec).unwrap_or_default();
                classified.push(Classified::Conflict(notice, stored));
            }
        }
    }
    Ok(classified)
}

type NewNotice<'b> = (&'b Record, &'b CreditNotice, &'b Span);

/// Dead-letters refused records and raises conflicts into a new writer; returns it with the new
/// notices, which are left to post.
fn route<'b>(context: &BatchContext<'_>, fresh: &Fresh<'b>, classified: &'b [Classified], report: &mut BatchReport) -> (BatchWriter, Vec<NewNotice<'b>>) {
    let mut writer = BatchWriter::default();
    let mut new_notices: Vec<NewNotice<'b>> = Vec::new();
    for ((record, span), item) in fresh.records.iter().zip(&fresh.spans).zip(classified) {
        match item {
            Classified::Refused(refusal) => {
                report.dead_lettered += 1;
                *report.dead_letter_reasons.entry(refusal.code()).or_default() += 1;
                span.record("outcome", "dead_letter");
                span.in_scope(|| writer.dead_letter(context, record, refusal));
            }
            Classified::Duplicate => {
                report.duplicates += 1;
                span.record("outcome", "duplicate");
            }
            Classified::Conflict(notice, stored_hash) => {
                report.conflicts += 1;
                span.record("outcome", "conflict");
                // The alert event carries this notice's trace.
                span.in_scope(|| writer.conflict(context, record, notice, stored_hash));
            }
            Classified::New(notice) => new_notices.push((record, notice, span)),
        }
    }
    (writer, new_notices)
}

/// The next offset per partition after `fresh`.
fn next_offsets(fresh: &[&Record]) -> BTreeMap<i32, i64> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for record in fresh {
        let entry = next.entry(record.partition).or_insert(record.offset + 1);
        *entry = (*entry).max(record.offset + 1);
    }
    next
}

/// Posts new notices (validated, known not to be replays) and writes everything `writer` holds:
/// locks the centres' chain heads first, so the sections and balances read next cannot change
/// under this transaction (another batch of the same centre waits until this one commits), then
/// matches, appends entries, stores notice rows, events and collusion leads. Credit-notice
/// batches and statement reconciliation (credits the bank never notified, `late_notified`) both
/// post through here. Each notice is posted in a `post_credit_notice` span, a child of the span
/// given beside it (the record's receive span), so its events carry the notice's trace. Returns
/// the count per outcome. If writing fails on an account the failure names, the error carries
/// that account and the record that posted to it (`failure::Located`).
pub(crate) async fn post_notices(
    transaction: &mut Transaction<'_, Postgres>,
    context: &BatchContext<'_>,
    mut writer: BatchWriter,
    notices: &[(&Record, &CreditNotice, &Span)],
    late_notified: bool,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let centres: BTreeSet<&str> = notices.iter().map(|(_, notice, _)| notice.centre_id.as_str()).collect();
    let mut heads = lock_chain_heads(transaction, &centres).await?;
    let numbers: Vec<&str> = notices.iter().map(|(_, notice, _)| notice.sub_account_number.as_str()).collect();
    let targets = ingest_reads::targets(transaction, &numbers).await?;
    let (held_centres, held_accounts): (Vec<String>, Vec<String>) =
        targets.values().map(|target| (target.centre_id.clone(), deposit_account(target).to_string())).unzip();
    let mut held = ingest_reads::balances(transaction, &held_centres, &held_accounts).await?;
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (record, notice, parent) in notices {
        let target = targets.get(&notice.sub_account_number);
        let span = tracing::info_span!(
            parent: *parent,
            "post_credit_notice",
            centre = %notice.centre_id,
            sub_account = %notice.sub_account_number,
            bank = %notice.bank,
            bank_serial = %notice.bank_serial,
            late_notified,
            outcome = Empty,
            entry_sequence = Empty,
        );
        let posting = Posting { context, record, notice, target, late_notified };
        let (outcome, sequence) = span.in_scope(|| post_notice(&mut writer, &mut heads, &mut held, &posting))?;
        span.record("outcome", outcome.code());
        span.record("entry_sequence", sequence);
        parent.record("outcome", outcome.code());
        *outcomes.entry(outcome.code()).or_default() += 1;
    }
    if let Err(error) = writer.flush(transaction).await {
        return Err(match locate(&error, &writer.posted) {
            Some(located) => error.context(located),
            None => error,
        });
    }
    raise_collusion_leads(transaction, &writer.payer_links).await?;
    store_chain_heads(transaction, &heads).await?;
    Ok(outcomes)
}

type AccountId = (String, String);

fn deposit_account(target: &Target) -> AccountKey {
    AccountKey::Deposit { section: target.section_id.clone(), bidder: target.bidder_uscc.clone() }
}

/// One notice to post, with what it is posted under.
struct Posting<'p> {
    context: &'p BatchContext<'p>,
    record: &'p Record,
    notice: &'p CreditNotice,
    target: Option<&'p Target>,
    late_notified: bool,
}

/// Matches one notice and appends its entry, notice row, payer link and event to `writer`.
fn post_notice(
    writer: &mut BatchWriter,
    heads: &mut HashMap<String, ChainHead>,
    held: &mut HashMap<AccountId, Fen>,
    posting: &Posting<'_>,
) -> anyhow::Result<(Outcome, i64)> {
    let Posting { context, record, notice, target, late_notified } = *posting;
    // A sub-account of another centre is, for this notice, an unknown sub-account: it must not
    // touch that centre's sections, links or events.
    let target = target.filter(|target| target.centre_id == notice.centre_id);
    let credit = CreditFacts {
        centre_id: notice.centre_id.clone(),
        bank: notice.bank.clone(),
        collection_account: notice.account_number.clone(),
        amount: notice.amount,
        payer_name: notice.payer_name.clone(),
        payer_account: notice.payer_account.clone(),
        value_time: notice.value_time,
    };
    let held_before =
        target.map(|target| held.get(&(target.centre_id.clone(), deposit_account(target).to_string())).copied().unwrap_or_default()).unwrap_or_default();
    let outcome = matching::match_credit(&credit, target, held_before);
    let bank = AccountKey::Bank { bank: notice.bank.clone(), account_number: notice.account_number.clone() };
    let (kind, credited) = match (outcome, target) {
        (Outcome::Deposit { held_after, .. }, Some(target)) => {
            held.insert((target.centre_id.clone(), deposit_account(target).to_string()), held_after);
            (EntryKind::DepositReceived, deposit_account(target))
        }
        _ => (EntryKind::SuspenseReceived, AccountKey::Suspense { bank: notice.bank.clone(), account_number: notice.account_number.clone() }),
    };
    writer.posted.push(Posted {
        partition: record.partition,
        offset: record.offset,
        centre: notice.centre_id.clone(),
        accounts: [credited.to_string(), bank.to_string()],
    });
    let entry = JournalEntry::transfer(kind, bank, credited, notice.amount)?;
    let head = heads.get_mut(&notice.centre_id).expect("chain heads are locked for every centre with new notices");
    let reference = format!("notice:{}/{}", notice.bank, notice.bank_serial);
    let sequence = writer.journal.append(head, &notice.centre_id, kind, &reference, &entry);
    writer.notice(record, notice, target, outcome, sequence, late_notified);
    if let Some(target) = target {
        writer.payer_links.insert((
            target.centre_id.clone(),
            target.section_id.clone(),
            matching::normalize_account_number(&notice.payer_account),
            target.bidder_uscc.clone(),
        ));
    }
    writer.event(context, notice, target, outcome, sequence, late_notified);
    Ok((outcome, sequence))
}
