//! Credit-notice ingestion against a real PostgreSQL and a real Kafka-protocol broker, with the
//! ledger running in-process.

use std::time::Duration;

use chrono::Utc;
use jinfu_bank_sim::{signed_record, BankRecord};
use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use jinfu_platform::auth::Role;
use jinfu_proto::ledger::v1 as pb;

#[test]
fn the_published_notice_schema_refuses_what_the_ledger_refuses_structurally() {
    let schema = schema("bank.credit-notice.v1.json");
    let banks = Banks::generate();
    let good = icbc_notice(&banks, "X1", "52010000000000010", &TestBidder::new(1), "100.00");
    let valid: serde_json::Value = serde_json::from_slice(&good.to_json()).unwrap();
    assert!(schema.is_valid(&valid));
    let mut numeric_amount = valid.clone();
    numeric_amount["amount"] = serde_json::json!(100.0);
    assert!(!schema.is_valid(&numeric_amount), "amounts are strings, never JSON numbers");
    let mut extra = valid.clone();
    extra["surprise"] = serde_json::json!("x");
    assert!(!schema.is_valid(&extra), "unknown fields are refused");
    let mut wrong_version = valid;
    wrong_version["schema_version"] = serde_json::json!(2);
    assert!(!schema.is_valid(&wrong_version));
}

fn later(hours: i64) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(hours)
}

async fn app_with_section(section: &str, required_fen: i64, bidders: u32) -> anyhow::Result<(TestApp, Vec<(TestBidder, String)>)> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    app.client.create_section(section, required_fen, later(48), later(48), true).await?;
    let mut opened = Vec::new();
    for number in 1..=bidders {
        let bidder = TestBidder::new(number);
        let sub_account = app.client.open_sub_account(section, &bidder).await?;
        opened.push((bidder, sub_account));
    }
    Ok((app, opened))
}

/// Applies `section`'s `bids.opened` event (SubmitTenderEvent, as the centre's operator): the
/// one fact that unseals its bidders.
async fn open_bids(app: &TestApp, section: &str) -> anyhow::Result<()> {
    let request = pb::SubmitTenderEventRequest {
        event_id: format!("bids-opened-{section}"),
        centre_id: CENTRE.into(),
        section_id: section.into(),
        r#type: "bids.opened".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        data_json: String::new(),
    };
    app.client.grpc.clone().submit_tender_event(app.client.operator(request)).await?;
    Ok(())
}

async fn assert_verified(app: &TestApp) {
    let result = verify::verify(&app.pool).await.expect("verification runs");
    assert!(result.ok(), "verification failed: {:?}", result.violations);
}

#[tokio::test]
async fn a_replayed_credit_notice_changes_no_balance() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-REPLAY", 5_000_000, 1).await?;
    let (bidder, sub_account) = &bidders[0];
    let record = sign_icbc(&app.banks, &icbc_notice(&app.banks, "ICBC0001", sub_account, bidder, "50000.00"));
    app.send(&[record.clone(), record.clone()]).await?;
    app.wait_for_records(2).await?;
    app.send(&[record]).await?;
    app.wait_for_records(3).await?;

    let balances = app.client.balances("").await?;
    assert_eq!(balances[&format!("bank:ICBC:{ICBC_ACCOUNT}")], 5_000_000);
    assert!(!balances.contains_key(&format!("deposit:S-REPLAY:{}", bidder.uscc)), "before bid opening the operator's balance list does not name the bidder");
    let status = app.client.deposit_status("S-REPLAY", bidder).await?;
    assert_eq!(status.held_fen, 5_000_000);
    assert!(status.satisfied);
    assert_eq!(status.status, "matched");
    assert_verified(&app).await;
    Ok(())
}

