//! The verification command: recomputes every balance from the postings and checks every
//! invariant of DESIGN.md §3 that the ledger holds today, including the hash chain.

use std::collections::HashMap;

use futures::TryStreamExt;
use jinfu_ledger::chain::{entry_hash, ChainedEntry, ChainedPosting, GENESIS_HASH};
use jinfu_ledger::Side;
use sqlx::{PgConnection, PgPool, Row};

/// The result of a verification run: counts checked and every violation found.
#[derive(Debug, Default)]
pub struct Verification {
    pub entries: u64,
    pub accounts: u64,
    pub notices: u64,
    pub violations: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs every check in one read-only REPEATABLE READ transaction, so it sees one consistent
/// snapshot and may run while the ledger is ingesting.
pub async fn verify(pool: &PgPool) -> anyhow::Result<Verification> {
    let mut result = Verification::default();
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut *transaction).await?;
    let snapshot = &mut *transaction;
    check_entries(snapshot, &mut result).await?;
    check_balances(snapshot, &mut result).await?;
    check_notices(snapshot, &mut result).await?;
    check_refunds(snapshot, &mut result).await?;
    check_suspense(snapshot, &mut result).await?;

    // Invariant 6: the hash chain of every centre, recomputed from the first entry.
    verify_chains(snapshot, &mut result).await?;
    transaction.commit().await?;
    Ok(result)
}

async fn verify_chains(snapshot: &mut sqlx::PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    let heads: HashMap<String, (i64, Vec<u8>)> = sqlx::query("SELECT centre_id, last_sequence, last_hash FROM chain_heads")
        .fetch_all(&mut *snapshot)
        .await?
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    let mut stream = sqlx::query(
        "SELECT e.centre_id, e.sequence, e.entry_id::text, e.kind, e.reference, e.previous_hash, e.hash,
                array_agg(p.account ORDER BY p.line), array_agg(p.side ORDER BY p.line), array_agg(p.amount_fen ORDER BY p.line)
         FROM journal_entries e JOIN postings p USING (centre_id, sequence)
         GROUP BY e.centre_id, e.sequence ORDER BY e.centre_id, e.sequence",
    )
    .fetch(&mut *snapshot);
    let mut current: Option<(String, i64, [u8; 32])> = None;
    let mut finished: HashMap<String, (i64, [u8; 32])> = HashMap::new();
    while let Some(row) = stream.try_next().await? {
        let centre: String = row.get(0);
        let sequence: i64 = row.get(1);
        let (expected_sequence, previous) = match &current {
            Some((current_centre, last, hash)) if *current_centre == centre => (last + 1, *hash),
            _ => {
                if let Some((done_centre, last, hash)) = current.take() {
                    finished.insert(done_centre, (last, hash));
                }
                (1, GENESIS_HASH)
            }
        };
        if sequence != expected_sequence {
            result.violations.push(format!("invariant 6: centre {centre} jumps from sequence {} to {sequence}", expected_sequence - 1));
        }
        let stored_previous: Vec<u8> = row.get(5);
        if stored_previous != previous {
            result.violations.push(format!("invariant 6: centre {centre} entry {sequence} does not link to the entry before it"));
        }
        let hash = recomputed_hash(&previous, &centre, sequence, &row);
        let stored_hash: Vec<u8> = row.get(6);
        if stored_hash != hash {
            result.violations.push(format!("invariant 6: centre {centre} entry {sequence} hash does not match its content"));
        }
        result.entries += 1;
        current = Some((centre, sequence, hash));
    }
    drop(stream);
    if let Some((centre, last, hash)) = current {
        finished.insert(centre, (last, hash));
    }
    for centre in finished.keys().filter(|centre| !heads.contains_key(*centre)) {
        result.violations.push(format!("invariant 6: centre {centre} has journal entries but no chain head"));
    }
    for (centre, (last_sequence, last_hash)) in heads {
        let (chain_last, chain_hash) = finished.get(&centre).copied().unwrap_or((0, GENESIS_HASH));
        if chain_last != last_sequence || chain_hash.as_slice() != last_hash.as_slice() {
            result.violations.push(format!("invariant 6: centre {centre} chain head says entry {last_sequence} but the journal ends at {chain_last}"));
        }
    }
    Ok(())
}

