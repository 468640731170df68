//! Bank statements as received (header, parts, lines) and the queries that reconcile a complete
//! statement with the ledger. Every function runs inside the part's transaction.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Row, Transaction};

type Tx<'t> = Transaction<'t, Postgres>;

/// A statement's header as stored once, from its first part.
#[derive(Debug, Clone)]
pub struct Statement {
    pub statement_id: String,
    pub bank: String,
    pub account_number: String,
    pub centre_id: String,
    pub statement_date: NaiveDate,
    pub period_start: DateTime<Utc>,
    pub cut_off: DateTime<Utc>,
    pub opening_fen: i64,
    pub closing_fen: i64,
    pub parts: i32,
    pub line_count: i32,
}

/// One statement line, numbered across the statement's parts.
#[derive(Debug, Clone)]
pub struct Line {
    pub line_no: i32,
    pub serial: String,
    pub direction: String,
    pub amount_fen: i64,
    pub counterparty_name: String,
    pub counterparty_account: String,
    pub sub_account_number: Option<String>,
    pub value_time: DateTime<Utc>,
}

/// One discrepancy found while reconciling.
#[derive(Debug, Clone)]
pub struct Discrepancy {
    pub kind: &'static str,
    pub serial: Option<String>,
    pub amount_fen: Option<i64>,
    pub detail: String,
}

/// The registered centre and signing key of a collection account.
pub async fn collection_account(transaction: &mut Tx<'_>, bank: &str, account_number: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT centre_id, signing_key_ref FROM bank_accounts WHERE bank = $1 AND account_number = $2")
        .bind(bank)
        .bind(account_number)
        .fetch_optional(&mut **transaction)
        .await
}

/// The stored header hash of a statement, locked, if any part of it was stored.
pub async fn lock_header_hash(transaction: &mut Tx<'_>, statement_id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT header_hash FROM statements WHERE statement_id = $1 FOR UPDATE").bind(statement_id).fetch_optional(&mut **transaction).await
}

pub async fn insert_statement(transaction: &mut Tx<'_>, statement: &Statement, header_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO statements (statement_id, bank, account_number, centre_id, statement_date, period_start, cut_off,
             opening_fen, closing_fen, parts, line_count, header_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .bind(&statement.account_number)
    .bind(&statement.centre_id)
    .bind(statement.statement_date)
    .bind(statement.period_start)
    .bind(statement.cut_off)
    .bind(statement.opening_fen)
    .bind(statement.closing_fen)
    .bind(statement.parts)
    .bind(statement.line_count)
    .bind(header_hash)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// The content hash of a stored part, if it was stored.
pub async fn part_hash(transaction: &mut Tx<'_>, statement_id: &str, part: i32) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT content_hash FROM statement_parts WHERE statement_id = $1 AND part = $2")
        .bind(statement_id)
        .bind(part)
        .fetch_optional(&mut **transaction)
        .await
}

/// Where a part came from: (Kafka partition, offset).
pub type Source = (i32, i64);

pub async fn insert_part(transaction: &mut Tx<'_>, statement: &Statement, part: i32, content_hash: &[u8], source: Source) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO statement_parts (statement_id, part, parts, content_hash, kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&statement.statement_id)
        .bind(part)
        .bind(statement.parts)
        .bind(content_hash)
        .bind(source.0)
        .bind(source.1)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

pub async fn insert_lines(transaction: &mut Tx<'_>, statement_id: &str, lines: &[Line]) -> Result<(), sqlx::Error> {
    if lines.is_empty() {
        return Ok(());
    }
    let line_no: Vec<i32> = lines.iter().map(|line| line.line_no).collect();
    let serial: Vec<&str> = lines.iter().map(|line| line.serial.as_str()).collect();
    let direction: Vec<&str> = lines.iter().map(|line| line.direction.as_str()).collect();
    let amount_fen: Vec<i64> = lines.iter().map(|line| line.amount_fen).collect();
    let name: Vec<&str> = lines.iter().map(|line| line.counterparty_name.as_str()).collect();
    let account: Vec<&str> = lines.iter().map(|line| line.counterparty_account.as_str()).collect();
    let sub_account: Vec<Option<&str>> = lines.iter().map(|line| line.sub_account_number.as_deref()).collect();
    let value_time: Vec<DateTime<Utc>> = lines.iter().map(|line| line.value_time).collect();
    sqlx::query(
        "INSERT INTO statement_lines (statement_id, line_no, bank_serial, direction, amount_fen, counterparty_name,
             counterparty_account, sub_account_number, value_time)
         SELECT $1, * FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])",
    )
    .bind(statement_id)
    .bind(&line_no)
    .bind(&serial)
    .bind(&direction)
    .bind(&amount_fen)
    .bind(&name)
    .bind(&account)
    .bind(&sub_account)
    .bind(&value_time)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// How many parts of the statement are stored.
