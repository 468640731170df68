//! Supervision of the ledger's tasks, against a real PostgreSQL and broker: a task that dies
//! takes the whole service out (Kubernetes restarts the pod), says which task and why, and
//! leaves its record unapplied for the next process to take up.

use std::time::Duration;

use jinfu_e2e::*;
use jinfu_platform::topics;
use serde_json::json;

#[tokio::test]
async fn a_consumer_that_meets_a_bug_stops_the_ledger_naming_the_task_and_leaves_its_record_unapplied() -> anyhow::Result<()> {
    let mut app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    // A schema the code does not expect (as after a bad manual change): every tender event now
    // fails the same way, so retrying would spin forever; the consumer must stop instead.
    sqlx::query("ALTER TABLE ledger.trading_events RENAME TO trading_events_elsewhere").execute(&app.pool).await?;
    let event_id = trading_event(&app, "S-SUPERVISED", "tender.failed", json!({})).await?;

    let error = app.stopped_by_itself(Duration::from_secs(60)).await?;
    let text = format!("{error:#}");
    println!("the ledger stopped with: {text}");
    assert!(text.starts_with("task \"trading-event consumer\" failed"), "names the task first: {text}");
    assert!(text.contains(&app.settings.kafka.topic(topics::TRADING_EVENTS)), "names the topic: {text}");
    assert!(text.contains("partition") && text.contains("offset"), "names the record's coordinates: {text}");
    assert!(text.contains("trading_events"), "says what failed: {text}");

    // The service no longer answers health checks (its probes fail, so it gets no traffic and
    // is restarted), and the record was neither applied nor skipped: no offset was stored past it.
    let probe = jinfu_platform::grpc::probe(&format!("http://{}", app.address), "", Duration::from_secs(2)).await;
    assert!(!matches!(probe, Ok(true)), "a stopped ledger must not report SERVING: {probe:?}");
    let stored: Option<i64> = sqlx::query_scalar("SELECT max(next_offset) FROM ledger.consumer_offsets WHERE topic = $1")
        .bind(app.settings.kafka.topic(topics::TRADING_EVENTS))
        .fetch_one(&app.pool)
        .await?;
    assert!(stored.unwrap_or(0) == 0, "the failed record's offset must not be stored: {stored:?}");

    // Repaired, a new process applies the event that the dead one could not.
    sqlx::query("ALTER TABLE ledger.trading_events_elsewhere RENAME TO trading_events").execute(&app.pool).await?;
    app.restart().await?;
    let pool = app.pool.clone();
    wait_until("the tender event to be taken after the restart", || {
        let pool = pool.clone();
        let event_id = event_id.clone();
        async move {
            let applied: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM ledger.trading_events WHERE event_id = $1").bind(&event_id).fetch_optional(&pool).await?;
            let dead: Option<i32> = sqlx::query_scalar("SELECT 1 FROM ledger.dead_letters WHERE topic LIKE '%trading.events'").fetch_optional(&pool).await?;
            Ok(applied.is_some() || dead.is_some())
        }
    })
    .await?;
    app.stop().await
}