#[tokio::test]
async fn the_same_serial_with_different_content_moves_no_money_and_raises_an_alert() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-CONFLICT", 5_000_000, 1).await?;
    let (bidder, sub_account) = &bidders[0];
    let original = icbc_notice(&app.banks, "ICBC0002", sub_account, bidder, "50000.00");
    let mut altered = original.clone();
    altered.amount = "90000.00".into();
    app.send(&[sign_icbc(&app.banks, &original), sign_icbc(&app.banks, &altered)]).await?;
    app.wait_for_records(2).await?;

    let balances = app.client.balances("bank:").await?;
    assert_eq!(balances[&format!("bank:ICBC:{ICBC_ACCOUNT}")], 5_000_000, "only the first content is applied");
    assert_eq!(app.client.summary().await?.conflicts, 1);
    let events = read_topic(&app.settings.kafka, jinfu_platform::topics::LEDGER_EVENTS, 2, Duration::from_secs(30)).await?;
    let types: Vec<String> = events
        .iter()
        .map(|(payload, _)| serde_json::from_slice::<serde_json::Value>(payload).expect("events are JSON")["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(types.contains(&"alert.notice_conflict".to_owned()), "{types:?}");
    assert_verified(&app).await;
    Ok(())
}

#[tokio::test]
async fn every_matching_outcome_lands_in_its_account_with_its_reason() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    // OPEN's bids are already opened (so the operator may see its deposits); the notices carry
    // value times before its deadline, as a bank's notices processed after the fact do.
    let deadline = Utc::now() - chrono::Duration::hours(2);
    app.client.create_section("OPEN", 1_000_000, deadline, Utc::now() - chrono::Duration::hours(1), true).await?;
    app.client.create_section("LATE", 1_000_000, Utc::now() - chrono::Duration::hours(1), Utc::now() - chrono::Duration::minutes(30), false).await?;
    app.client.create_section("CLOSED", 1_000_000, later(48), later(48), false).await?;
    let bidders: Vec<TestBidder> = (1..=7).map(TestBidder::new).collect();
    let mut accounts = Vec::new();
    for bidder in &bidders[..5] {
        accounts.push(app.client.open_sub_account("OPEN", bidder).await?);
    }
    let late_account = app.client.open_sub_account("LATE", &bidders[5]).await?;
    let closed_account = app.client.open_sub_account("CLOSED", &bidders[6]).await?;
    let close = pb::CloseSectionRequest { centre_id: CENTRE.into(), section_id: "CLOSED".into(), reason: "招标终止".into() };
    app.client.grpc.clone().close_section(app.client.operator(close)).await?;

    let banks = &app.banks;
    let mut notices = vec![
        // bidder 1: exact; bidder 2: short then topped up; bidder 3: over; bidder 4: short only.
        icbc_notice(banks, "S1", &accounts[0], &bidders[0], "10000.00"),
        icbc_notice(banks, "S2", &accounts[1], &bidders[1], "4000.00"),
        icbc_notice(banks, "S3", &accounts[1], &bidders[1], "6000.00"),
        icbc_notice(banks, "S4", &accounts[2], &bidders[2], "12000.50"),
        icbc_notice(banks, "S5", &accounts[3], &bidders[3], "3000.00"),
        icbc_notice(banks, "S6", "52010099999999990", &bidders[0], "100.00"),
        icbc_notice(banks, "S7", &late_account, &bidders[5], "10000.00"),
        icbc_notice(banks, "S8", &closed_account, &bidders[6], "10000.00"),
    ];
    let mut stranger = icbc_notice(banks, "S9", &accounts[4], &bidders[4], "10000.00");
    stranger.payer_name = "别的公司".into();
    let mut other_account = icbc_notice(banks, "S10", &accounts[4], &bidders[4], "10000.00");
    other_account.payer_account = "9999000011112222".into();
    let mut wrong_collection = icbc_notice(banks, "S11", &accounts[4], &bidders[4], "10000.00");
    wrong_collection.bank = "CCB".into();
    wrong_collection.account_number = CCB_ACCOUNT.into();
    notices.extend([stranger, other_account]);
    let before_deadline = (deadline - chrono::Duration::hours(1)).with_timezone(&jinfu_ledger::beijing::offset());
    for notice in notices.iter_mut().filter(|n| n.bank_serial != "S7") {
        notice.value_time = before_deadline;
    }
    wrong_collection.value_time = before_deadline;
    let mut records: Vec<BankRecord> = notices.iter().map(|fields| sign_icbc(banks, fields)).collect();
    records.push(signed_record(&wrong_collection.sub_account_number, wrong_collection.to_json(), "ccb_test", &banks.ccb));
    app.send(&records).await?;
    app.wait_for_records(records.len() as i64).await?;
    // The bids of OPEN and LATE are opened (the event): the operator may see their deposits
    // and LATE's late transfer.
    open_bids(&app, "OPEN").await?;
    open_bids(&app, "LATE").await?;

    let summary = app.client.summary().await?;
    let count = |outcome: &str| summary.outcomes.iter().find(|o| o.outcome == outcome).map(|o| o.notices).unwrap_or(0);
    assert_eq!(count("matched"), 2, "exact, and the top-up reaching the requirement");
    assert_eq!(count("short"), 2);
    assert_eq!(count("over"), 1);
    for reason in ["unknown_sub_account", "late", "section_closed", "payer_name_mismatch", "payer_not_basic_account", "wrong_collection_account"] {
        assert_eq!(count(reason), 1, "{reason}");
    }
    let balances = app.client.balances("").await?;
    assert_eq!(balances[&format!("deposit:OPEN:{}", bidders[2].uscc)], 1_200_050);
    assert_eq!(balances[&format!("suspense:ICBC:{ICBC_ACCOUNT}")], 10_000 + 1_000_000 * 4);
    assert_eq!(balances[&format!("suspense:CCB:{CCB_ACCOUNT}")], 1_000_000);
    let over = app.client.deposit_status("OPEN", &bidders[2]).await?;
    assert_eq!((over.status.as_str(), over.excess_fen), ("over", 200_050));
    let short = app.client.deposit_status("OPEN", &bidders[3]).await?;
    assert_eq!((short.status.as_str(), short.satisfied), ("short", false));
    let wrong = app.client.deposit_status("OPEN", &bidders[4]).await?;
    assert_eq!(wrong.status, "no_money_received");
    assert_eq!(wrong.suspended.len(), 3, "the bidder sees its three transfers held in suspense");

    let suspense = pb::ListSuspenseRequest { centre_id: CENTRE.into(), reason: "late".into(), limit: 10 };
    let items = app.client.grpc.clone().list_suspense(app.client.operator(suspense)).await?.into_inner().items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].bank_serial, "S7");
    assert_verified(&app).await;
    Ok(())
}

