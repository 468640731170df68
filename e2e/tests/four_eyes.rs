//! Four eyes on refund corrections against the real ledger: the supervisor who approves must
//! not be the operator who verified, and "the same" is decided as the identity provider
//! decides it — `OP-A1` and ` op-a1 ` are one person.

use std::time::Duration;

use chrono::Utc;
use jinfu_e2e::*;
use jinfu_platform::auth::Role;
use jinfu_proto::ledger::v1 as pb;
use serde_json::json;

/// A section whose bids are opened, with two bidders who each paid 50,000.00 yuan; the award
/// goes to the first, and the second's refund fails at the bank. Returns the loser.
async fn a_failed_refund(app: &TestApp, section: &str) -> anyhow::Result<TestBidder> {
    let now = Utc::now();
    app.client.create_section(section, 5_000_000, now - chrono::Duration::days(20), now - chrono::Duration::days(19), true).await?;
    let mut bidders = pay_bidders(app, section, 2, 701).await?;
    let award = pb::SubmitTenderEventRequest {
        event_id: format!("award-{section}"),
        centre_id: CENTRE.into(),
        section_id: section.into(),
        r#type: "award.announced".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        data_json: json!({ "winner_uscc": bidders[0].uscc }).to_string(),
    };
    app.client.grpc.clone().submit_tender_event(app.client.operator(award)).await?;
    let orders = read_topic(&app.settings.kafka, "bank.payment-orders", 1, Duration::from_secs(60)).await?;
    let order: serde_json::Value = serde_json::from_slice(&orders[0].0)?;
    bank_result(app, order["order_id"].as_str().unwrap_or_default(), "F1", "failed").await?;
    let loser = bidders.remove(1);
    wait_until("the refund to fail", || async {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM ledger.refunds WHERE section_id = $1 AND bidder_uscc = $2")
            .bind(section)
            .bind(&loser.uscc)
            .fetch_optional(&app.pool)
            .await?;
        Ok(status.as_deref() == Some("failed"))
    })
    .await?;
    Ok(loser)
}

#[tokio::test]
async fn the_same_person_in_another_case_cannot_both_verify_and_approve_a_correction() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    sqlx::query("UPDATE ledger.centres SET refund_hold_working_days = 0").execute(&app.pool).await?;
    let loser = a_failed_refund(&app, "FOUR-EYES").await?;

    let correction = pb::SubmitRefundCorrectionRequest {
        centre_id: CENTRE.into(),
        section_id: "FOUR-EYES".into(),
        bidder_uscc: loser.uscc.clone(),
        payee_account: "6217000099997777".into(),
        payee_name: loser.name.clone(),
    };
    let submitted = app.client.grpc.clone().submit_refund_correction(app.client.as_role(Role::Bidder, CENTRE, &loser.uscc, correction)).await?.into_inner();
    let decision = pb::RefundCorrectionDecision { centre_id: CENTRE.into(), correction_id: submitted.correction_id };
    let verified = app.client.grpc.clone().verify_refund_correction(app.client.as_role(Role::Operator, CENTRE, "OP-A1", decision.clone())).await?.into_inner();
    assert_eq!(verified.status, "verified");

    for same_person in ["op-a1", " Op-A1 ", "OP-A1"] {
        let refused = app
            .client
            .grpc
            .clone()
            .approve_refund_correction(app.client.as_role(Role::Supervisor, CENTRE, same_person, decision.clone()))
            .await
            .expect_err("the verifier may not approve");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{same_person:?}: {refused:?}");
    }

    let approved = app.client.grpc.clone().approve_refund_correction(app.client.as_role(Role::Supervisor, CENTRE, "sup-b2", decision)).await?.into_inner();
    assert_eq!((approved.status.as_str(), approved.approved_by.as_str()), ("approved", "sup-b2"));
    Ok(())
}
