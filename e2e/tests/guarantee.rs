//! E-guarantees against a real PostgreSQL and broker, with the ledger and the guarantee service
//! in-process: issuers and products, a bidder's application, forged and genuine issuance,
//! sealing until the `bids.opened` event, verification, the ledger reporting the deposit
//! satisfied by the guarantee, and issuer suspension, exit and paused onboarding.

use std::time::Duration;

use jinfu_e2e::*;
use jinfu_guarantee_service::domain::{GuaranteeTerms, GuaranteeType};
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, SigningKey};
use jinfu_proto::guarantee::v1 as g;
use jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient;
use jinfu_proto::ledger::v1 as pb;
use tonic::transport::Channel;
use tonic::Code;

const PROVINCE: &str = "520000";
const SECTION: &str = "GUAR-1";
const REQUIRED_FEN: i64 = 5_000_000;

/// The ledger with the test centre and section SECTION (deadline in 2 days, opening in 3), and
/// the guarantee service beside it.
async fn setup() -> anyhow::Result<(TestApp, TestGuarantees)> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = chrono::Utc::now();
    app.client.create_section(SECTION, REQUIRED_FEN, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let service = spawn_guarantees(&app).await?;
    Ok((app, service))
}

fn call<T>(app: &TestApp, role: Role, centre: &str, party: &str, message: T) -> tonic::Request<T> {
    app.client.as_role(role, centre, party, message)
}

fn issuer_request(code: &str, kind: g::IssuerKind, key: &SigningKey) -> g::RegisterIssuerRequest {
    g::RegisterIssuerRequest {
        centre_id: PROVINCE.into(),
        issuer_code: code.into(),
        name: format!("{code} 保函"),
        kind: kind as i32,
        scheme: if key.scheme() == Scheme::Sm2Sm3 { g::SignatureScheme::Sm2Sm3 } else { g::SignatureScheme::Ed25519 } as i32,
        public_key: key.public_key_hex(),
    }
}

fn product(issuer: &str, id: &str, rate: &str, minimum_premium_fen: i64) -> g::Product {
    g::Product {
        centre_id: PROVINCE.into(),
        issuer_code: issuer.into(),
        product_id: id.into(),
        name: format!("{issuer} 投标保函"),
        r#type: g::GuaranteeType::Bid as i32,
        premium_rate: rate.into(),
        minimum_premium_fen,
        minimum_amount_fen: 100,
        maximum_amount_fen: 1_000_000_000,
        centres: vec![],
        regimes: vec![],
    }
}

