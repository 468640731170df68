//! Scale-out: two ledger processes in one consumer group share the partitions of
//! `bank.credit-notices`. A second instance joining mid-stream takes partitions away from the
//! first while its batches are in flight, and the first leaving hands them back: nothing is
//! applied twice and nothing is lost.

use std::time::Duration;

use chrono::Utc;
use jinfu_bank_sim::BankRecord;
use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use tokio::process::Child;

fn start_member(settings: &jinfu_ledger_service::settings::Settings, banks: &Banks, port: u16, log: &str) -> anyhow::Result<Child> {
    let env = [
        ("JINFU_INGEST__ASSIGNMENT", "group".to_owned()),
        // Small, slow-to-fill batches keep a batch in flight when the group rebalances.
        ("JINFU_INGEST__BATCH_SIZE_MAX", "10".to_owned()),
        ("JINFU_INGEST__BATCH_WAIT_MS", "50".to_owned()),
        ("RUST_LOG", "info,jinfu_ledger_service::ingest=debug".to_owned()),
    ];
    start_ledger_process(settings, banks, port, log, &env)
}

/// Batches a member's log says it applied.
fn batches_applied(log: &str) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|line| line.contains("batch applied") && !line.contains("considered: 0")).count()
}

/// Whether a member's log shows the group assigning it partitions of bank.credit-notices.
fn assigned_notices(log: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|line| line.contains("consumer group rebalanced") && line.contains("Assign") && line.contains("bank.credit-notices"))
}

/// SIGTERM, as Kubernetes stops a pod, and wait for the process to exit.
async fn terminate(child: &mut Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await?;
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait()).await??;
    Ok(())
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect("count query")
}

fn transfers(banks: &Banks, bidders: &[(TestBidder, String)], range: std::ops::Range<usize>, rng: &mut rand::rngs::StdRng, total: &mut i64) -> Vec<BankRecord> {
    let mut records: Vec<BankRecord> = Vec::new();
    for serial in range {
        let (bidder, account) = &bidders[serial % bidders.len()];
        let fen: i64 = rng.gen_range(1..=1_000_000);
        *total += fen;
        records.push(sign_icbc(banks, &icbc_notice(banks, &format!("G{serial:05}"), account, bidder, &jinfu_ledger::Fen::from_fen(fen).to_yuan_string())));
    }
    // Redeliveries of this wave's own records.
    for _ in 0..records.len() / 10 {
        let copy = records[rng.gen_range(0..records.len())].clone();
        records.push(copy);
    }
    records
}

#[tokio::test]
async fn two_instances_share_the_partitions_and_a_rebalance_mid_batch_applies_nothing_twice() -> anyhow::Result<()> {
    let banks = Banks::generate();
    let settings = test_settings(&banks).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let log_a = std::env::temp_dir().join(format!("jinfu-scaleout-a-{run}.log")).to_string_lossy().into_owned();
    let log_b = std::env::temp_dir().join(format!("jinfu-scaleout-b-{run}.log")).to_string_lossy().into_owned();
    eprintln!("logs: {log_a} {log_b}");
    let (port_a, port_b) = (free_port(), free_port());

    let mut a = start_member(&settings, &banks, port_a, &log_a)?;
    let client = LedgerClient::connect(&format!("http://127.0.0.1:{port_a}")).await?;
    client.register_test_centre().await?;
    client.create_section("SCALE", 1_000_000_000, Utc::now() + chrono::Duration::days(2), Utc::now() + chrono::Duration::days(2), false).await?;
    let mut bidders = Vec::new();
    for number in 1..=24 {
        let bidder = TestBidder::new(900 + number);
        let account = client.open_sub_account("SCALE", &bidder).await?;
        bidders.push((bidder, account));
    }
    let pool = jinfu_platform::db::connect_and_migrate(&settings.database, jinfu_ledger_service::SCHEMA, &jinfu_ledger_service::MIGRATOR).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut total: i64 = 0;

    // Wave 1 with A alone; B joins while A is working through it.
    let wave1 = transfers(&banks, &bidders, 0..300, &mut rng, &mut total);
    send(&settings.kafka, &wave1).await?;
    wait_until("A to start applying", || async { Ok(records_done(&pool).await? > 30) }).await?;
    let mut b = start_member(&settings, &banks, port_b, &log_b)?;
    // Wave 2 only once the group has given B some of the credit-notice partitions.
    wait_until("B to be assigned credit-notice partitions", || async { Ok(assigned_notices(&log_b)) }).await?;
    let wave2 = transfers(&banks, &bidders, 300..600, &mut rng, &mut total);
    send(&settings.kafka, &wave2).await?;
    let sent = (wave1.len() + wave2.len()) as i64;
    wait_for_records(&pool, sent, Duration::from_secs(120)).await?;
    assert!(batches_applied(&log_b) > 0, "B took part of the load (see {log_b})");

    // A leaves (graceful stop: it finishes its batch and leaves the group); B takes over.
    terminate(&mut a).await?;
    let wave3 = transfers(&banks, &bidders, 600..800, &mut rng, &mut total);
    send(&settings.kafka, &wave3).await?;
    wait_for_records(&pool, sent + wave3.len() as i64, Duration::from_secs(120)).await?;
    // B stops once its relay has published every event it wrote, not after a guessed pause.
    wait_until("B's relay to publish every event", || async {
        Ok(count(&pool, "SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL AND parked_at IS NULL").await == 0)
    })
    .await?;
    terminate(&mut b).await?;

    assert_eq!(count(&pool, "SELECT count(*) FROM ledger.credit_notices").await, 800, "every distinct transfer exactly once");
    assert_eq!(count(&pool, "SELECT count(*) FROM ledger.journal_entries").await, 800);
    assert_eq!(count(&pool, "SELECT count(*) FROM ledger.outbox WHERE topic LIKE '%ledger.events'").await, 800);
    let bank: i64 =
        sqlx::query_scalar("SELECT balance_fen FROM ledger.accounts WHERE account = $1").bind(format!("bank:ICBC:{ICBC_ACCOUNT}")).fetch_one(&pool).await?;
    assert_eq!(bank, total);
    let result = verify::verify(&pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    for log in [&log_a, &log_b] {
        let _ = std::fs::remove_file(log);
    }
    Ok(())
}
