//! Ingestion of bank credit notices: the hot path.
//!
//! Records are consumed in batches. A batch is first validated (size, signature, JSON, schema,
//! registered account and centre; on every core, while the batch before it is in PostgreSQL),
//! then applied in ONE PostgreSQL transaction that locks the batch's partition offsets, skips
//! records applied before, stores new notices (unique per bank + serial), matches them,
//! appends balanced entries to each centre's hash chain, updates balances (aggregated per
//! batch, so the centre's bank account row is written once per batch, not once per notice),
//! records collusion leads, writes outbox rows (events and dead letters),
//! and stores the next offsets. A crash anywhere before the commit applies nothing; after it,
//! the stored offsets make every redelivered record a no-op. Kafka's own committed offsets are
//! only a copy, written after the database commit.
//!
//! Tracing: every record gets its own `receive_credit_notice` span, a child of the W3C trace
//! context in the record's headers (the bank's span), and every new notice a
//! `post_credit_notice` span under it, whose context its outbox events carry. So one notice is
//! one trace, from the bank through posting to the relay and on to consumers of
//! `ledger.events`. The batch span `apply_credit_notice_batch` is a trace of its own; each
//! notice's receive span links to it (an OpenTelemetry span link, "follows from").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jinfu_ledger::matching::{self, classify_replay, is_collusion_lead, CreditFacts, Replay, Target};
use jinfu_ledger::{AccountKey, EntryKind, Fen, JournalEntry, Outcome};
use jinfu_platform::kafka::{self, dead_letter_headers};
use jinfu_platform::signing::VerifyingKey;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::field::Empty;
use tracing::{info, warn, Instrument, Span};

use crate::notice::{self, CollectionAccount, CreditNotice, Refusal, Registry, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::journal::{lock_chain_heads, store_chain_heads, ChainHead, JournalWriter};
use crate::outbox::OutboxRows;
use crate::settings::{FaultSettings, Settings};
pub use jinfu_platform::consumer::{IngestContext, Record};

/// Topic names and settings a batch needs.
pub struct BatchContext<'a> {
    pub group_id: &'a str,
    pub topic: &'a str,
    pub dead_letter_topic: &'a str,
    pub events_topic: &'a str,
    pub fault: &'a FaultSettings,
    pub batch_number: u64,
    /// Partitions whose position has not been checked against the stored offset since they
    /// were assigned. Only for these can a record beyond the stored offset mean "the consumer
    /// started too far"; afterwards gaps are normal (compaction, transaction markers).
    pub unchecked_partitions: &'a HashSet<i32>,
}

/// What one batch did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct BatchReport {
    /// Records at or after the stored offset, i.e. not already applied.
    pub considered: usize,
    /// Records below the stored offset, skipped because they were applied before.
    pub already_applied: usize,
    pub new_notices: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub dead_lettered: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Dead-lettered records by refusal code.
    pub dead_letter_reasons: BTreeMap<&'static str, usize>,
    /// Partitions whose first record lies beyond the stored offset: the consumer must seek back.
    pub rewinds: Vec<(i32, i64)>,
    /// Partitions checked against the stored offset in this batch.
    pub checked_partitions: Vec<i32>,
    /// Next offset per partition after this batch.
    pub next_offsets: BTreeMap<i32, i64>,
}

enum Classified {
    New(CreditNotice),
    Duplicate,
    Conflict(CreditNotice, Vec<u8>),
    Refused(Refusal),
}

/// Applies one batch in one transaction, retrying transient database failures. The batch is
/// never skipped: if the database stays unavailable, the consumer waits (and lag alerts fire).
pub async fn apply_batch_with_retry(pool: &PgPool, context: &BatchContext<'_>, batch: &PreparedBatch) -> BatchReport {
    jinfu_platform::retry::until_ok("applying the batch (the same batch is retried)", || apply_batch(pool, context, batch)).await
}

fn crash_if(fault: &FaultSettings, point: &str, batch_number: u64) {
    if fault.crash_point.as_deref() == Some(point) && fault.crash_on_batch == batch_number {
        eprintln!("fault injection: aborting at {point} of batch {batch_number}");
        std::process::abort();
    }
}