fn apply(issuer: &str, product_id: &str, amount_fen: i64) -> g::ApplyRequest {
    g::ApplyRequest {
        centre_id: CENTRE.into(),
        section_id: SECTION.into(),
        issuer_code: issuer.into(),
        product_id: product_id.into(),
        beneficiary: "贵阳市某采购人".into(),
        valid_to: (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
        amount_fen,
        ..Default::default()
    }
}

/// An issuance request for `application`, signed with `key` over the canonical text.
fn issuance(application: &g::Application, number: &str, key: &SigningKey) -> g::IssueGuaranteeRequest {
    let valid_from = chrono::Utc::now().date_naive();
    let valid_to = chrono::NaiveDate::parse_from_str(&application.valid_to, "%Y-%m-%d").expect("date") + chrono::Duration::days(30);
    let digest = "5d".repeat(32);
    let terms = GuaranteeTerms {
        guarantee_no: number.into(),
        application_id: application.application_id.clone(),
        centre_id: application.centre_id.clone(),
        section_id: application.section_id.clone(),
        kind: match g::GuaranteeType::try_from(application.r#type) {
            Ok(g::GuaranteeType::Performance) => GuaranteeType::Performance,
            Ok(g::GuaranteeType::Quality) => GuaranteeType::Quality,
            _ => GuaranteeType::Bid,
        },
        principal_uscc: application.bidder_uscc.clone(),
        beneficiary: application.beneficiary.clone(),
        amount_fen: application.amount_fen,
        valid_from,
        valid_to,
        document_sha256: digest.clone(),
    };
    g::IssueGuaranteeRequest {
        centre_id: application.centre_id.clone(),
        application_id: application.application_id.clone(),
        guarantee_no: number.into(),
        valid_from: valid_from.to_string(),
        valid_to: valid_to.to_string(),
        document_sha256: digest,
        signature: key.sign(terms.canonical_text().as_bytes()),
    }
}

fn code_of<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn a_bid_guarantee_is_sealed_until_bids_open_verifiable_and_satisfies_the_deposit() -> anyhow::Result<()> {
    let (app, service) = setup().await?;
    let mut grpc = service.grpc.clone();

    let picc = SigningKey::generate(Scheme::Ed25519);
    let icbc = SigningKey::generate(Scheme::Sm2Sm3);
    grpc.register_issuer(call(&app, Role::Admin, PROVINCE, "admin", issuer_request("PICC", g::IssuerKind::Insurer, &picc))).await?;
    grpc.register_issuer(call(&app, Role::Admin, PROVINCE, "admin", issuer_request("ICBCG", g::IssuerKind::Bank, &icbc))).await?;
    // A city admin may not onboard issuers; an issuer registers only its own products.
    assert_eq!(
        code_of(grpc.register_issuer(call(&app, Role::Admin, CENTRE, "admin", issuer_request("X", g::IssuerKind::Bank, &picc))).await),
        Code::PermissionDenied
    );
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("PICC", "BID-1", "0.0010", 0))).await?;
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "ICBCG", product("ICBCG", "BID-A", "0.0015", 20_000))).await?;
    assert_eq!(code_of(grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("ICBCG", "BID-X", "0.001", 0))).await), Code::PermissionDenied);
    assert_eq!(code_of(grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("PICC", "BID-2", "0.2", 0))).await), Code::InvalidArgument);

    // The bidder sees every eligible product with its premium, cheapest first; none is chosen for it.
    let bidder = TestBidder::new(601);
    let other = TestBidder::new(602);
    let listed = grpc
        .list_eligible_products(call(
            &app,
            Role::Bidder,
            CENTRE,
            &bidder.uscc,
            g::ListEligibleProductsRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), r#type: g::GuaranteeType::Bid as i32, amount_fen: 0 },
        ))
        .await?
        .into_inner();
    let offers: Vec<(String, i64)> = listed.products.iter().map(|p| (p.product.as_ref().expect("product").issuer_code.clone(), p.premium_fen)).collect();
    // 50,000.00 × 0.10 % = 50.00; 50,000.00 × 0.15 % = 75.00, below ICBCG's minimum of 200.00.
    assert_eq!(offers, vec![("PICC".to_owned(), 5_000), ("ICBCG".to_owned(), 20_000)]);

    // Apply: the amount is the requirement; more is refused, and one live application at a time.
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("PICC", "BID-1", REQUIRED_FEN + 1))).await), Code::InvalidArgument);
    let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("PICC", "BID-1", 0))).await?.into_inner();
    assert_eq!((application.amount_fen, application.premium_fen, application.status.as_str()), (REQUIRED_FEN, 5_000, "pending"));
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("ICBCG", "BID-A", 0))).await), Code::AlreadyExists);

    // The issuer sees its own applications; another issuer neither sees nor decides them.
    let pending = grpc
        .list_applications(call(&app, Role::Issuer, PROVINCE, "PICC", g::ListApplicationsRequest { centre_id: PROVINCE.into(), status: "pending".into() }))
        .await?
        .into_inner();
    assert_eq!(pending.applications.iter().map(|a| a.bidder_uscc.as_str()).collect::<Vec<_>>(), vec![bidder.uscc.as_str()]);
    let others = grpc
        .list_applications(call(&app, Role::Issuer, PROVINCE, "ICBCG", g::ListApplicationsRequest { centre_id: PROVINCE.into(), status: String::new() }))
        .await?
        .into_inner();
    assert!(others.applications.is_empty());
    assert_eq!(code_of(grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "ICBCG", issuance(&application, "ICBCG-0001", &icbc))).await), Code::NotFound);

    // A forged issuance (signed with another key) is refused and stores nothing.
    let forged = issuance(&application, "PICC-2026-0001", &SigningKey::generate(Scheme::Ed25519));
    let refused = grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", forged)).await.expect_err("forged");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("does not verify"), "{}", refused.message());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.guarantees").fetch_one(&app.pool).await?;
    assert_eq!(stored, 0);
    // A signature over other terms (another document digest) is refused the same way.
    let mut altered = issuance(&application, "PICC-2026-0001", &picc);
    altered.document_sha256 = "00".repeat(32);
    assert_eq!(code_of(grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", altered)).await), Code::InvalidArgument);

    let issued = grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&application, "PICC-2026-0001", &picc))).await?.into_inner();
    assert_eq!((issued.status.as_str(), issued.bidder_uscc.as_str()), ("issued", bidder.uscc.as_str()));
    assert_eq!(
        code_of(grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&application, "PICC-2026-0002", &picc))).await),
        Code::FailedPrecondition
    );
    // Numbers are per issuer: another issuer trying PICC's sealed number is told the same as for
    // a number nobody used — its numbers start with its own code.
    let third = TestBidder::new(603);
    let application_icbcg = grpc.apply(call(&app, Role::Bidder, CENTRE, &third.uscc, apply("ICBCG", "BID-A", 0))).await?.into_inner();
    let mut answers = Vec::new();
    for number in ["PICC-2026-0001", "PICC-2026-9999"] {
        let refused = grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "ICBCG", issuance(&application_icbcg, number, &icbc))).await.expect_err(number);
        answers.push((refused.code(), refused.message().to_owned()));
    }
    assert_eq!(answers[0], answers[1], "a sealed number and an unknown one are refused alike");
    assert_eq!(answers[0].0, Code::InvalidArgument);
    assert!(answers[0].1.contains("start with 'ICBCG-'"), "{}", answers[0].1);
    grpc.cancel_application(call(
        &app,
        Role::Bidder,
        CENTRE,
        &third.uscc,
        g::ApplicationRef { centre_id: CENTRE.into(), application_id: application_icbcg.application_id.clone() },
    ))
    .await?;

    // Sealed: nothing in the database names the bidder; staff and other bidders learn nothing.
    let plain: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM guarantee.applications WHERE position(convert_to($1, 'UTF8') in sealed) > 0)
              + (SELECT count(*) FROM guarantee.guarantees WHERE position(convert_to($1, 'UTF8') in sealed) > 0)",
    )
    .bind(&bidder.uscc)
    .fetch_one(&app.pool)
    .await?;
    assert_eq!(plain, 0, "the bidder's code is stored only sealed");
    let by_section = g::ListSectionGuaranteesRequest { centre_id: CENTRE.into(), section_id: SECTION.into() };
    for role in [Role::Operator, Role::Supervisor] {
        let sealed = grpc.list_section_guarantees(call(&app, role, CENTRE, "staff", by_section.clone())).await.expect_err("sealed");
        assert_eq!(sealed.code(), Code::FailedPrecondition);
        assert!(sealed.message().contains("sealed until bid opening"), "{}", sealed.message());
    }
    let by_bidder =
        g::VerifyGuaranteeRequest { centre_id: CENTRE.into(), guarantee_no: String::new(), bidder_uscc: bidder.uscc.clone(), section_id: SECTION.into() };
    assert_eq!(code_of(grpc.verify_guarantee(call(&app, Role::Operator, CENTRE, "staff", by_bidder.clone())).await), Code::NotFound);
    assert_eq!(code_of(grpc.verify_guarantee(call(&app, Role::Bidder, CENTRE, &other.uscc, by_bidder.clone())).await), Code::NotFound);
    let application_ref = g::ApplicationRef { centre_id: CENTRE.into(), application_id: application.application_id.clone() };
    assert_eq!(code_of(grpc.get_application(call(&app, Role::Operator, CENTRE, "staff", application_ref.clone())).await), Code::NotFound);
    let own = grpc.verify_guarantee(call(&app, Role::Bidder, CENTRE, &bidder.uscc, by_bidder.clone())).await?.into_inner();
    assert!(own.authentic);
    assert_eq!((own.status.as_str(), own.bidder_uscc.as_str()), ("issued", bidder.uscc.as_str()));
    // By number, before opening, anyone but the bidder and its issuer is answered as for a
    // number that does not exist: even the amount would tell which section it secures.
    let by_number = g::VerifyGuaranteeRequest { centre_id: CENTRE.into(), guarantee_no: "PICC-2026-0001".into(), ..Default::default() };
    let unknown = g::VerifyGuaranteeRequest { centre_id: CENTRE.into(), guarantee_no: "PICC-2026-9999".into(), ..Default::default() };
    for role in [Role::Operator, Role::Bank] {
        let sealed = grpc.verify_guarantee(call(&app, role, CENTRE, "someone", by_number.clone())).await.expect_err("sealed");
        let missing = grpc.verify_guarantee(call(&app, role, CENTRE, "someone", unknown.clone())).await.expect_err("unknown");
        assert_eq!((sealed.code(), missing.code()), (Code::NotFound, Code::NotFound));
    }
    assert_eq!(code_of(grpc.verify_guarantee(call(&app, Role::Bidder, CENTRE, &other.uscc, by_number.clone())).await), Code::NotFound);
    let issuer_view = grpc.verify_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", by_number.clone())).await?.into_inner();
    assert_eq!((issuer_view.authentic, issuer_view.status.as_str(), issuer_view.amount_fen), (true, "issued", REQUIRED_FEN));

    // The ledger learns of the guarantee from guarantee.events: the deposit is satisfied by it.
    let status_request = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), bidder_uscc: bidder.uscc.clone() };
    wait_until("the ledger to see the guarantee", || {
        let mut ledger = app.client.grpc.clone();
        let request = app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, status_request.clone());
        async move { Ok(ledger.get_deposit_status(request).await.map(|status| status.into_inner().status == "satisfied_by_guarantee").unwrap_or(false)) }
    })
    .await?;
    let status = app.client.grpc.clone().get_deposit_status(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, status_request)).await?.into_inner();
    assert!(status.satisfied);
    assert_eq!((status.guarantee_no.as_str(), status.guarantee_amount_fen, status.held_fen), ("PICC-2026-0001", REQUIRED_FEN, 0));

    // Another bidder applies and cancels before issue.
    let second = grpc.apply(call(&app, Role::Bidder, CENTRE, &other.uscc, apply("ICBCG", "BID-A", 0))).await?.into_inner();
    let cancel = g::ApplicationRef { centre_id: CENTRE.into(), application_id: second.application_id.clone() };
    assert_eq!(code_of(grpc.cancel_application(call(&app, Role::Bidder, CENTRE, &bidder.uscc, cancel.clone())).await), Code::NotFound);
    assert_eq!(grpc.cancel_application(call(&app, Role::Bidder, CENTRE, &other.uscc, cancel.clone())).await?.into_inner().status, "cancelled");
    assert_eq!(code_of(grpc.cancel_application(call(&app, Role::Bidder, CENTRE, &other.uscc, cancel)).await), Code::FailedPrecondition);

    // Bids are opened (trading.events): the section's guarantees are unsealed.
    trading_event(&app, SECTION, "bids.opened", serde_json::json!({})).await?;
    wait_until("the section to be unsealed", || {
        let mut grpc = grpc.clone();
        let request = call(&app, Role::Operator, CENTRE, "staff", by_section.clone());
        async move { Ok(grpc.list_section_guarantees(request).await.is_ok()) }
    })
    .await?;
    let opened = grpc.list_section_guarantees(call(&app, Role::Operator, CENTRE, "staff", by_section)).await?.into_inner();
    assert_eq!(opened.guarantees.len(), 1);
    let unsealed = &opened.guarantees[0];
    assert_eq!((unsealed.guarantee_no.as_str(), unsealed.bidder_uscc.as_str(), unsealed.status.as_str()), ("PICC-2026-0001", bidder.uscc.as_str(), "unsealed"));
    let checked = grpc.verify_guarantee(call(&app, Role::Operator, CENTRE, "staff", by_bidder)).await?.into_inner();
    assert_eq!((checked.authentic, checked.bidder_uscc.as_str(), checked.status.as_str()), (true, bidder.uscc.as_str(), "unsealed"));
    let checked = grpc.verify_guarantee(call(&app, Role::Operator, CENTRE, "staff", by_number)).await?.into_inner();
    assert_eq!((checked.authentic, checked.section_id.as_str(), checked.amount_fen), (true, SECTION, REQUIRED_FEN));
    assert_eq!(code_of(grpc.verify_guarantee(call(&app, Role::Operator, CENTRE, "staff", unknown)).await), Code::NotFound);
    assert_eq!(grpc.get_application(call(&app, Role::Operator, CENTRE, "staff", application_ref)).await?.into_inner().guarantee_no, "PICC-2026-0001");
    Ok(())
}