#[tokio::test]
async fn one_payer_account_funding_two_bidders_raises_a_collusion_lead() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let deadline = Utc::now() - chrono::Duration::hours(2);
    // The lead is raised at once but shown only once the bids are opened (the event, not the
    // schedule: the scheduled opening has passed).
    let opening = Utc::now() - chrono::Duration::hours(1);
    app.client.create_section("COLLUDE", 1_000_000, deadline, opening, false).await?;
    let first = TestBidder::new(11);
    let second = TestBidder::new(12);
    let first_account = app.client.open_sub_account("COLLUDE", &first).await?;
    let second_account = app.client.open_sub_account("COLLUDE", &second).await?;
    let before_deadline = (deadline - chrono::Duration::hours(1)).with_timezone(&jinfu_ledger::beijing::offset());
    let mut own = icbc_notice(&app.banks, "C1", &first_account, &first, "10000.00");
    own.value_time = before_deadline;
    let mut for_other = icbc_notice(&app.banks, "C2", &second_account, &second, "10000.00");
    for_other.payer_account = first.basic_account.clone();
    for_other.value_time = before_deadline;
    app.send(&[sign_icbc(&app.banks, &own), sign_icbc(&app.banks, &for_other)]).await?;
    app.wait_for_records(2).await?;
    let raised: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.collusion_leads").fetch_one(&app.pool).await?;
    assert_eq!(raised, 1);
    assert!(app.client.summary().await?.collusion_leads.is_empty(), "hidden before bid opening");
    assert!(lead_events(&app).await?.is_empty(), "the lead names the bidders: no event before bid opening");
    open_bids(&app, "COLLUDE").await?;
    wait_until("the lead's event after bid opening", || async { Ok(!lead_events(&app).await?.is_empty()) }).await?;
    let events = lead_events(&app).await?;
    assert_eq!(events.len(), 1, "published once");
    assert_eq!(events[0]["data"]["payer_account"], first.basic_account.as_str());

    let leads = app.client.summary().await?.collusion_leads;
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].payer_account, first.basic_account);
    let mut expected = vec![first.uscc.clone(), second.uscc.clone()];
    expected.sort();
    assert_eq!(leads[0].bidder_usccs, expected);
    assert_verified(&app).await;
    Ok(())
}