/// Applies one batch; see the module documentation.
pub async fn apply_batch(pool: &PgPool, context: &BatchContext<'_>, batch: &PreparedBatch) -> anyhow::Result<BatchReport> {
    let records = &batch.records;
    let mut report = BatchReport::default();
    let mut transaction = pool.begin().await?;
    // Every join of this transaction looks up the batch's keys (a few thousand at most) in
    // tables that grow without end (accounts, sub-accounts, notices): index probes, never a
    // hash or merge join over a whole table, which the planner's cost model picks for tables of
    // up to about a million cached rows, making each batch slower as the ledger grows.
    sqlx::query("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
        .execute(&mut *transaction)
        .await?;

    let stored = lock_offsets(&mut transaction, context, records).await?;
    // The batch was validated against the registry as it was when its first record arrived;
    // if an account or centre has been registered or changed since, validate it again now.
    let registry = load_registry(&mut transaction).await?;
    let revalidated;
    let validated: &[Result<CreditNotice, Refusal>] = if registry == *batch.registry {
        &batch.validated
    } else {
        info!(batch = context.batch_number, "collection accounts or centres changed while the batch was received; validating it again");
        revalidated = validate_all(records, &Registry { accounts: &registry.0, centres: &registry.1, keys: &batch.keys });
        &revalidated
    };
    let mut fresh: Vec<&Record> = Vec::with_capacity(records.len());
    let mut fresh_spans: Vec<&Span> = Vec::with_capacity(records.len());
    let mut fresh_validated: Vec<&Result<CreditNotice, Refusal>> = Vec::with_capacity(records.len());
    let mut first_seen: HashSet<i32> = HashSet::new();
    let mut rewound: HashSet<i32> = HashSet::new();
    for ((record, span), validated) in records.iter().zip(&batch.spans).zip(validated) {
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
                warn!(partition = record.partition, stored = next, received = record.offset, "first record after assignment is beyond the stored offset; seeking back once");
                report.rewinds.push((record.partition, next));
                rewound.insert(record.partition);
            }
        }
        if rewound.contains(&record.partition) {
            span.record("outcome", "rewound");
            continue;
        }
        fresh.push(record);
        fresh_spans.push(span);
        fresh_validated.push(validated);
    }
    report.considered = fresh.len();

    // Sort out replays against stored notices and earlier records of this batch.
    let stored_hashes = load_stored_hashes(&mut transaction, &fresh_validated).await?;
    let mut batch_hashes: HashMap<(String, String), [u8; 32]> = HashMap::new();
    let mut classified: Vec<Classified> = Vec::with_capacity(fresh.len());
    for result in fresh_validated {
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
    crash_if(context.fault, "after_validation", context.batch_number);

    let mut writer = BatchWriter::default();
    let mut new_notices: Vec<(&Record, &CreditNotice, &Span)> = Vec::new();
    for ((record, span), item) in fresh.iter().zip(&fresh_spans).zip(&classified) {
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
    report.new_notices = new_notices.len();
    report.outcomes = post_notices(&mut transaction, context, writer, &new_notices, false).await?;
    report.next_offsets = store_offsets(&mut transaction, context, &fresh).await?;
    crash_if(context.fault, "before_commit", context.batch_number);
    transaction.commit().await?;
    crash_if(context.fault, "after_commit", context.batch_number);
    Ok(report)
}

/// Posts new notices (validated, known not to be replays) and writes everything `writer` holds:
/// locks the centres' chain heads first, so the sections and balances read next cannot change
/// under this transaction (another batch of the same centre waits until this one commits), then
/// matches, appends entries, stores notice rows, events and collusion leads. Credit-notice
/// batches and statement reconciliation (credits the bank never notified, `late_notified`) both
/// post through here. Each notice is posted in a `post_credit_notice` span, a child of the span
/// given beside it (the record's receive span), so its events carry the notice's trace. Returns
/// the count per outcome.
pub(crate) async fn post_notices(
    transaction: &mut Transaction<'_, Postgres>,
    context: &BatchContext<'_>,
    mut writer: BatchWriter,
    notices: &[(&Record, &CreditNotice, &Span)],
    late_notified: bool,
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let centres: BTreeSet<&str> = notices.iter().map(|(_, notice, _)| notice.centre_id.as_str()).collect();
    let mut heads = lock_chain_heads(transaction, &centres).await?;
    let targets = load_targets(transaction, notices).await?;
    let mut held = load_held(transaction, &targets).await?;
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
        let (outcome, sequence) = span.in_scope(|| post_notice(&mut writer, &mut heads, &mut held, context, record, notice, target, late_notified))?;
        span.record("outcome", outcome.code());
        span.record("entry_sequence", sequence);
        parent.record("outcome", outcome.code());
        *outcomes.entry(outcome.code()).or_default() += 1;
    }
    writer.flush(transaction).await?;
    raise_collusion_leads(transaction, context, &writer.payer_links).await?;
    store_chain_heads(transaction, &heads).await?;
    Ok(outcomes)
}

