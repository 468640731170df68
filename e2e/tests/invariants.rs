//! A broken ledger invariant stops ingestion loudly: the ledger runs in-process against a real
//! PostgreSQL and a real Kafka-protocol broker, and the test database is made to refuse one
//! account's posting the way a CHECK constraint refuses a negative balance (SQLSTATE 23514).

use std::time::Duration;

use chrono::Utc;
use jinfu_e2e::*;
use jinfu_ledger_service::app::Application;
use jinfu_ledger_service::ingest::BatchFailed;
use jinfu_ledger_service::settings::Settings;
use jinfu_ledger_service::verify;
use jinfu_platform::topics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECTION: &str = "S-INVARIANT";

/// A ledger started in-process, whose task handle the test keeps to see it stop on its own.
struct Running {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
    client: LedgerClient,
}

async fn start(settings: &Settings) -> anyhow::Result<Running> {
    let application = Application::build(settings.clone()).await?;
    let port = application.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = LedgerClient::connect(&format!("http://127.0.0.1:{port}")).await?;
    Ok(Running { stop, handle, client })
}

/// Makes the database refuse every write of `account`'s balance as a CHECK constraint would,
/// counting each refusal in a sequence (a sequence is not rolled back with the transaction).
async fn refuse_balance_of(pool: &PgPool, account: &str) -> anyhow::Result<()> {
    sqlx::query("CREATE SEQUENCE ledger.refused_attempts").execute(pool).await?;
    let function = format!(
        "CREATE FUNCTION ledger.refuse_account() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.account = '{account}' THEN
                 PERFORM nextval('ledger.refused_attempts');
                 RAISE EXCEPTION 'new row for relation \"accounts\" violates check constraint \"test_refused_account\"'
                     USING ERRCODE = 'check_violation',
                           DETAIL = format('Failing row contains (%s, %s, %s, %s).', NEW.centre_id, NEW.account, NEW.kind, NEW.balance_fen);
             END IF;
             RETURN NEW;
         END $$"
    );
    sqlx::query(&function).execute(pool).await?;
    sqlx::query("CREATE TRIGGER refuse_account BEFORE INSERT OR UPDATE ON ledger.accounts FOR EACH ROW EXECUTE FUNCTION ledger.refuse_account()")
        .execute(pool)
        .await?;
    Ok(())
}

async fn refused_attempts(pool: &PgPool) -> anyhow::Result<i64> {
    let (last_value, is_called): (i64, bool) = sqlx::query_as("SELECT last_value, is_called FROM ledger.refused_attempts").fetch_one(pool).await?;
    Ok(if is_called { last_value } else { 0 })
}

async fn stored_next_offset(pool: &PgPool, topic: &str, partition: i32) -> anyhow::Result<i64> {
    let next: Option<i64> = sqlx::query_scalar("SELECT next_offset FROM ledger.consumer_offsets WHERE topic = $1 AND kafka_partition = $2")
        .bind(topic)
        .bind(partition)
        .fetch_optional(pool)
        .await?;
    Ok(next.unwrap_or(-1))
}

/// The offset the ledger's group committed to Kafka for `partition`, if any.
fn kafka_committed_offset(settings: &Settings, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka.brokers)
        .set("group.id", &settings.ingest.group_id)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, partition);
    let committed = consumer.committed_offsets(wanted, Duration::from_secs(10))?;
    Ok(committed.find_partition(topic, partition).and_then(|element| match element.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }))
}

/// The (partition, offset) in "the record at partition P, offset O".
fn failing_record(message: &str) -> Option<(i32, i64)> {
    let rest = &message[message.find("the record at partition ")? + "the record at partition ".len()..];
    let (partition, rest) = rest.split_once(", offset ")?;
    let offset: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((partition.parse().ok()?, offset.parse().ok()?))
}

