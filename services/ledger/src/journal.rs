//! Appending to the journal: every entry of the ledger, from whichever path, goes through a
//! [`JournalWriter`] inside a transaction that holds its centre's chain-head lock. The writer
//! numbers entries, chains their hashes (invariant 6), and writes entries, postings and the
//! aggregated balance changes with one statement each.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jinfu_ledger::chain::{entry_hash, ChainedEntry, ChainedPosting};
use jinfu_ledger::{EntryKind, JournalEntry};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// The last entry of one centre's chain, as locked for this transaction.
pub struct ChainHead {
    pub sequence: i64,
    pub hash: [u8; 32],
}

/// Locks the chain heads of `centres` in code order (so concurrent transactions cannot
/// deadlock) and returns them. Every registered centre has a head.
pub async fn lock_chain_heads(transaction: &mut Transaction<'_, Postgres>, centres: &BTreeSet<&str>) -> anyhow::Result<HashMap<String, ChainHead>> {
    if centres.is_empty() {
        return Ok(HashMap::new());
    }
    let centres: Vec<&str> = centres.iter().copied().collect();
    let rows = sqlx::query("SELECT centre_id, last_sequence, last_hash FROM chain_heads WHERE centre_id = ANY($1) ORDER BY centre_id FOR UPDATE")
        .bind(&centres)
        .fetch_all(&mut **transaction)
        .await?;
    let heads: HashMap<String, ChainHead> = rows
        .iter()
        .map(|row| {
            let hash: Vec<u8> = row.get(2);
            let hash: [u8; 32] = hash.try_into().expect("stored chain hashes are 32 bytes");
            (row.get(0), ChainHead { sequence: row.get(1), hash })
        })
        .collect();
    anyhow::ensure!(heads.len() == centres.len(), "a registered centre has no chain head");
    Ok(heads)
}

