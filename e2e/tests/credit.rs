//! The credit service against a real PostgreSQL: a ban ends at its exact instant (Beijing
//! time), scope, due process (the proposer never confirms), repair, and signed receipts.

use chrono::{DateTime, Utc};
use jinfu_e2e::credit::{spawn_credit, TestCredit, CREDIT_KEY_REF};
use jinfu_e2e::{TestApp, TestBidder};
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::credit::v1 as pb;
use tonic::Code;

fn beijing(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{text}+08:00")).expect("a Beijing time").with_timezone(&Utc)
}

fn at(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 })
}

/// An operator's proposal and a supervisor's confirmation, in `centre`; returns the record.
async fn record(
    credit: &TestCredit,
    centre: &str,
    id: &str,
    subject: &str,
    behaviour: pb::Behaviour,
    months: u32,
    province_wide: bool,
) -> anyhow::Result<pb::Record> {
    let proposal = pb::ProposeRequest {
        centre_id: centre.into(),
        proposal_id: id.into(),
        subject_uscc: subject.into(),
        behaviour: behaviour as i32,
        source: "ledger:collusion_lead".into(),
        evidence_refs: vec![format!("lead-{id}")],
        summary: "同一账户为多家投标人缴纳保证金".into(),
        regime: pb::Regime::Unspecified as i32,
    };
    credit.grpc.clone().propose(credit.as_role(Role::Operator, centre, "operator-1", proposal)).await?;
    let confirm = pb::ConfirmRequest {
        centre_id: centre.into(),
        proposal_id: id.into(),
        legal_basis: "政府采购法 art. 77".into(),
        authority: "贵州省财政厅".into(),
        decided_on: "2026-03-01".into(),
        debarment_months: months,
        debarred_from: None,
        fine_fen: 0,
        province_wide,
    };
    Ok(credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, centre, "supervisor-1", confirm)).await?.into_inner())
}

async fn eligible(credit: &TestCredit, centre: &str, subject: &str, when: DateTime<Utc>) -> anyhow::Result<pb::Eligibility> {
    let request = pb::CheckEligibilityRequest { centre_id: centre.into(), subject_uscc: subject.into(), regime: pb::Regime::Procurement as i32, at: at(when) };
    Ok(credit.grpc.clone().check_eligibility(credit.as_role(Role::Issuer, centre, "CCBG", request)).await?.into_inner())
}

#[tokio::test]
async fn a_ban_holds_from_its_first_instant_and_ends_at_its_exact_instant_in_beijing_time() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-02T10:00:00")).await?;
    let subject = TestBidder::new(301).uscc;
    let record = record(&credit, "520100", "P-1", &subject, pb::Behaviour::FalseMaterials, 12, false).await?;
    assert_eq!((record.kind.as_str(), record.debarred_now), ("blacklist", true));
    // Decided 1 March 2026: from 00:00 that day (Beijing) for 12 months.
    assert!(eligible(&credit, "520100", &subject, beijing("2026-02-28T23:59:59")).await?.eligible);
    assert!(!eligible(&credit, "520100", &subject, beijing("2026-03-01T00:00:00")).await?.eligible);
    assert!(!eligible(&credit, "520100", &subject, beijing("2027-02-28T23:59:59")).await?.eligible);
    assert!(eligible(&credit, "520100", &subject, beijing("2027-03-01T00:00:00")).await?.eligible, "an expired ban stops blocking by itself");
    // Outside the law's bounds: refused, nothing stored.
    let mut outside = pb::ConfirmRequest {
        centre_id: "520100".into(),
        proposal_id: "P-2".into(),
        legal_basis: "招标投标法实施条例 art. 67".into(),
        authority: "贵阳市住建局".into(),
        decided_on: "2026-03-01".into(),
        debarment_months: 37,
        ..Default::default()
    };
    let proposal = pb::ProposeRequest {
        centre_id: "520100".into(),
        proposal_id: "P-2".into(),
        subject_uscc: subject.clone(),
        behaviour: pb::Behaviour::Bribery as i32,
        source: "operator".into(),
        evidence_refs: vec!["doc-2".into()],
        summary: "行贿".into(),
        regime: 0,
    };
    credit.grpc.clone().propose(credit.as_role(Role::Operator, "520100", "operator-1", proposal)).await?;
    let refused = credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520100", "supervisor-1", outside.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("period_out_of_bounds:"), "{}", refused.message());
    outside.debarment_months = 36;
    credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520100", "supervisor-1", outside)).await?;
    credit.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_province_ban_blocks_every_centre_of_the_province_and_a_centre_ban_only_its_own() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-02T10:00:00")).await?;
    let (province_banned, city_banned) = (TestBidder::new(311).uscc, TestBidder::new(312).uscc);
    record(&credit, "520000", "P-P", &province_banned, pb::Behaviour::Collusion, 24, true).await?;
    record(&credit, "520100", "P-C", &city_banned, pb::Behaviour::Collusion, 24, false).await?;
    let now = beijing("2026-06-01T09:00:00");
    for centre in ["520000", "520100", "520300"] {
        assert!(!eligible(&credit, centre, &province_banned, now).await?.eligible, "the province ban reaches {centre}");
    }
    assert!(!eligible(&credit, "520100", &city_banned, now).await?.eligible);
    assert!(eligible(&credit, "520300", &city_banned, now).await?.eligible, "a centre's ban stays in its centre");
    // A province-wide record needs a province centre.
    let proposal = pb::ProposeRequest {
        centre_id: "520300".into(),
        proposal_id: "P-X".into(),
        subject_uscc: city_banned.clone(),
        behaviour: pb::Behaviour::Collusion as i32,
        source: "operator".into(),
        evidence_refs: vec!["x".into()],
        summary: "串通投标".into(),
        regime: 0,
    };
    credit.grpc.clone().propose(credit.as_role(Role::Operator, "520300", "operator-3", proposal)).await?;
    let confirm = pb::ConfirmRequest {
        centre_id: "520300".into(),
        proposal_id: "P-X".into(),
        legal_basis: "b".into(),
        authority: "a".into(),
        decided_on: "2026-03-01".into(),
        debarment_months: 12,
        province_wide: true,
        ..Default::default()
    };
    let refused = credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520300", "supervisor-3", confirm)).await.unwrap_err();
    assert!(refused.message().starts_with("not_province:"), "{}", refused.message());
    Ok(())
}

