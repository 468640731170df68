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
use sqlx::{PgPool, Postgres, Row, Transaction};
use tracing::{info, warn};

use crate::consumer::{refused, Handled, RecordHandler};
use crate::ingest::{post_notices, BatchContext, BatchWriter, Record};
use crate::notice::{content_hash_of, CreditNotice, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::OutboxRows;
use crate::settings::FaultSettings;

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
        let account = sqlx::query("SELECT centre_id, signing_key_ref FROM bank_accounts WHERE bank = $1 AND account_number = $2")
            .bind(&part.bank)
            .bind(&part.account_number)
            .fetch_optional(&mut **transaction)
            .await?;
        let Some(account) = account else {
            return refused("unknown_collection_account", format!("collection account {}/{} is not registered", part.bank, part.account_number));
        };
        let (account_centre, registered_key): (String, String) = (account.get(0), account.get(1));
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
        let header_checks = [
            ("statement_id", text_ok(&part.statement_id)),
            ("part", part.part >= 1 && part.part <= part.parts),
            ("parts", part.parts >= 1 && (part.parts as usize) * LINES_PER_PART_MAX >= part.line_count as usize),
            ("lines", part.lines.len() <= LINES_PER_PART_MAX),
            ("cut_off", part.cut_off > part.period_start),
        ];
        if let Some((field, _)) = header_checks.iter().find(|(_, ok)| !ok) {
            return refused("bad_field", format!("field {field} is out of range"));
        }
        let (opening, closing) = match (money("opening_balance", &part.opening_balance), money("closing_balance", &part.closing_balance)) {
            (Ok(opening), Ok(closing)) => (opening, closing),
            (Err(error), _) | (_, Err(error)) => return refused("amount_not_a_number", error),
        };
        let mut lines = LineRows::default();
        for (index, line) in part.lines.iter().enumerate() {
            let amount = match money("amount", &line.amount) {
                Ok(amount) if amount.is_positive() => amount,
                Ok(_) => return refused("non_positive_amount", format!("line {} amount {}", index + 1, line.amount)),
                Err(error) => return refused("amount_not_a_number", format!("line {}: {error}", index + 1)),
            };
            if !matches!(line.direction.as_str(), "credit" | "debit") {
                return refused("bad_field", format!("line {} direction {:?} is neither credit nor debit", index + 1, line.direction));
            }
            let texts_ok = text_ok(&line.serial) && line.counterparty_name.chars().count() <= 256 && line.counterparty_account.chars().count() <= 64;
            if !texts_ok || line.memo.as_ref().is_some_and(|memo| memo.chars().count() > 256) {
                return refused("bad_field", format!("line {} has an empty or over-long field", index + 1));
            }
            lines.push((part.part as usize - 1) * LINES_PER_PART_MAX + index, line, amount);
        }

        // The header must be the same in every part; a part is stored once.
        let header_hash = sha256(
            json!([part.statement_id, part.bank, part.account_number, part.centre_id, part.statement_date, part.period_start.timestamp_micros(),
                   part.cut_off.timestamp_micros(), opening.fen(), closing.fen(), part.parts, part.line_count])
            .to_string()
            .as_bytes(),
        );
        let stored_header: Option<Vec<u8>> = sqlx::query_scalar("SELECT header_hash FROM statements WHERE statement_id = $1 FOR UPDATE")
            .bind(&part.statement_id)
            .fetch_optional(&mut **transaction)
            .await?;
        match stored_header {
            Some(stored) if stored != header_hash => {
                return refused("statement_conflict", format!("statement {} was received with a different header", part.statement_id));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO statements (statement_id, bank, account_number, centre_id, statement_date, period_start, cut_off,
                         opening_fen, closing_fen, parts, line_count, header_hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&part.statement_id)
                .bind(&part.bank)
                .bind(&part.account_number)
                .bind(&part.centre_id)
                .bind(part.statement_date)
                .bind(part.period_start.with_timezone(&Utc))
                .bind(part.cut_off.with_timezone(&Utc))
                .bind(opening.fen())
                .bind(closing.fen())
                .bind(part.parts as i32)
                .bind(part.line_count as i32)
                .bind(header_hash.as_slice())
                .execute(&mut **transaction)
                .await?;
            }
        }
        let content_hash = sha256(&record.value);
        let stored_part: Option<Vec<u8>> = sqlx::query_scalar("SELECT content_hash FROM statement_parts WHERE statement_id = $1 AND part = $2")
            .bind(&part.statement_id)
            .bind(part.part as i32)
            .fetch_optional(&mut **transaction)
            .await?;
        match stored_part {
            Some(stored) if stored == content_hash => return Ok(Handled::Applied),
            Some(_) => return refused("statement_conflict", format!("part {} of statement {} was received with other content", part.part, part.statement_id)),
            None => {}
        }
        sqlx::query(
            "INSERT INTO statement_parts (statement_id, part, parts, content_hash, kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&part.statement_id)
        .bind(part.part as i32)
        .bind(part.parts as i32)
        .bind(content_hash.as_slice())
        .bind(record.partition)
        .bind(record.offset)
        .execute(&mut **transaction)
        .await?;
        lines.insert(transaction, &part.statement_id).await?;

        let received: i64 = sqlx::query_scalar("SELECT count(*) FROM statement_parts WHERE statement_id = $1")
            .bind(&part.statement_id)
            .fetch_one(&mut **transaction)
            .await?;
        if received < i64::from(part.parts) {
            return Ok(Handled::Applied);
        }
        let stored_lines: i64 = sqlx::query_scalar("SELECT count(*) FROM statement_lines WHERE statement_id = $1")
            .bind(&part.statement_id)
            .fetch_one(&mut **transaction)
            .await?;
        if stored_lines != i64::from(part.line_count) {
            // Every part is in and signed, yet the count is off: the bank's file is wrong. Report
            // it rather than refuse the last part (the lines are the bank's own).
            warn!(statement = %part.statement_id, stored_lines, announced = part.line_count, "statement line count differs from its header");
        }
        let statement = Statement {
            statement_id: part.statement_id.clone(),
            bank: part.bank.clone(),
            account_number: part.account_number.clone(),
            centre_id: part.centre_id.clone(),
            statement_date: part.statement_date,
            period_start: part.period_start.with_timezone(&Utc),
            cut_off: part.cut_off.with_timezone(&Utc),
            opening: opening.fen(),
            closing: closing.fen(),
            announced_lines: i64::from(part.line_count),
        };
        self.reconcile(transaction, &statement, record).await?;
        Ok(Handled::Applied)
    }

    async fn reconcile(&self, transaction: &mut Transaction<'static, Postgres>, statement: &Statement, record: &Record) -> anyhow::Result<()> {
        let started = Instant::now();
        let id = &statement.statement_id;
        let mut found = Discrepancies::default();
        // The lines were inserted in this very transaction, so the planner's statistics still
        // see an empty table and would pick nested loops (quadratic on a large statement).
        // Hash joins are right at every size here.
        sqlx::query("SET LOCAL enable_nestloop = off").execute(&mut **transaction).await?;

        // 1. Credits no notice announced: ingest them through matching, flagged late_notified.
        let unnotified = sqlx::query(
            "SELECT l.line_no, l.bank_serial, l.amount_fen, l.counterparty_name, l.counterparty_account,
                    coalesce(l.sub_account_number, ''), l.value_time
             FROM statement_lines l
             WHERE l.statement_id = $1 AND l.direction = 'credit'
               AND NOT EXISTS (SELECT 1 FROM credit_notices n WHERE n.bank = $2 AND n.bank_serial = l.bank_serial)
             ORDER BY l.line_no",
        )
        .bind(id)
        .bind(&statement.bank)
        .fetch_all(&mut **transaction)
        .await?;
        let mut notices: Vec<CreditNotice> = Vec::with_capacity(unnotified.len());
        let mut seen: HashSet<String> = HashSet::new();
        for row in &unnotified {
            let serial: String = row.get(1);
            if !seen.insert(serial.clone()) {
                found.push("amount_mismatch", Some(serial), None, "the statement lists this serial twice".into());
                continue;
            }
            let line_no: i32 = row.get(0);
            let amount = Fen::from_fen(row.get(2));
            let (payer_name, payer_account, sub_account): (String, String, String) = (row.get(3), row.get(4), row.get(5));
            let value_time: DateTime<Utc> = row.get(6);
            let content_hash = content_hash_of(
                &statement.centre_id,
                &statement.bank,
                &serial,
                &statement.account_number,
                &sub_account,
                amount,
                &payer_name,
                &payer_account,
                value_time,
            );
            notices.push(CreditNotice {
                event_id: format!("statement:{id}:{line_no}"),
                centre_id: statement.centre_id.clone(),
                bank: statement.bank.clone(),
                bank_serial: serial,
                account_number: statement.account_number.clone(),
                sub_account_number: sub_account,
                amount,
                payer_name,
                payer_account,
                value_time,
                content_hash,
            });
        }
        let late_notified = notices.len();
        if !notices.is_empty() {
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
                found.push(
                    "late_notified",
                    Some(notice.bank_serial.clone()),
                    Some(notice.amount.fen()),
                    "a credit on the statement that no notice announced; ingested now through matching".into(),
                );
            }
            info!(statement = %id, late_notified, ?outcomes, "statement credits without a notice ingested");
        }

        // 2. Lines the ledger recorded differently; debits without a confirmed payment order.
        let rows = sqlx::query(
            "SELECT l.bank_serial, l.amount_fen,
                    CASE WHEN n.account_number <> $3 THEN 'the ledger has this serial on account ' || n.account_number
                         ELSE 'the ledger recorded ' || n.amount_fen || ' fen' END
             FROM statement_lines l JOIN credit_notices n ON n.bank = $2 AND n.bank_serial = l.bank_serial
             WHERE l.statement_id = $1 AND l.direction = 'credit' AND (n.amount_fen <> l.amount_fen OR n.account_number <> $3)
             UNION ALL
             SELECT l.bank_serial, l.amount_fen, 'the ledger ordered ' || (o.principal_fen + o.interest_fen) || ' fen'
             FROM statement_lines l JOIN payment_orders o ON o.bank = $2 AND o.account_number = $3 AND o.result_serial = l.bank_serial
                                                         AND o.status = 'confirmed'
             WHERE l.statement_id = $1 AND l.direction = 'debit' AND o.principal_fen + o.interest_fen <> l.amount_fen",
        )
        .bind(id)
        .bind(&statement.bank)
        .bind(&statement.account_number)
        .fetch_all(&mut **transaction)
        .await?;
        for row in &rows {
            found.push("amount_mismatch", Some(row.get(0)), Some(row.get(1)), row.get(2));
        }
        let rows = sqlx::query(
            "SELECT l.bank_serial, l.amount_fen FROM statement_lines l
             WHERE l.statement_id = $1 AND l.direction = 'debit'
               AND NOT EXISTS (SELECT 1 FROM payment_orders o WHERE o.bank = $2 AND o.account_number = $3
                                 AND o.result_serial = l.bank_serial AND o.status = 'confirmed')",
        )
        .bind(id)
        .bind(&statement.bank)
        .bind(&statement.account_number)
        .fetch_all(&mut **transaction)
        .await?;
        for row in &rows {
            found.push("unknown_debit", Some(row.get(0)), Some(row.get(1)), "money left the account without a confirmed payment order".into());
        }

        // 3. What the ledger holds in the window that the statement does not list.
        let rows = sqlx::query(
            "SELECT n.bank_serial, n.amount_fen, 'credit valued ' || n.value_time FROM credit_notices n
             WHERE n.bank = $2 AND n.account_number = $3 AND n.value_time >= $4 AND n.value_time < $5
               AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = $1 AND l.bank_serial = n.bank_serial AND l.direction = 'credit')
             UNION ALL
             SELECT o.result_serial, o.principal_fen + o.interest_fen, 'payment ' || o.order_id || ' settled ' || o.settled_at FROM payment_orders o
             WHERE o.bank = $2 AND o.account_number = $3 AND o.status = 'confirmed' AND o.settled_at >= $4 AND o.settled_at < $5
               AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = $1 AND l.bank_serial = o.result_serial AND l.direction = 'debit')",
        )
        .bind(id)
        .bind(&statement.bank)
        .bind(&statement.account_number)
        .bind(statement.period_start)
        .bind(statement.cut_off)
        .fetch_all(&mut **transaction)
        .await?;
        for row in &rows {
            found.push("missing_from_statement", Some(row.get(0)), Some(row.get(1)), row.get(2));
        }

        // 4. Balances, by the bank's value times.
        let totals = sqlx::query(
            "SELECT coalesce(sum(amount_fen) FILTER (WHERE direction = 'credit'), 0)::int8,
                    coalesce(sum(amount_fen) FILTER (WHERE direction = 'debit'), 0)::int8, count(*)
             FROM statement_lines WHERE statement_id = $1",
        )
        .bind(id)
        .fetch_one(&mut **transaction)
        .await?;
        let (credits, debits, line_count): (i64, i64, i64) = (totals.get(0), totals.get(1), totals.get(2));
        let ledger_opening = balance_at(transaction, &statement.bank, &statement.account_number, statement.period_start).await?;
        let ledger_closing = balance_at(transaction, &statement.bank, &statement.account_number, statement.cut_off).await?;
        if statement.opening + credits - debits != statement.closing || line_count != statement.announced_lines {
            found.push(
                "statement_inconsistent",
                None,
                None,
                format!(
                    "opening {} + credits {credits} - debits {debits} should be closing {} ({line_count} lines of {} announced)",
                    statement.opening, statement.closing, statement.announced_lines
                ),
            );
        }
        if ledger_opening != statement.opening {
            found.push("opening_balance_mismatch", None, Some(statement.opening - ledger_opening), format!("bank {} fen, ledger {ledger_opening} fen at {}", statement.opening, statement.period_start));
        }
        if ledger_closing != statement.closing {
            found.push("closing_balance_mismatch", None, Some(statement.closing - ledger_closing), format!("bank {} fen, ledger {ledger_closing} fen at {}", statement.closing, statement.cut_off));
        }

        // 5. The report, its discrepancies, and events.
        let status = if found.is_empty() { "balanced" } else { "discrepancies" };
        let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO reconciliation_reports (statement_id, bank, account_number, centre_id, statement_date, status, line_count,
                 credits_fen, debits_fen, bank_opening_fen, bank_closing_fen, ledger_opening_fen, ledger_closing_fen, late_notified,
                 discrepancies, first_part_at, reconciled_at, reconcile_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                    (SELECT min(received_at) FROM statement_parts WHERE statement_id = $1), clock_timestamp(), $16",
        )
        .bind(id)
        .bind(&statement.bank)
        .bind(&statement.account_number)
        .bind(&statement.centre_id)
        .bind(statement.statement_date)
        .bind(status)
        .bind(i32::try_from(line_count).unwrap_or(i32::MAX))
        .bind(credits)
        .bind(debits)
        .bind(statement.opening)
        .bind(statement.closing)
        .bind(ledger_opening)
        .bind(ledger_closing)
        .bind(i32::try_from(late_notified).unwrap_or(i32::MAX))
        .bind(i32::try_from(found.len()).unwrap_or(i32::MAX))
        .bind(elapsed_ms)
        .execute(&mut **transaction)
        .await?;
        found.insert(transaction, id).await?;
        // Counted when the report is written, inside the record's transaction: a transaction
        // that fails after this point and is retried counts its discrepancies again (rare, and
        // an overcount only).
        crate::observe::record_discrepancies(&statement.centre_id, found.items.iter().map(|item| item.kind));
        let mut outbox = OutboxRows::default();
        for item in found.items.iter().take(DISCREPANCY_EVENTS_MAX) {
            outbox.push_event(&self.events_topic, id, "reconciliation.discrepancy", &statement.centre_id, json!({
                "statement_id": id, "bank": statement.bank, "account_number": statement.account_number,
                "statement_date": statement.statement_date, "kind": item.kind, "bank_serial": item.serial,
                "amount_fen": item.amount_fen, "detail": item.detail,
            }));
        }
        outbox.push_event(&self.events_topic, id, "reconciliation.completed", &statement.centre_id, json!({
            "statement_id": id, "bank": statement.bank, "account_number": statement.account_number,
            "statement_date": statement.statement_date, "status": status, "line_count": line_count,
            "bank_closing_fen": statement.closing, "ledger_closing_fen": ledger_closing,
            "late_notified": late_notified, "discrepancies": found.len(),
        }));
        outbox.insert(transaction).await?;
        if found.is_empty() {
            info!(statement = %id, line_count, elapsed_ms, "statement reconciled: balanced");
        } else {
            warn!(statement = %id, line_count, discrepancies = found.len(), elapsed_ms, "statement reconciled with discrepancies");
        }
        Ok(())
    }
}