/// Invariant 1: entries balance and postings belong to an entry; accounts belong to a centre.
async fn check_entries(snapshot: &mut PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    // Invariant 1: every entry balances, and has postings at all.
    let unbalanced = sqlx::query(
        "SELECT e.centre_id, e.sequence,
                coalesce(sum(p.amount_fen) FILTER (WHERE p.side = 'debit'), 0)::int8,
                coalesce(sum(p.amount_fen) FILTER (WHERE p.side = 'credit'), 0)::int8
         FROM journal_entries e LEFT JOIN postings p USING (centre_id, sequence)
         GROUP BY 1, 2
         HAVING coalesce(sum(p.amount_fen) FILTER (WHERE p.side = 'debit'), 0)
              <> coalesce(sum(p.amount_fen) FILTER (WHERE p.side = 'credit'), 0)
             OR count(p.line) = 0",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in unbalanced {
        result.violations.push(format!(
            "invariant 1: entry {}#{} does not balance (debits {}, credits {})",
            row.get::<String, _>(0),
            row.get::<i64, _>(1),
            row.get::<i64, _>(2),
            row.get::<i64, _>(3)
        ));
    }

    // Postings belong to an entry (no foreign key enforces it on the hot path; migration 0009).
    let orphans = sqlx::query(
        "SELECT p.centre_id, p.sequence, count(*)::int8 FROM postings p
         WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.centre_id = p.centre_id AND e.sequence = p.sequence)
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in orphans {
        result.violations.push(format!(
            "invariant 1: {} postings of {}#{} belong to no journal entry",
            row.get::<i64, _>(2),
            row.get::<String, _>(0),
            row.get::<i64, _>(1)
        ));
    }

    let strays: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.centre_id, count(*)::int8 FROM accounts a
         WHERE NOT EXISTS (SELECT 1 FROM centres c WHERE c.centre_id = a.centre_id) GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for (centre, count) in strays {
        result.violations.push(format!("{count} accounts belong to centre {centre}, which is not registered"));
    }
    Ok(())
}

/// Stored balances equal recomputed ones, and none went negative (invariant 3).
async fn check_balances(snapshot: &mut PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    // Stored balances equal balances recomputed from postings.
    let mismatched = sqlx::query(
        "WITH recomputed AS (
             SELECT centre_id, account,
                    sum(CASE WHEN (side = 'debit') = (account LIKE 'bank:%' OR account = 'interest-expense')
                             THEN amount_fen ELSE -amount_fen END)::int8 AS balance_fen
             FROM postings GROUP BY 1, 2)
         SELECT coalesce(a.centre_id, r.centre_id), coalesce(a.account, r.account), a.balance_fen, r.balance_fen
         FROM accounts a FULL OUTER JOIN recomputed r USING (centre_id, account)
         WHERE a.balance_fen IS DISTINCT FROM r.balance_fen AND NOT (a.balance_fen = 0 AND r.balance_fen IS NULL)",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in mismatched {
        result.violations.push(format!(
            "balance of {} {} is {:?} but its postings sum to {:?}",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<Option<i64>, _>(2),
            row.get::<Option<i64>, _>(3)
        ));
    }
    result.accounts = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM accounts").fetch_one(&mut *snapshot).await?.try_into()?;

    // Invariant 3: no deposit, suspense or bank account was ever negative, at any point in
    // the journal, not only now.
    let negative = sqlx::query(
        "SELECT centre_id, account, min(running)::int8 FROM (
             SELECT centre_id, account,
                    sum(CASE WHEN (side = 'debit') = (account LIKE 'bank:%' OR account = 'interest-expense')
                             THEN amount_fen ELSE -amount_fen END)
                        OVER (PARTITION BY centre_id, account ORDER BY sequence, line) AS running
             FROM postings WHERE account NOT LIKE 'interest-%') balances
         GROUP BY 1, 2 HAVING min(running) < 0",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in negative {
        result.violations.push(format!("invariant 3: {} {} went negative ({} fen)", row.get::<String, _>(0), row.get::<String, _>(1), row.get::<i64, _>(2)));
    }
    Ok(())
}

/// Invariants 7 and 4: every notice is posted where its outcome says, in an entry of its own.
async fn check_notices(snapshot: &mut PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    // Invariant 7 (and 4): every applied notice ended in a deposit or suspense account, by its
    // recorded outcome, for exactly its amount, in an entry debiting its collection account.
    let misplaced = sqlx::query(
        "SELECT n.bank, n.bank_serial, n.outcome FROM credit_notices n
         WHERE NOT EXISTS (
             SELECT 1 FROM postings c JOIN postings d USING (centre_id, sequence)
             WHERE c.centre_id = n.centre_id AND c.sequence = n.entry_sequence
               AND c.side = 'credit' AND c.amount_fen = n.amount_fen
               AND d.side = 'debit' AND d.amount_fen = n.amount_fen
               AND d.account = bank_account_key(n.bank, n.account_number)
               AND CASE WHEN n.outcome IN ('matched', 'short', 'over')
                        THEN c.account = deposit_account_key(n.section_id, n.bidder_uscc)
                        ELSE c.account = suspense_account_key(n.bank, n.account_number) END)",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in misplaced {
        result.violations.push(format!(
            "invariant 7: notice {}/{} ({}) is not posted where its outcome says",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<String, _>(2)
        ));
    }
    let reused_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM (SELECT centre_id, entry_sequence FROM credit_notices GROUP BY 1, 2 HAVING count(*) > 1) twice")
            .fetch_one(&mut *snapshot)
            .await?;
    if reused_entries > 0 {
        result.violations.push(format!("invariant 4: {reused_entries} entries are claimed by more than one notice"));
    }
    result.notices = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM credit_notices").fetch_one(&mut *snapshot).await?.try_into()?;
    Ok(())
}

