//! The ledger against a broker that restarts: a broker of its own (tansu on a free port with its
//! own storage, so other tests are not disturbed), stopped with SIGTERM and started again on the
//! same storage between two streams of notices. The ledger must carry on by itself — no restart
//! of the service — and still post every notice exactly once and publish every event.
//!
//! The broker is restarted while the ledger is idle, not mid-drain: tansu 0.6.0's sqlite storage
//! does not survive a SIGTERM while it serves produce, fetch and offset commits (its storage task
//! panics at shutdown and, after the restart, in `lite.rs` "more or less than one row"; every
//! produce then fails with `UnableToSend`). That is the local broker's limit, recorded in the
//! runbook ("The local broker"); a Kafka cluster restarts broker by broker.

use std::time::Duration;

use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use tokio::process::{Child, Command};

/// A tansu broker on `port` with sqlite storage in `directory`, ready when this returns.
async fn start_broker(directory: &std::path::Path, port: u16) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(directory.join("tansu.log"))?;
    let child = Command::new("tansu")
        .current_dir(directory)
        .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}"), "--advertised-listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(std::process::Stdio::from(log.try_clone()?))
        .stderr(std::process::Stdio::from(log))
        .kill_on_drop(true)
        .spawn()?;
    wait_until("the broker to listen", || async move { Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()) }).await?;
    Ok(child)
}

async fn stop_broker(mut broker: Child) -> anyhow::Result<()> {
    let pid = broker.id().ok_or_else(|| anyhow::anyhow!("the broker has no pid"))?;
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    if tokio::time::timeout(Duration::from_secs(20), broker.wait()).await.is_err() {
        broker.kill().await?;
    }
    Ok(())
}

/// Notices before the restart, and as many after it.
const HALF: usize = 200;

/// Waits until the ledger's outbox has published every row.
async fn wait_for_outbox(app: &TestApp) -> anyhow::Result<()> {
    let pool = app.pool.clone();
    wait_until("every event to be published", || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL").fetch_one(&pool).await?;
            Ok(waiting == 0)
        }
    })
    .await
}

#[tokio::test]
async fn a_broker_restart_between_streams_is_survived_without_restarting_the_ledger() -> anyhow::Result<()> {
    let directory = std::env::temp_dir().join(format!("jinfu-broker-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory)?;
    let port = free_port();
    let broker = start_broker(&directory, port).await?;
    let banks = Banks::generate();
    let mut settings = test_settings(&banks).await?;
    settings.kafka.brokers = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(banks, settings).await?;
    app.client.register_test_centre().await?;
    let now = chrono::Utc::now();
    app.client.create_section("S-RESTART", 5_000_000, now + chrono::Duration::hours(48), now + chrono::Duration::hours(48), true).await?;
    let mut accounts = Vec::new();
    for number in 1..=20 {
        let bidder = TestBidder::new(number);
        let account = app.client.open_sub_account("S-RESTART", &bidder).await?;
        accounts.push((bidder, account));
    }
    let notices = |range: std::ops::Range<usize>| -> Vec<_> {
        range
            .map(|index| {
                let (bidder, account) = &accounts[index % accounts.len()];
                sign_icbc(&app.banks, &icbc_notice(&app.banks, &format!("RESTART{index:04}"), account, bidder, "1000.00"))
            })
            .collect()
    };
    app.send(&notices(0..HALF)).await?;
    app.wait_for_records(i64::try_from(HALF)?).await?;
    wait_for_outbox(&app).await?;
    stop_broker(broker).await?;
    let broker = start_broker(&directory, port).await?;
    // Producing may fail while the client reconnects; a bank retries, and so does this test.
    let second = notices(HALF..2 * HALF);
    wait_until("the restarted broker to take the second half", || {
        let kafka = app.settings.kafka.clone();
        let second = second.clone();
        async move { Ok(send(&kafka, &second).await.is_ok()) }
    })
    .await?;
    app.wait_for_records(i64::try_from(2 * HALF)?).await?;
    wait_for_outbox(&app).await?;
    let result = verify::verify(&app.pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    let balances = app.client.balances("").await?;
    assert_eq!(balances[&format!("bank:ICBC:{ICBC_ACCOUNT}")], i64::try_from(2 * HALF)? * 100_000, "every notice posted exactly once");
    drop(broker);
    let _ = std::fs::remove_dir_all(&directory);
    Ok(())
}

/// The chart gives a pod 30 s between SIGTERM and SIGKILL (terminationGracePeriodSeconds).
const GRACE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_ledger_told_to_stop_while_no_broker_answers_exits_within_the_grace_period() -> anyhow::Result<()> {
    let directory = std::env::temp_dir().join(format!("jinfu-broker-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory)?;
    let port = free_port();
    let mut broker = start_broker(&directory, port).await?;
    let banks = Banks::generate();
    let mut settings = test_settings(&banks).await?;
    settings.kafka.brokers = format!("127.0.0.1:{port}");
    let grpc_port = free_port();
    let log = directory.join("ledger.log");
    let mut ledger = start_ledger_process(&settings, &banks, grpc_port, &log.to_string_lossy(), &[])?;
    let client = loop {
        match LedgerClient::connect(&format!("http://127.0.0.1:{grpc_port}")).await {
            Ok(client) => break client,
            Err(_) if ledger.try_wait()?.is_none() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(error) => anyhow::bail!("the ledger exited: {error:#}; see {}", log.display()),
        }
    };
    client.register_test_centre().await?;

    // The broker dies (no goodbye); events keep arriving in the ledger's outbox, as any use case
    // writes them, and its relay and consumers wait on a broker that does not answer.
    broker.kill().await?;
    let pool = sqlx::PgPool::connect(secrecy::ExposeSecret::expose_secret(&settings.database.url)).await?;
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL search_path = ledger").execute(&mut *transaction).await?;
    let mut rows = jinfu_platform::outbox::OutboxRows::default();
    for index in 0..20 {
        rows.push_event(
            &settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS),
            &format!("k{index}"),
            "reconciliation.completed",
            CENTRE,
            serde_json::json!({}),
        );
    }
    rows.insert(&mut transaction).await?;
    transaction.commit().await?;
    // Long enough for the relay's producer to be blocked in a send, and the consumers in a fetch.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let pid = ledger.id().ok_or_else(|| anyhow::anyhow!("the ledger has no pid"))?;
    let told = std::time::Instant::now();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    let status = tokio::time::timeout(GRACE, ledger.wait()).await;
    let took = told.elapsed();
    println!("the ledger stopped {took:?} after SIGTERM with no broker: {status:?}");
    assert!(status.is_ok(), "the ledger did not stop within {GRACE:?} of SIGTERM (see {})", log.display());
    // The relay gives up a round 5 s after the signal (outbox::STOPPING_ROUND_MAX); before, the
    // blocked send held the process for the supervisor's whole 25 s grace.
    assert!(took < Duration::from_secs(15), "the ledger took {took:?} to stop: something waited on the absent broker");
    let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE published_at IS NULL").fetch_one(&pool).await?;
    assert_eq!(unpublished, 20, "nothing was marked published that the broker never took");
    let _ = std::fs::remove_dir_all(&directory);
    Ok(())
}