struct Statement {
    statement_id: String,
    bank: String,
    account_number: String,
    centre_id: String,
    statement_date: NaiveDate,
    period_start: DateTime<Utc>,
    cut_off: DateTime<Utc>,
    opening: i64,
    closing: i64,
    announced_lines: i64,
}

/// The collection account's balance at `at` by value time: credits valued before it, less
/// confirmed payments settled before it.
pub async fn balance_at(transaction: &mut Transaction<'_, Postgres>, bank: &str, account_number: &str, at: DateTime<Utc>) -> anyhow::Result<i64> {
    let balance: i64 = sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(amount_fen), 0) FROM credit_notices WHERE bank = $1 AND account_number = $2 AND value_time < $3)::int8
              - (SELECT coalesce(sum(principal_fen + interest_fen), 0) FROM payment_orders
                 WHERE bank = $1 AND account_number = $2 AND status = 'confirmed' AND settled_at < $3)::int8",
    )
    .bind(bank)
    .bind(account_number)
    .bind(at)
    .fetch_one(&mut **transaction)
    .await?;
    Ok(balance)
}

#[derive(Default)]
struct LineRows {
    line_no: Vec<i32>,
    serial: Vec<String>,
    direction: Vec<String>,
    amount_fen: Vec<i64>,
    name: Vec<String>,
    account: Vec<String>,
    sub_account: Vec<Option<String>>,
    value_time: Vec<DateTime<Utc>>,
}

