//! The contract service's `contract.signed` on `contract.events`, against a real PostgreSQL and
//! broker with the ledger and the guarantee service in-process: it refunds the winner (in an
//! engineering tender everyone) and releases the section's bid guarantees exactly as the
//! e-trading system's `contract.signed` on `trading.events` does, and when both arrive, in
//! either order, nothing happens twice. Records not signed with the contract service's trusted
//! key are dead-lettered and change nothing; other event types are no-ops; a signing without a
//! section is dead-lettered with `bad_field`.

use std::time::Duration;

use chrono::Utc;
use jinfu_e2e::*;
use jinfu_guarantee_service::domain::{GuaranteeTerms, GuaranteeType};
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, Signer, SigningKey, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use jinfu_platform::topics::{CONTRACT_EVENTS, GUARANTEE_EVENTS, LEDGER_EVENTS, TRADING_EVENTS};
use jinfu_platform::{kafka, outbox};
use jinfu_proto::guarantee::v1 as g;
use jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient;
use serde_json::json;
use tonic::transport::Channel;

const SIGNED: &str = "contract.signed";
const PROVINCE: &str = "520000";
const REQUIRED_FEN: i64 = 5_000_000;

/// The data of `contract.signed` for `section` with `supplier` as the supplier.
fn signing(section: &str, supplier: &TestBidder) -> serde_json::Value {
    json!({
        "contract_id": format!("HT-{section}"),
        "section_id": section,
        "supplier_uscc": supplier.uscc,
        "purchaser_uscc": TestBidder::new(999_999).uscc,
        "amount": "1200000.00",
        "signed_at": china(Utc::now()),
    })
}

/// (bidder, trigger, trigger event id) of each refund of `section`, by bidder.
async fn refunds(app: &TestApp, section: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as("SELECT bidder_uscc, trigger, trigger_event_id FROM ledger.refunds WHERE section_id = $1 ORDER BY bidder_uscc")
        .bind(section)
        .fetch_all(&app.pool)
        .await?)
}

/// The bidders of each `refund.scheduled` the ledger wrote for `section`, sorted.
async fn scheduled_events(app: &TestApp, section: &str) -> anyhow::Result<Vec<String>> {
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM ledger.outbox WHERE topic = $1").bind(app.settings.kafka.topic(LEDGER_EVENTS)).fetch_all(&app.pool).await?;
    let mut bidders = Vec::new();
    for payload in payloads {
        let event: serde_json::Value = serde_json::from_slice(&payload)?;
        if event["type"] == "refund.scheduled" && event["data"]["section_id"] == section {
            bidders.push(event["data"]["bidder_uscc"].as_str().unwrap_or_default().to_owned());
        }
    }
    bidders.sort();
    Ok(bidders)
}

/// Whether the service owning `schema` applied event `event_id` from `topic`.
async fn applied(app: &TestApp, schema: &str, topic: &str, event_id: &str) -> anyhow::Result<bool> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.trading_events WHERE source = $1 AND event_id = $2"))
        .bind(format!("kafka:{topic}"))
        .bind(event_id)
        .fetch_one(&app.pool)
        .await?;
    Ok(count == 1)
}

/// The reasons of the records of contract.events the service owning `schema` dead-lettered.
async fn dead_letters(app: &TestApp, schema: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    Ok(sqlx::query_as(&format!("SELECT reason, payload FROM {schema}.dead_letters WHERE topic = $1 ORDER BY kafka_offset"))
        .bind(app.settings.kafka.topic(CONTRACT_EVENTS))
        .fetch_all(&app.pool)
        .await?)
}

fn usccs(bidders: &[TestBidder]) -> Vec<String> {
    let mut codes: Vec<String> = bidders.iter().map(|bidder| bidder.uscc.clone()).collect();
    codes.sort();
    codes
}

/// Announces `winner` for `section` on trading.events and waits until the ledger applied it.
async fn award(app: &TestApp, section: &str, winner: &TestBidder) -> anyhow::Result<()> {
    let id = trading_event(app, section, "award.announced", json!({ "winner_uscc": winner.uscc })).await?;
    wait_until(&format!("the award of {section}"), || applied(app, "ledger", TRADING_EVENTS, &id)).await
}