pub async fn count_parts(transaction: &mut Tx<'_>, statement_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM statement_parts WHERE statement_id = $1").bind(statement_id).fetch_one(&mut **transaction).await
}

/// How many lines of the statement are stored.
pub async fn count_lines(transaction: &mut Tx<'_>, statement_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM statement_lines WHERE statement_id = $1").bind(statement_id).fetch_one(&mut **transaction).await
}

/// The lines were inserted in this very transaction, so the planner's statistics still see an
/// empty table and would pick nested loops (quadratic on a large statement). Hash joins are
/// right at every size here.
pub async fn prefer_hash_joins(transaction: &mut Tx<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL enable_nestloop = off").execute(&mut **transaction).await?;
    Ok(())
}

/// Credit lines no notice announced, in line order.
pub async fn unnotified_credits(transaction: &mut Tx<'_>, statement: &Statement) -> Result<Vec<Line>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT l.line_no, l.bank_serial, l.amount_fen, l.counterparty_name, l.counterparty_account,
                coalesce(l.sub_account_number, ''), l.value_time
         FROM statement_lines l
         WHERE l.statement_id = $1 AND l.direction = 'credit'
           AND NOT EXISTS (SELECT 1 FROM credit_notices n WHERE n.bank = $2 AND n.bank_serial = l.bank_serial)
         ORDER BY l.line_no",
    )
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Line {
            line_no: row.get(0),
            serial: row.get(1),
            direction: "credit".into(),
            amount_fen: row.get(2),
            counterparty_name: row.get(3),
            counterparty_account: row.get(4),
            sub_account_number: Some(row.get(5)),
            value_time: row.get(6),
        })
        .collect())
}

/// Lines the ledger recorded with another amount or account: (serial, amount, detail).
pub async fn amount_mismatches(transaction: &mut Tx<'_>, statement: &Statement) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    sqlx::query_as(
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
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .bind(&statement.account_number)
    .fetch_all(&mut **transaction)
    .await
}

/// Debit lines with no confirmed payment order: (serial, amount).
pub async fn unknown_debits(transaction: &mut Tx<'_>, statement: &Statement) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.bank_serial, l.amount_fen FROM statement_lines l
         WHERE l.statement_id = $1 AND l.direction = 'debit'
           AND NOT EXISTS (SELECT 1 FROM payment_orders o WHERE o.bank = $2 AND o.account_number = $3
                             AND o.result_serial = l.bank_serial AND o.status = 'confirmed')",
    )
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .bind(&statement.account_number)
    .fetch_all(&mut **transaction)
    .await
}

/// Credits and confirmed payments of the statement's window it does not list: (serial, amount,
/// detail).
pub async fn missing_from_statement(transaction: &mut Tx<'_>, statement: &Statement) -> Result<Vec<(String, i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.bank_serial, n.amount_fen, 'credit valued ' || n.value_time FROM credit_notices n
         WHERE n.bank = $2 AND n.account_number = $3 AND n.value_time >= $4 AND n.value_time < $5
           AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = $1 AND l.bank_serial = n.bank_serial AND l.direction = 'credit')
         UNION ALL
         SELECT o.result_serial, o.principal_fen + o.interest_fen, 'payment ' || o.order_id || ' settled ' || o.settled_at FROM payment_orders o
         WHERE o.bank = $2 AND o.account_number = $3 AND o.status = 'confirmed' AND o.settled_at >= $4 AND o.settled_at < $5
           AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.statement_id = $1 AND l.bank_serial = o.result_serial AND l.direction = 'debit')",
    )
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .bind(&statement.account_number)
    .bind(statement.period_start)
    .bind(statement.cut_off)
    .fetch_all(&mut **transaction)
    .await
}