#[tokio::test]
async fn suspended_and_exited_issuers_take_no_applications_and_onboarding_can_be_paused() -> anyhow::Result<()> {
    let (app, service) = setup().await?;
    let mut grpc = service.grpc.clone();
    let admin = |message| call(&app, Role::Admin, PROVINCE, "admin", message);
    let key = SigningKey::generate(Scheme::Ed25519);
    grpc.register_issuer(admin(issuer_request("CCBG", g::IssuerKind::Bank, &key))).await?;
    grpc.register_product(call(&app, Role::Admin, PROVINCE, "admin", product("CCBG", "BID-1", "0.0012", 0))).await?;
    let bidder = TestBidder::new(611);
    let state = |state: g::IssuerState| g::SetIssuerStateRequest {
        centre_id: PROVINCE.into(),
        issuer_code: "CCBG".into(),
        state: state as i32,
        reason: "监管通报".into(),
    };
    let eligible = g::ListEligibleProductsRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), r#type: g::GuaranteeType::Bid as i32, amount_fen: 0 };

    grpc.set_issuer_state(call(&app, Role::Admin, PROVINCE, "admin", state(g::IssuerState::Suspended))).await?;
    assert!(grpc.list_eligible_products(call(&app, Role::Bidder, CENTRE, &bidder.uscc, eligible.clone())).await?.into_inner().products.is_empty());
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("CCBG", "BID-1", 0))).await), Code::FailedPrecondition);
    grpc.set_issuer_state(call(&app, Role::Admin, PROVINCE, "admin", state(g::IssuerState::Active))).await?;
    let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("CCBG", "BID-1", 0))).await?.into_inner();

    // An issuer that exits issues nothing more, and cannot come back.
    grpc.set_issuer_state(call(&app, Role::Admin, PROVINCE, "admin", state(g::IssuerState::Exited))).await?;
    assert_eq!(
        code_of(grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "CCBG", issuance(&application, "CCBG-000001", &key))).await),
        Code::FailedPrecondition
    );
    assert_eq!(code_of(grpc.set_issuer_state(call(&app, Role::Admin, PROVINCE, "admin", state(g::IssuerState::Active))).await), Code::FailedPrecondition);
    assert_eq!(code_of(grpc.register_issuer(admin(issuer_request("CCBG", g::IssuerKind::Bank, &key))).await), Code::FailedPrecondition);

    // Onboarding paused: no new issuer; resumed: onboarding works again.
    grpc.set_onboarding_paused(call(&app, Role::Admin, PROVINCE, "admin", g::SetOnboardingPausedRequest { centre_id: PROVINCE.into(), paused: true })).await?;
    assert_eq!(code_of(grpc.register_issuer(admin(issuer_request("NEWG", g::IssuerKind::Guarantor, &key))).await), Code::FailedPrecondition);
    let listed = grpc.list_issuers(call(&app, Role::Bidder, CENTRE, &bidder.uscc, g::ListIssuersRequest { centre_id: PROVINCE.into() })).await?.into_inner();
    assert!(listed.onboarding_paused);
    assert_eq!(listed.issuers.iter().map(|i| (i.issuer_code.as_str(), i.state)).collect::<Vec<_>>(), vec![("CCBG", g::IssuerState::Exited as i32)]);
    grpc.set_onboarding_paused(call(&app, Role::Admin, PROVINCE, "admin", g::SetOnboardingPausedRequest { centre_id: PROVINCE.into(), paused: false })).await?;
    grpc.register_issuer(admin(issuer_request("NEWG", g::IssuerKind::Guarantor, &key))).await?;
    // A closed section takes no applications.
    grpc.register_product(call(&app, Role::Admin, PROVINCE, "admin", product("NEWG", "BID-N", "0.0012", 0))).await?;
    let close = pb::CloseSectionRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), reason: "招标终止".into() };
    app.client.grpc.clone().close_section(app.client.operator(close)).await?;
    let refused = grpc.apply(call(&app, Role::Bidder, CENTRE, &TestBidder::new(612).uscc, apply("NEWG", "BID-N", 0))).await.expect_err("closed");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("closed"), "{}", refused.message());
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.issuer_state_changes WHERE issuer_code = 'CCBG'").fetch_one(&app.pool).await?;
    assert_eq!(changes, 4, "onboarding, suspension, reactivation and exit are each kept");
    Ok(())
}

