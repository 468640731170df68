//! What a credit-notice batch reads: the registry it validates against, the stored notices it
//! checks replays against, and the sub-accounts and balances it matches against. Every read
//! probes an index per key of the batch (a few thousand at most), never scans a table that
//! grows without end.

use std::collections::{HashMap, HashSet};

use jinfu_ledger::matching::Target;
use jinfu_ledger::Fen;
use sqlx::{Postgres, Row, Transaction};

/// A registered collection account: its centre and the reference of its bank's signing key.
pub struct CollectionAccountRow {
    pub bank: String,
    pub account_number: String,
    pub centre_id: String,
    pub signing_key_ref: String,
}

/// Every join of the batch transaction looks up the batch's keys in tables that grow without
/// end (accounts, sub-accounts, notices): index probes, never a hash or merge join over a whole
/// table, which the planner's cost model picks for tables of up to about a million cached rows,
/// making each batch slower as the ledger grows.
pub async fn prefer_index_probes(transaction: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)").execute(&mut **transaction).await?;
    Ok(())
}

pub async fn collection_accounts(connection: &mut sqlx::PgConnection) -> Result<Vec<CollectionAccountRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT bank, account_number, centre_id, signing_key_ref FROM bank_accounts").fetch_all(connection).await?;
    Ok(rows
        .iter()
        .map(|row| CollectionAccountRow { bank: row.get(0), account_number: row.get(1), centre_id: row.get(2), signing_key_ref: row.get(3) })
        .collect())
}

pub async fn centres(connection: &mut sqlx::PgConnection) -> Result<HashSet<String>, sqlx::Error> {
    Ok(sqlx::query_scalar("SELECT centre_id FROM centres").fetch_all(connection).await?.into_iter().collect())
}

/// The content hash of every stored notice among `(banks[i], serials[i])`, by (bank, serial).
pub async fn stored_hashes(
    transaction: &mut Transaction<'_, Postgres>,
    banks: &[&str],
    serials: &[&str],
) -> Result<HashMap<(String, String), Vec<u8>>, sqlx::Error> {
    if banks.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT n.bank, n.bank_serial, n.content_hash FROM credit_notices n
         JOIN UNNEST($1::text[], $2::text[]) AS k(bank, bank_serial)
           ON n.bank = k.bank AND n.bank_serial = k.bank_serial",
    )
    .bind(banks)
    .bind(serials)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| ((row.get(0), row.get(1)), row.get(2))).collect())
}

/// The sub-account and section of each of `numbers` that exists, by sub-account number.
pub async fn targets(transaction: &mut Transaction<'_, Postgres>, numbers: &[&str]) -> Result<HashMap<String, Target>, sqlx::Error> {
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
    .bind(numbers)
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

/// The balance of each existing account among `(centres[i], accounts[i])`, by (centre, account).
pub async fn balances(
    transaction: &mut Transaction<'_, Postgres>,
    centres: &[String],
    accounts: &[String],
) -> Result<HashMap<(String, String), Fen>, sqlx::Error> {
    // One primary-key probe per account, as in `targets`.
    let rows = sqlx::query(
        "SELECT k.centre_id, k.account, a.balance_fen
         FROM UNNEST($1::text[], $2::text[]) AS k(centre_id, account)
         CROSS JOIN LATERAL (
             SELECT a.balance_fen FROM accounts a WHERE a.centre_id = k.centre_id AND a.account = k.account LIMIT 1) a",
    )
    .bind(centres)
    .bind(accounts)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(rows.iter().map(|row| ((row.get(0), row.get(1)), Fen::from_fen(row.get(2)))).collect())
}
