//! Issue 13, against a real PostgreSQL and broker with the ledger in-process: what an outsider
//! could learn before bid opening. Event ids are deduplicated per source and centre (another
//! centre's id does not swallow this centre's `bids.opened`; a reused id is refused, a replay is
//! a no-op); only the `bids.opened` event unseals a section, and after the deadline the opening
//! moves only later; refund and stale listings and the stale log line name no bidder of a sealed
//! section; binding suspense to a sealed section's sub-account answers as for an unknown one.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_bank_sim::{signed_record, BankRecord};
use jinfu_e2e::*;
use jinfu_platform::auth::Role;
use jinfu_proto::ledger::v1 as pb;
use serde_json::{json, Value};
use tonic::Code;

/// The province centre, registered by `register_test_centre`: "centre B" of the findings.
const OTHER_CENTRE: &str = "520000";
const OTHER_ACCOUNT: &str = "2402001029200099999";

fn timestamp(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 })
}

fn tender(centre: &str, section: &str, id: &str, kind: &str, occurred_at: DateTime<Utc>, data: &Value) -> pb::SubmitTenderEventRequest {
    pb::SubmitTenderEventRequest {
        event_id: id.into(),
        centre_id: centre.into(),
        section_id: section.into(),
        r#type: kind.into(),
        occurred_at: timestamp(occurred_at),
        data_json: data.to_string(),
    }
}

/// Submits a tender event over gRPC as an operator of `centre`.
async fn submit(app: &TestApp, centre: &str, request: pb::SubmitTenderEventRequest) -> Result<(), tonic::Status> {
    let request = app.client.as_role(Role::Operator, centre, &format!("operator-of-{centre}"), request);
    app.client.grpc.clone().submit_tender_event(request).await.map(|_| ())
}

/// Produces a tender event on trading.events with the given id, centre and time.
async fn produce(app: &TestApp, centre: &str, section: &str, id: &str, kind: &str, occurred_at: DateTime<Utc>, data: &Value) -> anyhow::Result<()> {
    let value = serde_json::to_vec(&json!({
        "schema_version": 1, "event_id": id, "centre_id": centre, "section_id": section, "type": kind,
        "occurred_at": china(occurred_at), "data": data,
    }))?;
    let record = BankRecord { key: section.into(), value, headers: vec![] };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await
}

/// Produces a harmless event for `section` behind what was sent before (same key, so same
/// partition) and waits until the ledger applied it: everything before it was dealt with.
async fn behind(app: &TestApp, centre: &str, section: &str) -> anyhow::Result<()> {
    let id = format!("sentinel-{}", uuid::Uuid::new_v4());
    produce(app, centre, section, &id, "performance_deposit.required", Utc::now(), &json!({})).await?;
    wait_until("the sentinel event", || async {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.trading_events WHERE event_id = $1").bind(&id).fetch_one(&app.pool).await?;
        Ok(applied == 1)
    })
    .await
}

async fn bids_opened_at(app: &TestApp, centre: &str, section: &str) -> anyhow::Result<Option<prost_types::Timestamp>> {
    let request = app.client.as_role(Role::Operator, centre, "reader", pb::GetSectionRequest { centre_id: centre.into(), section_id: section.into() });
    Ok(app.client.grpc.clone().get_section(request).await?.into_inner().bids_opened_at)
}

/// A section of the province centre, at its own ICBC collection account.
async fn other_centre_section(app: &TestApp, section: &str) -> anyhow::Result<()> {
    let account = pb::RegisterBankAccountRequest {
        centre_id: OTHER_CENTRE.into(),
        bank: "ICBC".into(),
        account_number: OTHER_ACCOUNT.into(),
        signing_key_ref: "icbc_test".into(),
        demand_deposit_rate: "0.0010".into(),
    };
    app.client.grpc.clone().register_bank_account(app.client.as_role(Role::Admin, OTHER_CENTRE, "admin", account)).await?;
    let now = Utc::now();
    let request = pb::CreateSectionRequest {
        centre_id: OTHER_CENTRE.into(),
        section_id: section.into(),
        name: "省级测试标段".into(),
        regime: pb::Regime::Procurement as i32,
        required_deposit_fen: 1_000_000,
        deposit_deadline: timestamp(now + chrono::Duration::days(1)),
        bid_opening_time: timestamp(now + chrono::Duration::days(2)),
        bank: "ICBC".into(),
        account_number: OTHER_ACCOUNT.into(),
        basic_account_required: false,
    };
    app.client.grpc.clone().create_section(app.client.as_role(Role::Operator, OTHER_CENTRE, "op", request)).await?;
    Ok(())
}

