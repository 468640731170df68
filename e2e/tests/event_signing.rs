//! The platform's own events are signed (DESIGN.md §7, issue 13), against a real PostgreSQL and
//! broker with the ledger and the guarantee service in-process: anyone with produce rights on
//! `guarantee.events` can write a record, but the ledger believes only what the guarantee
//! service signed. An unsigned `guarantee.issued` for 10^12 fen, one signed with a key nobody
//! trusts, and one carrying the trusted key's name over a stranger's signature are dead-lettered
//! with their reasons and satisfy no deposit; the guarantee the real service issues does.

use std::time::Duration;

use jinfu_bank_sim::BankRecord;
use jinfu_e2e::*;
use jinfu_guarantee_service::domain::{GuaranteeTerms, GuaranteeType};
use jinfu_platform::auth::Role;
use jinfu_platform::kafka;
use jinfu_platform::signing::{Scheme, Signer, SigningKey, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use jinfu_platform::topics;
use jinfu_proto::guarantee::v1 as g;
use jinfu_proto::ledger::v1 as pb;

const PROVINCE: &str = "520000";
const SECTION: &str = "SIGN-1";
const REQUIRED_FEN: i64 = 5_000_000;

/// A `guarantee.issued` event exactly as the guarantee service writes it, for `bidder`.
fn issued_event(bidder: &TestBidder, number: &str, amount_fen: i64) -> Vec<u8> {
    jinfu_platform::outbox::event_envelope(
        "guarantee.issued",
        CENTRE,
        serde_json::json!({
            "guarantee_no": number, "section_id": SECTION, "type": "bid", "bidder_uscc": bidder.uscc,
            "issuer_code": "PICC", "amount_fen": amount_fen, "valid_to": "2099-12-31",
        }),
    )
}

/// Produces `value` to guarantee.events with `headers`, as anyone with produce rights could.
async fn produce(app: &TestApp, key: &str, value: Vec<u8>, headers: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let record = BankRecord { key: key.into(), value, headers };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(topics::GUARANTEE_EVENTS), &[record]).await
}