#[tokio::test]
async fn a_contract_signed_on_contract_events_refunds_the_winner_once_whichever_signing_comes_first() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;

    // The contract service's signing first, then the e-trading system's.
    let bidders = paid_section(&app, "CS-1", 3, 901).await?;
    let winner = &bidders[0];
    award(&app, "CS-1", winner).await?;
    assert_eq!(refunds(&app, "CS-1").await?.len(), 2, "the procurement award refunds the losers");
    let signed = publish_contract_event(&app, SIGNED, CENTRE, signing("CS-1", winner)).await?;
    wait_until("the winner's refund", || async { Ok(refunds(&app, "CS-1").await?.len() == 3) }).await?;
    let rows = refunds(&app, "CS-1").await?;
    let winners: Vec<_> = rows.iter().filter(|row| row.0 == winner.uscc).collect();
    assert_eq!(winners.len(), 1);
    assert_eq!((winners[0].1.as_str(), winners[0].2.as_str()), ("contract_signed", signed.as_str()));
    let trading = trading_event(&app, "CS-1", SIGNED, json!({ "winner_uscc": winner.uscc })).await?;
    wait_until("the e-trading system's signing to be applied", || applied(&app, "ledger", TRADING_EVENTS, &trading)).await?;
    assert_eq!(refunds(&app, "CS-1").await?, rows, "the second signing schedules nothing");
    assert_eq!(scheduled_events(&app, "CS-1").await?, usccs(&bidders), "one refund.scheduled per bidder");
    let effect: String = sqlx::query_scalar("SELECT effect FROM ledger.trading_events WHERE event_id = $1").bind(&trading).fetch_one(&app.pool).await?;
    assert_eq!(effect, "contract signed: 0 refunds scheduled");

    // The e-trading system's signing first, then the contract service's.
    let bidders = paid_section(&app, "CS-2", 3, 911).await?;
    let winner = &bidders[1];
    award(&app, "CS-2", winner).await?;
    let trading = trading_event(&app, "CS-2", SIGNED, json!({ "winner_uscc": winner.uscc })).await?;
    wait_until("the winner's refund", || async { Ok(refunds(&app, "CS-2").await?.len() == 3) }).await?;
    let rows = refunds(&app, "CS-2").await?;
    assert!(rows.iter().any(|row| row.0 == winner.uscc && row.2 == trading), "{rows:?}");
    let done = topic_records_done(&app, "ledger", CONTRACT_EVENTS).await?;
    let signed = publish_contract_event(&app, SIGNED, CENTRE, signing("CS-2", winner)).await?;
    wait_until("the contract service's signing to be taken", || async { Ok(topic_records_done(&app, "ledger", CONTRACT_EVENTS).await? > done) }).await?;
    assert!(applied(&app, "ledger", CONTRACT_EVENTS, &signed).await?, "applied, not dead-lettered: {:?}", dead_letters(&app, "ledger").await?);
    assert_eq!(refunds(&app, "CS-2").await?, rows, "the second signing schedules nothing");
    assert_eq!(scheduled_events(&app, "CS-2").await?, usccs(&bidders), "one refund.scheduled per bidder");
    assert!(dead_letters(&app, "ledger").await?.is_empty());
    assert_events_match_schema(&app.pool).await?;
    Ok(())
}

#[tokio::test]
async fn an_engineering_contract_signed_on_contract_events_refunds_every_bidder_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let calendar = jinfu_ledger::calendar::Calendar::china();
    let bidders = paid_engineering_section(&app, "CE-1", 3, 921).await?;
    let winner = &bidders[2];
    award(&app, "CE-1", winner).await?;
    assert!(refunds(&app, "CE-1").await?.is_empty(), "an engineering award refunds nobody");

    let signed = publish_contract_event(&app, SIGNED, CENTRE, signing("CE-1", winner)).await?;
    wait_until("every bidder's refund", || async { Ok(refunds(&app, "CE-1").await?.len() == 3) }).await?;
    let rows = refunds(&app, "CE-1").await?;
    for (_, trigger, event_id) in &rows {
        assert_eq!((trigger.as_str(), event_id.as_str()), ("contract_signed", signed.as_str()));
    }
    let dates: Vec<(chrono::NaiveDate, chrono::NaiveDate)> =
        sqlx::query_as("SELECT due_on, (triggered_at AT TIME ZONE 'Asia/Shanghai')::date FROM ledger.refunds WHERE section_id = 'CE-1'")
            .fetch_all(&app.pool)
            .await?;
    for (due_on, day) in dates {
        assert_eq!(due_on, calendar.add_calendar_days(day, 5)?, "engineering: 5 calendar days after the signing");
    }
    let trading = trading_event(&app, "CE-1", SIGNED, json!({ "winner_uscc": winner.uscc })).await?;
    wait_until("the e-trading system's signing to be applied", || applied(&app, "ledger", TRADING_EVENTS, &trading)).await?;
    assert_eq!(refunds(&app, "CE-1").await?, rows);
    assert_eq!(scheduled_events(&app, "CE-1").await?, usccs(&bidders), "one refund.scheduled per bidder");
    Ok(())
}

