//! Issue 14, the calendar: a refund whose due date needs a year the calendar has no data for
//! waits as `pending_calendar` (never dead-lettered), is listed as such, and is scheduled with
//! the right due date as soon as an administrator loads the year over gRPC. The 2027 calendar
//! here is fictional test data (only New Year's Day off), not the State Council's.

use chrono::{NaiveDate, Utc};
use jinfu_e2e::*;
use jinfu_ledger::calendar::{Calendar, YearData};
use jinfu_platform::auth::Role;
use jinfu_proto::ledger::v1 as pb;
use serde_json::json;

const PROVINCE: &str = "520000";

/// Produces a tender event on trading.events that occurred at `occurred_at` (RFC 3339).
async fn tender_event_at(app: &TestApp, section: &str, event_type: &str, occurred_at: &str) -> anyhow::Result<()> {
    let value = serde_json::to_vec(&json!({
        "schema_version": 1,
        "event_id": uuid::Uuid::new_v4().to_string(),
        "centre_id": CENTRE,
        "section_id": section,
        "type": event_type,
        "occurred_at": occurred_at,
        "data": {},
    }))?;
    let record = jinfu_bank_sim::BankRecord { key: section.into(), value, headers: vec![] };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await?;
    Ok(())
}

async fn refunds(app: &TestApp, status: &str) -> anyhow::Result<Vec<pb::Refund>> {
    let request = pb::ListRefundsRequest { centre_id: CENTRE.into(), status: status.into() };
    Ok(app.client.grpc.clone().list_refunds(app.client.operator(request)).await?.into_inner().refunds)
}

async fn calendar_years(app: &TestApp) -> anyhow::Result<pb::ListCalendarYearsResponse> {
    Ok(app.client.grpc.clone().list_calendar_years(app.client.operator(pb::ListCalendarYearsRequest {})).await?.into_inner())
}

fn load(year: i32, holidays: &[&str], make_up_workdays: &[&str]) -> pb::LoadCalendarYearRequest {
    pb::LoadCalendarYearRequest {
        year,
        holidays: holidays.iter().map(|day| (*day).to_owned()).collect(),
        make_up_workdays: make_up_workdays.iter().map(|day| (*day).to_owned()).collect(),
        source: "e2e test calendar, fictional, not a State Council notice".into(),
    }
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test dates are valid")
}