/// The `collusion.lead` events in the ledger's outbox.
async fn lead_events(app: &TestApp) -> anyhow::Result<Vec<serde_json::Value>> {
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM ledger.outbox WHERE topic LIKE '%ledger.events' ORDER BY id").fetch_all(&app.pool).await?;
    let events: Vec<serde_json::Value> = payloads.iter().map(|payload| serde_json::from_slice(payload)).collect::<Result<_, _>>()?;
    Ok(events.into_iter().filter(|event| event["type"] == "collusion.lead").collect())
}

/// The cause column of the refusal-code table in docs/bank-integration.md for `code`.
fn documented_cause(guide: &str, code: &str) -> String {
    let row = format!("| `{code}` |");
    guide.lines().find_map(|line| line.strip_prefix(&row)).map(str::to_owned).unwrap_or_else(|| panic!("{code} is not in the refusal table"))
}

#[test]
fn the_bank_guide_documents_a_negative_amount_and_a_duplicated_key_with_the_codes_the_ledger_answers() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bank-integration.md")).expect("the bank guide");
    // The codes asserted for the same inputs in the dead-letter test above.
    assert!(documented_cause(&guide, "non_positive_amount").contains("`\"-1.00\"`"), "a negative amount is non_positive_amount");
    assert!(!documented_cause(&guide, "amount_not_a_number").contains("signs,"), "a minus sign is not amount_not_a_number");
    assert!(documented_cause(&guide, "malformed_json").contains("given twice"), "a duplicated key is malformed_json");
}