impl LineRows {
    fn push(&mut self, line_no: usize, line: &LineV1, amount: Fen) {
        self.line_no.push(i32::try_from(line_no).unwrap_or(i32::MAX));
        self.serial.push(line.serial.clone());
        self.direction.push(line.direction.clone());
        self.amount_fen.push(amount.fen());
        self.name.push(line.counterparty_name.clone());
        self.account.push(line.counterparty_account.clone());
        self.sub_account.push(line.sub_account_number.clone().filter(|number| !number.is_empty()));
        self.value_time.push(line.value_time.with_timezone(&Utc));
    }

    async fn insert(&self, transaction: &mut Transaction<'static, Postgres>, statement_id: &str) -> anyhow::Result<()> {
        if self.line_no.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO statement_lines (statement_id, line_no, bank_serial, direction, amount_fen, counterparty_name,
                 counterparty_account, sub_account_number, value_time)
             SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])",
        )
        .bind(statement_id)
        .bind(&self.line_no)
        .bind(&self.serial)
        .bind(&self.direction)
        .bind(&self.amount_fen)
        .bind(&self.name)
        .bind(&self.account)
        .bind(&self.sub_account)
        .bind(&self.value_time)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}

struct Discrepancy {
    kind: &'static str,
    serial: Option<String>,
    amount_fen: Option<i64>,
    detail: String,
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