pub async fn store_chain_heads(transaction: &mut Transaction<'_, Postgres>, heads: &HashMap<String, ChainHead>) -> anyhow::Result<()> {
    let mut centres = Vec::new();
    let mut sequences = Vec::new();
    let mut hashes = Vec::new();
    for (centre, head) in heads {
        centres.push(centre.clone());
        sequences.push(head.sequence);
        hashes.push(head.hash.to_vec());
    }
    sqlx::query(
        "UPDATE chain_heads h SET last_sequence = n.last_sequence, last_hash = n.last_hash
         FROM UNNEST($1::text[], $2::int8[], $3::bytea[]) AS n(centre_id, last_sequence, last_hash)
         WHERE h.centre_id = n.centre_id",
    )
    .bind(&centres)
    .bind(&sequences)
    .bind(&hashes)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Entries of one transaction, written together by [`JournalWriter::flush`].
#[derive(Default)]
pub struct JournalWriter {
    entry_centres: Vec<String>,
    entry_sequences: Vec<i64>,
    entry_ids: Vec<Uuid>,
    entry_kinds: Vec<String>,
    entry_references: Vec<String>,
    entry_previous: Vec<Vec<u8>>,
    entry_hashes: Vec<Vec<u8>>,
    posting_centres: Vec<String>,
    posting_sequences: Vec<i64>,
    posting_lines: Vec<i16>,
    posting_accounts: Vec<String>,
    posting_sides: Vec<String>,
    posting_amounts: Vec<i64>,
    /// Net balance change per (centre, account), with the account's kind.
    deltas: BTreeMap<(String, String), (&'static str, i64)>,
}

impl JournalWriter {
    /// Appends `entry` to `centre`'s chain (whose head must be locked); returns its sequence.
    pub fn append(&mut self, head: &mut ChainHead, centre: &str, kind: EntryKind, reference: &str, entry: &JournalEntry) -> i64 {
        head.sequence += 1;
        let entry_id = Uuid::now_v7();
        let entry_id_text = entry_id.to_string();
        let account_names: Vec<String> = entry.postings().iter().map(|p| p.account.to_string()).collect();
        let chained: Vec<ChainedPosting<'_>> = entry
            .postings()
            .iter()
            .zip(&account_names)
            .map(|(posting, account)| ChainedPosting { account, side: posting.side, amount_fen: posting.amount.fen() })
            .collect();
        let previous = head.hash;
        head.hash = entry_hash(
            &previous,
            &ChainedEntry { centre_id: centre, sequence: head.sequence, entry_id: &entry_id_text, kind: kind.as_str(), reference, postings: &chained },
        );
        self.entry_centres.push(centre.to_owned());
        self.entry_sequences.push(head.sequence);
        self.entry_ids.push(entry_id);
        self.entry_kinds.push(kind.as_str().to_owned());
        self.entry_references.push(reference.to_owned());
        self.entry_previous.push(previous.to_vec());
        self.entry_hashes.push(head.hash.to_vec());
        for (line, (posting, account)) in entry.postings().iter().zip(account_names).enumerate() {
            self.posting_centres.push(centre.to_owned());
            self.posting_sequences.push(head.sequence);
            self.posting_lines.push(i16::try_from(line).expect("an entry has few postings"));
            self.posting_accounts.push(account);
            self.posting_sides.push(posting.side.as_str().to_owned());
            self.posting_amounts.push(posting.amount.fen());
        }
        for (account, delta) in entry.balance_deltas() {
            let slot = self.deltas.entry((centre.to_owned(), account.to_string())).or_insert((account.kind().as_str(), 0));
            slot.1 += delta.fen();
        }
        head.sequence
    }

    pub fn is_empty(&self) -> bool {
        self.entry_sequences.is_empty()
    }

    /// Writes the entries, their postings, and every balance they changed, aggregated. The
    /// `accounts` CHECK refuses a negative balance, which aborts the transaction (invariant 3
    /// never breaks in storage).
    pub async fn flush(&self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO journal_entries (centre_id, sequence, entry_id, kind, reference, previous_hash, hash)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::uuid[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])",
        )
        .bind(&self.entry_centres)
        .bind(&self.entry_sequences)
        .bind(&self.entry_ids)
        .bind(&self.entry_kinds)
        .bind(&self.entry_references)
        .bind(&self.entry_previous)
        .bind(&self.entry_hashes)
        .execute(&mut **transaction)
        .await?;
        sqlx::query(
            "INSERT INTO postings (centre_id, sequence, line, account, side, amount_fen)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int2[], $4::text[], $5::text[], $6::int8[])",
        )
        .bind(&self.posting_centres)
        .bind(&self.posting_sequences)
        .bind(&self.posting_lines)
        .bind(&self.posting_accounts)
        .bind(&self.posting_sides)
        .bind(&self.posting_amounts)
        .execute(&mut **transaction)
        .await?;
        let mut centres = Vec::new();
        let mut accounts = Vec::new();
        let mut kinds = Vec::new();
        let mut deltas = Vec::new();
        for ((centre, account), (kind, delta)) in &self.deltas {
            centres.push(centre.as_str());
            accounts.push(account.as_str());
            kinds.push(*kind);
            deltas.push(*delta);
        }
        // Update existing balances, insert new ones. (Not INSERT … ON CONFLICT: PostgreSQL checks
        // the CHECK constraint on the proposed row before it sees the conflict, so a negative
        // delta to an existing account would be refused.) Accounts of one centre are only
        // written under its chain-head lock, so the two halves cannot race. Both halves probe
        // the primary key per changed account: the INSERT's NOT EXISTS sees the table as it was
        // before this statement, i.e. exactly the accounts the UPDATE found.
        sqlx::query(
            "WITH delta AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[]) AS d(centre_id, account, kind, delta_fen)),
             updated AS (
                 UPDATE accounts a SET balance_fen = a.balance_fen + delta.delta_fen
                 FROM delta WHERE a.centre_id = delta.centre_id AND a.account = delta.account)
             INSERT INTO accounts (centre_id, account, kind, balance_fen)
             SELECT centre_id, account, kind, delta_fen FROM delta
             WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.centre_id = delta.centre_id AND a.account = delta.account)",
        )
        .bind(&centres)
        .bind(&accounts)
        .bind(&kinds)
        .bind(&deltas)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }
}