#[tokio::test]
async fn each_bad_input_lands_in_the_dead_letter_topic_with_its_reason_and_moves_no_money() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-BAD", 1_000_000, 1).await?;
    let (bidder, sub_account) = &bidders[0];
    let banks = &app.banks;
    let good = |serial: &str, amount: &str| icbc_notice(banks, serial, sub_account, bidder, amount);

    let mut tampered = sign_icbc(banks, &good("B1", "10000.00"));
    tampered.value = String::from_utf8(tampered.value)?.replace("10000.00", "99999.00").into_bytes();
    let unsigned = BankRecord { key: sub_account.clone(), value: good("B2", "10000.00").to_json(), headers: vec![] };
    let malformed = signed_record(sub_account, b"{not json".to_vec(), "icbc_test", &banks.icbc);
    let mut foreign_centre = good("B4", "10000.00");
    foreign_centre.centre_id = "990100".into();
    let mut oversized = good("B8", "10000.00");
    oversized.payer_name = "长".repeat(6000);
    let wrong_key = signed_record(sub_account, good("B9", "10000.00").to_json(), "ccb_test", &banks.ccb);
    let mut nul_in_name = good("B11", "10000.00");
    nul_in_name.payer_name = "甲\u{0}公司".into();
    let mut nul_field: serde_json::Value = serde_json::from_slice(&good("B12", "10000.00").to_json())?;
    nul_field["\u{0}"] = serde_json::json!(1);
    let nul_field = signed_record(sub_account, serde_json::to_vec(&nul_field)?, "icbc_test", &banks.icbc);
    let mut version_two: serde_json::Value = serde_json::from_slice(&good("B13", "10000.00").to_json())?;
    version_two["schema_version"] = serde_json::json!(2);
    version_two["new_field"] = serde_json::json!("x");
    let version_two = signed_record(sub_account, serde_json::to_vec(&version_two)?, "icbc_test", &banks.icbc);
    // A key given twice (the second `amount` would otherwise win silently).
    let duplicate_key = String::from_utf8(good("B17", "10000.00").to_json())?.replacen('{', r#"{"amount":"1.00","#, 1);
    let duplicate_key = signed_record(sub_account, duplicate_key.into_bytes(), "icbc_test", &banks.icbc);
    let mut binary_header = sign_icbc(banks, &good("B14", "1.001"));
    binary_header.headers.push(("x-bank-binary".into(), vec![0, 159, 146, 150]));
    let cases: Vec<(BankRecord, &str)> = vec![
        (tampered, "bad_signature"),
        (unsigned, "missing_signature"),
        (malformed, "malformed_json"),
        (sign_icbc(banks, &foreign_centre), "unknown_centre"),
        (sign_icbc(banks, &good("B5", "0.00")), "non_positive_amount"),
        (sign_icbc(banks, &good("B6", "-10.00")), "non_positive_amount"),
        (sign_icbc(banks, &good("B7", "100.001")), "too_many_decimals"),
        (sign_icbc(banks, &oversized), "oversized"),
        (wrong_key, "unknown_signing_key"),
        (sign_icbc(banks, &nul_in_name), "bad_field"),
        (nul_field, "malformed_json"),
        (version_two, "unsupported_schema_version"),
        (sign_icbc(banks, &good("B15", "+10.00")), "amount_not_a_number"),
        (binary_header, "too_many_decimals"),
        // The two cases docs/bank-integration.md names (see the test below): a negative amount is
        // not positive; a duplicated key is malformed.
        (sign_icbc(banks, &good("B16", "-1.00")), "non_positive_amount"),
        (duplicate_key, "malformed_json"),
    ];
    let mut records: Vec<BankRecord> = cases.iter().map(|(record, _)| record.clone()).collect();
    // A good notice after the bad ones: the consumer keeps going.
    records.push(sign_icbc(banks, &good("B10", "10000.00")));
    app.send(&records).await?;
    app.wait_for_records(records.len() as i64).await?;

    let dead =
        read_topic(&app.settings.kafka, &jinfu_platform::kafka::dlq_topic(jinfu_platform::topics::BANK_CREDIT_NOTICES), cases.len(), Duration::from_secs(30))
            .await?;
    let mut reasons: Vec<String> =
        dead.iter().map(|(_, headers)| String::from_utf8_lossy(&headers["jinfu-dlq-reason"]).split(':').next().unwrap_or("").to_owned()).collect();
    reasons.sort();
    let mut expected: Vec<String> = cases.iter().map(|(_, reason)| (*reason).to_owned()).collect();
    expected.sort();
    assert_eq!(reasons, expected);
    for (payload, headers) in &dead {
        assert!(headers.contains_key("jinfu-dlq-original-offset"));
        assert!(!payload.is_empty());
    }
    let forwarded = dead.iter().find_map(|(_, headers)| headers.get("x-bank-binary")).expect("original headers are kept");
    assert_eq!(forwarded.as_slice(), &[0, 159, 146, 150], "binary header bytes survive");
    let balances = app.client.balances("bank:").await?;
    assert_eq!(balances[&format!("bank:ICBC:{ICBC_ACCOUNT}")], 1_000_000, "only the good notice moved money");
    assert_verified(&app).await;
    Ok(())
}