#[tokio::test]
async fn a_refund_triggered_on_28_december_waits_for_the_2027_calendar_and_is_scheduled_when_it_is_loaded() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let bidders = paid_section(&app, "CAL", 2, 1401).await?;

    // The tender fails on Monday 2026-12-28: five working days reach into 2027, which has no data.
    tender_event_at(&app, "CAL", "tender.failed", "2026-12-28T10:00:00+08:00").await?;
    wait_until("both refunds pending the calendar", || async { Ok(refunds(&app, "pending_calendar").await?.len() == 2) }).await?;
    for refund in refunds(&app, "").await? {
        assert_eq!(refund.status, "pending_calendar");
        assert_eq!(refund.due_on, "", "no due date until the year is loaded");
        assert_eq!(refund.trigger, "failed_tender");
    }
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.dead_letters").fetch_one(&app.pool).await?;
    assert_eq!(dead, 0, "the trigger is not dead-lettered");
    let listed = calendar_years(&app).await?;
    assert_eq!(listed.refunds_pending_calendar, 2);
    assert_eq!(listed.years.iter().map(|year| (year.year, year.origin.as_str())).collect::<Vec<_>>(), vec![(2024, "seed"), (2025, "seed"), (2026, "seed")]);

    // Only an admin of the province may load; inconsistent data is refused.
    let mut grpc = app.client.grpc.clone();
    let city_admin = grpc.load_calendar_year(app.client.admin(load(2027, &["2027-01-01"], &[]))).await.expect_err("a city admin may not load");
    assert_eq!(city_admin.code(), tonic::Code::PermissionDenied);
    let province_admin = |body| app.client.as_role(Role::Admin, PROVINCE, "province-admin", body);
    let friday = grpc.load_calendar_year(province_admin(load(2027, &["2027-01-01"], &["2027-01-08"]))).await.expect_err("Friday is no make-up day");
    assert_eq!(friday.code(), tonic::Code::InvalidArgument);
    assert!(friday.message().starts_with("calendar_inconsistent:"), "{}", friday.message());
    let outside = grpc.load_calendar_year(province_admin(load(2027, &["2026-12-31"], &[]))).await.expect_err("a 2026 day in 2027's data");
    assert_eq!(outside.code(), tonic::Code::InvalidArgument);
    assert_eq!(refunds(&app, "pending_calendar").await?.len(), 2, "refused loads change nothing");

    // The (fictional) 2027 calendar is loaded: both refunds are dated by the load itself.
    let loaded = grpc.load_calendar_year(province_admin(load(2027, &["2027-01-01"], &[]))).await?.into_inner();
    assert_eq!(loaded.outcome, "loaded");
    assert_eq!(loaded.refunds_scheduled, 2);
    let test_2027 = YearData::new(2027, &[date("2027-01-01")], &[])?;
    let expected = Calendar::china().with_year(&test_2027).add_working_days(date("2026-12-28"), 5)?;
    assert_eq!(expected, date("2027-01-05"));
    let scheduled = refunds(&app, "scheduled").await?;
    assert_eq!(scheduled.len(), 2);
    for refund in &scheduled {
        assert_eq!(refund.due_on, "2027-01-05");
        assert!(bidders.iter().any(|bidder| bidder.uscc == refund.bidder_uscc));
    }
    let listed = calendar_years(&app).await?;
    assert_eq!(listed.refunds_pending_calendar, 0);
    let year_2027 = listed.years.iter().find(|year| year.year == 2027).expect("2027 is listed");
    assert_eq!((year_2027.origin.as_str(), year_2027.loaded_by.as_str(), year_2027.holiday_count), ("loaded", "province-admin", 1));
    assert!(year_2027.source.contains("fictional"));
    assert_eq!(listed.covered_until, "2027-12-31");

    // The same data again changes nothing; other data is refused while scheduled refunds use 2027.
    let again = grpc.load_calendar_year(province_admin(load(2027, &["2027-01-01"], &[]))).await?.into_inner();
    assert_eq!(again.outcome, "unchanged");
    let changed = grpc.load_calendar_year(province_admin(load(2027, &["2027-01-01", "2027-01-04"], &[]))).await.expect_err("in use");
    assert_eq!(changed.code(), tonic::Code::FailedPrecondition);
    assert!(changed.message().starts_with("calendar_year_in_use:"), "{}", changed.message());
    let audit: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT year, outcome, loaded_by FROM ledger.calendar_loads ORDER BY load_id").fetch_all(&app.pool).await?;
    assert_eq!(audit, vec![(2027, "loaded".into(), "province-admin".into()), (2027, "unchanged".into(), "province-admin".into())]);

    // A trigger on the same day after the load is dated at once.
    paid_section(&app, "CAL2", 1, 1411).await?;
    tender_event_at(&app, "CAL2", "tender.failed", "2026-12-28T10:00:00+08:00").await?;
    wait_until("the later refund scheduled", || async { Ok(refunds(&app, "scheduled").await?.len() == 3) }).await?;
    assert!(refunds(&app, "scheduled").await?.iter().all(|refund| refund.due_on == "2027-01-05"));
    Ok(())
}

#[tokio::test]
async fn a_year_loaded_through_another_replica_reaches_this_one_and_dates_its_pending_refunds() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    paid_section(&app, "CALR", 1, 1421).await?;
    tender_event_at(&app, "CALR", "tender.failed", "2026-12-30T10:00:00+08:00").await?;
    wait_until("the refund pending the calendar", || async { Ok(refunds(&app, "pending_calendar").await?.len() == 1) }).await?;

    // As `ledger calendar load` or another replica would: straight into the database, without
    // this process's API knowing.
    let (data, source) = YearData::parse(2027, "year 2027 e2e fictional calendar\nholiday 2027-01-01 test\n")?;
    let events_topic = app.settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS);
    let loaded = jinfu_ledger_service::trading::load_calendar_year(&app.pool, None, &data, &source, "cli:e2e", Utc::now(), &events_topic).await?;
    assert_eq!(loaded.refunds_scheduled, 1);
    // Wednesday 2026-12-30 + 5 working days: 31, (Jan 1 off, 2–3 weekend) 4, 5, 6, 7.
    assert_eq!(refunds(&app, "scheduled").await?.first().map(|refund| refund.due_on.clone()), Some("2027-01-07".into()));
    // This process's calendar follows by polling the version: a new trigger is dated at once.
    wait_until("the refreshed calendar listed", || async { Ok(calendar_years(&app).await?.covered_until == "2027-12-31") }).await?;
    paid_section(&app, "CALR2", 1, 1431).await?;
    tender_event_at(&app, "CALR2", "tender.failed", "2026-12-30T10:00:00+08:00").await?;
    wait_until("the second refund scheduled", || async { Ok(refunds(&app, "scheduled").await?.len() == 2) }).await?;
    assert_eq!(refunds(&app, "pending_calendar").await?.len(), 0);
    Ok(())
}