/// Refunds: money in transit and the entries of every payment order.
async fn check_refunds(snapshot: &mut PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    // Refunds: money in transit is exactly what unsettled payment orders carry, and every
    // order's entries are where its status says.
    let transit = sqlx::query(
        "WITH orders AS (
             SELECT centre_id, sum(principal_fen + interest_fen)::int8 AS fen FROM payment_orders WHERE status = 'ordered' GROUP BY 1),
         held AS (SELECT centre_id, balance_fen FROM accounts WHERE account = 'refund-in-transit')
         SELECT coalesce(o.centre_id, h.centre_id), coalesce(o.fen, 0), coalesce(h.balance_fen, 0)
         FROM orders o FULL OUTER JOIN held h USING (centre_id)
         WHERE coalesce(o.fen, 0) <> coalesce(h.balance_fen, 0)",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in transit {
        result.violations.push(format!(
            "refunds: centre {} has {} fen in unsettled payment orders but refund-in-transit holds {}",
            row.get::<String, _>(0),
            row.get::<i64, _>(1),
            row.get::<i64, _>(2)
        ));
    }
    let unposted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_orders o
         WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.centre_id = o.centre_id AND e.sequence = o.order_sequence
                             AND e.kind = CASE o.purpose WHEN 'suspense_return' THEN 'suspense_return_ordered' ELSE 'refund_ordered' END)
            OR (o.status <> 'ordered' AND NOT EXISTS (
                SELECT 1 FROM journal_entries e WHERE e.centre_id = o.centre_id AND e.sequence = o.result_sequence
                  AND e.kind = CASE WHEN o.status = 'confirmed' THEN 'refund_confirmed'
                                    WHEN o.purpose = 'suspense_return' THEN 'suspense_return_failed'
                                    ELSE 'refund_failed' END))",
    )
    .fetch_one(&mut *snapshot)
    .await?;
    if unposted > 0 {
        result.violations.push(format!("refunds: {unposted} payment orders lack the entry their status requires"));
    }
    Ok(())
}

/// Suspense: balances of open items, and the entry of every decision.
async fn check_suspense(snapshot: &mut PgConnection, result: &mut Verification) -> anyhow::Result<()> {
    // Suspense: each collection account's suspense account holds exactly its suspended notices
    // less the items bound or returned (or being returned), and every decision has its entry.
    let rows = sqlx::query(
        "WITH expected AS (
             SELECT n.centre_id, suspense_account_key(n.bank, n.account_number) AS account,
                    sum(n.amount_fen) FILTER (WHERE r.resolution_id IS NULL)::int8 AS fen
             FROM credit_notices n
             LEFT JOIN suspense_resolutions r ON r.bank = n.bank AND r.bank_serial = n.bank_serial AND r.status <> 'return_failed'
             WHERE n.outcome NOT IN ('matched', 'short', 'over')
             GROUP BY 1, 2)
         SELECT coalesce(e.centre_id, a.centre_id), coalesce(e.account, a.account), coalesce(e.fen, 0), coalesce(a.balance_fen, 0)
         FROM expected e FULL JOIN (SELECT * FROM accounts WHERE account LIKE 'suspense:%') a
           ON a.centre_id = e.centre_id AND a.account = e.account
         WHERE coalesce(e.fen, 0) <> coalesce(a.balance_fen, 0)",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    for row in rows {
        result.violations.push(format!(
            "suspense: centre {} account {} should hold {} fen of open items but holds {}",
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<i64, _>(2),
            row.get::<i64, _>(3)
        ));
    }
    let undocumented: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM suspense_resolutions r WHERE NOT EXISTS (
             SELECT 1 FROM journal_entries e WHERE e.centre_id = r.centre_id AND e.sequence = r.entry_sequence
               AND e.kind = CASE r.action WHEN 'bind' THEN 'suspense_bound' ELSE 'suspense_return_ordered' END)",
    )
    .fetch_one(&mut *snapshot)
    .await?;
    if undocumented > 0 {
        result.violations.push(format!("suspense: {undocumented} resolutions lack their journal entry"));
    }
    Ok(())
}

/// The hash of a journal row of `verify_chains` (entry columns, then its postings as arrays),
/// recomputed from its content and the hash it links to.
fn recomputed_hash(previous: &[u8; 32], centre: &str, sequence: i64, row: &sqlx::postgres::PgRow) -> [u8; 32] {
    let accounts: Vec<String> = row.get(7);
    let sides: Vec<String> = row.get(8);
    let amounts: Vec<i64> = row.get(9);
    let postings: Vec<ChainedPosting<'_>> = accounts
        .iter()
        .zip(&sides)
        .zip(&amounts)
        .map(|((account, side), amount)| ChainedPosting { account, side: Side::parse(side).unwrap_or(Side::Debit), amount_fen: *amount })
        .collect();
    let entry_id: String = row.get(2);
    let kind: String = row.get(3);
    let reference: String = row.get(4);
    entry_hash(previous, &ChainedEntry { centre_id: centre, sequence, entry_id: &entry_id, kind: &kind, reference: &reference, postings: &postings })
}