#[tokio::test]
async fn bidders_stay_confidential_before_bid_opening_and_callers_see_only_their_centre() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-SEALED", 1_000_000, 2).await?;
    let list = pb::ListSectionDepositsRequest { centre_id: CENTRE.into(), section_id: "S-SEALED".into() };
    let refused = app.client.grpc.clone().list_section_deposits(app.client.operator(list.clone())).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);

    let other_centre_operator =
        app.client.as_role(Role::Operator, "520300", "op", pb::GetAccountBalancesRequest { centre_id: CENTRE.into(), key_prefix: String::new() });
    let denied = app.client.grpc.clone().get_account_balances(other_centre_operator).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let province_supervisor =
        app.client.as_role(Role::Supervisor, "520000", "sup", pb::GetAccountBalancesRequest { centre_id: CENTRE.into(), key_prefix: String::new() });
    assert!(app.client.grpc.clone().get_account_balances(province_supervisor).await.is_ok());

    let (first, _) = &bidders[0];
    let (second, _) = &bidders[1];
    let snooping = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: "S-SEALED".into(), bidder_uscc: second.uscc.clone() };
    let denied = app.client.grpc.clone().get_deposit_status(app.client.as_role(Role::Bidder, CENTRE, &first.uscc, snooping)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let mut unauthenticated = tonic::Request::new(list);
    unauthenticated.metadata_mut().insert("authorization", "Bearer not-a-token".parse()?);
    let refused = app.client.grpc.clone().list_section_deposits(unauthenticated).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let bad_code = pb::OpenSubAccountRequest {
        centre_id: CENTRE.into(),
        section_id: "S-SEALED".into(),
        bidder_uscc: "91520100000000001X".into(),
        bidder_name: "某公司".into(),
        basic_account: "1".into(),
    };
    let refused = app.client.grpc.clone().open_sub_account(app.client.operator(bad_code)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    Ok(())
}

#[tokio::test]
async fn the_operator_sees_every_deposit_once_bids_are_opened() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    app.client.create_section("S-OPENED", 1_000_000, Utc::now() - chrono::Duration::hours(2), Utc::now() - chrono::Duration::hours(1), false).await?;
    let bidder = TestBidder::new(21);
    app.client.open_sub_account("S-OPENED", &bidder).await?;
    open_bids(&app, "S-OPENED").await?;
    let list = pb::ListSectionDepositsRequest { centre_id: CENTRE.into(), section_id: "S-OPENED".into() };
    let deposits = app.client.grpc.clone().list_section_deposits(app.client.operator(list)).await?.into_inner().deposits;
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0].bidder_uscc, bidder.uscc);
    Ok(())
}

#[tokio::test]
async fn every_applied_notice_publishes_an_event_through_the_outbox() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-EVENTS", 1_000_000, 2).await?;
    let records: Vec<BankRecord> = bidders
        .iter()
        .enumerate()
        .map(|(index, (bidder, account))| sign_icbc(&app.banks, &icbc_notice(&app.banks, &format!("E{index}"), account, bidder, "10000.00")))
        .collect();
    let notice_schema = schema("bank.credit-notice.v1.json");
    for record in &records {
        let notice: serde_json::Value = serde_json::from_slice(&record.value)?;
        assert!(notice_schema.is_valid(&notice), "the simulator's notice matches the published schema: {notice}");
    }
    app.send(&records).await?;
    let event_schema = schema("ledger.event.v1.json");
    let events = read_topic(&app.settings.kafka, jinfu_platform::topics::LEDGER_EVENTS, 2, Duration::from_secs(30)).await?;
    for (payload, _headers) in events {
        let event: serde_json::Value = serde_json::from_slice(&payload)?;
        let errors: Vec<String> = event_schema.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "event {event} breaks the published schema: {errors:?}");
        assert_eq!(event["type"], "deposit.received");
        assert_eq!(event["centre_id"], CENTRE);
        assert_eq!(event["data"]["satisfied"], true);
        assert!(event["event_id"].is_string());
    }
    Ok(())
}