#[tokio::test]
async fn a_posting_the_database_refuses_stops_ingestion_once_with_its_coordinates_and_commits_nothing() -> anyhow::Result<()> {
    let banks = Banks::generate();
    let settings = test_settings(&banks).await?;
    let topic = settings.kafka.topic(topics::BANK_CREDIT_NOTICES);
    let running = start(&settings).await?;
    // A pool of the test's own (with the ledger's schema first, as the ledger's), which outlives
    // the ledger it watches.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .after_connect(|connection, _| {
            Box::pin(async move {
                sqlx::query("SET search_path TO ledger, public").execute(connection).await?;
                Ok(())
            })
        })
        .connect(secrecy::ExposeSecret::expose_secret(&settings.database.url))
        .await?;
    running.client.register_test_centre().await?;
    let later = Utc::now() + chrono::Duration::hours(48);
    running.client.create_section(SECTION, 1_000_000, later, later, true).await?;
    let (healthy, broken) = (TestBidder::new(1), TestBidder::new(2));
    let healthy_sub_account = running.client.open_sub_account(SECTION, &healthy).await?;
    let broken_sub_account = running.client.open_sub_account(SECTION, &broken).await?;
    send(&settings.kafka, &[sign_icbc(&banks, &icbc_notice(&banks, "INV-1", &healthy_sub_account, &healthy, "10000.00"))]).await?;
    wait_for_records(&pool, 1, Duration::from_secs(60)).await?;

    let refused_account = format!("deposit:{SECTION}:{}", broken.uscc);
    refuse_balance_of(&pool, &refused_account).await?;
    send(&settings.kafka, &[sign_icbc(&banks, &icbc_notice(&banks, "INV-2", &broken_sub_account, &broken, "10000.00"))]).await?;

    // The ledger stops on its own: its task ends with the batch's failure.
    let Running { stop, handle, .. } = running;
    let ended = tokio::time::timeout(Duration::from_secs(60), handle).await.map_err(|_| anyhow::anyhow!("the ledger did not stop within 60 s"))?;
    let error = ended?.expect_err("a broken invariant stops the ledger");
    drop(stop);
    let message = format!("{error:#}");
    println!("the ledger stopped with: {message}");
    // The supervisor reports the task's error chain as text; where the error is still typed,
    // its fields are checked too.
    if let Some(failed) = error.chain().find_map(|cause| cause.downcast_ref::<BatchFailed>()) {
        assert_eq!(failed.topic, topic);
        assert_eq!(failed.centre.as_deref(), Some(CENTRE));
        assert_eq!(failed.account.as_deref(), Some(refused_account.as_str()));
    }
    let (partition, offset) = failing_record(&message).expect("the failing record's partition and offset are named");
    for expected in
        [topic.as_str(), &format!("partition {partition}"), &format!("offset {offset}"), &format!("centre {CENTRE}"), &format!("account {refused_account}")]
    {
        assert!(message.contains(expected), "{expected:?} is missing from: {message}");
    }

    // Tried once, not retried in a loop; nothing of the batch applied, stored or committed.
    assert_eq!(refused_attempts(&pool).await?, 1, "the refused posting was attempted exactly once");
    let stored = stored_next_offset(&pool, &topic, partition).await?;
    assert!(stored <= offset, "the stored offset {stored} of partition {partition} passed the failed record at {offset}");
    assert_eq!(records_done(&pool).await?, 1, "only the notice before the failure was applied");
    let committed = kafka_committed_offset(&settings, &topic, partition)?;
    assert!(committed.is_none_or(|committed| committed <= offset), "Kafka holds offset {committed:?} past the failed record at {offset}");
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.credit_notices WHERE bank_serial = 'INV-2'").fetch_one(&pool).await?;
    assert_eq!(posted, 0);
    let verification = verify::verify(&pool).await?;
    assert!(verification.ok(), "{:?}", verification.violations);

    // Once the cause is removed, a restarted ledger applies the failed notice exactly once.
    sqlx::query("DROP TRIGGER refuse_account ON ledger.accounts").execute(&pool).await?;
    let running = start(&settings).await?;
    wait_for_records(&pool, 2, Duration::from_secs(60)).await?;
    let status = running.client.deposit_status(SECTION, &broken).await?;
    assert_eq!(status.held_fen, 1_000_000);
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.credit_notices WHERE bank_serial = 'INV-2'").fetch_one(&pool).await?;
    assert_eq!(posted, 1);
    assert_eq!(refused_attempts(&pool).await?, 1);
    let _ = running.stop.send(());
    running.handle.await??;
    let verification = verify::verify(&pool).await?;
    assert!(verification.ok(), "{:?}", verification.violations);
    Ok(())
}