#[tokio::test]
async fn an_event_id_another_centre_used_first_does_not_swallow_this_centres_bids_opened_and_a_reused_id_is_refused() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("A-1", 1_000_000, now - chrono::Duration::hours(2), now - chrono::Duration::hours(1), false).await?;
    other_centre_section(&app, "B-1").await?;
    let shared = "evt-2026-0001";
    let at = now - chrono::Duration::minutes(5);

    // Centre B's operator uses the id first, over gRPC.
    submit(&app, OTHER_CENTRE, tender(OTHER_CENTRE, "B-1", shared, "performance_deposit.required", at, &json!({}))).await?;
    // Centre A's e-trading system then sends its bids.opened with the same id: it applies.
    produce(&app, CENTRE, "A-1", shared, "bids.opened", at, &json!({})).await?;
    behind(&app, CENTRE, "A-1").await?;
    assert!(bids_opened_at(&app, CENTRE, "A-1").await?.is_some(), "centre A's bids.opened applied despite centre B's id");

    // The identical event again is a no-op; the same id with other content is dead-lettered.
    produce(&app, CENTRE, "A-1", shared, "bids.opened", at, &json!({})).await?;
    produce(&app, CENTRE, "A-1", shared, "bids.opened", at + chrono::Duration::minutes(1), &json!({})).await?;
    behind(&app, CENTRE, "A-1").await?;
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM ledger.dead_letters WHERE topic LIKE '%trading.events' ORDER BY kafka_offset").fetch_all(&app.pool).await?;
    assert_eq!(reasons.len(), 1, "only the changed event is refused: {reasons:?}");
    assert!(reasons[0].starts_with("event_id_reused: "), "{reasons:?}");
    let dlq = read_topic(&app.settings.kafka, &jinfu_platform::kafka::dlq_topic(jinfu_platform::topics::TRADING_EVENTS), 1, Duration::from_secs(60)).await?;
    assert_eq!(dlq.len(), 1, "the refused event went to the dead-letter topic");

    // Over gRPC the id is the caller's own: A's operator may use it once more (another source);
    // an identical resubmission is a no-op, other content is ALREADY_EXISTS.
    let mine = tender(CENTRE, "A-1", shared, "performance_deposit.required", at, &json!({ "note": "first" }));
    submit(&app, CENTRE, mine.clone()).await?;
    submit(&app, CENTRE, mine.clone()).await?;
    let reused =
        submit(&app, CENTRE, pb::SubmitTenderEventRequest { data_json: json!({ "note": "second" }).to_string(), ..mine }).await.expect_err("reused id");
    assert_eq!(reused.code(), Code::AlreadyExists, "{}", reused.message());
    assert!(reused.message().starts_with("event_id_reused: "), "{}", reused.message());
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT source, centre_id FROM ledger.trading_events WHERE event_id = $1 ORDER BY source, centre_id")
        .bind(shared)
        .fetch_all(&app.pool)
        .await?;
    assert_eq!(
        rows,
        vec![
            ("grpc:operator-of-520000@520000".to_owned(), OTHER_CENTRE.to_owned()),
            ("grpc:operator-of-520100@520100".to_owned(), CENTRE.to_owned()),
            ("kafka:trading.events".to_owned(), CENTRE.to_owned()),
        ]
    );
    Ok(())
}

/// A section whose deadline has passed and whose bids open tomorrow, with two bidders paid
/// from one account before the deadline (a collusion lead).
async fn sealed_section_with_a_lead(app: &TestApp, section: &str) -> anyhow::Result<(TestBidder, TestBidder)> {
    let deadline = Utc::now() - chrono::Duration::hours(2);
    app.client.create_section(section, 1_000_000, deadline, Utc::now() + chrono::Duration::days(1), false).await?;
    let (first, second) = (TestBidder::new(1301), TestBidder::new(1302));
    let first_account = app.client.open_sub_account(section, &first).await?;
    let second_account = app.client.open_sub_account(section, &second).await?;
    let before_deadline = (deadline - chrono::Duration::hours(1)).with_timezone(&jinfu_ledger::beijing::offset());
    let mut own = icbc_notice(&app.banks, "SEAL-1", &first_account, &first, "10000.00");
    own.value_time = before_deadline;
    let mut for_other = icbc_notice(&app.banks, "SEAL-2", &second_account, &second, "10000.00");
    for_other.payer_account = first.basic_account.clone();
    for_other.value_time = before_deadline;
    app.send(&[sign_icbc(&app.banks, &own), sign_icbc(&app.banks, &for_other)]).await?;
    app.wait_for_records(2).await?;
    Ok((first, second))
}