#[tokio::test]
async fn verification_detects_a_posting_changed_behind_the_ledgers_back() -> anyhow::Result<()> {
    let (app, bidders) = app_with_section("S-TAMPER", 1_000_000, 1).await?;
    let (bidder, account) = &bidders[0];
    app.send(&[sign_icbc(&app.banks, &icbc_notice(&app.banks, "T1", account, bidder, "10000.00"))]).await?;
    app.wait_for_records(1).await?;
    assert_verified(&app).await;

    let refused = sqlx::query("UPDATE ledger.postings SET amount_fen = amount_fen + 1").execute(&app.pool).await;
    assert!(refused.is_err(), "postings are append-only");
    sqlx::query("ALTER TABLE ledger.postings DISABLE TRIGGER postings_append_only").execute(&app.pool).await?;
    sqlx::query("UPDATE ledger.postings SET amount_fen = amount_fen + 1 WHERE side = 'credit'").execute(&app.pool).await?;
    let result = verify::verify(&app.pool).await?;
    assert!(!result.ok());
    assert!(result.violations.iter().any(|v| v.contains("invariant 1")), "{:?}", result.violations);
    assert!(result.violations.iter().any(|v| v.contains("invariant 6")), "{:?}", result.violations);

    // No foreign key stops a posting without an entry (migration 0009); verification does.
    sqlx::query(
        "INSERT INTO ledger.postings (centre_id, sequence, line, account, side, amount_fen)
         VALUES ($1, 999999, 0, 'suspense:ICBC:x', 'credit', 1)",
    )
    .bind(CENTRE)
    .execute(&app.pool)
    .await?;
    let result = verify::verify(&app.pool).await?;
    let orphan = format!("1 postings of {CENTRE}#999999 belong to no journal entry");
    assert!(result.violations.iter().any(|v| v.contains(&orphan)), "{:?}", result.violations);
    Ok(())
}

#[tokio::test]
async fn a_batch_validated_before_a_collection_account_was_registered_is_validated_again_in_its_transaction() -> anyhow::Result<()> {
    use jinfu_ledger_service::ingest::{apply_batch, BatchContext, PreparedBatch, Record, RegistryData};
    use jinfu_ledger_service::notice::{self, Registry};
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    let (app, bidders) = app_with_section("S-STALE", 1_000_000, 1).await?;
    let (bidder, account) = &bidders[0];
    let signed = sign_icbc(&app.banks, &icbc_notice(&app.banks, "STALE-1", account, bidder, "10000.00"));
    let record = Record { partition: 0, offset: 0, value: signed.value, headers: signed.headers, timestamp: None };
    // The pipelined consumer validated this batch while its registry had no accounts yet (as if
    // the first record arrived just before the bank's account was registered).
    let keys = Arc::new(app.settings.bank_keys()?);
    let stale: RegistryData = (HashMap::new(), [CENTRE.to_owned()].into_iter().collect::<HashSet<_>>());
    let validated = vec![notice::validate(
        &record.value,
        record.header(notice::SIGNATURE_HEADER),
        record.header(notice::SIGNING_KEY_HEADER),
        &Registry { accounts: &stale.0, centres: &stale.1, keys: &keys },
    )];
    assert!(validated[0].is_err(), "against the stale registry the notice is refused");
    let batch = PreparedBatch {
        number: 1,
        records: vec![record],
        spans: vec![tracing::Span::none()],
        validated,
        span: tracing::Span::none(),
        received_at: std::time::Instant::now(),
        registry: Arc::new(stale),
        keys,
    };
    let fault = jinfu_ledger_service::settings::FaultSettings::default();
    let unchecked = HashSet::new();
    let context = BatchContext {
        group_id: "stale-registry-test",
        topic: "stale-registry-test.bank.credit-notices",
        dead_letter_topic: "stale-registry-test.bank.credit-notices.dlq",
        events_topic: "stale-registry-test.ledger.events",
        fault: &fault,
        batch_number: 1,
        unchecked_partitions: &unchecked,
    };
    let report = apply_batch(&app.pool, &context, &batch).await?;
    assert_eq!((report.new_notices, report.dead_lettered), (1, 0), "{report:?}");
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM ledger.credit_notices WHERE bank = 'ICBC' AND bank_serial = 'STALE-1'").fetch_one(&app.pool).await?;
    assert_eq!(outcome, "matched");
    assert_verified(&app).await;
    Ok(())
}