/// Validates records, in order: the checks before the signature one by one, then every
/// signature together ([`jinfu_platform::signing::verify_many`]: Ed25519 in batches, about half
/// the cost of one by one), then the checks after it. The receiver runs this on the blocking
/// pool, a chunk at a time, so chunks are validated on every core.
fn validate_all(records: &[Record], registry: &Registry<'_>) -> Vec<Result<CreditNotice, Refusal>> {
    let checked: Vec<Result<notice::Unverified<'_>, Refusal>> = records
        .iter()
        .map(|record| notice::check_before_signature(&record.value, record.header(SIGNATURE_HEADER), record.header(SIGNING_KEY_HEADER), registry))
        .collect();
    let items: Vec<(&VerifyingKey, &[u8], &str)> = checked
        .iter()
        .zip(records)
        .filter_map(|(checked, record)| checked.as_ref().ok().map(|unverified| (unverified.key, record.value.as_slice(), unverified.signature)))
        .collect();
    let mut verdicts = jinfu_platform::signing::verify_many(&items).into_iter();
    checked
        .into_iter()
        .map(|checked| {
            checked.and_then(|unverified| {
                let verdict = verdicts.next().expect("one verdict per record that reached its signature");
                notice::check_after_signature(unverified, verdict, registry)
            })
        })
        .collect()
}

async fn lock_offsets(transaction: &mut Transaction<'_, Postgres>, context: &BatchContext<'_>, records: &[Record]) -> anyhow::Result<HashMap<i32, i64>> {
    let partitions: Vec<i32> = records.iter().map(|r| r.partition).collect::<BTreeSet<_>>().into_iter().collect();
    // Create missing rows (in partition order, so concurrent instances lock in one order), then
    // lock them: a second instance that got the same partition during a rebalance waits here
    // and then sees the offsets this batch stored.
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset)
         SELECT $1, $2, partition, -1 FROM UNNEST($3::int4[]) AS partition ORDER BY partition
         ON CONFLICT DO NOTHING",
    )
    .bind(context.group_id)
    .bind(context.topic)
    .bind(&partitions)
    .execute(&mut **transaction)
    .await?;
    let rows = sqlx::query(
        "SELECT kafka_partition, next_offset FROM consumer_offsets
         WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3)
         ORDER BY kafka_partition FOR UPDATE",
    )
    .bind(context.group_id)
    .bind(context.topic)
    .bind(&partitions)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| (row.get::<i32, _>(0), row.get::<i64, _>(1))).collect())
}

async fn store_offsets(transaction: &mut Transaction<'_, Postgres>, context: &BatchContext<'_>, fresh: &[&Record]) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for record in fresh {
        let entry = next.entry(record.partition).or_insert(record.offset + 1);
        *entry = (*entry).max(record.offset + 1);
    }
    let partitions: Vec<i32> = next.keys().copied().collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    sqlx::query(
        "UPDATE consumer_offsets o SET next_offset = n.next_offset
         FROM UNNEST($3::int4[], $4::int8[]) AS n(kafka_partition, next_offset)
         WHERE o.consumer_group = $1 AND o.topic = $2 AND o.kafka_partition = n.kafka_partition",
    )
    .bind(context.group_id)
    .bind(context.topic)
    .bind(&partitions)
    .bind(&offsets)
    .execute(&mut **transaction)
    .await?;
    Ok(next)
}

async fn load_collection_accounts(connection: &mut sqlx::PgConnection) -> anyhow::Result<HashMap<(String, String), CollectionAccount>> {
    let rows = sqlx::query("SELECT bank, account_number, centre_id, signing_key_ref FROM bank_accounts")
        .fetch_all(connection)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let account = CollectionAccount { centre_id: row.get(2), signing_key_ref: row.get(3) };
            ((row.get(0), row.get(1)), account)
        })
        .collect())
}

async fn load_stored_hashes(
    transaction: &mut Transaction<'_, Postgres>,
    validated: &[&Result<CreditNotice, Refusal>],
) -> anyhow::Result<HashMap<(String, String), Vec<u8>>> {
    let (banks, serials): (Vec<&str>, Vec<&str>) = validated
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .map(|notice| (notice.bank.as_str(), notice.bank_serial.as_str()))
        .unzip();
    if banks.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT n.bank, n.bank_serial, n.content_hash FROM credit_notices n
         JOIN UNNEST($1::text[], $2::text[]) AS k(bank, bank_serial)
           ON n.bank = k.bank AND n.bank_serial = k.bank_serial",
    )
    .bind(&banks)
    .bind(&serials)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| ((row.get(0), row.get(1)), row.get(2))).collect())
}