/// What an operator can learn of `section`'s bidders: its deposit list (or the refusal's
/// code), the deposit accounts among the balances, and the collusion leads.
async fn operator_view(app: &TestApp, section: &str) -> anyhow::Result<(Result<usize, Code>, usize, usize)> {
    let list = pb::ListSectionDepositsRequest { centre_id: CENTRE.into(), section_id: section.into() };
    let deposits = app.client.grpc.clone().list_section_deposits(app.client.operator(list)).await.map(|r| r.into_inner().deposits.len()).map_err(|s| s.code());
    let accounts = app.client.balances(&format!("deposit:{section}:")).await?.len();
    let leads = app.client.summary().await?.collusion_leads.len();
    Ok((deposits, accounts, leads))
}

#[tokio::test]
async fn a_section_is_unsealed_by_the_bids_opened_event_only_and_after_the_deadline_its_opening_moves_only_later() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    sealed_section_with_a_lead(&app, "SEAL").await?;
    assert_eq!(operator_view(&app, "SEAL").await?, (Err(Code::FailedPrecondition), 0, 0));

    // After the deadline the opening may not move earlier (into the past, to list and move back).
    let earlier =
        tender(CENTRE, "SEAL", "move-1", "section.changed", Utc::now(), &json!({ "bid_opening_time": china(Utc::now() - chrono::Duration::minutes(1)) }));
    let refused = submit(&app, CENTRE, earlier).await.expect_err("moved earlier after the deadline");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
    assert!(refused.message().starts_with("opening_moved_earlier: "), "{}", refused.message());
    let later = Utc::now() + chrono::Duration::days(3);
    submit(&app, CENTRE, tender(CENTRE, "SEAL", "move-2", "section.changed", Utc::now(), &json!({ "bid_opening_time": china(later) }))).await?;
    let section =
        app.client.grpc.clone().get_section(app.client.operator(pb::GetSectionRequest { centre_id: CENTRE.into(), section_id: "SEAL".into() })).await?;
    assert_eq!(section.into_inner().bid_opening_time.map(|t| t.seconds), Some(later.timestamp()));

    // A schedule that passed (the session was postponed, say) unseals nothing.
    sqlx::query("UPDATE ledger.sections SET bid_opening_time = now() - interval '1 minute' WHERE section_id = 'SEAL'").execute(&app.pool).await?;
    assert_eq!(operator_view(&app, "SEAL").await?, (Err(Code::FailedPrecondition), 0, 0), "sealed until the event, whatever the clock says");

    // The event does.
    submit(&app, CENTRE, tender(CENTRE, "SEAL", "opened-1", "bids.opened", Utc::now(), &json!({}))).await?;
    assert_eq!(operator_view(&app, "SEAL").await?, (Ok(2), 2, 1));
    Ok(())
}

/// A `Write` into a shared buffer, for capturing this process's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

async fn refunds_listed(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let request = app.client.operator(pb::ListRefundsRequest { centre_id: CENTRE.into(), status: String::new() });
    Ok(app.client.grpc.clone().list_refunds(request).await?.into_inner().refunds.into_iter().map(|r| r.bidder_uscc).collect())
}

async fn stale_listed(app: &TestApp) -> anyhow::Result<Vec<String>> {
    let request = app.client.operator(pb::ListStaleDepositsRequest { centre_id: CENTRE.into() });
    Ok(app.client.grpc.clone().list_stale_deposits(request).await?.into_inner().deposits.into_iter().map(|d| d.bidder_uscc).collect())
}

#[tokio::test]
async fn refund_and_stale_listings_and_the_stale_log_line_name_no_bidder_of_a_sealed_section() -> anyhow::Result<()> {
    // Every log line of this test process, as an operator reading the logs would see them.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_max_level(tracing::Level::INFO).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber)?;

    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("WITHDRAW", 5_000_000, now + chrono::Duration::days(1), now + chrono::Duration::days(2), false).await?;
    let bidder = TestBidder::new(1311);
    let account = app.client.open_sub_account("WITHDRAW", &bidder).await?;
    app.send(&[sign_icbc(&app.banks, &icbc_notice(&app.banks, "WD-1", &account, &bidder, "50000.00"))]).await?;
    app.wait_for_records(1).await?;
    trading_event(&app, "WITHDRAW", "bidder.withdrew", json!({ "bidder_uscc": bidder.uscc })).await?;
    wait_until("the withdrawal refund", || async {
        let scheduled: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.refunds WHERE section_id = 'WITHDRAW'").fetch_one(&app.pool).await?;
        Ok(scheduled == 1)
    })
    .await?;
    assert_eq!(refunds_listed(&app).await?, Vec::<String>::new(), "a sealed section's refunds are not listed");

    // The refund is held past its due date (not ordered yet): stale, announced once.
    sqlx::query("UPDATE ledger.refunds SET order_after = now() + interval '1 day', due_on = current_date - 7 WHERE section_id = 'WITHDRAW'")
        .execute(&app.pool)
        .await?;
    wait_until("the stale announcement", || async {
        let announced: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.refunds WHERE section_id = 'WITHDRAW' AND stale_reported_at IS NOT NULL")
            .fetch_one(&app.pool)
            .await?;
        Ok(announced == 1 && captured.text().contains("deposit is stale"))
    })
    .await?;
    assert_eq!(stale_listed(&app).await?, Vec::<String>::new(), "a sealed section's stale deposits are not listed");
    let logs = captured.text();
    assert!(logs.lines().any(|line| line.contains("deposit is stale") && line.contains("WITHDRAW")), "{logs}");
    assert!(!logs.contains(&bidder.uscc), "no log line names the bidder: {logs}");

    // Once the bids are opened, both lists name the bidder.
    submit(&app, CENTRE, tender(CENTRE, "WITHDRAW", "opened-w", "bids.opened", Utc::now(), &json!({}))).await?;
    assert_eq!(refunds_listed(&app).await?, vec![bidder.uscc.clone()]);
    assert_eq!(stale_listed(&app).await?, vec![bidder.uscc.clone()]);
    Ok(())
}