/// Registers issuer PICC with a bid product, on the guarantee service.
async fn register_issuer(app: &TestApp, grpc: &mut GuaranteeServiceClient<Channel>, key: &SigningKey) -> anyhow::Result<()> {
    let issuer = g::RegisterIssuerRequest {
        centre_id: PROVINCE.into(),
        issuer_code: "PICC".into(),
        name: "PICC 保函".into(),
        kind: g::IssuerKind::Insurer as i32,
        scheme: g::SignatureScheme::Ed25519 as i32,
        public_key: key.public_key_hex(),
    };
    grpc.register_issuer(app.client.as_role(Role::Admin, PROVINCE, "admin", issuer)).await?;
    let product = g::Product {
        centre_id: PROVINCE.into(),
        issuer_code: "PICC".into(),
        product_id: "BID-1".into(),
        name: "PICC 投标保函".into(),
        r#type: g::GuaranteeType::Bid as i32,
        premium_rate: "0.0010".into(),
        minimum_premium_fen: 0,
        minimum_amount_fen: 100,
        maximum_amount_fen: 1_000_000_000,
        centres: vec![],
        regimes: vec![],
    };
    grpc.register_product(app.client.as_role(Role::Issuer, PROVINCE, "PICC", product)).await?;
    Ok(())
}

/// `bidder` applies for a bid guarantee for `section` and PICC issues it as `number`.
async fn issue(
    app: &TestApp,
    grpc: &mut GuaranteeServiceClient<Channel>,
    key: &SigningKey,
    section: &str,
    bidder: &TestBidder,
    number: &str,
) -> anyhow::Result<()> {
    let request = g::ApplyRequest {
        centre_id: CENTRE.into(),
        section_id: section.into(),
        issuer_code: "PICC".into(),
        product_id: "BID-1".into(),
        beneficiary: "贵阳市某采购人".into(),
        valid_to: (Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
        amount_fen: 0,
        ..Default::default()
    };
    let application = grpc.apply(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, request)).await?.into_inner();
    let valid_from = Utc::now().date_naive();
    let valid_to = chrono::NaiveDate::parse_from_str(&application.valid_to, "%Y-%m-%d")? + chrono::Duration::days(30);
    let terms = GuaranteeTerms {
        guarantee_no: number.into(),
        application_id: application.application_id.clone(),
        centre_id: application.centre_id.clone(),
        section_id: application.section_id.clone(),
        kind: GuaranteeType::Bid,
        principal_uscc: application.bidder_uscc.clone(),
        beneficiary: application.beneficiary.clone(),
        amount_fen: application.amount_fen,
        valid_from,
        valid_to,
        document_sha256: "5d".repeat(32),
    };
    let request = g::IssueGuaranteeRequest {
        centre_id: application.centre_id.clone(),
        application_id: application.application_id.clone(),
        guarantee_no: number.into(),
        valid_from: valid_from.to_string(),
        valid_to: valid_to.to_string(),
        document_sha256: terms.document_sha256.clone(),
        signature: key.sign(terms.canonical_text().as_bytes()),
    };
    grpc.issue_guarantee(app.client.as_role(Role::Issuer, PROVINCE, "PICC", request)).await?;
    Ok(())
}

async fn guarantee_state(app: &TestApp, number: &str) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT state FROM guarantee.guarantees WHERE guarantee_no = $1").bind(number).fetch_one(&app.pool).await?)
}

