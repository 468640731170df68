//! The outbox relay against a real PostgreSQL and broker: a row that can never be published is
//! parked with its reason while every other row is published exactly once, and a refused record
//! of any size leaves a dead-letter copy small enough to publish.

use std::collections::BTreeSet;
use std::time::Duration;

use jinfu_bank_sim::BankRecord;
use jinfu_e2e::*;
use jinfu_platform::kafka::{self, MESSAGE_MAX_BYTES};
use jinfu_platform::topics;
use rdkafka::consumer::Consumer;

/// Records on all partitions of `topic` (the sum of the high watermarks).
fn records_on(app: &TestApp, topic: &str) -> anyhow::Result<i64> {
    let consumer = app.settings.kafka.metadata_consumer()?;
    let mut total = 0;
    for partition in 0..app.settings.kafka.partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        total += high - low;
    }
    Ok(total)
}

#[tokio::test]
async fn a_row_too_large_to_publish_is_parked_and_every_other_row_goes_out_exactly_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let topic = app.settings.kafka.topic(topics::LEDGER_EVENTS);
    // Good rows around an oversized one and one just under the producer's limit, written as any
    // service writes them: in the outbox, in one transaction.
    let mut rows: Vec<(String, Vec<u8>)> = (0..3).map(|n| (format!("before-{n}"), format!("{{\"n\":{n}}}").into_bytes())).collect();
    rows.push(("oversized".into(), vec![b'x'; MESSAGE_MAX_BYTES + 200_000]));
    rows.push(("just-under".into(), vec![b'y'; MESSAGE_MAX_BYTES - 10_000]));
    rows.extend((0..3).map(|n| (format!("after-{n}"), format!("{{\"n\":{n}}}").into_bytes())));
    let mut transaction = app.pool.begin().await?;
    for (key, payload) in &rows {
        sqlx::query("INSERT INTO ledger.outbox (topic, message_key, payload) VALUES ($1, $2, $3)")
            .bind(&topic)
            .bind(key)
            .bind(payload)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;

    let pool = app.pool.clone();
    let settled = || {
        let pool = pool.clone();
        let topic = topic.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE topic = $1 AND published_at IS NULL AND parked_at IS NULL")
                .bind(&topic)
                .fetch_one(&pool)
                .await?;
            Ok(waiting == 0)
        }
    };
    wait_until("every row published or parked", settled).await?;

    let parked: Vec<(String, String)> = sqlx::query_as("SELECT message_key, park_reason FROM ledger.outbox WHERE topic = $1 AND parked_at IS NOT NULL")
        .bind(&topic)
        .fetch_all(&app.pool)
        .await?;
    println!("parked: {parked:?}");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].0, "oversized");
    assert!(parked[0].1.starts_with("too_large: the record is 1200009 bytes, over the producer's limit of 1000000 bytes"), "{}", parked[0].1);
    let published: BTreeSet<String> = sqlx::query_scalar("SELECT message_key FROM ledger.outbox WHERE topic = $1 AND published_at IS NOT NULL")
        .bind(&topic)
        .fetch_all(&app.pool)
        .await?
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = rows.iter().map(|(key, _)| key.clone()).filter(|key| key != "oversized").collect();
    assert_eq!(published, expected);
    // Exactly once: the topic holds as many records as rows were marked published (a row sent
    // twice would show here, since a row is marked only after the broker acknowledged it).
    assert_eq!(records_on(&app, &topic)?, i64::try_from(expected.len())?);
    let listed = jinfu_platform::outbox::parked(&app.pool, 10).await?;
    assert_eq!(listed.iter().map(|row| row.key.as_str()).collect::<Vec<_>>(), vec!["oversized"]);
    assert!(!jinfu_platform::outbox::unpark(&app.pool, -1).await?, "no such parked row");
    Ok(())
}

#[tokio::test]
async fn a_refused_notice_of_any_size_leaves_a_bounded_dead_letter_copy_that_is_published() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let huge = vec![b'{'; MESSAGE_MAX_BYTES - 20_000];
    app.send(&[BankRecord { key: "huge".into(), value: huge.clone(), headers: vec![] }]).await?;
    let dead = read_topic(&app.settings.kafka, &kafka::dlq_topic(topics::BANK_CREDIT_NOTICES), 1, Duration::from_secs(60)).await?;
    let (value, headers) = &dead[0];
    let header = |name: &str| String::from_utf8_lossy(&headers[name]).into_owned();
    assert!(header(kafka::DLQ_REASON_HEADER).starts_with("oversized: "), "{}", header(kafka::DLQ_REASON_HEADER));
    assert_eq!(value.len(), kafka::DLQ_VALUE_MAX_BYTES);
    assert_eq!(value.as_slice(), &huge[..kafka::DLQ_VALUE_MAX_BYTES]);
    assert_eq!(header(kafka::DLQ_ORIGINAL_LENGTH_HEADER), huge.len().to_string());
    assert_eq!(header(kafka::DLQ_ORIGINAL_SHA256_HEADER), hex::encode(jinfu_ledger::chain::sha256(&huge)));
    assert_eq!(header(kafka::DLQ_TRUNCATED_HEADER), "true");
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE parked_at IS NOT NULL").fetch_one(&app.pool).await?;
    assert_eq!(parked, 0, "the dead-letter copy was published, not parked");
    Ok(())
}