/// The bidder's deposit status; `None` while the ledger knows neither a sub-account nor a
/// guarantee of the bidder for the section.
async fn deposit_status(app: &TestApp, bidder: &TestBidder) -> anyhow::Result<Option<pb::DepositStatus>> {
    let request = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), bidder_uscc: bidder.uscc.clone() };
    match app.client.grpc.clone().get_deposit_status(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, request)).await {
        Ok(status) => Ok(Some(status.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

#[tokio::test]
async fn forged_guarantee_events_are_dead_lettered_and_only_the_guarantee_services_signed_event_satisfies_the_deposit() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = chrono::Utc::now();
    app.client.create_section(SECTION, REQUIRED_FEN, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let bidder = TestBidder::new(701);

    // Three forgeries of a 10^12 fen guarantee for the bidder: unsigned; signed with a key the
    // ledger does not trust; and naming the trusted key over a stranger's signature.
    let stranger = SigningKey::generate(Scheme::Ed25519);
    let unsigned = issued_event(&bidder, "FORGED-0001", 1_000_000_000_000);
    produce(&app, "forged-1", unsigned, vec![]).await?;
    let unknown = issued_event(&bidder, "FORGED-0002", 1_000_000_000_000);
    let mut headers = Vec::new();
    Signer::new("attacker", SigningKey::from_hex(Scheme::Ed25519, &stranger.private_key_hex())?)?.sign_record(&unknown, &mut headers);
    produce(&app, "forged-2", unknown, headers).await?;
    let misnamed = issued_event(&bidder, "FORGED-0003", 1_000_000_000_000);
    let headers =
        vec![(SIGNATURE_HEADER.to_owned(), stranger.sign(&misnamed).into_bytes()), (SIGNING_KEY_HEADER.to_owned(), GUARANTEE_KEY_REF.as_bytes().to_vec())];
    produce(&app, "forged-3", misnamed, headers).await?;

    let topic = app.settings.kafka.topic(topics::GUARANTEE_EVENTS);
    let pool = app.pool.clone();
    wait_until("the three forgeries to be dead-lettered", || {
        let (pool, topic) = (pool.clone(), topic.clone());
        async move {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.dead_letters WHERE topic = $1").bind(&topic).fetch_one(&pool).await?;
            Ok(count == 3)
        }
    })
    .await?;
    let mut codes: Vec<String> =
        sqlx::query_scalar("SELECT split_part(reason, ':', 1) FROM ledger.dead_letters WHERE topic = $1").bind(&topic).fetch_all(&app.pool).await?;
    codes.sort();
    assert_eq!(codes, ["bad_signature", "missing_signature", "unknown_signing_key"]);
    // The dead-letter topic carries each with its reason, the original signature headers kept.
    let dead = read_topic(&app.settings.kafka, &kafka::dlq_topic(topics::GUARANTEE_EVENTS), 3, Duration::from_secs(30)).await?;
    let mut reasons: Vec<String> =
        dead.iter().map(|(_, headers)| String::from_utf8_lossy(&headers[kafka::DLQ_REASON_HEADER]).split(':').next().unwrap_or_default().to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, ["bad_signature", "missing_signature", "unknown_signing_key"]);
    for (_, headers) in &dead {
        let reason = String::from_utf8_lossy(&headers[kafka::DLQ_REASON_HEADER]).into_owned();
        let key_ref = headers.get(SIGNING_KEY_HEADER).map(|value| String::from_utf8_lossy(value).into_owned());
        match reason.split(':').next() {
            Some("missing_signature") => assert_eq!(key_ref, None, "a dead letter is not signed as the ledger's event"),
            Some("unknown_signing_key") => assert_eq!(key_ref.as_deref(), Some("attacker"), "the original signature headers are kept"),
            _ => assert_eq!(key_ref.as_deref(), Some(GUARANTEE_KEY_REF)),
        }
    }
    // None of them counts: no cover, and the deposit is still due.
    let covers: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.guarantee_covers").fetch_one(&app.pool).await?;
    assert_eq!(covers, 0);
    let status = deposit_status(&app, &bidder).await?;
    assert!(status.as_ref().is_none_or(|status| !status.satisfied && status.status != "satisfied_by_guarantee"), "{status:?}");

    // The real guarantee service issues the bidder's guarantee: its relay signs the event with
    // the key the ledger trusts, and the deposit is satisfied by it.
    let guarantees = spawn_guarantees(&app).await?;
    let mut grpc = guarantees.grpc.clone();
    let picc = SigningKey::generate(Scheme::Ed25519);
    let admin = |message| app.client.as_role(Role::Admin, PROVINCE, "admin", message);
    grpc.register_issuer(admin(g::RegisterIssuerRequest {
        centre_id: PROVINCE.into(),
        issuer_code: "PICC".into(),
        name: "PICC 保函".into(),
        kind: g::IssuerKind::Insurer as i32,
        scheme: g::SignatureScheme::Ed25519 as i32,
        public_key: picc.public_key_hex(),
    }))
    .await?;
    grpc.register_product(app.client.as_role(
        Role::Issuer,
        PROVINCE,
        "PICC",
        g::Product {
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
        },
    ))
    .await?;
    let request = g::ApplyRequest {
        centre_id: CENTRE.into(),
        section_id: SECTION.into(),
        issuer_code: "PICC".into(),
        product_id: "BID-1".into(),
        beneficiary: "贵阳市某采购人".into(),
        valid_to: (now + chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
        amount_fen: 0,
        ..Default::default()
    };
    let application = grpc.apply(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, request)).await?.into_inner();
    let valid_from = now.date_naive();
    let valid_to = chrono::NaiveDate::parse_from_str(&application.valid_to, "%Y-%m-%d")? + chrono::Duration::days(30);
    let terms = GuaranteeTerms {
        guarantee_no: "PICC-2026-0701".into(),
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
    let issue = g::IssueGuaranteeRequest {
        centre_id: application.centre_id.clone(),
        application_id: application.application_id.clone(),
        guarantee_no: terms.guarantee_no.clone(),
        valid_from: valid_from.to_string(),
        valid_to: valid_to.to_string(),
        document_sha256: terms.document_sha256.clone(),
        signature: picc.sign(terms.canonical_text().as_bytes()),
    };
    grpc.issue_guarantee(app.client.as_role(Role::Issuer, PROVINCE, "PICC", issue)).await?;
    wait_until("the ledger to accept the signed guarantee", || {
        let app = &app;
        let bidder = &bidder;
        async move { Ok(deposit_status(app, bidder).await?.is_some_and(|status| status.status == "satisfied_by_guarantee")) }
    })
    .await?;
    let status = deposit_status(&app, &bidder).await?.expect("a status");
    assert!(status.satisfied);
    assert_eq!((status.guarantee_no.as_str(), status.guarantee_amount_fen), ("PICC-2026-0701", REQUIRED_FEN));
    let covers: Vec<String> = sqlx::query_scalar("SELECT guarantee_no FROM ledger.guarantee_covers").fetch_all(&app.pool).await?;
    assert_eq!(covers, ["PICC-2026-0701"]);
    // What the service published carries its signature, which verifies under its public key.
    let published: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM guarantee.outbox WHERE topic = $1 AND published_at IS NOT NULL").bind(&topic).fetch_all(&app.pool).await?;
    assert_eq!(published.len(), 1);
    let all = read_topic(&app.settings.kafka, topics::GUARANTEE_EVENTS, 4, Duration::from_secs(30)).await?;
    let genuine: Vec<_> = all.iter().filter(|(value, _)| value == &published[0]).collect();
    assert_eq!(genuine.len(), 1);
    assert_eq!(genuine[0].1.get(SIGNING_KEY_HEADER).map(Vec::as_slice), Some(GUARANTEE_KEY_REF.as_bytes()));
    let verifier = jinfu_platform::signing::EventVerifier::for_publisher(&app.banks.trusted_publishers(), "guarantee")?;
    let headers: Vec<(String, Vec<u8>)> = genuine[0].1.clone().into_iter().collect();
    assert_eq!(verifier.verify(&genuine[0].0, &headers), Ok(()));
    Ok(())
}
