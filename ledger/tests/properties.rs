//! Property tests on the core: any sequence of valid credit notices, matched by the rules and
//! posted as entries, keeps every invariant the core is responsible for.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use jinfu_ledger::chain::{entry_hash, ChainedEntry, ChainedPosting, GENESIS_HASH};
use jinfu_ledger::matching::{match_credit, CreditFacts, Target};
use jinfu_ledger::{AccountKey, AccountKind, EntryKind, Fen, JournalEntry, Outcome, Side};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Notice {
    target: Option<usize>,
    amount_fen: i64,
    payer_is_bidder: bool,
    minutes_after_start: i64,
}

fn notice() -> impl Strategy<Value = Notice> {
    (prop::option::weighted(0.9, 0usize..6), 1i64..5_000_000, prop::bool::weighted(0.85), 0i64..3000).prop_map(
        |(target, amount_fen, payer_is_bidder, minutes_after_start)| Notice { target, amount_fen, payer_is_bidder, minutes_after_start },
    )
}

fn targets() -> Vec<Target> {
    (0..6)
        .map(|index| Target {
            centre_id: "520100".into(),
            section_id: format!("S{}", index % 2),
            bidder_uscc: format!("B{index}"),
            bidder_name: format!("投标人{index}（集团）有限公司"),
            bidder_basic_account: format!("6222{index}"),
            required: Fen::from_fen(1_000_000),
            deposit_deadline: Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap(),
            section_open: index != 5,
            basic_account_required: index % 3 == 0,
            section_bank: "ICBC".into(),
            section_collection_account: "2402".into(),
        })
        .collect()
}

fn chained(entry: &JournalEntry, names: &[String], extra_fen: i64) -> Vec<(String, Side, i64)> {
    entry.postings().iter().zip(names).map(|(p, account)| (account.clone(), p.side, p.amount.fen() + extra_fen)).collect()
}

fn hash(previous: &[u8; 32], sequence: i64, postings: &[(String, Side, i64)]) -> [u8; 32] {
    let postings: Vec<ChainedPosting<'_>> =
        postings.iter().map(|(account, side, amount_fen)| ChainedPosting { account, side: *side, amount_fen: *amount_fen }).collect();
    entry_hash(previous, &ChainedEntry { centre_id: "520100", sequence, entry_id: "e", kind: "deposit_received", reference: "r", postings: &postings })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sequence_of_notices_keeps_the_books_balanced_and_the_chain_intact(notices in prop::collection::vec(notice(), 0..200)) {
        let targets = targets();
        let start = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let bank = AccountKey::Bank { bank: "ICBC".into(), account_number: "2402".into() };
        let suspense = AccountKey::Suspense { bank: "ICBC".into(), account_number: "2402".into() };
        let mut balances: BTreeMap<AccountKey, Fen> = BTreeMap::new();
        let mut matched_total: BTreeMap<AccountKey, Fen> = BTreeMap::new();
        let mut chain = GENESIS_HASH;
        let mut journal: Vec<(JournalEntry, Vec<String>, [u8; 32])> = Vec::new();
        let mut received = Fen::ZERO;

        for (index, notice) in notices.iter().enumerate() {
            let target = notice.target.map(|index| &targets[index]);
            let credit = CreditFacts {
                centre_id: "520100".into(),
                bank: "ICBC".into(),
                collection_account: "2402".into(),
                amount: Fen::from_fen(notice.amount_fen),
                payer_name: match (target, notice.payer_is_bidder) {
                    // Banks print brackets half-width; the registered name has them full-width.
                    (Some(target), true) => target.bidder_name.replace('（', "(").replace('）', ")"),
                    _ => "第三方公司".into(),
                },
                payer_account: target.map(|t| t.bidder_basic_account.clone()).unwrap_or_default(),
                value_time: start + chrono::Duration::minutes(notice.minutes_after_start),
            };
            let deposit = target.map(|t| AccountKey::Deposit { section: t.section_id.clone(), bidder: t.bidder_uscc.clone() });
            let held = deposit.as_ref().and_then(|d| balances.get(d)).copied().unwrap_or_default();
            let outcome = match_credit(&credit, target, held);
            let credited = match outcome {
                Outcome::Deposit { held_after, .. } => {
                    let account = deposit.clone().expect("a deposit outcome has a target");
                    prop_assert_eq!(held_after, held + credit.amount);
                    matched_total.insert(account.clone(), held_after);
                    account
                }
                Outcome::Suspense(_) => suspense.clone(),
            };
            let entry = JournalEntry::transfer(EntryKind::DepositReceived, bank.clone(), credited, credit.amount).expect("positive transfer");
            for (account, delta) in entry.balance_deltas() {
                let balance = balances.entry(account).or_default();
                *balance = *balance + delta;
            }
            received = received + credit.amount;
            let names: Vec<String> = entry.postings().iter().map(|p| p.account.to_string()).collect();
            chain = hash(&chain, index as i64 + 1, &chained(&entry, &names, 0));
            journal.push((entry, names, chain));
        }

        let mut assets = 0i64;
        let mut liabilities = 0i64;
        for (entry, _, _) in &journal {
            // Invariant 1 on every entry.
            let debits: i64 = entry.postings().iter().filter(|p| p.side == Side::Debit).map(|p| p.amount.fen()).sum();
            let credits: i64 = entry.postings().iter().filter(|p| p.side == Side::Credit).map(|p| p.amount.fen()).sum();
            prop_assert_eq!(debits, credits);
        }
        for (account, balance) in &balances {
            // Invariant 3: nothing negative.
            prop_assert!(balance.fen() >= 0, "{} is negative", account);
            match account.kind() {
                AccountKind::Asset => assets += balance.fen(),
                AccountKind::Liability => liabilities += balance.fen(),
                _ => {}
            }
        }
        // The books balance as a whole, and invariant 7: all money received is in a deposit or
        // in suspense.
        prop_assert_eq!(assets, liabilities);
        prop_assert_eq!(assets, received.fen());
        for (account, total) in &matched_total {
            prop_assert_eq!(balances[account], *total);
        }
        // Invariant 6: one changed fen in the last entry breaks its hash.
        if let Some((entry, names, last_hash)) = journal.last() {
            let previous = if journal.len() > 1 { journal[journal.len() - 2].2 } else { GENESIS_HASH };
            prop_assert_eq!(hash(&previous, journal.len() as i64, &chained(entry, names, 0)), *last_hash);
            prop_assert_ne!(hash(&previous, journal.len() as i64, &chained(entry, names, 1)), *last_hash);
        }
    }
}
