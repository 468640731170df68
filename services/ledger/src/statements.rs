//! Daily statement reconciliation (对账): banks' end-of-day statements from `bank.statements`
//! (JSON v1, docs/schemas/bank.statement.v1.json), compared line by line with the ledger.
//!
//! A statement of many lines arrives in parts (at most [`LINES_PER_PART_MAX`] lines each), each
//! signed like a credit notice. Each part is stored in its own transaction (with its offset);
//! the transaction that stores the last missing part also reconciles the whole statement:
//!
//! - a statement credit no notice announced is ingested through the normal matching path,
//!   flagged `late_notified` (kind `late_notified`);
//! - a statement line whose amount or account differs from what the ledger recorded
//!   (`amount_mismatch`); a debit with no confirmed payment order (`unknown_debit`);
//! - a ledger credit or confirmed payment in the statement's window absent from the statement
//!   (`missing_from_statement`);
//! - opening and closing balances against the ledger's balance of the collection account at
//!   the period start and the cut-off, by the bank's value times (`opening_balance_mismatch`,
//!   `closing_balance_mismatch`), and the statement's own arithmetic (`statement_inconsistent`).
//!
//! One report per statement is stored (balanced, or each discrepancy with its kind) and
//! published on `ledger.events`.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::chain::sha256;
use jinfu_ledger::Fen;
use jinfu_platform::signing::VerifyingKey;
use serde::Deserialize;
use serde_json::json;
use sqlx::{Postgres, Transaction};
use tracing::{info, warn};