fn performance_product() -> g::Product {
    g::Product {
        product_id: "PERF-1".into(),
        name: "PICC 履约保函".into(),
        r#type: g::GuaranteeType::Performance as i32,
        ..product("PICC", "PERF-1", "0.0020", 0)
    }
}

async fn issue_for(
    app: &TestApp,
    grpc: &mut GuaranteeServiceClient<Channel>,
    bidder: &TestBidder,
    key: &SigningKey,
    number: &str,
) -> anyhow::Result<g::Guarantee> {
    let application = grpc.apply(call(app, Role::Bidder, CENTRE, &bidder.uscc, apply("PICC", "BID-1", 0))).await?.into_inner();
    Ok(grpc.issue_guarantee(call(app, Role::Issuer, PROVINCE, "PICC", issuance(&application, number, key))).await?.into_inner())
}

async fn status_of(app: &TestApp, grpc: &mut GuaranteeServiceClient<Channel>, number: &str) -> anyhow::Result<String> {
    // Asked as the issuer: it sees its guarantees before bid opening too.
    let request = g::VerifyGuaranteeRequest { centre_id: CENTRE.into(), guarantee_no: number.into(), ..Default::default() };
    Ok(grpc.verify_guarantee(call(app, Role::Issuer, PROVINCE, "PICC", request)).await?.into_inner().status)
}