async fn load_targets(transaction: &mut Transaction<'_, Postgres>, notices: &[(&Record, &CreditNotice, &Span)]) -> anyhow::Result<HashMap<String, Target>> {
    let numbers: Vec<&str> = notices.iter().map(|(_, notice, _)| notice.sub_account_number.as_str()).collect();
    if numbers.is_empty() {
        return Ok(HashMap::new());
    }
    // One primary-key probe per sub-account (the LIMIT keeps the planner from turning it into
    // a hash join over the whole table, which it chose below about a million rows and which
    // grew with every sub-account ever opened).
    let rows = sqlx::query(
        "SELECT k.number, s.centre_id, s.section_id, s.bidder_uscc, s.bidder_name, s.basic_account,
                s.required_deposit_fen, s.deposit_deadline, s.open, s.basic_account_required,
                s.bank, s.account_number
         FROM UNNEST($1::text[]) AS k(number)
         CROSS JOIN LATERAL (
             SELECT s.centre_id, s.section_id, s.bidder_uscc, s.bidder_name, s.basic_account,
                    sec.required_deposit_fen, sec.deposit_deadline, sec.open, sec.basic_account_required,
                    sec.bank, sec.account_number
             FROM sub_accounts s JOIN sections sec USING (centre_id, section_id)
             WHERE s.sub_account_number = k.number LIMIT 1) s",
    )
    .bind(&numbers)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let target = Target {
                centre_id: row.get(1),
                section_id: row.get(2),
                bidder_uscc: row.get(3),
                bidder_name: row.get(4),
                bidder_basic_account: row.get(5),
                required: Fen::from_fen(row.get(6)),
                deposit_deadline: row.get(7),
                section_open: row.get(8),
                basic_account_required: row.get(9),
                section_bank: row.get(10),
                section_collection_account: row.get(11),
            };
            (row.get(0), target)
        })
        .collect())
}

type AccountId = (String, String);

async fn load_held(transaction: &mut Transaction<'_, Postgres>, targets: &HashMap<String, Target>) -> anyhow::Result<HashMap<AccountId, Fen>> {
    let (centres, accounts): (Vec<String>, Vec<String>) = targets
        .values()
        .map(|target| (target.centre_id.clone(), deposit_account(target).to_string()))
        .unzip();
    // One primary-key probe per account, as in `load_targets`.
    let rows = sqlx::query(
        "SELECT k.centre_id, k.account, a.balance_fen
         FROM UNNEST($1::text[], $2::text[]) AS k(centre_id, account)
         CROSS JOIN LATERAL (
             SELECT a.balance_fen FROM accounts a WHERE a.centre_id = k.centre_id AND a.account = k.account LIMIT 1) a",
    )
    .bind(&centres)
    .bind(&accounts)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| ((row.get(0), row.get(1)), Fen::from_fen(row.get(2)))).collect())
}

fn deposit_account(target: &Target) -> AccountKey {
    AccountKey::Deposit { section: target.section_id.clone(), bidder: target.bidder_uscc.clone() }
}

