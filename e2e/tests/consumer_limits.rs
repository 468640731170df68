//! Issue 12, "Consumers too": a record far larger than any Jinfu message, produced by a client
//! with its own `message.max.bytes` raised (as a careless bank or trading system could), must
//! not stop its partition. Every consumer dead-letters it with its reason and applies the valid
//! record behind it: the ledger's trading consumer and the guarantee service's (the platform
//! consumer), and the ledger's credit-notice ingestion.
//!
//! Two sizes: 4 MiB, which every broker here serves and the consumer fetches (its limit is
//! `kafka::CONSUMER_RECORD_MAX_BYTES`), refused by the service's size check as `oversized`; and
//! 10 MB, which the local broker (tansu 0.6.0) stores but never serves (it caps every fetch at
//! 5 MiB and answers an empty fetch without an error), found by the stall detector and
//! dead-lettered by its coordinates as `unfetchable`. Before the fix the 10 MB record stopped
//! its partition silently and the record behind it was never applied.

use std::time::Duration;

use chrono::Utc;
use jinfu_e2e::*;
use jinfu_platform::kafka::KafkaSettings;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;

const SECTION: &str = "BIG-1";
/// A record the consumer fetches and refuses: 4 MiB (tansu serves records under 5 MiB).
const BIG: usize = 4 * 1024 * 1024;
/// The size of the finding's record: 10 MB, stored by the broker but never served by tansu.
const HUGE: usize = 10 * 1024 * 1024;

/// A plain producer that sends records up to 32 MiB uncompressed: not a Jinfu producer (which
/// refuses anything over `kafka::MESSAGE_MAX_BYTES`), but what a careless bank could run.
fn raw_producer(kafka: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("message.max.bytes", (32 * 1024 * 1024).to_string())
        .set("compression.type", "none")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "60000")
        .create()?)
}

/// Produces one record with the raw producer; returns its partition and offset.
async fn produce_raw(kafka: &KafkaSettings, topic: &str, key: &str, value: &[u8]) -> anyhow::Result<(i32, i64)> {
    let producer = raw_producer(kafka)?;
    let topic = kafka.topic(topic);
    let delivery = producer
        .send(FutureRecord::to(&topic).key(key).payload(value), Duration::from_secs(60))
        .await
        .map_err(|(error, _)| anyhow::anyhow!("the broker refused a {}-byte record on {topic}: {error}", value.len()))?;
    Ok((delivery.partition, delivery.offset))
}

/// A JSON-looking value of `size` bytes: a tender event with a huge field.
fn huge_value(size: usize) -> Vec<u8> {
    let head = br#"{"schema_version":1,"event_id":"huge","centre_id":"520100","section_id":"BIG-1","type":"bids.opened","data":{"pad":""#;
    let tail = br#""}}"#;
    let mut value = Vec::with_capacity(size);
    value.extend_from_slice(head);
    value.resize(size - tail.len(), b'x');
    value.extend_from_slice(tail);
    value
}

/// The dead letters of `topic` (platform name, any prefix) in `schema`: (partition, offset, reason).
async fn dead_letters(app: &TestApp, schema: &str, topic: &str) -> anyhow::Result<Vec<(i32, i64, String)>> {
    let query = format!("SELECT kafka_partition, kafka_offset, reason FROM {schema}.dead_letters WHERE topic = $1 ORDER BY kafka_offset");
    Ok(sqlx::query_as(&query).bind(app.settings.kafka.topic(topic)).fetch_all(&app.pool).await?)
}

