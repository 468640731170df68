//! Issue 13 in the guarantee service, against a real PostgreSQL and broker with the ledger and
//! the guarantee service in-process: tender events are deduplicated per source and centre, so
//! another centre's event id does not swallow this centre's `bids.opened` (which the figures
//! wait for), an identical replay is a no-op and a reused id with other content is
//! dead-lettered with `event_id_reused`.

use chrono::{DateTime, Utc};
use jinfu_bank_sim::BankRecord;
use jinfu_e2e::*;
use serde_json::json;

const SECTION: &str = "GEV-1";

/// Produces a tender event keyed by SECTION (one partition, so in order) for `centre`.
async fn produce(app: &TestApp, centre: &str, section: &str, id: &str, occurred_at: DateTime<Utc>) -> anyhow::Result<()> {
    let value = serde_json::to_vec(&json!({
        "schema_version": 1, "event_id": id, "centre_id": centre, "section_id": section, "type": "bids.opened",
        "occurred_at": china(occurred_at), "data": {},
    }))?;
    let record = BankRecord { key: SECTION.into(), value, headers: vec![] };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await
}

#[tokio::test]
async fn the_guarantee_service_keeps_each_centres_event_ids_apart_and_dead_letters_a_reused_one() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section(SECTION, 5_000_000, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let _guarantees = spawn_guarantees(&app).await?;

    let shared = "evt-2026-0002";
    let at = now - chrono::Duration::minutes(5);
    // Centre B (the province centre) first, then centre A's bids.opened with the same id, its
    // replay, and the id again with other content; then a sentinel behind them all.
    produce(&app, "520000", "B-1", shared, at).await?;
    produce(&app, CENTRE, SECTION, shared, at).await?;
    produce(&app, CENTRE, SECTION, shared, at).await?;
    produce(&app, CENTRE, SECTION, shared, at + chrono::Duration::minutes(1)).await?;
    produce(&app, CENTRE, SECTION, "sentinel-g", now).await?;
    wait_until("the guarantee service to take the sentinel", || async {
        let taken: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.trading_events WHERE event_id = 'sentinel-g'").fetch_one(&app.pool).await?;
        Ok(taken == 1)
    })
    .await?;

    let centres: Vec<String> =
        sqlx::query_scalar("SELECT centre_id FROM guarantee.trading_events WHERE event_id = $1 ORDER BY centre_id").bind(shared).fetch_all(&app.pool).await?;
    assert_eq!(centres, vec!["520000".to_owned(), CENTRE.to_owned()], "centre A's bids.opened is recorded despite centre B's id");
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM guarantee.dead_letters WHERE topic LIKE '%trading.events'").fetch_all(&app.pool).await?;
    assert_eq!(reasons.len(), 1, "only the changed event is refused: {reasons:?}");
    assert!(reasons[0].starts_with("event_id_reused: "), "{reasons:?}");
    Ok(())
}