async fn wait_for_status(app: &TestApp, grpc: &GuaranteeServiceClient<Channel>, number: &str, wanted: &str) -> anyhow::Result<()> {
    wait_until(&format!("{number} to be {wanted}"), || {
        let mut grpc = grpc.clone();
        async move { Ok(status_of(app, &mut grpc, number).await? == wanted) }
    })
    .await
}

#[tokio::test]
async fn claims_release_surrender_expiry_performance_guarantees_fraud_warnings_and_figures() -> anyhow::Result<()> {
    let (app, service) = setup().await?;
    let mut grpc = service.grpc.clone();
    let key = SigningKey::generate(Scheme::Ed25519);
    grpc.register_issuer(call(&app, Role::Admin, PROVINCE, "admin", issuer_request("PICC", g::IssuerKind::Insurer, &key))).await?;
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("PICC", "BID-1", "0.0010", 0))).await?;
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", performance_product())).await?;
    let bidders: Vec<TestBidder> = (621..625).map(TestBidder::new).collect();
    let mut numbers = Vec::new();
    for (index, bidder) in bidders.iter().enumerate() {
        numbers.push(issue_for(&app, &mut grpc, bidder, &key, &format!("PICC-CLM-{index:04}")).await?.guarantee_no);
    }

    // Four firms bought from one issuer for one section within the hour, all from one address.
    let warnings =
        grpc.list_fraud_warnings(call(&app, Role::Supervisor, CENTRE, "s1", g::ListFraudWarningsRequest { centre_id: CENTRE.into() })).await?.into_inner();
    let rules: Vec<(&str, &str)> = warnings.warnings.iter().map(|w| (w.rule.as_str(), w.subject.as_str())).collect();
    assert!(rules.contains(&("firms_per_issuer_section", "PICC/GUAR-1")), "{rules:?}");
    assert!(rules.contains(&("firms_per_ip", "127.0.0.1")), "{rules:?}");
    assert_eq!(
        code_of(grpc.list_fraud_warnings(call(&app, Role::Operator, CENTRE, "o1", g::ListFraudWarningsRequest { centre_id: CENTRE.into() })).await),
        Code::PermissionDenied
    );

    // Another bidder applies and cancels six times in the hour.
    let restless = TestBidder::new(629);
    for _ in 0..6 {
        let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &restless.uscc, apply("PICC", "BID-1", 0))).await?.into_inner();
        grpc.cancel_application(call(
            &app,
            Role::Bidder,
            CENTRE,
            &restless.uscc,
            g::ApplicationRef { centre_id: CENTRE.into(), application_id: application.application_id },
        ))
        .await?;
    }
    // A premium rate raised by 30 %.
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("PICC", "BID-1", "0.0013", 0))).await?;
    let city =
        grpc.list_fraud_warnings(call(&app, Role::Supervisor, CENTRE, "s1", g::ListFraudWarningsRequest { centre_id: CENTRE.into() })).await?.into_inner();
    assert!(city.warnings.iter().any(|w| w.rule == "failed_applications" && w.subject == restless.uscc), "{:?}", city.warnings);
    let province =
        grpc.list_fraud_warnings(call(&app, Role::Admin, PROVINCE, "a1", g::ListFraudWarningsRequest { centre_id: PROVINCE.into() })).await?.into_inner();
    assert!(
        province.warnings.iter().any(|w| w.rule == "premium_swing" && w.subject == "PICC/BID-1" && w.detail.contains("0.001 to 0.0013")),
        "{:?}",
        province.warnings
    );

    // The fourth bidder withdraws before the deadline: its guarantee is surrendered (退保).
    trading_event(&app, SECTION, "bidder.withdrew", serde_json::json!({ "bidder_uscc": bidders[3].uscc })).await?;
    wait_for_status(&app, &grpc, &numbers[3], "surrendered").await?;
    // The ledger no longer counts it for the deposit; the bidder may apply again (and cancels).
    let status_request = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: SECTION.into(), bidder_uscc: bidders[3].uscc.clone() };
    wait_until("the ledger to drop the surrendered guarantee", || {
        let mut ledger = app.client.grpc.clone();
        let request = app.client.as_role(Role::Bidder, CENTRE, &bidders[3].uscc, status_request.clone());
        async move { Ok(ledger.get_deposit_status(request).await.map(|status| status.into_inner().status == "no_money_received").unwrap_or(false)) }
    })
    .await?;
    let again = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[3].uscc, apply("PICC", "BID-1", 0))).await?.into_inner();
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[3].uscc, apply("PICC", "BID-1", 0))).await), Code::AlreadyExists);
    grpc.cancel_application(call(
        &app,
        Role::Bidder,
        CENTRE,
        &bidders[3].uscc,
        g::ApplicationRef { centre_id: CENTRE.into(), application_id: again.application_id },
    ))
    .await?;
    // An application still pending when the bids are opened can no longer be issued.
    let late = grpc.apply(call(&app, Role::Bidder, CENTRE, &TestBidder::new(630).uscc, apply("PICC", "BID-1", 0))).await?.into_inner();

    // Claims wait for bid opening.
    let claim = |number: &str, reason: &str, amount_fen: i64| g::SubmitClaimRequest {
        centre_id: CENTRE.into(),
        guarantee_no: number.into(),
        reason: reason.into(),
        evidence_ref: "筑公资〔2026〕18号".into(),
        amount_fen,
    };
    // Before opening a claim is answered as for an unknown number.
    assert_eq!(code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[0], "refused_to_sign", REQUIRED_FEN))).await), Code::NotFound);
    trading_event(&app, SECTION, "bids.opened", serde_json::json!({})).await?;
    wait_for_status(&app, &grpc, &numbers[0], "unsealed").await?;
    let refused = grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&late, "PICC-LATE-0001", &key))).await.expect_err("after opening");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
    assert_eq!(code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[1], "failed_to_perform", 100))).await), Code::InvalidArgument);
    assert_eq!(
        code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[1], "refused_to_sign", REQUIRED_FEN + 1))).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[3], "refused_to_sign", 100))).await),
        Code::FailedPrecondition
    );

    // Claimed, rejected (back in force), claimed again, accepted, paid.
    let first = grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[0], "refused_to_sign", REQUIRED_FEN))).await?.into_inner();
    assert_eq!(status_of(&app, &mut grpc, &numbers[0]).await?, "claimed");
    assert_eq!(
        code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[0], "refused_to_sign", 100))).await),
        Code::FailedPrecondition
    );
    let decide = |claim_id: &str, accept: bool| g::DecideClaimRequest { centre_id: CENTRE.into(), claim_id: claim_id.into(), accept, reason: "审核".into() };
    assert_eq!(code_of(grpc.decide_claim(call(&app, Role::Issuer, PROVINCE, "OTHER", decide(&first.claim_id, false))).await), Code::NotFound);
    assert_eq!(grpc.decide_claim(call(&app, Role::Issuer, PROVINCE, "PICC", decide(&first.claim_id, false))).await?.into_inner().status, "rejected");
    assert_eq!(status_of(&app, &mut grpc, &numbers[0]).await?, "unsealed");
    let second = grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[0], "refused_to_sign", 3_000_000))).await?.into_inner();
    let payment = |claim_id: &str, paid_fen: i64| g::RecordClaimPaymentRequest {
        centre_id: CENTRE.into(),
        claim_id: claim_id.into(),
        paid_fen,
        payment_serial: "PAY-20261123-1".into(),
    };
    assert_eq!(
        code_of(grpc.record_claim_payment(call(&app, Role::Issuer, PROVINCE, "PICC", payment(&second.claim_id, 3_000_000))).await),
        Code::FailedPrecondition
    );
    grpc.decide_claim(call(&app, Role::Issuer, PROVINCE, "PICC", decide(&second.claim_id, true))).await?;
    assert_eq!(
        code_of(grpc.record_claim_payment(call(&app, Role::Issuer, PROVINCE, "PICC", payment(&second.claim_id, 3_000_001))).await),
        Code::InvalidArgument
    );
    let paid = grpc.record_claim_payment(call(&app, Role::Issuer, PROVINCE, "PICC", payment(&second.claim_id, 3_000_000))).await?.into_inner();
    assert_eq!((paid.status.as_str(), paid.paid_fen), ("paid", 3_000_000));
    assert_eq!(status_of(&app, &mut grpc, &numbers[0]).await?, "paid");
    let claims = grpc
        .list_claims(call(&app, Role::Issuer, PROVINCE, "PICC", g::ListClaimsRequest { centre_id: CENTRE.into(), guarantee_no: String::new() }))
        .await?
        .into_inner();
    assert_eq!(claims.claims.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(), vec!["paid", "rejected"]);

    // The award: only the winner may take a performance guarantee, up to 10 % of the contract.
    trading_event(&app, SECTION, "award.announced", serde_json::json!({ "winner_uscc": bidders[1].uscc })).await?;
    let performance = |amount_fen: i64| g::ApplyRequest {
        r#type: g::GuaranteeType::Performance as i32,
        contract_amount_fen: 40_000_000,
        amount_fen,
        product_id: "PERF-1".into(),
        ..apply("PICC", "PERF-1", 0)
    };
    wait_until("the award to reach the ledger", || {
        let mut grpc = grpc.clone();
        let request = call(&app, Role::Bidder, CENTRE, &bidders[1].uscc, performance(4_000_001));
        async move { Ok(grpc.apply(request).await.err().map(|status| status.code()) == Some(Code::InvalidArgument)) }
    })
    .await?;
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[2].uscc, performance(4_000_000))).await), Code::FailedPrecondition);
    let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[1].uscc, performance(4_000_000))).await?.into_inner();
    assert_eq!((application.r#type, application.premium_fen), (g::GuaranteeType::Performance as i32, 8_000));
    // Signed as a performance guarantee: the canonical text names the type.
    grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&application, "PICC-PERF-0001", &key))).await?;

    // The contract is signed: bid guarantees still in force are released; the paid and the
    // surrendered ones keep their state, a claimed one waits for its claim, and the performance
    // guarantee stays in force.
    let pending = grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim(&numbers[2], "refused_to_sign", 1_000))).await?.into_inner();
    trading_event(&app, SECTION, "contract.signed", serde_json::json!({ "winner_uscc": bidders[1].uscc })).await?;
    wait_for_status(&app, &grpc, &numbers[1], "released").await?;
    assert_eq!(status_of(&app, &mut grpc, &numbers[2]).await?, "claimed");
    grpc.decide_claim(call(&app, Role::Issuer, PROVINCE, "PICC", decide(&pending.claim_id, false))).await?;
    assert_eq!(status_of(&app, &mut grpc, &numbers[2]).await?, "released", "a claim rejected after the contract leaves it released");
    assert_eq!(status_of(&app, &mut grpc, &numbers[0]).await?, "paid");
    assert_eq!(status_of(&app, &mut grpc, &numbers[3]).await?, "surrendered");
    assert_eq!(status_of(&app, &mut grpc, "PICC-PERF-0001").await?, "unsealed");

    // A quality guarantee (质量保函) for the contractor: at most 3 % of the contract amount.
    let quality_product = g::Product {
        product_id: "QUAL-1".into(),
        name: "PICC 质量保函".into(),
        r#type: g::GuaranteeType::Quality as i32,
        ..product("PICC", "QUAL-1", "0.0030", 0)
    };
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", quality_product)).await?;
    let quality = |amount_fen: i64| g::ApplyRequest {
        r#type: g::GuaranteeType::Quality as i32,
        contract_amount_fen: 40_000_000,
        amount_fen,
        ..apply("PICC", "QUAL-1", 0)
    };
    assert_eq!(code_of(grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[1].uscc, quality(1_200_001))).await), Code::InvalidArgument);
    let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidders[1].uscc, quality(1_200_000))).await?.into_inner();
    grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&application, "PICC-QUAL-0001", &key))).await?;
    // A quality guarantee is claimed on for a quality defect, not for a bid's reasons.
    assert_eq!(
        code_of(grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim("PICC-QUAL-0001", "refused_to_sign", 100))).await),
        Code::InvalidArgument
    );
    let defect = grpc.submit_claim(call(&app, Role::Operator, CENTRE, "o1", claim("PICC-QUAL-0001", "quality_defect", 500_000))).await?.into_inner();
    assert_eq!(defect.status, "pending");
    assert_eq!(status_of(&app, &mut grpc, "PICC-QUAL-0001").await?, "claimed");

    // Validity ends: the sweeper expires what is still in force.
    sqlx::query("UPDATE guarantee.guarantees SET valid_to = current_date - 2 WHERE guarantee_no = 'PICC-PERF-0001'").execute(&app.pool).await?;
    let guarantee_pool =
        jinfu_platform::db::connect_and_migrate(&app.settings.database, jinfu_guarantee_service::SCHEMA, &jinfu_guarantee_service::MIGRATOR).await?;
    assert_eq!(jinfu_guarantee_service::lifecycle::expire_once(&guarantee_pool, &app.settings.kafka.topic(jinfu_platform::topics::GUARANTEE_EVENTS)).await?, 1);
    assert_eq!(status_of(&app, &mut grpc, "PICC-PERF-0001").await?, "expired");

    // Figures: four firms, six guarantees, four deposits of 50,000.00 not paid in cash.
    let figures = grpc.get_figures(call(&app, Role::Bidder, CENTRE, &bidders[0].uscc, g::GetFiguresRequest { centre_id: CENTRE.into() })).await?.into_inner();
    let total = figures.total.expect("total");
    assert_eq!((total.firms_served, total.guarantees_issued, total.cash_released_fen, total.premiums_fen), (4, 6, 4 * REQUIRED_FEN, 4 * 5_000 + 8_000 + 3_600));
    let province = grpc.get_figures(call(&app, Role::Admin, PROVINCE, "a1", g::GetFiguresRequest { centre_id: PROVINCE.into() })).await?.into_inner();
    assert_eq!(province.centres.iter().map(|c| c.centre_id.as_str()).collect::<Vec<_>>(), vec![CENTRE]);
    assert_eq!(province.total.expect("total").cash_released_fen, 4 * REQUIRED_FEN);

    // Every step was an event on guarantee.events, in the documented schema.
    wait_until("the outbox to be published", || async {
        Ok(sqlx::query_scalar::<_, i64>("SELECT count(*) FROM guarantee.outbox WHERE published_at IS NULL").fetch_one(&app.pool).await? == 0)
    })
    .await?;
    let published: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.outbox WHERE topic = $1")
        .bind(app.settings.kafka.topic(jinfu_platform::topics::GUARANTEE_EVENTS))
        .fetch_one(&app.pool)
        .await?;
    let validator = schema("guarantee.event.v1.json");
    let mut kinds = std::collections::BTreeSet::new();
    for (payload, _) in read_topic(&app.settings.kafka, jinfu_platform::topics::GUARANTEE_EVENTS, usize::try_from(published)?, Duration::from_secs(30)).await? {
        let event: serde_json::Value = serde_json::from_slice(&payload)?;
        let errors: Vec<String> = validator.iter_errors(&event).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
        kinds.insert(event["type"].as_str().unwrap_or_default().to_owned());
    }
    for kind in [
        "guarantee.issued",
        "guarantee.surrendered",
        "guarantee.claimed",
        "guarantee.claim_rejected",
        "guarantee.claim_accepted",
        "guarantee.claim_paid",
        "guarantee.released",
        "guarantee.expired",
        "guarantee.fraud_warning",
        "guarantee.application_cancelled",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    Ok(())
}

