//! Appending to the journal: every entry of the ledger, from whichever path, goes through a
//! [`JournalWriter`] inside a transaction that holds its centre's chain-head lock. The writer
//! numbers entries, chains their hashes (invariant 6), and writes entries, postings and the
//! aggregated balance changes with one statement each.
//!
//! Invariants are asserted where they are established and again where they are relied on:
//! each entry's balance (invariant 1) when it is appended and again on the postings as the
//! database stored them, and every balance written that may never be negative (invariant 3) as
//! the database stored it. A broken invariant is a programmer error, but it is reported as a
//! [`JournalError`] naming the centre, the entry and the account, not as a panic: the caller's
//! transaction rolls back and its task stops with the coordinates of the work it was doing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use jinfu_ledger::chain::{entry_hash, ChainedEntry, ChainedPosting};
use jinfu_ledger::entry::check_postings_balance;
use jinfu_ledger::{AccountKey, EntryError, EntryKind, Fen, JournalEntry, Posting, Side};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// A ledger invariant found broken while writing the journal: a bug, never retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("invariant 1: entry {centre}#{sequence} ({reference}) does not balance as built: {source}")]
    BuiltEntryUnbalanced { centre: String, sequence: i64, reference: String, source: EntryError },
    #[error("invariant 1: entry {centre}#{sequence} does not balance as stored: {source}")]
    StoredEntryUnbalanced { centre: String, sequence: i64, source: EntryError },
    #[error("entry {centre}#{sequence} has a stored posting to {account:?}, which is not an account key")]
    StoredAccountUnreadable { centre: String, sequence: i64, account: String },
    #[error("entry {centre}#{sequence} has a stored posting with side {side:?}")]
    StoredSideUnreadable { centre: String, sequence: i64, side: String },
    #[error("{stored} postings were stored of the {written} written")]
    PostingsLost { written: usize, stored: usize },
    #[error("invariant 3: account {account} of centre {centre} has balance {balance_fen} fen after writing")]
    NegativeBalance { centre: String, account: String, balance_fen: i64 },
    #[error("{stored} balances were stored of the {written} changed")]
    BalancesLost { written: usize, stored: usize },
}

impl JournalError {
    /// The centre whose journal broke, where one is known.
    pub fn centre(&self) -> Option<&str> {
        match self {
            JournalError::BuiltEntryUnbalanced { centre, .. }
            | JournalError::StoredEntryUnbalanced { centre, .. }
            | JournalError::StoredAccountUnreadable { centre, .. }
            | JournalError::StoredSideUnreadable { centre, .. }
            | JournalError::NegativeBalance { centre, .. } => Some(centre),
            JournalError::PostingsLost { .. } | JournalError::BalancesLost { .. } => None,
        }
    }

    /// The account concerned, where one is known.
    pub fn account(&self) -> Option<&str> {
        match self {
            JournalError::StoredAccountUnreadable { account, .. } | JournalError::NegativeBalance { account, .. } => Some(account),
            _ => None,
        }
    }
}

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
    /// Net balance change per (centre, account).
    deltas: BTreeMap<(String, String), BalanceChange>,
    /// The first entry appended that did not balance; [`JournalWriter::flush`] refuses to write.
    broken: Option<JournalError>,
}

/// The net change of one account's balance in one transaction.
struct BalanceChange {
    kind: &'static str,
    delta_fen: i64,
    /// Invariant 3 holds for this account: its balance after writing is checked.
    must_not_go_negative: bool,
}