#[tokio::test]
async fn a_ten_megabyte_tender_event_is_dead_lettered_and_the_event_behind_it_applies_in_the_ledger_and_the_guarantee_service() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section(SECTION, 5_000_000, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let _guarantees = spawn_guarantees(&app).await?;

    let topic = jinfu_platform::topics::TRADING_EVENTS;
    let (partition, offset) = produce_raw(&app.settings.kafka, topic, SECTION, &huge_value(BIG)).await?;
    let (_, huge_offset) = produce_raw(&app.settings.kafka, topic, SECTION, &huge_value(HUGE)).await?;
    // The valid event behind them, on the same partition (same key).
    let valid = serde_json::to_vec(&json!({
        "schema_version": 1, "event_id": "after-huge", "centre_id": CENTRE, "section_id": SECTION, "type": "bids.opened",
        "occurred_at": china(now), "data": {},
    }))?;
    let (after_partition, after_offset) = produce_raw(&app.settings.kafka, topic, SECTION, &valid).await?;
    assert_eq!((after_partition, huge_offset, after_offset), (partition, offset + 1, offset + 2), "the broker stored both records and the event behind them");

    wait_until("the ledger and the guarantee service to apply the event behind the 10 MB record", || async {
        let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.trading_events WHERE event_id = 'after-huge'").fetch_one(&app.pool).await?;
        let guarantee: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.trading_events WHERE event_id = 'after-huge'").fetch_one(&app.pool).await?;
        Ok(ledger == 1 && guarantee == 1)
    })
    .await?;
    for schema in ["ledger", "guarantee"] {
        assert_refused(&app, schema, topic, partition, offset).await?;
    }
    Ok(())
}

/// The 4 MiB record at `offset` is dead-lettered as `oversized` with a bounded copy, the 10 MB
/// one behind it as `unfetchable` with its coordinates.
async fn assert_refused(app: &TestApp, schema: &str, topic: &str, partition: i32, offset: i64) -> anyhow::Result<()> {
    let letters: Vec<(i32, i64, String)> =
        dead_letters(app, schema, topic).await?.into_iter().filter(|(dead_partition, _, _)| *dead_partition == partition).collect();
    assert_eq!(letters.len(), 2, "{schema}: {letters:?}");
    assert_eq!((letters[0].1, letters[1].1), (offset, offset + 1), "{schema}: {letters:?}");
    assert!(letters[0].2.starts_with("oversized: ") && letters[0].2.contains(&BIG.to_string()), "{schema}: {}", letters[0].2);
    assert!(letters[1].2.starts_with("unfetchable: "), "{schema}: {}", letters[1].2);
    assert!(letters[1].2.contains(&format!("partition {partition}, offset {}", offset + 1)), "{schema}: {}", letters[1].2);
    // The copies for the dead-letter topic are bounded, whatever the original's size.
    let query = format!("SELECT octet_length(payload)::int8 FROM {schema}.outbox WHERE topic = $1 ORDER BY id");
    let copies: Vec<i64> = sqlx::query_scalar(&query).bind(jinfu_platform::kafka::dlq_topic(&app.settings.kafka.topic(topic))).fetch_all(&app.pool).await?;
    assert!(copies.len() >= 2 && copies.iter().all(|size| *size <= jinfu_platform::kafka::DLQ_VALUE_MAX_BYTES as i64), "{schema}: {copies:?}");
    Ok(())
}

#[tokio::test]
async fn a_ten_megabyte_credit_notice_is_dead_lettered_and_the_notice_behind_it_is_credited() -> anyhow::Result<()> {
    // DEBUG_LOG=1 prints the services' logs (stall detection, dead letters).
    if std::env::var("DEBUG_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_ansi(false).with_env_filter("info,jinfu_platform=debug").try_init();
    }
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section(SECTION, 5_000_000, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let bidder = TestBidder::new(1);
    let sub_account = app.client.open_sub_account(SECTION, &bidder).await?;

    let topic = jinfu_platform::topics::BANK_CREDIT_NOTICES;
    let (partition, offset) = produce_raw(&app.settings.kafka, topic, &sub_account, &vec![b'x'; BIG]).await?;
    let (_, huge_offset) = produce_raw(&app.settings.kafka, topic, &sub_account, &vec![b'x'; HUGE]).await?;
    assert_eq!(huge_offset, offset + 1);
    // The signed notice behind them, produced by the bank's (Jinfu's) producer with the same
    // key: librdkafka's partitioner puts it on the same partition.
    let good = sign_icbc(&app.banks, &icbc_notice(&app.banks, "AFTER-HUGE", &sub_account, &bidder, "50000.00"));
    app.send(&[good]).await?;

    wait_until("the ledger to credit the notice behind the 10 MB record", || async {
        let credited: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.credit_notices WHERE bank_serial = 'AFTER-HUGE'").fetch_one(&app.pool).await?;
        Ok(credited == 1)
    })
    .await?;
    assert_refused(&app, "ledger", topic, partition, offset).await
}