#[tokio::test]
async fn the_proposer_never_decides_and_a_decided_proposal_stays_decided() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-02T10:00:00")).await?;
    let subject = TestBidder::new(321).uscc;
    let proposal = pb::ProposeRequest {
        centre_id: "520100".into(),
        proposal_id: "P-D".into(),
        subject_uscc: subject.clone(),
        behaviour: pb::Behaviour::GuaranteeFraud as i32,
        source: "guarantee:forged_issuance".into(),
        evidence_refs: vec!["CCBG-2026-0001".into()],
        summary: "伪造保函".into(),
        regime: 0,
    };
    // The same person as admin proposes and as supervisor tries to confirm.
    credit.grpc.clone().propose(credit.as_role(Role::Admin, "520100", "zhang-san", proposal.clone())).await?;
    let confirm = pb::ConfirmRequest {
        centre_id: "520100".into(),
        proposal_id: "P-D".into(),
        legal_basis: "政府采购法 art. 77".into(),
        authority: "贵阳市财政局".into(),
        decided_on: "2026-03-01".into(),
        debarment_months: 12,
        ..Default::default()
    };
    let refused = credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520100", "zhang-san", confirm.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().starts_with("proposer_is_confirmer:"), "{}", refused.message());
    // A proposal is never a ban.
    assert!(eligible(&credit, "520100", &subject, beijing("2026-03-05T10:00:00")).await?.eligible);
    let dismissed = credit
        .grpc
        .clone()
        .dismiss(credit.as_role(
            Role::Supervisor,
            "520100",
            "li-si",
            pb::DismissRequest { centre_id: "520100".into(), proposal_id: "P-D".into(), reason: "保函经核验为真".into() },
        ))
        .await?
        .into_inner();
    assert_eq!(dismissed.status, "dismissed");
    let refused = credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520100", "li-si", confirm)).await.unwrap_err();
    assert!(refused.message().starts_with("not_pending:"), "{}", refused.message());
    // The same proposal again returns it; other content under its id is refused.
    assert_eq!(credit.grpc.clone().propose(credit.as_role(Role::Admin, "520100", "zhang-san", proposal.clone())).await?.into_inner().status, "dismissed");
    let other = pb::ProposeRequest { summary: "另一事实".into(), ..proposal };
    assert_eq!(credit.grpc.clone().propose(credit.as_role(Role::Admin, "520100", "zhang-san", other)).await.unwrap_err().code(), Code::AlreadyExists);
    credit.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn repair_after_the_minimum_publication_period_ends_sharing_and_keeps_the_trail() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-02T10:00:00")).await?;
    let subject = TestBidder::new(331).uscc;
    let record = record(&credit, "520100", "P-R", &subject, pb::Behaviour::NonPerformance, 24, false).await?;
    let apply = pb::RepairRequest { centre_id: "520100".into(), record_id: record.record_id.clone(), reason: "已全额履约并赔偿损失".into() };
    let refused = credit.grpc.clone().apply_for_repair(credit.as_role(Role::Supplier, "520100", &subject, apply.clone())).await.unwrap_err();
    assert!(refused.message().starts_with("too_early:"), "{}", refused.message());
    // Another supplier cannot even see it.
    let stranger = TestBidder::new(332).uscc;
    assert_eq!(
        credit.grpc.clone().apply_for_repair(credit.as_role(Role::Supplier, "520100", &stranger, apply.clone())).await.unwrap_err().code(),
        Code::NotFound
    );
    credit.clock.set(beijing("2026-06-02T10:00:00"));
    let applied = credit.grpc.clone().apply_for_repair(credit.as_role(Role::Supplier, "520100", &subject, apply)).await?.into_inner();
    assert_eq!(applied.repair, "applied");
    assert!(!eligible(&credit, "520100", &subject, beijing("2026-06-02T10:00:00")).await?.eligible, "applying changes nothing");
    let decide = pb::DecideRepairRequest { centre_id: "520100".into(), record_id: record.record_id.clone(), approve: true, reason: "整改到位".into() };
    let repaired = credit.grpc.clone().decide_repair(credit.as_role(Role::Supervisor, "520100", "supervisor-1", decide)).await?.into_inner();
    assert_eq!(repaired.repair, "approved");
    assert!(eligible(&credit, "520100", &subject, beijing("2026-06-02T10:00:01")).await?.eligible, "a repaired record is no longer shared");
    let own = credit
        .grpc
        .clone()
        .list_records(credit.as_role(Role::Supplier, "520100", &subject, pb::ListRecordsRequest { centre_id: "520100".into(), subject_uscc: String::new() }))
        .await?
        .into_inner();
    assert_eq!(own.records.len(), 1, "the record and its trail stay");
    credit.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_receipt_verifies_with_the_services_key_and_an_altered_one_does_not() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-02T10:00:00")).await?;
    let subject = TestBidder::new(341).uscc;
    let record = record(&credit, "520100", "P-S", &subject, pb::Behaviour::RefusingToSign, 12, false).await?;
    let answer = eligible(&credit, "520100", &subject, beijing("2026-04-01T10:00:00")).await?;
    assert!(!answer.eligible);
    assert_eq!(answer.barring.iter().map(|barring| barring.record_id.as_str()).collect::<Vec<_>>(), vec![record.record_id.as_str()]);
    assert_eq!(answer.receipt_key_ref, CREDIT_KEY_REF);
    assert!(answer.receipt.contains(&format!("subject_uscc={subject}\n")) && answer.receipt.contains("eligible=false\n"), "{}", answer.receipt);
    let key = VerifyingKey::from_hex(Scheme::Ed25519, &credit.key.public_key_hex())?;
    assert!(key.verify(answer.receipt.as_bytes(), &answer.receipt_signature).is_ok());
    let forged = answer.receipt.replace("eligible=false", "eligible=true");
    assert!(key.verify(forged.as_bytes(), &answer.receipt_signature).is_err());
    Ok(())
}