impl JournalWriter {
    /// Appends `entry` to `centre`'s chain (whose head must be locked); returns its sequence.
    pub fn append(&mut self, head: &mut ChainHead, centre: &str, kind: EntryKind, reference: &str, entry: &JournalEntry) -> i64 {
        head.sequence += 1;
        // Established by `JournalEntry`'s constructor, relied on by every balance: checked again.
        if let Err(source) = check_postings_balance(entry.postings()) {
            if self.broken.is_none() {
                self.broken =
                    Some(JournalError::BuiltEntryUnbalanced { centre: centre.to_owned(), sequence: head.sequence, reference: reference.to_owned(), source });
            }
        }
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
            let slot = self.deltas.entry((centre.to_owned(), account.to_string())).or_insert(BalanceChange {
                kind: account.kind().as_str(),
                delta_fen: 0,
                must_not_go_negative: account.must_not_go_negative(),
            });
            slot.delta_fen += delta.fen();
        }
        head.sequence
    }

    pub fn is_empty(&self) -> bool {
        self.entry_sequences.is_empty()
    }

    /// Writes the entries, their postings, and every balance they changed, aggregated, and
    /// checks what the database stored: every entry balances (invariant 1) and no balance that
    /// must not be negative is (invariant 3). The `accounts` CHECK refuses a negative balance
    /// too, which aborts the transaction (invariant 3 never breaks in storage). Refuses to write
    /// anything if an appended entry did not balance.
    pub async fn flush(&self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if let Some(broken) = &self.broken {
            return Err(anyhow::Error::new(broken.clone()));
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
        let stored = sqlx::query(
            "INSERT INTO postings (centre_id, sequence, line, account, side, amount_fen)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int2[], $4::text[], $5::text[], $6::int8[])
             RETURNING centre_id, sequence, account, side, amount_fen",
        )
        .bind(&self.posting_centres)
        .bind(&self.posting_sequences)
        .bind(&self.posting_lines)
        .bind(&self.posting_accounts)
        .bind(&self.posting_sides)
        .bind(&self.posting_amounts)
        .fetch_all(&mut **transaction)
        .await?;
        check_stored_postings(self.posting_centres.len(), &stored)?;
        self.write_balances(transaction).await
    }

    /// Updates existing balances and inserts new ones, then checks invariant 3 on what was
    /// stored.
    async fn write_balances(&self, transaction: &mut Transaction<'_, Postgres>) -> anyhow::Result<()> {
        let mut centres = Vec::new();
        let mut accounts = Vec::new();
        let mut kinds = Vec::new();
        let mut deltas = Vec::new();
        for ((centre, account), change) in &self.deltas {
            centres.push(centre.as_str());
            accounts.push(account.as_str());
            kinds.push(change.kind);
            deltas.push(change.delta_fen);
        }
        // Update existing balances, insert new ones. (Not INSERT … ON CONFLICT: PostgreSQL checks
        // the CHECK constraint on the proposed row before it sees the conflict, so a negative
        // delta to an existing account would be refused.) Accounts of one centre are only
        // written under its chain-head lock, so the two halves cannot race. Both halves probe
        // the primary key per changed account: the INSERT's NOT EXISTS sees the table as it was
        // before this statement, i.e. exactly the accounts the UPDATE found.
        let stored = sqlx::query(
            "WITH delta AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[]) AS d(centre_id, account, kind, delta_fen)),
             updated AS (
                 UPDATE accounts a SET balance_fen = a.balance_fen + delta.delta_fen
                 FROM delta WHERE a.centre_id = delta.centre_id AND a.account = delta.account
                 RETURNING a.centre_id, a.account, a.balance_fen),
             inserted AS (
                 INSERT INTO accounts (centre_id, account, kind, balance_fen)
                 SELECT centre_id, account, kind, delta_fen FROM delta
                 WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.centre_id = delta.centre_id AND a.account = delta.account)
                 RETURNING centre_id, account, balance_fen)
             SELECT centre_id, account, balance_fen FROM updated UNION ALL SELECT centre_id, account, balance_fen FROM inserted",
        )
        .bind(&centres)
        .bind(&accounts)
        .bind(&kinds)
        .bind(&deltas)
        .fetch_all(&mut **transaction)
        .await?;
        self.check_stored_balances(&stored)?;
        Ok(())
    }

    /// Invariant 3 where it is relied on: every balance this writer changed was stored once,
    /// and none that must not be negative is.
    fn check_stored_balances(&self, stored: &[sqlx::postgres::PgRow]) -> Result<(), JournalError> {
        if stored.len() != self.deltas.len() {
            return Err(JournalError::BalancesLost { written: self.deltas.len(), stored: stored.len() });
        }
        for row in stored {
            let (centre, account, balance_fen): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
            let must_not_go_negative = self.deltas.get(&(centre.clone(), account.clone())).is_none_or(|change| change.must_not_go_negative);
            if must_not_go_negative && balance_fen < 0 {
                return Err(JournalError::NegativeBalance { centre, account, balance_fen });
            }
        }
        Ok(())
    }
}

/// Invariant 1 where it is relied on: the postings as the database stored them (returned by
/// their INSERT) are all there, and balance per entry.
fn check_stored_postings(written: usize, stored: &[sqlx::postgres::PgRow]) -> Result<(), JournalError> {
    if stored.len() != written {
        return Err(JournalError::PostingsLost { written, stored: stored.len() });
    }
    let mut entries: BTreeMap<(String, i64), Vec<Posting>> = BTreeMap::new();
    for row in stored {
        let (centre, sequence, account_text, side_text, amount_fen): (String, i64, String, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let Ok(account) = AccountKey::from_str(&account_text) else {
            return Err(JournalError::StoredAccountUnreadable { centre, sequence, account: account_text });
        };
        let Some(side) = Side::parse(&side_text) else {
            return Err(JournalError::StoredSideUnreadable { centre, sequence, side: side_text });
        };
        entries.entry((centre, sequence)).or_default().push(Posting { account, side, amount: Fen::from_fen(amount_fen) });
    }
    for ((centre, sequence), postings) in entries {
        if let Err(source) = check_postings_balance(&postings) {
            return Err(JournalError::StoredEntryUnbalanced { centre, sequence, source });
        }
    }
    Ok(())
}