/// One timing measurement: `rounds` verifications of the sealed number and of unknown ones,
/// alternated, by an operator of the centre; each side's times, sorted.
async fn verification_times(app: &TestApp, service: &TestGuarantees, sealed_number: &str, rounds: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut grpc = service.grpc.clone();
    let verify = |number: &str| g::VerifyGuaranteeRequest {
        centre_id: CENTRE.into(),
        guarantee_no: number.into(),
        bidder_uscc: String::new(),
        section_id: String::new(),
    };
    let (mut sealed, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Each side goes first in every other round, so that neither inherits an order effect.
        for sealed_turn in if round % 2 == 0 { [true, false] } else { [false, true] } {
            let number = if sealed_turn { sealed_number.to_owned() } else { format!("PICC-2026-9{round:03}") };
            let started = std::time::Instant::now();
            let answer = grpc.verify_guarantee(call(app, Role::Operator, CENTRE, "staff", verify(&number))).await;
            if sealed_turn { &mut sealed } else { &mut unknown }.push(started.elapsed());
            assert_eq!(code_of(answer), Code::NotFound, "a sealed guarantee is found by staff no more than an unknown number");
        }
    }
    sealed.sort();
    unknown.sort();
    Ok((sealed, unknown))
}

/// The share of `sample` above `other`'s median, in per cent: about half when the two come from
/// one distribution, near 100 when `sample` is slower.
fn share_above_median(sample: &[Duration], other: &[Duration]) -> usize {
    let median = other[other.len() / 2];
    sample.iter().filter(|time| **time > median).count() * 100 / sample.len()
}

