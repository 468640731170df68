//! What a credit-notice batch writes besides the journal: notice rows, dead letters, serial
//! conflicts, payer links and collusion leads, each with one multi-row statement per table.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Row, Transaction};

/// Posted notices of one batch, column by column.
#[derive(Default)]
pub struct NoticeRows {
    pub bank: Vec<String>,
    pub bank_serial: Vec<String>,
    pub content_hash: Vec<Vec<u8>>,
    pub event_id: Vec<String>,
    pub centre_id: Vec<String>,
    pub account_number: Vec<String>,
    pub sub_account_number: Vec<String>,
    pub amount_fen: Vec<i64>,
    pub payer_name: Vec<String>,
    pub payer_account: Vec<String>,
    pub value_time: Vec<DateTime<Utc>>,
    pub section_id: Vec<Option<String>>,
    pub bidder_uscc: Vec<Option<String>>,
    pub outcome: Vec<String>,
    pub entry_sequence: Vec<i64>,
    pub partition: Vec<i32>,
    pub offset: Vec<i64>,
    pub produced_at: Vec<Option<DateTime<Utc>>>,
    pub late_notified: Vec<bool>,
}

/// A refused record kept in `dead_letters`.
pub struct DeadLetterRow {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// A bank serial seen again with different content.
pub struct ConflictRow {
    pub bank: String,
    pub bank_serial: String,
    pub centre_id: String,
    pub stored_hash: Vec<u8>,
    pub incoming_hash: Vec<u8>,
    pub payload: Vec<u8>,
    pub partition: i32,
    pub offset: i64,
}

/// (centre, section, normalised payer account, bidder): one payer funding one bidder.
pub type PayerLink = (String, String, String, String);

pub async fn insert_notices(transaction: &mut Transaction<'_, Postgres>, rows: &NoticeRows) -> Result<(), sqlx::Error> {
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
    Ok(())
}

/// Keeps refused records of `topic`; a record kept before is left as it was.
pub async fn insert_dead_letters(transaction: &mut Transaction<'_, Postgres>, topic: &str, rows: &[DeadLetterRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = rows.iter().map(|row| row.partition).collect();
    let offsets: Vec<i64> = rows.iter().map(|row| row.offset).collect();
    let reasons: Vec<&str> = rows.iter().map(|row| row.reason.as_str()).collect();
    let payloads: Vec<&[u8]> = rows.iter().map(|row| row.payload.as_slice()).collect();
    sqlx::query(
        "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, payload)
         SELECT $1, * FROM UNNEST($2::int4[], $3::int8[], $4::text[], $5::bytea[])
         ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING",
    )
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .bind(&reasons)
    .bind(&payloads)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn insert_conflicts(transaction: &mut Transaction<'_, Postgres>, rows: &[ConflictRow]) -> Result<(), sqlx::Error> {
    for row in rows {
        sqlx::query(
            "INSERT INTO notice_conflicts (bank, bank_serial, centre_id, stored_hash, incoming_hash, payload, kafka_partition, kafka_offset)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.bank)
        .bind(&row.bank_serial)
        .bind(&row.centre_id)
        .bind(&row.stored_hash)
        .bind(&row.incoming_hash)
        .bind(&row.payload)
        .bind(row.partition)
        .bind(row.offset)
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

pub async fn insert_payer_links(transaction: &mut Transaction<'_, Postgres>, links: &BTreeSet<PayerLink>) -> Result<(), sqlx::Error> {
    if links.is_empty() {
        return Ok(());
    }
    let mut columns: [Vec<&str>; 4] = Default::default();
    for link in links {
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
    Ok(())
}

/// A payer account linked to two or more bidders of one section.
pub struct SharedPayer {
    pub centre_id: String,
    pub section_id: String,
    pub payer_account: String,
    /// In code order.
    pub bidders: Vec<String>,
}

/// Among the (centre, section, payer) triples, those whose payer funded two or more bidders.
pub async fn shared_payers(transaction: &mut Transaction<'_, Postgres>, triples: &BTreeSet<(&str, &str, &str)>) -> Result<Vec<SharedPayer>, sqlx::Error> {
    if triples.is_empty() {
        return Ok(Vec::new());
    }
    let mut columns: [Vec<&str>; 3] = Default::default();
    for triple in triples {
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
    Ok(rows.iter().map(|row| SharedPayer { centre_id: row.get(0), section_id: row.get(1), payer_account: row.get(2), bidders: row.get(3) }).collect())
}

/// Records a collusion lead; `false` if it was recorded before.
pub async fn insert_collusion_lead(
    transaction: &mut Transaction<'_, Postgres>,
    centre_id: &str,
    section_id: &str,
    payer_account: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query("INSERT INTO collusion_leads (centre_id, section_id, payer_account) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(centre_id)
        .bind(section_id)
        .bind(payer_account)
        .execute(&mut **transaction)
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A lead to publish: centre, section, payer account, the bidders it funded.
pub type OpenedLead = (String, String, String, Vec<String>);

/// The leads of sections whose bids are opened that are not published yet, marked published at
/// `at`, each with the bidders its payer funded (as of now).
pub async fn take_opened_leads(transaction: &mut Transaction<'_, Postgres>, at: DateTime<Utc>) -> Result<Vec<OpenedLead>, sqlx::Error> {
    sqlx::query_as(
        "WITH opened AS (
             UPDATE collusion_leads c SET published_at = $1 FROM sections s
              WHERE c.published_at IS NULL AND s.centre_id = c.centre_id AND s.section_id = c.section_id AND s.bids_opened_at IS NOT NULL
             RETURNING c.centre_id, c.section_id, c.payer_account)
         SELECT o.centre_id, o.section_id, o.payer_account, array_agg(l.bidder_uscc ORDER BY l.bidder_uscc)
         FROM opened o JOIN payer_links l USING (centre_id, section_id, payer_account)
         GROUP BY o.centre_id, o.section_id, o.payer_account ORDER BY o.centre_id, o.section_id, o.payer_account",
    )
    .bind(at)
    .fetch_all(&mut **transaction)
    .await
}