use crate::consumer::{refused, Handled, RecordHandler};
use crate::ingest::{post_notices, BatchContext, BatchWriter, Record};
use crate::notice::{content_hash_of, CreditNotice, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::OutboxRows;
use crate::settings::FaultSettings;
use crate::store::statements::{self as store, Discrepancy, Figures, Line, Statement};

/// Kept for the command line; the queries live in `crate::store::reconciliation`.
pub use crate::store::reconciliation::{get_report, list_reports, Report, ReportLine};

/// Most lines in one part (one Kafka record).
pub const LINES_PER_PART_MAX: usize = 2000;
/// A record value larger than this is refused unread.
pub const PART_BYTES_MAX: usize = 1_000_000;
/// Discrepancies published one by one per statement; beyond this the report (over gRPC and
/// the command line) holds the rest and the completion event says how many there are.
const DISCREPANCY_EVENTS_MAX: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementPartV1 {
    schema_version: u32,
    statement_id: String,
    bank: String,
    account_number: String,
    centre_id: String,
    statement_date: NaiveDate,
    period_start: DateTime<FixedOffset>,
    cut_off: DateTime<FixedOffset>,
    opening_balance: String,
    closing_balance: String,
    part: u32,
    parts: u32,
    line_count: u32,
    lines: Vec<LineV1>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineV1 {
    serial: String,
    direction: String,
    amount: String,
    counterparty_name: String,
    counterparty_account: String,
    #[serde(default)]
    sub_account_number: Option<String>,
    value_time: DateTime<FixedOffset>,
    #[serde(default)]
    memo: Option<String>,
}

/// Stores statement parts and reconciles complete statements.
pub struct StatementHandler {
    pub keys: HashMap<String, VerifyingKey>,
    pub events_topic: String,
    pub topic: String,
    pub group_id: String,
}

impl RecordHandler for StatementHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

fn text_ok(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= 256
}

fn money(field: &str, text: &str) -> Result<Fen, String> {
    Fen::parse_balance_yuan(text).map_err(|error| format!("{field} {text:?}: {error}"))
}

/// A part refused, with its published reason code.
type Refusal = (&'static str, String);

/// A valid part as stored: the statement's header and the part's lines.
struct Part {
    statement: Statement,
    part: i32,
    lines: Vec<Line>,
}

/// Checks a part's header and lines and converts them, or says why the part is refused.
fn validate(part: &StatementPartV1) -> Result<Part, Refusal> {
    let header_checks = [
        ("statement_id", text_ok(&part.statement_id)),
        ("part", part.part >= 1 && part.part <= part.parts),
        ("parts", part.parts >= 1 && (part.parts as usize) * LINES_PER_PART_MAX >= part.line_count as usize),
        ("lines", part.lines.len() <= LINES_PER_PART_MAX),
        ("cut_off", part.cut_off > part.period_start),
    ];
    if let Some((field, _)) = header_checks.iter().find(|(_, ok)| !ok) {
        return Err(("bad_field", format!("field {field} is out of range")));
    }
    let (opening, closing) = match (money("opening_balance", &part.opening_balance), money("closing_balance", &part.closing_balance)) {
        (Ok(opening), Ok(closing)) => (opening, closing),
        (Err(error), _) | (_, Err(error)) => return Err(("amount_not_a_number", error)),
    };
    let mut lines = Vec::with_capacity(part.lines.len());
    for (index, line) in part.lines.iter().enumerate() {
        lines.push(validate_line(index, line, (part.part as usize - 1) * LINES_PER_PART_MAX + index)?);
    }
    let statement = Statement {
        statement_id: part.statement_id.clone(),
        bank: part.bank.clone(),
        account_number: part.account_number.clone(),
        centre_id: part.centre_id.clone(),
        statement_date: part.statement_date,
        period_start: part.period_start.with_timezone(&Utc),
        cut_off: part.cut_off.with_timezone(&Utc),
        opening_fen: opening.fen(),
        closing_fen: closing.fen(),
        parts: part.parts as i32,
        line_count: part.line_count as i32,
    };
    Ok(Part { statement, part: part.part as i32, lines })
}

/// Line `index` of its part, numbered `line_no` across the statement.
fn validate_line(index: usize, line: &LineV1, line_no: usize) -> Result<Line, Refusal> {
    let amount = match money("amount", &line.amount) {
        Ok(amount) if amount.is_positive() => amount,
        Ok(_) => return Err(("non_positive_amount", format!("line {} amount {}", index + 1, line.amount))),
        Err(error) => return Err(("amount_not_a_number", format!("line {}: {error}", index + 1))),
    };
    if !matches!(line.direction.as_str(), "credit" | "debit") {
        return Err(("bad_field", format!("line {} direction {:?} is neither credit nor debit", index + 1, line.direction)));
    }
    let texts_ok = text_ok(&line.serial) && line.counterparty_name.chars().count() <= 256 && line.counterparty_account.chars().count() <= 64;
    if !texts_ok || line.memo.as_ref().is_some_and(|memo| memo.chars().count() > 256) {
        return Err(("bad_field", format!("line {} has an empty or over-long field", index + 1)));
    }
    Ok(Line {
        line_no: i32::try_from(line_no).unwrap_or(i32::MAX),
        serial: line.serial.clone(),
        direction: line.direction.clone(),
        amount_fen: amount.fen(),
        counterparty_name: line.counterparty_name.clone(),
        counterparty_account: line.counterparty_account.clone(),
        sub_account_number: line.sub_account_number.clone().filter(|number| !number.is_empty()),
        value_time: line.value_time.with_timezone(&Utc),
    })
}

/// The hash that identifies a statement's header: every part must carry the same.
fn header_hash(statement: &Statement) -> [u8; 32] {
    let s = statement;
    sha256(
        json!([
            s.statement_id,
            s.bank,
            s.account_number,
            s.centre_id,
            s.statement_date,
            s.period_start.timestamp_micros(),
            s.cut_off.timestamp_micros(),
            s.opening_fen,
            s.closing_fen,
            s.parts,
            s.line_count
        ])
        .to_string()
        .as_bytes(),
    )
}

impl StatementHandler {
    async fn apply(&self, transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
        if record.value.len() > PART_BYTES_MAX {
            return refused("oversized", format!("record value is {} bytes, more than the {PART_BYTES_MAX} allowed", record.value.len()));
        }
        let header = |name: &str| record.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok());
        let (Some(signature), Some(key_ref)) = (header(SIGNATURE_HEADER), header(SIGNING_KEY_HEADER)) else {
            return refused("missing_signature", "jinfu-signature and jinfu-signing-key headers are required");
        };
        let part: StatementPartV1 = match serde_json::from_slice(&record.value) {
            Ok(part) => part,
            Err(error) => return refused("malformed_json", error.to_string().replace(char::is_control, "?")),
        };
        if part.schema_version != 1 {
            return refused("unsupported_schema_version", format!("schema_version {} is not supported (expected 1)", part.schema_version));
        }
        let Some((account_centre, registered_key)) = store::collection_account(transaction, &part.bank, &part.account_number).await? else {
            return refused("unknown_collection_account", format!("collection account {}/{} is not registered", part.bank, part.account_number));
        };
        let presented = key_ref.to_ascii_lowercase();
        let Some(key) = self.keys.get(&presented).filter(|_| presented == registered_key) else {
            return refused("unknown_signing_key", format!("{presented:?} is not the key registered for {}/{}", part.bank, part.account_number));
        };
        if let Err(error) = key.verify(&record.value, signature) {
            return refused("bad_signature", error.to_string());
        }
        if account_centre != part.centre_id {
            return refused("centre_mismatch", format!("collection account belongs to centre {account_centre}, not {}", part.centre_id));
        }
        let part = match validate(&part) {
            Ok(part) => part,
            Err((code, sentence)) => return refused(code, sentence),
        };
        match store_part(transaction, &part, record).await? {
            Stored::New => {}
            Stored::Replayed => return Ok(Handled::Applied),
            Stored::Conflict(sentence) => return refused("statement_conflict", sentence),
        }
        let statement = &part.statement;
        if store::count_parts(transaction, &statement.statement_id).await? < i64::from(statement.parts) {
            return Ok(Handled::Applied);
        }
        let stored_lines = store::count_lines(transaction, &statement.statement_id).await?;
        if stored_lines != i64::from(statement.line_count) {
            // Every part is in and signed, yet the count is off: the bank's file is wrong. Report
            // it rather than refuse the last part (the lines are the bank's own).
            warn!(statement = %statement.statement_id, stored_lines, announced = statement.line_count, "statement line count differs from its header");
        }
        self.reconcile(transaction, statement, record).await?;
        Ok(Handled::Applied)
    }

    async fn reconcile(&self, transaction: &mut Transaction<'static, Postgres>, statement: &Statement, record: &Record) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut found = Discrepancies::default();
        store::prefer_hash_joins(transaction).await?;
        // 1. Credits no notice announced: ingested through matching, flagged late_notified.
        let late_notified = self.ingest_late_credits(transaction, statement, record, &mut found).await?;
        // 2. Lines the ledger recorded differently; debits without a confirmed payment order.
        for (serial, amount_fen, detail) in store::amount_mismatches(transaction, statement).await? {
            found.push("amount_mismatch", Some(serial), Some(amount_fen), detail);
        }
        for (serial, amount_fen) in store::unknown_debits(transaction, statement).await? {
            found.push("unknown_debit", Some(serial), Some(amount_fen), "money left the account without a confirmed payment order".into());
        }
        // 3. What the ledger holds in the window that the statement does not list.
        for (serial, amount_fen, detail) in store::missing_from_statement(transaction, statement).await? {
            found.push("missing_from_statement", Some(serial), Some(amount_fen), detail);
        }
        // 4. Balances, by the bank's value times.
        let mut figures = compare_balances(transaction, statement, &mut found).await?;
        // 5. The report, its discrepancies, and events.
        figures.status = if found.is_empty() { "balanced" } else { "discrepancies" };
        figures.late_notified = late_notified;
        figures.discrepancies = found.len();
        figures.reconcile_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        store::insert_report(transaction, statement, &figures, &found.items).await?;
        // Counted when the report is written, inside the record's transaction: a transaction
        // that fails after this point and is retried counts its discrepancies again (rare, and
        // an overcount only).
        crate::observe::record_discrepancies(&statement.centre_id, found.items.iter().map(|item| item.kind));
        self.publish(transaction, statement, &figures, &found).await?;
        let (id, line_count, elapsed_ms) = (&statement.statement_id, figures.line_count, figures.reconcile_ms);
        if found.is_empty() {
            info!(statement = %id, line_count, elapsed_ms, "statement reconciled: balanced");
        } else {
            warn!(statement = %id, line_count, discrepancies = found.len(), elapsed_ms, "statement reconciled with discrepancies");
        }
        Ok(())
    }

    /// Posts the statement's credits that no notice announced, through the normal matching
    /// path, and records each as `late_notified`. Returns how many were posted.
    async fn ingest_late_credits(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        statement: &Statement,
        record: &Record,
        found: &mut Discrepancies,
    ) -> anyhow::Result<usize> {
        let mut notices: Vec<CreditNotice> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for line in store::unnotified_credits(transaction, statement).await? {
            if !seen.insert(line.serial.clone()) {
                found.push("amount_mismatch", Some(line.serial), None, "the statement lists this serial twice".into());
                continue;
            }
            notices.push(late_notice(statement, line));
        }
        if notices.is_empty() {
            return Ok(0);
        }
        let source = Record { partition: record.partition, offset: record.offset, value: Vec::new(), headers: Vec::new(), timestamp: None };
        // Each late credit is posted in a span under this statement part's span.
        let parent = tracing::Span::current();
        let pairs: Vec<(&Record, &CreditNotice, &tracing::Span)> = notices.iter().map(|notice| (&source, notice, &parent)).collect();
        let dead_letter_topic = jinfu_platform::kafka::dlq_topic(&self.topic);
        let fault = FaultSettings::default();
        let unchecked = HashSet::new();
        let context = BatchContext {
            group_id: &self.group_id,
            topic: &self.topic,
            dead_letter_topic: &dead_letter_topic,
            events_topic: &self.events_topic,
            fault: &fault,
            batch_number: 0,
            unchecked_partitions: &unchecked,
        };
        let outcomes = post_notices(transaction, &context, BatchWriter::default(), &pairs, true).await?;
        for notice in &notices {
            let detail = "a credit on the statement that no notice announced; ingested now through matching".into();
            found.push("late_notified", Some(notice.bank_serial.clone()), Some(notice.amount.fen()), detail);
        }
        let late_notified = notices.len();
        info!(statement = %statement.statement_id, late_notified, ?outcomes, "statement credits without a notice ingested");
        Ok(late_notified)
    }

    /// Writes the discrepancy events (at most [`DISCREPANCY_EVENTS_MAX`]) and the completion
    /// event to the outbox.
    async fn publish(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        statement: &Statement,
        figures: &Figures,
        found: &Discrepancies,
    ) -> anyhow::Result<()> {
        let id = &statement.statement_id;
        let mut outbox = OutboxRows::default();
        for item in found.items.iter().take(DISCREPANCY_EVENTS_MAX) {
            outbox.push_event(
                &self.events_topic,
                id,
                "reconciliation.discrepancy",
                &statement.centre_id,
                json!({
                    "statement_id": id, "bank": statement.bank, "account_number": statement.account_number,
                    "statement_date": statement.statement_date, "kind": item.kind, "bank_serial": item.serial,
                    "amount_fen": item.amount_fen, "detail": item.detail,
                }),
            );
        }
        outbox.push_event(
            &self.events_topic,
            id,
            "reconciliation.completed",
            &statement.centre_id,
            json!({
                "statement_id": id, "bank": statement.bank, "account_number": statement.account_number,
                "statement_date": statement.statement_date, "status": figures.status, "line_count": figures.line_count,
                "bank_closing_fen": statement.closing_fen, "ledger_closing_fen": figures.ledger_closing_fen,
                "late_notified": figures.late_notified, "discrepancies": found.len(),
            }),
        );
        outbox.insert(transaction).await?;
        Ok(())
    }
}

/// What storing a part did.
enum Stored {
    New,
    /// The same part was stored before: nothing to do, and nothing to reconcile again.
    Replayed,
    /// The header or the part differs from what was received before.
    Conflict(String),
}

/// Stores the part once (a replay of the same content changes nothing).
async fn store_part(transaction: &mut Transaction<'static, Postgres>, part: &Part, record: &Record) -> anyhow::Result<Stored> {
    let statement = &part.statement;
    let id = &statement.statement_id;
    let header_hash = header_hash(statement);
    match store::lock_header_hash(transaction, id).await? {
        Some(stored) if stored != header_hash => return Ok(Stored::Conflict(format!("statement {id} was received with a different header"))),
        Some(_) => {}
        None => store::insert_statement(transaction, statement, &header_hash).await?,
    }
    let content_hash = sha256(&record.value);
    match store::part_hash(transaction, id, part.part).await? {
        Some(stored) if stored == content_hash => return Ok(Stored::Replayed),
        Some(_) => return Ok(Stored::Conflict(format!("part {} of statement {id} was received with other content", part.part))),
        None => {}
    }
    store::insert_part(transaction, statement, part.part, &content_hash, (record.partition, record.offset)).await?;
    store::insert_lines(transaction, id, &part.lines).await?;
    Ok(Stored::New)
}

/// A statement credit no notice announced, as the notice the bank should have sent.
fn late_notice(statement: &Statement, line: Line) -> CreditNotice {
    let amount = Fen::from_fen(line.amount_fen);
    let sub_account = line.sub_account_number.unwrap_or_default();
    let content_hash = content_hash_of(
        &statement.centre_id,
        &statement.bank,
        &line.serial,
        &statement.account_number,
        &sub_account,
        amount,
        &line.counterparty_name,
        &line.counterparty_account,
        line.value_time,
    );
    CreditNotice {
        event_id: format!("statement:{}:{}", statement.statement_id, line.line_no),
        centre_id: statement.centre_id.clone(),
        bank: statement.bank.clone(),
        bank_serial: line.serial,
        account_number: statement.account_number.clone(),
        sub_account_number: sub_account,
        amount,
        payer_name: line.counterparty_name,
        payer_account: line.counterparty_account,
        value_time: line.value_time,
        content_hash,
    }
}

/// Compares the statement's arithmetic and its opening and closing balances with the ledger's
/// balances at the period start and the cut-off. Returns the report's figures so far.
async fn compare_balances(transaction: &mut Transaction<'static, Postgres>, statement: &Statement, found: &mut Discrepancies) -> anyhow::Result<Figures> {
    let (credits, debits, line_count) = store::line_totals(transaction, &statement.statement_id).await?;
    let ledger_opening = store::balance_at(transaction, &statement.bank, &statement.account_number, statement.period_start).await?;
    let ledger_closing = store::balance_at(transaction, &statement.bank, &statement.account_number, statement.cut_off).await?;
    let (opening, closing, announced) = (statement.opening_fen, statement.closing_fen, i64::from(statement.line_count));
    if opening + credits - debits != closing || line_count != announced {
        let detail =
            format!("opening {opening} + credits {credits} - debits {debits} should be closing {closing} ({line_count} lines of {announced} announced)");
        found.push("statement_inconsistent", None, None, detail);
    }
    if ledger_opening != opening {
        found.push(
            "opening_balance_mismatch",
            None,
            Some(opening - ledger_opening),
            format!("bank {opening} fen, ledger {ledger_opening} fen at {}", statement.period_start),
        );
    }
    if ledger_closing != closing {
        found.push(
            "closing_balance_mismatch",
            None,
            Some(closing - ledger_closing),
            format!("bank {closing} fen, ledger {ledger_closing} fen at {}", statement.cut_off),
        );
    }
    Ok(Figures {
        status: "",
        line_count,
        credits_fen: credits,
        debits_fen: debits,
        ledger_opening_fen: ledger_opening,
        ledger_closing_fen: ledger_closing,
        late_notified: 0,
        discrepancies: 0,
        reconcile_ms: 0,
    })
}

/// The collection account's balance at `at` by value time: credits valued before it, less
/// confirmed payments settled before it.
pub async fn balance_at(transaction: &mut Transaction<'_, Postgres>, bank: &str, account_number: &str, at: DateTime<Utc>) -> anyhow::Result<i64> {
    Ok(store::balance_at(transaction, bank, account_number, at).await?)
}

#[derive(Default)]
struct Discrepancies {
    items: Vec<Discrepancy>,
}

impl Discrepancies {
    fn push(&mut self, kind: &'static str, serial: Option<String>, amount_fen: Option<i64>, detail: String) {
        self.items.push(Discrepancy { kind, serial, amount_fen, detail });
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(lines: serde_json::Value) -> StatementPartV1 {
        serde_json::from_value(json!({
            "schema_version": 1, "statement_id": "ST-1", "bank": "ICBC", "account_number": "A-1", "centre_id": "520100",
            "statement_date": "2026-11-28", "period_start": "2026-11-28T00:00:00+08:00", "cut_off": "2026-11-29T00:00:00+08:00",
            "opening_balance": "100.00", "closing_balance": "150.00", "part": 2, "parts": 2, "line_count": 2001, "lines": lines,
        }))
        .expect("a valid part")
    }

    fn line(amount: &str, direction: &str) -> serde_json::Value {
        json!({"serial": "S1", "direction": direction, "amount": amount, "counterparty_name": "某公司", "counterparty_account": "6222",
               "sub_account_number": "", "value_time": "2026-11-28T10:00:00+08:00"})
    }

    #[test]
    fn a_valid_part_numbers_its_lines_across_the_statement() {
        let valid = validate(&part(json!([line("50.00", "credit")]))).expect("valid");
        assert_eq!((valid.part, valid.statement.opening_fen, valid.statement.closing_fen), (2, 10_000, 15_000));
        assert_eq!(valid.lines[0].line_no, 2000);
        assert_eq!(valid.lines[0].amount_fen, 5_000);
        assert_eq!(valid.lines[0].sub_account_number, None, "an empty sub-account is none");
        assert_eq!(valid.statement.period_start, DateTime::parse_from_rfc3339("2026-11-27T16:00:00Z").expect("valid").with_timezone(&Utc));
    }

    #[test]
    fn bad_lines_are_refused_with_their_reason_and_line() {
        let refusal = |lines| validate(&part(lines)).err();
        assert_eq!(refusal(json!([line("0.00", "credit")])), Some(("non_positive_amount", "line 1 amount 0.00".to_owned())));
        assert_eq!(refusal(json!([line("5.00", "sideways")])).map(|(code, _)| code), Some("bad_field"));
        assert_eq!(refusal(json!([line("abc", "credit")])).map(|(code, _)| code), Some("amount_not_a_number"));
    }

    #[test]
    fn a_header_out_of_range_names_its_field() {
        let mut bad = part(json!([]));
        bad.line_count = 4001;
        assert_eq!(validate(&bad).err(), Some(("bad_field", "field parts is out of range".to_owned())));
        let mut bad = part(json!([]));
        bad.cut_off = bad.period_start;
        assert_eq!(validate(&bad).err(), Some(("bad_field", "field cut_off is out of range".to_owned())));
    }

    #[test]
    fn the_header_hash_changes_with_any_header_field() {
        let first = validate(&part(json!([]))).expect("valid").statement;
        let mut other = first.clone();
        assert_eq!(header_hash(&first), header_hash(&other));
        other.closing_fen += 1;
        assert_ne!(header_hash(&first), header_hash(&other));
    }

    #[test]
    fn the_header_hash_is_the_one_statements_were_stored_with() {
        // The formula before the store was split out, from the part's own (unsigned) fields:
        // statements already stored must not turn into conflicts.
        let part = part(json!([]));
        let stored = sha256(
            json!([
                part.statement_id,
                part.bank,
                part.account_number,
                part.centre_id,
                part.statement_date,
                part.period_start.timestamp_micros(),
                part.cut_off.timestamp_micros(),
                10_000_i64,
                15_000_i64,
                part.parts,
                part.line_count
            ])
            .to_string()
            .as_bytes(),
        );
        assert_eq!(header_hash(&validate(&part).expect("valid").statement), stored);
    }
}