/// (guarantee number, releasing event id) of every `guarantee.released` the service wrote,
/// each checked against docs/schemas/guarantee.event.v1.json.
async fn releases(app: &TestApp) -> anyhow::Result<Vec<(String, String)>> {
    let validator = schema("guarantee.event.v1.json");
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM guarantee.outbox WHERE topic = $1 ORDER BY id")
        .bind(app.settings.kafka.topic(GUARANTEE_EVENTS))
        .fetch_all(&app.pool)
        .await?;
    let mut released = Vec::new();
    for payload in payloads {
        let event: serde_json::Value = serde_json::from_slice(&payload)?;
        let errors: Vec<String> = validator.iter_errors(&event).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
        if event["type"] == "guarantee.released" {
            let text = |name: &str| event["data"][name].as_str().unwrap_or_default().to_owned();
            released.push((text("guarantee_no"), text("trading_event_id")));
        }
    }
    released.sort();
    Ok(released)
}

#[tokio::test]
async fn the_guarantee_service_releases_a_bid_guarantee_once_on_either_signing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    for section in ["CG-1", "CG-2"] {
        app.client.create_section(section, REQUIRED_FEN, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    }
    let guarantees = spawn_guarantees(&app).await?;
    let mut grpc = guarantees.grpc.clone();
    let key = SigningKey::generate(Scheme::Ed25519);
    register_issuer(&app, &mut grpc, &key).await?;
    let (first, second) = (TestBidder::new(931), TestBidder::new(932));
    issue(&app, &mut grpc, &key, "CG-1", &first, "PICC-CG1-0001").await?;
    issue(&app, &mut grpc, &key, "CG-2", &second, "PICC-CG2-0001").await?;

    // The contract service's signing first, then the e-trading system's.
    let signed = publish_contract_event(&app, SIGNED, CENTRE, signing("CG-1", &first)).await?;
    wait_until("PICC-CG1-0001 to be released", || async { Ok(guarantee_state(&app, "PICC-CG1-0001").await? == "released") }).await?;
    let trading = trading_event(&app, "CG-1", SIGNED, json!({ "winner_uscc": first.uscc })).await?;
    wait_until("the e-trading system's signing to be applied", || applied(&app, "guarantee", TRADING_EVENTS, &trading)).await?;

    // The e-trading system's signing first, then the contract service's.
    let trading = trading_event(&app, "CG-2", SIGNED, json!({ "winner_uscc": second.uscc })).await?;
    wait_until("PICC-CG2-0001 to be released", || async { Ok(guarantee_state(&app, "PICC-CG2-0001").await? == "released") }).await?;
    let done = topic_records_done(&app, "guarantee", CONTRACT_EVENTS).await?;
    let late = publish_contract_event(&app, SIGNED, CENTRE, signing("CG-2", &second)).await?;
    wait_until("the contract service's signing to be taken", || async { Ok(topic_records_done(&app, "guarantee", CONTRACT_EVENTS).await? > done) }).await?;
    assert!(applied(&app, "guarantee", CONTRACT_EVENTS, &late).await?, "applied, not dead-lettered: {:?}", dead_letters(&app, "guarantee").await?);

    let mut expected = vec![("PICC-CG1-0001".to_owned(), signed), ("PICC-CG2-0001".to_owned(), trading)];
    expected.sort();
    assert_eq!(releases(&app).await?, expected, "one guarantee.released per guarantee, naming the signing that released it");
    let reason: String = sqlx::query_scalar("SELECT state_reason FROM guarantee.guarantees WHERE guarantee_no = 'PICC-CG1-0001'").fetch_one(&app.pool).await?;
    assert_eq!(reason, "contract signed");
    Ok(())
}