/// The statement's stored lines summed: (credits, debits, line count).
pub async fn line_totals(transaction: &mut Tx<'_>, statement_id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(amount_fen) FILTER (WHERE direction = 'credit'), 0)::int8,
                coalesce(sum(amount_fen) FILTER (WHERE direction = 'debit'), 0)::int8, count(*)
         FROM statement_lines WHERE statement_id = $1",
    )
    .bind(statement_id)
    .fetch_one(&mut **transaction)
    .await
}

/// The collection account's balance at `at` by value time: credits valued before it, less
/// confirmed payments settled before it.
pub async fn balance_at(transaction: &mut Tx<'_>, bank: &str, account_number: &str, at: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(amount_fen), 0) FROM credit_notices WHERE bank = $1 AND account_number = $2 AND value_time < $3)::int8
              - (SELECT coalesce(sum(principal_fen + interest_fen), 0) FROM payment_orders
                 WHERE bank = $1 AND account_number = $2 AND status = 'confirmed' AND settled_at < $3)::int8",
    )
    .bind(bank)
    .bind(account_number)
    .bind(at)
    .fetch_one(&mut **transaction)
    .await
}

/// The figures of a report, besides its statement's header.
#[derive(Debug, Clone)]
pub struct Figures {
    pub status: &'static str,
    pub line_count: i64,
    pub credits_fen: i64,
    pub debits_fen: i64,
    pub ledger_opening_fen: i64,
    pub ledger_closing_fen: i64,
    pub late_notified: usize,
    pub discrepancies: usize,
    pub reconcile_ms: i64,
}

/// Stores the report and its discrepancies.
pub async fn insert_report(transaction: &mut Tx<'_>, statement: &Statement, figures: &Figures, found: &[Discrepancy]) -> Result<(), sqlx::Error> {
    let count = |value: usize| i32::try_from(value).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO reconciliation_reports (statement_id, bank, account_number, centre_id, statement_date, status, line_count,
             credits_fen, debits_fen, bank_opening_fen, bank_closing_fen, ledger_opening_fen, ledger_closing_fen, late_notified,
             discrepancies, first_part_at, reconciled_at, reconcile_ms)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                (SELECT min(received_at) FROM statement_parts WHERE statement_id = $1), clock_timestamp(), $16",
    )
    .bind(&statement.statement_id)
    .bind(&statement.bank)
    .bind(&statement.account_number)
    .bind(&statement.centre_id)
    .bind(statement.statement_date)
    .bind(figures.status)
    .bind(i32::try_from(figures.line_count).unwrap_or(i32::MAX))
    .bind(figures.credits_fen)
    .bind(figures.debits_fen)
    .bind(statement.opening_fen)
    .bind(statement.closing_fen)
    .bind(figures.ledger_opening_fen)
    .bind(figures.ledger_closing_fen)
    .bind(count(figures.late_notified))
    .bind(count(figures.discrepancies))
    .bind(figures.reconcile_ms)
    .execute(&mut **transaction)
    .await?;
    insert_discrepancies(transaction, &statement.statement_id, found).await
}

async fn insert_discrepancies(transaction: &mut Tx<'_>, statement_id: &str, found: &[Discrepancy]) -> Result<(), sqlx::Error> {
    if found.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i32> = (1..=found.len()).map(|n| i32::try_from(n).unwrap_or(i32::MAX)).collect();
    let kinds: Vec<&str> = found.iter().map(|item| item.kind).collect();
    let serials: Vec<Option<&str>> = found.iter().map(|item| item.serial.as_deref()).collect();
    let amounts: Vec<Option<i64>> = found.iter().map(|item| item.amount_fen).collect();
    let details: Vec<&str> = found.iter().map(|item| item.detail.as_str()).collect();
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