#[tokio::test]
async fn the_guarantee_service_refuses_an_application_from_a_debarred_bidder() -> anyhow::Result<()> {
    use jinfu_proto::guarantee::v1 as g;
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("CR-1", 5_000_000, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let credit = spawn_credit(&app, now).await?;
    let mut settings = jinfu_e2e::guarantee_settings(&app);
    settings.credit = Some(jinfu_guarantee_service::settings::CreditSettings { endpoint: credit.endpoint.clone() });
    let guarantees = jinfu_e2e::spawn_guarantees_with(settings).await?;
    let mut grpc = guarantees.grpc.clone();
    let key = jinfu_platform::signing::SigningKey::generate(Scheme::Ed25519);
    let issuer = g::RegisterIssuerRequest {
        centre_id: "520000".into(),
        issuer_code: "PICC".into(),
        name: "PICC 保函".into(),
        kind: g::IssuerKind::Insurer as i32,
        scheme: g::SignatureScheme::Ed25519 as i32,
        public_key: key.public_key_hex(),
    };
    grpc.register_issuer(app.client.as_role(Role::Admin, "520000", "admin", issuer)).await?;
    let product = g::Product {
        centre_id: "520000".into(),
        issuer_code: "PICC".into(),
        product_id: "BID-1".into(),
        name: "投标保函".into(),
        r#type: g::GuaranteeType::Bid as i32,
        premium_rate: "0.0010".into(),
        minimum_premium_fen: 0,
        minimum_amount_fen: 100,
        maximum_amount_fen: 1_000_000_000,
        centres: vec![],
        regimes: vec![],
    };
    grpc.register_product(app.client.as_role(Role::Issuer, "520000", "PICC", product)).await?;
    let (barred, clean) = (TestBidder::new(351), TestBidder::new(352));
    // Debarred province-wide from the start of today (Beijing) for a year.
    let today = jinfu_ledger::beijing::date(now).to_string();
    let proposal = pb::ProposeRequest {
        centre_id: "520000".into(),
        proposal_id: "P-G".into(),
        subject_uscc: barred.uscc.clone(),
        behaviour: pb::Behaviour::FalseMaterials as i32,
        source: "operator".into(),
        evidence_refs: vec!["黔财采〔2026〕1号".into()],
        summary: "提供虚假材料谋取中标".into(),
        regime: 0,
    };
    credit.grpc.clone().propose(credit.as_role(Role::Operator, "520000", "operator-p", proposal)).await?;
    let confirm = pb::ConfirmRequest {
        centre_id: "520000".into(),
        proposal_id: "P-G".into(),
        legal_basis: "政府采购法 art. 77".into(),
        authority: "贵州省财政厅".into(),
        decided_on: today,
        debarment_months: 12,
        province_wide: true,
        ..Default::default()
    };
    credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520000", "supervisor-p", confirm)).await?;
    let apply = |bidder: &TestBidder| {
        let request = g::ApplyRequest {
            centre_id: "520100".into(),
            section_id: "CR-1".into(),
            issuer_code: "PICC".into(),
            product_id: "BID-1".into(),
            beneficiary: "贵阳市某采购人".into(),
            valid_to: (now + chrono::Duration::days(90)).format("%Y-%m-%d").to_string(),
            amount_fen: 0,
            ..Default::default()
        };
        app.client.as_role(Role::Bidder, "520100", &bidder.uscc, request)
    };
    let refused = grpc.apply(apply(&barred)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().starts_with("barred:") && refused.message().contains("政府采购法 art. 77"), "{}", refused.message());
    let applications: i64 = sqlx::query_scalar("SELECT count(*) FROM guarantee.applications").fetch_one(&app.pool).await?;
    assert_eq!(applications, 0, "nothing stored for the debarred bidder");
    grpc.apply(apply(&clean)).await?;
    Ok(())
}

/// The pending proposals of the test centre, as a supervisor lists them.
async fn pending(credit: &TestCredit) -> anyhow::Result<Vec<pb::Proposal>> {
    let request = pb::ListProposalsRequest { centre_id: "520100".into(), status: "pending".into() };
    Ok(credit.grpc.clone().list_proposals(credit.as_role(Role::Supervisor, "520100", "supervisor-1", request)).await?.into_inner().proposals)
}

#[tokio::test]
async fn a_supplier_that_did_not_sign_and_a_purchaser_that_paid_late_become_proposals_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let credit = spawn_credit(&app, beijing("2026-03-20T10:00:00")).await?;
    let (supplier, purchaser) = (TestBidder::new(771).uscc, TestBidder::new(772).uscc);
    let breach = serde_json::json!({
        "clock": "signing", "section_id": "FC-1", "contract_id": "HT-FC-1", "due_on": "2026-03-05", "parties": "supplier",
        "supplier_uscc": supplier, "purchaser_uscc": purchaser, "detail": null,
    });
    let both_late = serde_json::json!({
        "clock": "signing", "section_id": "FC-2", "contract_id": "HT-FC-2", "due_on": "2026-03-05", "parties": "purchaser,supplier",
        "supplier_uscc": supplier, "purchaser_uscc": purchaser, "detail": null,
    });
    let overdue = serde_json::json!({
        "invoice_no": "26522000000000000771", "contract_id": "HT-FC-1", "due_on": "2026-03-16", "due_by": "contract", "outstanding": "30000.00",
        "purchaser_uscc": purchaser, "supplier_uscc": supplier, "interest_so_far": "15.00",
    });
    for (kind, data) in [("contract.deadline_breached", &breach), ("contract.deadline_breached", &both_late), ("payment.overdue", &overdue)] {
        jinfu_e2e::publish_contract_event(&app, kind, "520100", data.clone()).await?;
    }
    // The same facts told again (new event ids): proposed once.
    jinfu_e2e::publish_contract_event(&app, "contract.deadline_breached", "520100", breach).await?;
    jinfu_e2e::publish_contract_event(&app, "payment.overdue", "520100", overdue).await?;
    jinfu_e2e::wait_until("the five records to be consumed", || async {
        Ok(jinfu_e2e::topic_records_done(&app, "credit", jinfu_platform::topics::CONTRACT_EVENTS).await? >= 5)
    })
    .await?;
    let mut proposals = pending(&credit).await?;
    proposals.sort_by(|a, b| a.proposal_id.cmp(&b.proposal_id));
    let summary: Vec<(&str, &str, i32, &str)> =
        proposals.iter().map(|p| (p.proposal_id.as_str(), p.subject_uscc.as_str(), p.behaviour, p.proposed_by.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("contract:late_payment:26522000000000000771", purchaser.as_str(), pb::Behaviour::LatePayment as i32, "jinfu-contract"),
            ("contract:refusing_to_sign:HT-FC-1", supplier.as_str(), pb::Behaviour::RefusingToSign as i32, "jinfu-contract"),
        ],
        "both late to sign proposes nothing: it is not the supplier's refusal alone"
    );
    // A supervisor decides: a year's ban for refusing to sign.
    let confirm = pb::ConfirmRequest {
        centre_id: "520100".into(),
        proposal_id: "contract:refusing_to_sign:HT-FC-1".into(),
        legal_basis: "政府采购法实施条例 art. 72".into(),
        authority: "贵阳市财政局".into(),
        decided_on: "2026-03-20".into(),
        debarment_months: 12,
        debarred_from: None,
        fine_fen: 0,
        province_wide: false,
    };
    credit.grpc.clone().confirm(credit.as_role(Role::Supervisor, "520100", "supervisor-1", confirm)).await?;
    assert!(!eligible(&credit, "520100", &supplier, beijing("2026-03-21T10:00:00")).await?.eligible);
    credit.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_collusion_lead_becomes_a_proposal_for_each_bidder_once_the_bids_are_opened() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let credit = spawn_credit(&app, chrono::Utc::now()).await?;
    let deadline = chrono::Utc::now() - chrono::Duration::hours(2);
    app.client.create_section("CL-1", 1_000_000, deadline, chrono::Utc::now() + chrono::Duration::days(1), false).await?;
    let (first, second) = (TestBidder::new(781), TestBidder::new(782));
    let first_account = app.client.open_sub_account("CL-1", &first).await?;
    let second_account = app.client.open_sub_account("CL-1", &second).await?;
    let before_deadline = (deadline - chrono::Duration::hours(1)).with_timezone(&jinfu_ledger::beijing::offset());
    let mut own = jinfu_e2e::icbc_notice(&app.banks, "CL-A", &first_account, &first, "10000.00");
    own.value_time = before_deadline;
    let mut for_other = jinfu_e2e::icbc_notice(&app.banks, "CL-B", &second_account, &second, "10000.00");
    for_other.payer_account = first.basic_account.clone();
    for_other.value_time = before_deadline;
    app.send(&[jinfu_e2e::sign_icbc(&app.banks, &own), jinfu_e2e::sign_icbc(&app.banks, &for_other)]).await?;
    app.wait_for_records(2).await?;
    let raised: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.collusion_leads").fetch_one(&app.pool).await?;
    assert_eq!(raised, 1);
    // Sealed: the lead is not on ledger.events, so nothing reaches the credit service.
    let published: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.collusion_leads WHERE published_at IS NOT NULL").fetch_one(&app.pool).await?;
    assert_eq!(published, 0);
    jinfu_e2e::open_bids(&app, "CL-1", chrono::Utc::now()).await?;
    jinfu_e2e::wait_until("a proposal for each bidder of the lead", || async { Ok(pending(&credit).await?.len() == 2) }).await?;
    let proposals = pending(&credit).await?;
    let mut subjects: Vec<&str> = proposals.iter().map(|p| p.subject_uscc.as_str()).collect();
    subjects.sort();
    let mut expected = vec![first.uscc.as_str(), second.uscc.as_str()];
    expected.sort();
    assert_eq!(subjects, expected);
    assert!(proposals.iter().all(|p| p.behaviour == pb::Behaviour::Collusion as i32 && p.proposed_by == "jinfu-ledger" && p.source == "ledger:collusion_lead"));
    credit.assert_events_match_schema().await?;
    Ok(())
}
