//! The ledger as a real process, killed at chosen points of a batch (before any write, after
//! every write but before the commit, after the commit but before Kafka's offset copy) and at
//! random moments with SIGKILL, then restarted: nothing is applied twice and nothing is lost.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use jinfu_bank_sim::BankRecord;
use jinfu_e2e::*;
use jinfu_ledger_service::settings::Settings;
use jinfu_ledger_service::verify;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use tokio::process::Child;

fn start(settings: &Settings, banks: &Banks, port: u16, crash_point: Option<&str>, log: &str) -> anyhow::Result<Child> {
    // One replica at a time: it reads every partition from the offsets in PostgreSQL. (tansu
    // 0.6.0's group coordinator sometimes leaves a restarted member unassigned; see the runbook.)
    let mut env = vec![
        ("JINFU_INGEST__BATCH_SIZE_MAX", "5".to_owned()),
        ("JINFU_INGEST__INSTANCE_ID", "ledger-0".to_owned()),
        ("JINFU_INGEST__ASSIGNMENT", "manual".to_owned()),
    ];
    if let Some(point) = crash_point {
        env.push(("JINFU_FAULT__CRASH_POINT", point.to_owned()));
        env.push(("JINFU_FAULT__CRASH_ON_BATCH", "2".to_owned()));
    }
    start_ledger_process(settings, banks, port, log, &env)
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect("count query")
}

#[tokio::test]
async fn a_ledger_killed_anywhere_in_a_batch_applies_nothing_twice_and_loses_nothing() -> anyhow::Result<()> {
    let banks = Banks::generate();
    let settings = test_settings(&banks).await?;
    let log = std::env::temp_dir().join(format!("jinfu-crash-{}.log", uuid::Uuid::new_v4().simple()));
    let log = log.to_string_lossy().into_owned();
    let port = free_port();
    eprintln!("ledger log: {log}");

    // Set the centre up through a first, healthy process.
    let mut ledger = start(&settings, &banks, port, None, &log)?;
    let client = LedgerClient::connect(&format!("http://127.0.0.1:{port}")).await?;
    client.register_test_centre().await?;
    client.create_section("CRASH", 100_000_000, Utc::now() + chrono::Duration::days(2), Utc::now() + chrono::Duration::days(2), false).await?;
    let mut bidders = Vec::new();
    for number in 1..=30 {
        let bidder = TestBidder::new(100 + number);
        let account = client.open_sub_account("CRASH", &bidder).await?;
        bidders.push((bidder, account));
    }
    ledger.start_kill()?;
    ledger.wait().await?;

    // 360 distinct transfers in instalments, plus 40 byte-identical redeliveries.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut records: Vec<BankRecord> = Vec::new();
    let mut expected: HashMap<String, i64> = HashMap::new();
    for serial in 0..360 {
        let (bidder, account) = &bidders[serial % bidders.len()];
        let fen: i64 = rng.gen_range(1..=2_000_000);
        let amount = jinfu_ledger::Fen::from_fen(fen).to_yuan_string();
        records.push(sign_icbc(&banks, &icbc_notice(&banks, &format!("K{serial:05}"), account, bidder, &amount)));
        *expected.entry(bidder.uscc.clone()).or_default() += fen;
    }
    for _ in 0..40 {
        let copy = records[rng.gen_range(0..records.len())].clone();
        records.push(copy);
    }
    send(&settings.kafka, &records).await?;
    let pool = jinfu_platform::db::connect_and_migrate(&settings.database, jinfu_ledger_service::SCHEMA, &jinfu_ledger_service::MIGRATOR).await?;

    // Deterministic crashes at each point of the second batch of a fresh process.
    for point in ["after_validation", "before_commit", "after_commit"] {
        let before = records_done(&pool).await?;
        let mut crashing = start(&settings, &banks, port, Some(point), &log)?;
        let status = tokio::time::timeout(Duration::from_secs(90), crashing.wait()).await??;
        assert!(!status.success(), "the ledger should have aborted at {point}");
        let after = records_done(&pool).await?;
        assert!(after > before, "the batch before the crash at {point} was applied ({before} → {after})");
    }
    // Random SIGKILLs while it works.
    for _ in 0..3 {
        let mut victim = start(&settings, &banks, port, None, &log)?;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1500..4000))).await;
        victim.start_kill()?;
        victim.wait().await?;
    }
    // A last, healthy run drains the topic.
    let mut survivor = start(&settings, &banks, port, None, &log)?;
    wait_for_records(&pool, records.len() as i64, Duration::from_secs(120)).await?;
    // Let the relay publish what the last batch wrote, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    survivor.start_kill()?;
    survivor.wait().await?;

    assert_eq!(count(&pool, "SELECT count(*) FROM ledger.credit_notices").await, 360, "every distinct transfer exactly once");
    assert_eq!(count(&pool, "SELECT count(*) FROM ledger.journal_entries").await, 360);
    let total: i64 = expected.values().sum();
    let bank: i64 =
        sqlx::query_scalar("SELECT balance_fen FROM ledger.accounts WHERE account = $1").bind(format!("bank:ICBC:{ICBC_ACCOUNT}")).fetch_one(&pool).await?;
    assert_eq!(bank, total);
    for (uscc, fen) in &expected {
        let held: i64 =
            sqlx::query_scalar("SELECT balance_fen FROM ledger.accounts WHERE account = $1").bind(format!("deposit:CRASH:{uscc}")).fetch_one(&pool).await?;
        assert_eq!(held, *fen, "deposit of {uscc}");
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM ledger.outbox WHERE topic LIKE '%ledger.events'").await,
        360,
        "one event per applied notice, none from redeliveries or crashed batches"
    );
    let result = verify::verify(&pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    let _ = std::fs::remove_file(&log);
    eprintln!("ledger log: {log}");
    Ok(())
}