    async fn insert(&self, transaction: &mut Transaction<'static, Postgres>, statement_id: &str) -> anyhow::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let numbers: Vec<i32> = (1..=self.items.len()).map(|n| i32::try_from(n).unwrap_or(i32::MAX)).collect();
        let kinds: Vec<&str> = self.items.iter().map(|item| item.kind).collect();
        let serials: Vec<Option<&str>> = self.items.iter().map(|item| item.serial.as_deref()).collect();
        let amounts: Vec<Option<i64>> = self.items.iter().map(|item| item.amount_fen).collect();
        let details: Vec<&str> = self.items.iter().map(|item| item.detail.as_str()).collect();
        sqlx::query(
            "INSERT INTO reconciliation_discrepancies (statement_id, number, kind, bank_serial, amount_fen, detail)
             SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int8[], $6::text[])",
        )
        .bind(statement_id)
        .bind(&numbers)
        .bind(&kinds)
        .bind(&serials)
        .bind(&amounts)
        .bind(&details)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}

/// A stored report, for the API and the command line.
#[derive(Debug, Clone)]
pub struct Report {
    pub statement_id: String,
    pub bank: String,
    pub account_number: String,
    pub centre_id: String,
    pub statement_date: NaiveDate,
    pub status: String,
    pub line_count: i32,
    pub credits_fen: i64,
    pub debits_fen: i64,
    pub bank_opening_fen: i64,
    pub bank_closing_fen: i64,
    pub ledger_opening_fen: i64,
    pub ledger_closing_fen: i64,
    pub late_notified: i32,
    pub discrepancies: i32,
    pub first_part_at: DateTime<Utc>,
    pub reconciled_at: DateTime<Utc>,
    pub reconcile_ms: i64,
}