fn post_notice(
    writer: &mut BatchWriter,
    heads: &mut HashMap<String, ChainHead>,
    held: &mut HashMap<AccountId, Fen>,
    context: &BatchContext<'_>,
    record: &Record,
    notice: &CreditNotice,
    target: Option<&Target>,
    late_notified: bool,
) -> anyhow::Result<(Outcome, i64)> {
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
    let held_before = target
        .map(|target| held.get(&(target.centre_id.clone(), deposit_account(target).to_string())).copied().unwrap_or_default())
        .unwrap_or_default();
    let outcome = matching::match_credit(&credit, target, held_before);
    let bank = AccountKey::Bank { bank: notice.bank.clone(), account_number: notice.account_number.clone() };
    let (kind, credited) = match (outcome, target) {
        (Outcome::Deposit { held_after, .. }, Some(target)) => {
            held.insert((target.centre_id.clone(), deposit_account(target).to_string()), held_after);
            (EntryKind::DepositReceived, deposit_account(target))
        }
        _ => (
            EntryKind::SuspenseReceived,
            AccountKey::Suspense { bank: notice.bank.clone(), account_number: notice.account_number.clone() },
        ),
    };
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

/// Rows of one batch, written with one multi-row statement per table.
#[derive(Default)]
pub(crate) struct BatchWriter {
    journal: JournalWriter,
    notices: NoticeRows,
    outbox: OutboxRows,
    dead_letters: Vec<(i32, i64, String, Vec<u8>)>,
    dead_letter_source_topic: String,
    conflicts: Vec<(String, String, String, Vec<u8>, Vec<u8>, Vec<u8>, i32, i64)>,
    payer_links: BTreeSet<(String, String, String, String)>,
}

#[derive(Default)]
struct NoticeRows {
    bank: Vec<String>,
    bank_serial: Vec<String>,
    content_hash: Vec<Vec<u8>>,
    event_id: Vec<String>,
    centre_id: Vec<String>,
    account_number: Vec<String>,
    sub_account_number: Vec<String>,
    amount_fen: Vec<i64>,
    payer_name: Vec<String>,
    payer_account: Vec<String>,
    value_time: Vec<DateTime<Utc>>,
    section_id: Vec<Option<String>>,
    bidder_uscc: Vec<Option<String>>,
    outcome: Vec<String>,
    entry_sequence: Vec<i64>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    produced_at: Vec<Option<DateTime<Utc>>>,
    late_notified: Vec<bool>,
}

impl BatchWriter {
    fn notice(&mut self, record: &Record, notice: &CreditNotice, target: Option<&Target>, outcome: Outcome, sequence: i64, late_notified: bool) {
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

    fn event(&mut self, context: &BatchContext<'_>, notice: &CreditNotice, target: Option<&Target>, outcome: Outcome, sequence: i64, late_notified: bool) {
        let (event_type, data) = match (outcome, target) {
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
        let mut data = data;
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

    fn dead_letter(&mut self, context: &BatchContext<'_>, record: &Record, refusal: &Refusal) {
        let reason = refusal.reason();
        warn!(partition = record.partition, offset = record.offset, reason = %reason, "credit notice refused; sent to the dead-letter topic");
        let headers = dead_letter_headers(&record.headers, &reason, context.topic, record.partition, record.offset);
        self.outbox.push(context.dead_letter_topic, &format!("{}:{}", record.partition, record.offset), record.value.clone(), &headers);
        self.dead_letters.push((record.partition, record.offset, reason, record.value.clone()));
        self.dead_letter_source_topic = context.topic.to_owned();
    }

    fn conflict(&mut self, context: &BatchContext<'_>, record: &Record, notice: &CreditNotice, stored_hash: &[u8]) {
        warn!(bank = %notice.bank, serial = %notice.bank_serial, "ALERT: bank serial reused with different content; no money moved");
        self.conflicts.push((
            notice.bank.clone(),
            notice.bank_serial.clone(),
            notice.centre_id.clone(),
            stored_hash.to_vec(),
            notice.content_hash.to_vec(),
            record.value.clone(),
            record.partition,
            record.offset,
        ));
        let data = json!({
            "bank": notice.bank,
            "bank_serial": notice.bank_serial,
            "kafka_partition": record.partition,
            "kafka_offset": record.offset,
            "explanation": "the bank serial was already applied with different content; this notice moved no money",
        });
        self.outbox.push_event(context.events_topic, &notice.sub_account_number, "alert.notice_conflict", &notice.centre_id, data);
    }

    async fn flush(&mut self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        if !self.journal.is_empty() {
            self.journal.flush(transaction).await?;
            let rows = &self.notices;
            sqlx::query(
                "INSERT INTO credit_notices (bank, bank_serial, content_hash, event_id, centre_id, account_number,
                     sub_account_number, amount_fen, payer_name, payer_account, value_time, section_id, bidder_uscc,
                     outcome, entry_sequence, kafka_partition, kafka_offset, produced_at, late_notified, posted_at)
                 SELECT *, clock_timestamp() FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::int8[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::text[], $14::text[],
                     $15::int8[], $16::int4[], $17::int8[], $18::timestamptz[], $19::bool[])",
            )
            .bind(&rows.bank)
            .bind(&rows.bank_serial)
            .bind(&rows.content_hash)
            .bind(&rows.event_id)
            .bind(&rows.centre_id)
            .bind(&rows.account_number)
            .bind(&rows.sub_account_number)
            .bind(&rows.amount_fen)
            .bind(&rows.payer_name)
            .bind(&rows.payer_account)
            .bind(&rows.value_time)
            .bind(&rows.section_id)
            .bind(&rows.bidder_uscc)
            .bind(&rows.outcome)
            .bind(&rows.entry_sequence)
            .bind(&rows.partition)
            .bind(&rows.offset)
            .bind(&rows.produced_at)
            .bind(&rows.late_notified)
            .execute(&mut **transaction)
            .await?;
        }
        if !self.dead_letters.is_empty() {
            let partitions: Vec<i32> = self.dead_letters.iter().map(|d| d.0).collect();
            let offsets: Vec<i64> = self.dead_letters.iter().map(|d| d.1).collect();
            let reasons: Vec<String> = self.dead_letters.iter().map(|d| d.2.clone()).collect();
            let payloads: Vec<Vec<u8>> = self.dead_letters.iter().map(|d| d.3.clone()).collect();
            sqlx::query(
                "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload)
                 SELECT $1, * FROM UNNEST($2::int4[], $3::int8[], $4::text[], $5::bytea[])
                 ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
            )
            .bind(&self.dead_letter_source_topic)
            .bind(&partitions)
            .bind(&offsets)
            .bind(&reasons)
            .bind(&payloads)
            .execute(&mut **transaction)
            .await?;
        }
        for conflict in &self.conflicts {
            sqlx::query(
                "INSERT INTO notice_conflicts (bank, bank_serial, centre_id, stored_hash, incoming_hash, payload, kafka_partition, kafka_offset)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&conflict.0)
            .bind(&conflict.1)
            .bind(&conflict.2)
            .bind(&conflict.3)
            .bind(&conflict.4)
            .bind(&conflict.5)
            .bind(conflict.6)
            .bind(conflict.7)
            .execute(&mut **transaction)
            .await?;
        }
        if !self.payer_links.is_empty() {
            let mut columns: [Vec<&str>; 4] = Default::default();
            for link in &self.payer_links {
                columns[0].push(&link.0);
                columns[1].push(&link.1);
                columns[2].push(&link.2);
                columns[3].push(&link.3);
            }
            sqlx::query(
                "INSERT INTO payer_links (centre_id, section_id, payer_account, bidder_uscc)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(&columns[0])
            .bind(&columns[1])
            .bind(&columns[2])
            .bind(&columns[3])
            .execute(&mut **transaction)
            .await?;
        }
        self.outbox.insert(transaction).await?;
        Ok(())
    }

}

/// Records which payer funded which bidders and raises a lead the first time one payer account
/// funds two or more bidders of one section. Runs under the centre's chain-head lock, so two
/// batches of one centre cannot both miss each other's links.
async fn raise_collusion_leads(
    transaction: &mut Transaction<'_, Postgres>,
    context: &BatchContext<'_>,
    links: &BTreeSet<(String, String, String, String)>,
) -> anyhow::Result<()> {
    let triples: BTreeSet<(&str, &str, &str)> = links.iter().map(|l| (l.0.as_str(), l.1.as_str(), l.2.as_str())).collect();
    if triples.is_empty() {
        return Ok(());
    }
    let mut columns: [Vec<&str>; 3] = Default::default();
    for triple in &triples {
        columns[0].push(triple.0);
        columns[1].push(triple.1);
        columns[2].push(triple.2);
    }
    // One primary-key probe per (centre, section, payer) of this batch, not a join over the
    // whole (growing) table: the lateral form keeps the plan to index lookups.
    let rows = sqlx::query(
        "SELECT k.centre_id, k.section_id, k.payer_account, b.bidders
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS k(centre_id, section_id, payer_account)
         CROSS JOIN LATERAL (
             SELECT array_agg(l.bidder_uscc ORDER BY l.bidder_uscc) AS bidders FROM payer_links l
             WHERE l.centre_id = k.centre_id AND l.section_id = k.section_id AND l.payer_account = k.payer_account) b
         WHERE cardinality(b.bidders) >= 2",
    )
    .bind(&columns[0])
    .bind(&columns[1])
    .bind(&columns[2])
    .fetch_all(&mut **transaction)
    .await?;
    let mut outbox = OutboxRows::default();
    for row in rows {
        let bidders: Vec<String> = row.get(3);
        let bidder_set: BTreeSet<String> = bidders.iter().cloned().collect();
        if !is_collusion_lead(&bidder_set) {
            continue;
        }
        let (centre, section, payer): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let inserted = sqlx::query(
            "INSERT INTO collusion_leads (centre_id, section_id, payer_account) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&centre)
        .bind(&section)
        .bind(&payer)
        .execute(&mut **transaction)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        warn!(centre = %centre, section = %section, payer = %payer, "collusion lead: one payer account funded several bidders");
        let data = json!({
            "section_id": section,
            "payer_account": payer,
            "bidder_usccs": bidders,
            "rule": "招标投标法实施条例 art. 40(6): deposits of different bidders paid from one account",
        });
        outbox.push_event(context.events_topic, &format!("{centre}:{section}"), "collusion.lead", &centre, data);
    }
    outbox.insert(transaction).await
}

/// A batch received from Kafka and validated, ready to apply.
pub struct PreparedBatch {
    pub number: u64,
    pub records: Vec<Record>,
    /// One `receive_credit_notice` span per record (see [`receive_span`]), in record order.
    pub spans: Vec<Span>,
    /// Each record's validation (size, signature, JSON, schema, registered account and centre),
    /// in record order.
    pub validated: Vec<Result<CreditNotice, Refusal>>,
    /// The batch's own span, a trace of its own: its records come from many banks' traces.
    pub span: Span,
    pub received_at: Instant,
    /// The collection accounts and centres `validated` was checked against, loaded when the
    /// batch's first record arrived; the batch transaction re-reads them and validates again if
    /// they changed since (a bank account registered or its signing key changed meanwhile).
    pub registry: Arc<RegistryData>,
    pub keys: Arc<HashMap<String, VerifyingKey>>,
}

/// Records are validated in chunks of this many, each on the blocking pool as soon as it is
/// received, so validation runs on every core while the batch before is in PostgreSQL.
const VALIDATION_CHUNK: usize = 256;

type Validated = (Vec<Record>, Vec<Result<CreditNotice, Refusal>>);

/// Receives and validates the next batch. Waits for a first record (or for `shutdown`:
/// `None`); then goes on receiving until the batch holds `max` records, or until `wait` has
/// passed since the first record and `previous_done` is true (the batch before has
/// committed). So under load a batch grows while its predecessor is in the database (fewer,
/// larger transactions), and under light load it closes after `wait` (low latency).
async fn receive_batch(
    consumer: &StreamConsumer<IngestContext>,
    pool: &PgPool,
    keys: &Arc<HashMap<String, VerifyingKey>>,
    shutdown: &mut watch::Receiver<bool>,
    mut previous_done: watch::Receiver<bool>,
    limits: (usize, Duration),
) -> Option<Received> {
    let (max, wait) = limits;
    let first = loop {
        let received = tokio::select! {
            _ = shutdown.changed() => return None,
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => break Record::from_message(&message),
            Err(error) => warn!(error = %error, "consumer error"),
        }
    };
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + wait;
    let registry = Arc::new(load_registry_with_retry(pool).await);
    let validate_chunk = |chunk: Vec<Record>| {
        let registry = Arc::clone(&registry);
        let keys = Arc::clone(keys);
        tokio::task::spawn_blocking(move || {
            let registry = Registry { accounts: &registry.0, centres: &registry.1, keys: &keys };
            let validated = validate_all(&chunk, &registry);
            (chunk, validated)
        })
    };
    let mut chunks: Vec<tokio::task::JoinHandle<Validated>> = Vec::new();
    let mut pending: Vec<Record> = Vec::with_capacity(VALIDATION_CHUNK);
    pending.push(first);
    let mut count = 1;
    while count < max {
        let waited = tokio::time::Instant::now() >= deadline;
        if waited && *previous_done.borrow_and_update() {
            break;
        }
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => {
                    pending.push(Record::from_message(&message));
                    count += 1;
                    if pending.len() == VALIDATION_CHUNK {
                        chunks.push(validate_chunk(std::mem::replace(&mut pending, Vec::with_capacity(VALIDATION_CHUNK))));
                    }
                }
                Err(error) => warn!(error = %error, "consumer error"),
            },
            () = tokio::time::sleep_until(deadline), if !waited => {}
            changed = previous_done.changed(), if waited => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    if !pending.is_empty() {
        chunks.push(validate_chunk(pending));
    }
    let mut records = Vec::with_capacity(count);
    let mut validated = Vec::with_capacity(count);
    for chunk in chunks {
        let (chunk_records, chunk_validated) = chunk.await.expect("validating records does not panic");
        records.extend(chunk_records);
        validated.extend(chunk_validated);
    }
    Some(Received { records, validated, received_at: started, registry, keys: Arc::clone(keys) })
}

/// A batch as [`receive_batch`] returns it.
struct Received {
    records: Vec<Record>,
    validated: Vec<Result<CreditNotice, Refusal>>,
    received_at: Instant,
    registry: Arc<RegistryData>,
    keys: Arc<HashMap<String, VerifyingKey>>,
}

/// Opens the spans of a received batch.
fn prepared(topic: &str, number: u64, received: Received) -> PreparedBatch {
    let Received { records, validated, received_at, registry, keys } = received;
    let span = tracing::info_span!(parent: None, "apply_credit_notice_batch", batch = number, records = records.len());
    let spans = records.iter().map(|record| receive_span(topic, record, &span)).collect();
    PreparedBatch { number, records, spans, validated, span, received_at, registry, keys }
}

pub type RegistryData = (HashMap<(String, String), CollectionAccount>, HashSet<String>);

/// The collection accounts and centres registered now; waits while the database is unavailable.
async fn load_registry_with_retry(pool: &PgPool) -> RegistryData {
    jinfu_platform::retry::until_ok("loading collection accounts and centres", || async { load_registry(&mut *pool.acquire().await?).await }).await
}

async fn load_registry(connection: &mut sqlx::PgConnection) -> anyhow::Result<RegistryData> {
    let accounts = load_collection_accounts(&mut *connection).await?;
    let centres: HashSet<String> = sqlx::query_scalar("SELECT centre_id FROM centres").fetch_all(&mut *connection).await?.into_iter().collect();
    Ok((accounts, centres))
}

/// After a batch committed: metrics, seeks back for partitions that started too far, and the
/// copy of the offsets in Kafka.
fn finish_batch(consumer: &StreamConsumer<IngestContext>, topic: &str, batch: &PreparedBatch, report: &BatchReport) {
    crate::observe::record_batch(topic, batch.records.len(), batch.received_at.elapsed(), report);
    tracing::debug!(?report, "batch applied");
    for (partition, offset) in &report.rewinds {
        if let Err(error) = consumer.seek(topic, *partition, Offset::Offset(*offset), Duration::from_secs(10)) {
            warn!(error = %error, partition, offset, "seek back to the stored offset failed");
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in &report.next_offsets {
        if let Err(error) = offsets.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
            warn!(error = %error, partition, "could not note the offset copy for Kafka");
        }
    }
    if offsets.count() > 0 {
        if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
            warn!(error = %error, "committing the offset copy to Kafka failed; the database holds the truth");
        }
    }
}

/// Puts every partition of a batch that will not be applied back where the batch began (for a
/// partition just rewound, at the stored offset), so its records are received again.
fn seek_back(consumer: &StreamConsumer<IngestContext>, topic: &str, batch: &PreparedBatch, rewinds: &[(i32, i64)]) {
    let mut starts: BTreeMap<i32, i64> = BTreeMap::new();
    for record in &batch.records {
        let start = starts.entry(record.partition).or_insert(record.offset);
        *start = (*start).min(record.offset);
    }
    for (partition, offset) in rewinds {
        starts.insert(*partition, *offset);
    }
    for (partition, offset) in starts {
        if let Err(error) = consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10)) {
            warn!(error = %error, partition, offset, "seek back before an unapplied batch failed");
        }
    }
}

/// Consumes `bank.credit-notices` until `shutdown` turns true, finishing the batch in hand.
///
/// Pipelined: while batch N is in its PostgreSQL transaction, batch N+1 is received and
/// validated (signatures on every core). Batches still commit one after another, in order, so
/// exactly-once holds as before; only the CPU work of the next batch overlaps the database work
/// of this one. If batch N finds a partition that must be re-read from its stored offset (after
/// an assignment), batch N+1 is dropped unapplied and its partitions are sought back.
pub async fn run_consumer(pool: PgPool, settings: Settings, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let topic = settings.kafka.topic("bank.credit-notices");
    let dead_letter_topic = kafka::dlq_topic(&topic);
    let events_topic = settings.kafka.topic("ledger.events");
    let keys = Arc::new(settings.bank_keys()?);
    let consumer: StreamConsumer<IngestContext> = settings.kafka.consumer(&settings.ingest.group_id, settings.ingest.instance_id.as_deref(), IngestContext::default())?;
    jinfu_platform::consumer::subscribe_or_assign(&consumer, &pool, settings.ingest.assignment, &settings.ingest.group_id, &topic).await?;
    if settings.ingest.assignment == jinfu_platform::consumer::Assignment::Manual {
        // Positions come from the database; nothing to re-check.
        consumer.context().take_assigned();
    }
    info!(topic = %topic, group = %settings.ingest.group_id, "credit-notice consumer started");
    let limits = (settings.ingest.batch_size_max, Duration::from_millis(settings.ingest.batch_wait_ms));
    let mut unchecked_partitions: HashSet<i32> = HashSet::new();
    // Nothing is in flight before the first batch.
    let (_idle, idle) = watch::channel(true);
    let mut next = receive_batch(&consumer, &pool, &keys, &mut shutdown, idle.clone(), limits).await.map(|received| prepared(&topic, 1, received));
    while let Some(batch) = next.take() {
        unchecked_partitions.extend(consumer.context().take_assigned());
        let context = BatchContext {
            group_id: &settings.ingest.group_id,
            topic: &topic,
            dead_letter_topic: &dead_letter_topic,
            events_topic: &events_topic,
            fault: &settings.fault,
            batch_number: batch.number,
            unchecked_partitions: &unchecked_partitions,
        };
        let (done_sender, done) = watch::channel(false);
        let (report, following) = tokio::join!(
            async {
                let report = apply_batch_with_retry(&pool, &context, &batch).instrument(batch.span.clone()).await;
                finish_batch(&consumer, &topic, &batch, &report);
                // The receiver may have dropped its end already (shutdown): nothing to tell then.
                let _ = done_sender.send(true);
                report
            },
            receive_batch(&consumer, &pool, &keys, &mut shutdown, done, limits),
        );
        for partition in &report.checked_partitions {
            unchecked_partitions.remove(partition);
        }
        next = following.map(|received| prepared(&topic, batch.number + 1, received));
        if !report.rewinds.is_empty() {
            if let Some(stale) = next.take() {
                // Received while the seek happened: some of it lies beyond the stored offset.
                seek_back(&consumer, &topic, &stale, &report.rewinds);
                // Checked again against the stored offsets, so that a seek that failed cannot
                // leave a gap: the next batch's first record of each is compared and rewound.
                unchecked_partitions.extend(stale.records.iter().map(|record| record.partition));
                next = receive_batch(&consumer, &pool, &keys, &mut shutdown, idle.clone(), limits).await.map(|received| prepared(&topic, stale.number, received));
            }
        }
    }
    info!("credit-notice consumer stopped after finishing its batch");
    Ok(())
}

/// The span of one consumed credit notice: a child of the trace context in the record's
/// headers (the bank's span), or, for a record without one (`traceparent` is optional for
/// banks), the root of a new trace; either way linked to the batch it was applied in. In log
/// lines it sits under the batch span. The `outcome` field is filled in when the batch decides.
pub fn receive_span(topic: &str, record: &Record, batch: &Span) -> Span {
    let span = tracing::info_span!(
        parent: batch,
        "receive_credit_notice",
        otel.kind = "consumer",
        messaging.destination.name = topic,
        messaging.kafka.partition = record.partition,
        messaging.kafka.offset = record.offset,
        outcome = Empty,
    );
    if !kafka::adopt_trace_context_from_pairs(&span, &record.headers) {
        kafka::start_new_trace(&span);
    }
    span.follows_from(batch);
    span
}