fn bind(bank: &str, serial: &str, sub_account: &str) -> pb::BindSuspenseItemRequest {
    pb::BindSuspenseItemRequest {
        centre_id: CENTRE.into(),
        bank: bank.into(),
        bank_serial: serial.into(),
        sub_account_number: sub_account.into(),
        reason: "投标人来电确认子账号".into(),
    }
}

#[tokio::test]
async fn binding_suspense_to_a_sealed_sections_sub_account_answers_as_for_one_that_does_not_exist() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("BIND", 1_000_000, now + chrono::Duration::days(1), now + chrono::Duration::days(2), false).await?;
    app.client.create_section("SHUT", 1_000_000, now + chrono::Duration::days(1), now + chrono::Duration::days(2), false).await?;
    let bidder = TestBidder::new(1321);
    let account = app.client.open_sub_account("BIND", &bidder).await?;
    let shut_account = app.client.open_sub_account("SHUT", &TestBidder::new(1322)).await?;
    let close = pb::CloseSectionRequest { centre_id: CENTRE.into(), section_id: "SHUT".into(), reason: "招标终止".into() };
    app.client.grpc.clone().close_section(app.client.operator(close)).await?;

    // Money at CCB for an unknown sub-account, and money at ICBC for another unknown one.
    let mut at_ccb = icbc_notice(&app.banks, "CCB-1", "52010099999999990", &bidder, "10000.00");
    at_ccb.bank = "CCB".into();
    at_ccb.account_number = CCB_ACCOUNT.into();
    let ccb_record = signed_record(&at_ccb.sub_account_number, at_ccb.to_json(), "ccb_test", &app.banks.ccb);
    let at_icbc = sign_icbc(&app.banks, &icbc_notice(&app.banks, "ICBC-1", "52010099999999991", &bidder, "10000.00"));
    app.send(&[ccb_record, at_icbc]).await?;
    app.wait_for_records(2).await?;

    // No such sub-account, a sealed section collecting elsewhere, a sealed closed section: one answer.
    let mut grpc = app.client.grpc.clone();
    let mut answers = Vec::new();
    for (bank, serial, sub_account) in [("CCB", "CCB-1", "52010000000000000"), ("CCB", "CCB-1", account.as_str()), ("ICBC", "ICBC-1", shut_account.as_str())] {
        let refused = grpc.bind_suspense_item(app.client.operator(bind(bank, serial, sub_account))).await.expect_err("cannot bind");
        answers.push((refused.code(), refused.message().to_owned()));
    }
    assert_eq!(answers[0].0, Code::NotFound, "{answers:?}");
    assert!(answers.iter().all(|answer| *answer == answers[0]), "one answer for all: {answers:?}");

    // Money that fits is bound (it must reach the deposit before the deadline), naming nobody.
    let bound = grpc.bind_suspense_item(app.client.operator(bind("ICBC", "ICBC-1", &account))).await?.into_inner();
    assert_eq!((bound.status.as_str(), bound.amount_fen), ("bound", 1_000_000));
    assert_eq!((bound.bidder_uscc.as_str(), bound.section_id.as_str()), ("", ""), "the answer names no bidder of a sealed section");

    // After opening the detailed answer is no secret.
    submit(&app, CENTRE, tender(CENTRE, "BIND", "opened-b", "bids.opened", Utc::now(), &json!({}))).await?;
    let refused = grpc.bind_suspense_item(app.client.operator(bind("CCB", "CCB-1", &account))).await.expect_err("collects at ICBC");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
    assert!(refused.message().contains("collects at ICBC/"), "{}", refused.message());
    Ok(())
}