fn summary(times: &[Duration]) -> String {
    format!("median {:?}, p90 {:?}", times[times.len() / 2], times[times.len() * 9 / 10])
}

#[tokio::test]
async fn verifying_a_sealed_guarantee_takes_as_long_as_verifying_a_number_that_does_not_exist() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = chrono::Utc::now();
    app.client.create_section(SECTION, REQUIRED_FEN, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    // One sealing key, two services: with the floor (the default, 50 ms) and without it.
    let settings = jinfu_e2e::guarantee_settings(&app);
    let service = jinfu_e2e::spawn_guarantees_with(settings.clone()).await?;
    let mut unpadded_settings = settings;
    unpadded_settings.sealing.answer_floor_ms = 0;
    let unpadded = jinfu_e2e::spawn_guarantees_with(unpadded_settings).await?;
    let mut grpc = service.grpc.clone();
    let picc = SigningKey::generate(Scheme::Ed25519);
    grpc.register_issuer(call(&app, Role::Admin, PROVINCE, "admin", issuer_request("PICC", g::IssuerKind::Insurer, &picc))).await?;
    grpc.register_product(call(&app, Role::Issuer, PROVINCE, "PICC", product("PICC", "BID-1", "0.0010", 0))).await?;
    let bidder = TestBidder::new(611);
    let application = grpc.apply(call(&app, Role::Bidder, CENTRE, &bidder.uscc, apply("PICC", "BID-1", 0))).await?.into_inner();
    grpc.issue_guarantee(call(&app, Role::Issuer, PROVINCE, "PICC", issuance(&application, "PICC-2026-0101", &picc))).await?;

    // Without the floor, for comparison (printed, not asserted: what an attacker measured before
    // the fix).
    let (sealed, unknown) = verification_times(&app, &unpadded, "PICC-2026-0101", 40).await?;
    println!(
        "without the floor: sealed {}, unknown {}; sealed above the unknown median: {} %",
        summary(&sealed),
        summary(&unknown),
        share_above_median(&sealed, &unknown)
    );

    let (sealed, unknown) = verification_times(&app, &service, "PICC-2026-0101", 40).await?;
    let (sealed_share, unknown_share) = (share_above_median(&sealed, &unknown), share_above_median(&unknown, &sealed));
    println!(
        "with the 50 ms floor: sealed {}, unknown {}; sealed above the unknown median: {} %, unknown above the sealed median: {} %",
        summary(&sealed),
        summary(&unknown),
        sealed_share,
        unknown_share
    );
    assert!(unknown[0] >= Duration::from_millis(50) && sealed[0] >= Duration::from_millis(50), "every answer waits for the floor");
    // One distribution, as far as a caller can tell: medians within a millisecond (the timer's
    // resolution), and each side's samples on both sides of the other's median (without the
    // floor, every sealed sample is above the unknown median, and the medians 1-2 ms apart).
    let apart = sealed[20].abs_diff(unknown[20]);
    assert!(apart < Duration::from_millis(1), "medians {:?} apart", apart);
    assert!((10..=90).contains(&sealed_share) && (10..=90).contains(&unknown_share), "the two answers can be told apart by time");
    Ok(())
}