#[tokio::test]
async fn a_contract_signing_not_signed_by_the_contract_service_is_dead_lettered_and_changes_nothing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let forged_section = paid_section(&app, "CF-1", 2, 941).await?;
    award(&app, "CF-1", &forged_section[0]).await?;
    let good_section = paid_section(&app, "CF-2", 2, 951).await?;
    award(&app, "CF-2", &good_section[0]).await?;
    let _guarantees = spawn_guarantees(&app).await?;

    // Signed with a key nobody trusts; and naming the trusted key over a stranger's signature.
    let stranger = SigningKey::generate(Scheme::Ed25519);
    let unknown = outbox::event_envelope(SIGNED, CENTRE, signing("CF-1", &forged_section[0]));
    let mut headers = Vec::new();
    Signer::new("attacker", SigningKey::from_hex(Scheme::Ed25519, &stranger.private_key_hex())?)?.sign_record(&unknown, &mut headers);
    publish_contract_record(&app, CENTRE, unknown, headers).await?;
    let misnamed = outbox::event_envelope(SIGNED, CENTRE, signing("CF-1", &forged_section[0]));
    let headers =
        vec![(SIGNATURE_HEADER.to_owned(), stranger.sign(&misnamed).into_bytes()), (SIGNING_KEY_HEADER.to_owned(), CONTRACT_KEY_REF.as_bytes().to_vec())];
    publish_contract_record(&app, CENTRE, misnamed, headers).await?;
    // The genuine signing of another section, behind them on the same partition.
    let good = publish_contract_event(&app, SIGNED, CENTRE, signing("CF-2", &good_section[0])).await?;

    for schema in ["ledger", "guarantee"] {
        wait_until(&format!("the {schema} service to take the three records"), || async { Ok(topic_records_done(&app, schema, CONTRACT_EVENTS).await? == 3) })
            .await?;
        let mut codes: Vec<String> =
            dead_letters(&app, schema).await?.into_iter().map(|(reason, _)| reason.split(':').next().unwrap_or_default().to_owned()).collect();
        codes.sort();
        assert_eq!(codes, ["bad_signature", "unknown_signing_key"], "{schema}");
        assert!(applied(&app, schema, CONTRACT_EVENTS, &good).await?, "{schema} applied the genuine signing");
        let from_contracts: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.trading_events WHERE source = 'kafka:contract.events'")).fetch_one(&app.pool).await?;
        assert_eq!(from_contracts, 1, "{schema}: only the genuine signing is recorded");
    }
    assert_eq!(refunds(&app, "CF-2").await?.len(), 2, "the genuine signing refunds its winner");
    let forged: Vec<String> = refunds(&app, "CF-1").await?.into_iter().map(|row| row.0).collect();
    assert_eq!(forged, [forged_section[1].uscc.clone()], "the forged signings refund nobody: only the loser of the award is refunded");
    Ok(())
}

#[tokio::test]
async fn other_contract_events_are_no_ops_and_a_signing_without_a_section_is_dead_lettered_with_bad_field() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let bidders = paid_section(&app, "CU-1", 2, 961).await?;
    let winner = &bidders[0];
    award(&app, "CU-1", winner).await?;
    let _guarantees = spawn_guarantees(&app).await?;

    let drafted = publish_contract_event(&app, "contract.drafted", CENTRE, json!({ "contract_id": "HT-CU-1", "section_id": "CU-1" })).await?;
    let invoice = publish_contract_event(&app, "invoice.received", CENTRE, json!({ "invoice_no": "INV-CU-1", "section_id": "CU-1" })).await?;
    let mut without_section = signing("CU-1", winner);
    without_section.as_object_mut().expect("an object").remove("section_id");
    let refused = publish_contract_event(&app, SIGNED, CENTRE, without_section).await?;
    let good = publish_contract_event(&app, SIGNED, CENTRE, signing("CU-1", winner)).await?;

    for schema in ["ledger", "guarantee"] {
        wait_until(&format!("the {schema} service to take the four records"), || async { Ok(topic_records_done(&app, schema, CONTRACT_EVENTS).await? == 4) })
            .await?;
        let dead = dead_letters(&app, schema).await?;
        assert_eq!(dead.len(), 1, "{schema}: {dead:?}");
        assert!(dead[0].0.starts_with("bad_field: contract.signed data: missing field `section_id`"), "{schema}: {}", dead[0].0);
        let event: serde_json::Value = serde_json::from_slice(&dead[0].1)?;
        assert_eq!(event["event_id"], refused.as_str());
        let recorded: Vec<String> =
            sqlx::query_scalar(&format!("SELECT event_id FROM {schema}.trading_events WHERE source = 'kafka:contract.events'")).fetch_all(&app.pool).await?;
        assert_eq!(recorded, std::slice::from_ref(&good), "{schema}: {drafted} and {invoice} change nothing");
    }
    assert_eq!(refunds(&app, "CU-1").await?.len(), 2, "the genuine signing refunds the winner");
    // Both services' refusals are on the dead-letter topic with their reason.
    let letters = read_topic(&app.settings.kafka, &kafka::dlq_topic(CONTRACT_EVENTS), 2, Duration::from_secs(30)).await?;
    for (_, headers) in &letters {
        assert!(String::from_utf8_lossy(&headers[kafka::DLQ_REASON_HEADER]).starts_with("bad_field: "));
    }
    Ok(())
}