/// One discrepancy of a report: (kind, serial, amount, detail).
pub type ReportLine = (String, Option<String>, Option<i64>, String);

const REPORT_COLUMNS: &str = "statement_id, bank, account_number, centre_id, statement_date, status, line_count, credits_fen, debits_fen,
     bank_opening_fen, bank_closing_fen, ledger_opening_fen, ledger_closing_fen, late_notified, discrepancies, first_part_at,
     reconciled_at, reconcile_ms";

fn report_of(row: &sqlx::postgres::PgRow) -> Report {
    Report {
        statement_id: row.get(0),
        bank: row.get(1),
        account_number: row.get(2),
        centre_id: row.get(3),
        statement_date: row.get(4),
        status: row.get(5),
        line_count: row.get(6),
        credits_fen: row.get(7),
        debits_fen: row.get(8),
        bank_opening_fen: row.get(9),
        bank_closing_fen: row.get(10),
        ledger_opening_fen: row.get(11),
        ledger_closing_fen: row.get(12),
        late_notified: row.get(13),
        discrepancies: row.get(14),
        first_part_at: row.get(15),
        reconciled_at: row.get(16),
        reconcile_ms: row.get(17),
    }
}

/// A centre's reports for statement dates in `[from, to]`, newest first.
pub async fn list_reports(pool: &PgPool, centre_id: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Report>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {REPORT_COLUMNS} FROM reconciliation_reports WHERE centre_id = $1 AND statement_date BETWEEN $2 AND $3
         ORDER BY statement_date DESC, bank, account_number LIMIT 1000"
    ))
    .bind(centre_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(report_of).collect())
}

/// One report with up to `limit` of its discrepancies, in the order they were found.
pub async fn get_report(pool: &PgPool, statement_id: &str, limit: i64) -> Result<Option<(Report, Vec<ReportLine>)>, sqlx::Error> {
    let Some(row) = sqlx::query(&format!("SELECT {REPORT_COLUMNS} FROM reconciliation_reports WHERE statement_id = $1"))
        .bind(statement_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query("SELECT kind, bank_serial, amount_fen, detail FROM reconciliation_discrepancies WHERE statement_id = $1 ORDER BY number LIMIT $2")
        .bind(statement_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|line| (line.get(0), line.get(1), line.get(2), line.get(3)))
        .collect();
    Ok(Some((report_of(&row), lines)))
}
