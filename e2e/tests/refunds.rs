//! The deposit lifecycle against a real PostgreSQL and broker: tender events trigger refunds,
//! the ledger orders them with interest as signed payment orders, bank results settle them.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;

use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use serde_json::json;

async fn refund_statuses(app: &TestApp, section: &str) -> anyhow::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT bidder_uscc, status FROM ledger.refunds WHERE section_id = $1").bind(section).fetch_all(&app.pool).await?;
    Ok(rows.into_iter().collect())
}

#[tokio::test]
async fn an_award_refunds_the_losers_fifty_thousand_yuan_held_thirty_days_at_0_10_percent_earns_4_17_yuan() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    sqlx::query("UPDATE ledger.centres SET refund_hold_working_days = 0").execute(&app.pool).await?;
    let bidders = paid_section(&app, "AWARD", 3, 301).await?;
    let (winner, paid_back, bounced) = (&bidders[0], &bidders[1], &bidders[2]);

    trading_event(&app, "AWARD", "award.announced", json!({ "winner_uscc": winner.uscc })).await?;
    let orders = read_topic(&app.settings.kafka, "bank.payment-orders", 2, Duration::from_secs(60)).await?;
    let platform = VerifyingKey::from_hex(Scheme::Ed25519, &app.banks.platform.public_key_hex())?;
    let mut order_ids: HashMap<String, String> = HashMap::new();
    for (value, headers) in &orders {
        let signature = String::from_utf8(headers["jinfu-signature"].clone())?;
        platform.verify(value, &signature).map_err(|e| anyhow::anyhow!("payment order signature: {e}"))?;
        let order: serde_json::Value = serde_json::from_slice(value)?;
        // 5,000,000 fen × 0.0010 × 30 / 360 = 416.67 fen → 417 fen.
        assert_eq!(order["principal"], "50000.00");
        assert_eq!(order["interest"], "4.17");
        assert_eq!(order["amount"], "50004.17");
        assert_eq!(order["bank"], "ICBC");
        let payee = order["payee_account"].as_str().unwrap_or_default().to_owned();
        order_ids.insert(payee, order["order_id"].as_str().unwrap_or_default().to_owned());
    }
    assert!(!order_ids.contains_key(&winner.basic_account), "the winner is not refunded at the award");
    assert_eq!(refund_statuses(&app, "AWARD").await?.get(&paid_back.uscc).map(String::as_str), Some("ordered"));
    assert_eq!(balance(&app, "refund-in-transit").await?, 2 * 5_000_417);

    // One order paid (and its result delivered twice), the other bounced.
    bank_result(&app, &order_ids[&paid_back.basic_account], "R1", "succeeded").await?;
    bank_result(&app, &order_ids[&paid_back.basic_account], "R1", "succeeded").await?;
    bank_result(&app, &order_ids[&bounced.basic_account], "R2", "failed").await?;
    wait_until("both results", || async {
        let statuses = refund_statuses(&app, "AWARD").await?;
        Ok(statuses.get(&paid_back.uscc).map(String::as_str) == Some("settled") && statuses.get(&bounced.uscc).map(String::as_str) == Some("failed"))
    })
    .await?;
    wait_until("the duplicate result", || async {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.payment_results").fetch_one(&app.pool).await?;
        Ok(count == 3)
    })
    .await?;

    assert_eq!(balance(&app, &format!("deposit:AWARD:{}", paid_back.uscc)).await?, 0);
    assert_eq!(balance(&app, &format!("deposit:AWARD:{}", bounced.uscc)).await?, 5_000_000, "a failed refund puts the money back");
    assert_eq!(balance(&app, &format!("deposit:AWARD:{}", winner.uscc)).await?, 5_000_000);
    assert_eq!(balance(&app, "refund-in-transit").await?, 0);
    assert_eq!(balance(&app, "interest-expense").await?, 417, "only the paid refund's interest is spent");
    assert_eq!(balance(&app, &format!("bank:ICBC:{ICBC_ACCOUNT}")).await?, 3 * 5_000_000 - 5_000_417, "the duplicate result moved nothing");

    // The contract is signed: the winner is refunded too.
    trading_event(&app, "AWARD", "contract.signed", json!({ "winner_uscc": winner.uscc })).await?;
    wait_until("the winner's order", || async { Ok(refund_statuses(&app, "AWARD").await?.get(&winner.uscc).map(String::as_str) == Some("ordered")) }).await?;
    let result = verify::verify(&app.pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    Ok(())
}

#[tokio::test]
async fn a_deposit_marked_for_forfeiture_before_its_refund_is_ordered_is_forfeited() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    // The default hold of one working day gives the operator time to mark forfeiture.
    let bidders = paid_section(&app, "FORFEIT", 2, 401).await?;
    let (kept, forfeited) = (&bidders[0], &bidders[1]);
    trading_event(&app, "FORFEIT", "bidder.withdrew", json!({ "bidder_uscc": forfeited.uscc })).await?;
    trading_event(
        &app,
        "FORFEIT",
        "deposit.forfeiture_marked",
        json!({
            "bidder_uscc": forfeited.uscc, "reason": "开标后撤销投标文件", "evidence_ref": "GZ-EVID-2026-001",
        }),
    )
    .await?;
    trading_event(&app, "FORFEIT", "tender.failed", json!({})).await?;
    wait_until("two scheduled refunds", || async { Ok(refund_statuses(&app, "FORFEIT").await?.len() == 2) }).await?;
    let due: Vec<(String, chrono::NaiveDate, String)> =
        sqlx::query_as("SELECT bidder_uscc, due_on, trigger FROM ledger.refunds WHERE section_id = 'FORFEIT'").fetch_all(&app.pool).await?;
    for (_, due_on, trigger) in &due {
        assert_eq!(trigger, "failed_tender", "a withdrawal after the deadline triggers nothing");
        assert!(*due_on > Utc::now().date_naive());
    }
    // Let the hold pass.
    sqlx::query("UPDATE ledger.refunds SET order_after = now() WHERE section_id = 'FORFEIT'").execute(&app.pool).await?;
    wait_until("forfeiture and order", || async {
        let statuses = refund_statuses(&app, "FORFEIT").await?;
        Ok(statuses.get(&forfeited.uscc).map(String::as_str) == Some("forfeited") && statuses.get(&kept.uscc).map(String::as_str) == Some("ordered"))
    })
    .await?;
    assert_eq!(balance(&app, "forfeited:FORFEIT").await?, 5_000_000);
    assert_eq!(balance(&app, &format!("deposit:FORFEIT:{}", forfeited.uscc)).await?, 0);

    let unknown = trading_event(&app, "NO-SUCH-SECTION", "award.announced", json!({ "winner_uscc": kept.uscc })).await?;
    let dead = read_topic(&app.settings.kafka, "trading.events.dlq", 1, Duration::from_secs(30)).await?;
    assert!(String::from_utf8_lossy(&dead[0].1["jinfu-dlq-reason"]).starts_with("unknown_section"), "{unknown}");
    let result = verify::verify(&app.pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    Ok(())
}

#[tokio::test]
async fn a_failed_refund_is_paid_again_to_the_corrected_account_after_verification_and_approval_across_a_restart() -> anyhow::Result<()> {
    use jinfu_platform::auth::Role;
    use jinfu_proto::ledger::v1 as pb;
    let mut app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    sqlx::query("UPDATE ledger.centres SET refund_hold_working_days = 0").execute(&app.pool).await?;
    let bidders = paid_section(&app, "SECOND", 2, 501).await?;
    let (winner, loser) = (&bidders[0], &bidders[1]);
    // The award arrives by gRPC this time.
    let award = pb::SubmitTenderEventRequest {
        event_id: "award-SECOND".into(),
        centre_id: CENTRE.into(),
        section_id: "SECOND".into(),
        r#type: "award.announced".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp(), nanos: 0 }),
        data_json: json!({ "winner_uscc": winner.uscc }).to_string(),
    };
    app.client.grpc.clone().submit_tender_event(app.client.operator(award.clone())).await?;
    app.client.grpc.clone().submit_tender_event(app.client.operator(award)).await?;
    let first = read_topic(&app.settings.kafka, "bank.payment-orders", 1, Duration::from_secs(60)).await?;
    let first: serde_json::Value = serde_json::from_slice(&first[0].0)?;
    assert_eq!(first["payee_account"], loser.basic_account.as_str());

    // The ledger is redeployed between the order and the bank's answer.
    app.restart().await?;
    bank_result(&app, first["order_id"].as_str().unwrap_or_default(), "F1", "failed").await?;
    wait_until("the failure", || async { Ok(refund_statuses(&app, "SECOND").await?.get(&loser.uscc).map(String::as_str) == Some("failed")) }).await?;
    assert_eq!(balance(&app, &format!("deposit:SECOND:{}", loser.uscc)).await?, 5_000_000);

    let correction = pb::SubmitRefundCorrectionRequest {
        centre_id: CENTRE.into(),
        section_id: "SECOND".into(),
        bidder_uscc: loser.uscc.clone(),
        payee_account: "6217000099998888".into(),
        payee_name: loser.name.clone(),
    };
    let submitted = app.client.grpc.clone().submit_refund_correction(app.client.as_role(Role::Bidder, CENTRE, &loser.uscc, correction)).await?.into_inner();
    let decision = pb::RefundCorrectionDecision { centre_id: CENTRE.into(), correction_id: submitted.correction_id.clone() };
    let early = app.client.grpc.clone().approve_refund_correction(app.client.as_role(Role::Supervisor, CENTRE, "sup-1", decision.clone())).await.unwrap_err();
    assert_eq!(early.code(), tonic::Code::FailedPrecondition, "approval needs verification first");
    let verified = app.client.grpc.clone().verify_refund_correction(app.client.as_role(Role::Operator, CENTRE, "op-1", decision.clone())).await?.into_inner();
    assert_eq!((verified.status.as_str(), verified.verified_by.as_str()), ("verified", "op-1"));
    let same_person =
        app.client.grpc.clone().approve_refund_correction(app.client.as_role(Role::Supervisor, CENTRE, "op-1", decision.clone())).await.unwrap_err();
    assert_eq!(same_person.code(), tonic::Code::PermissionDenied);
    let approved = app.client.grpc.clone().approve_refund_correction(app.client.as_role(Role::Supervisor, CENTRE, "sup-1", decision)).await?.into_inner();
    assert_eq!((approved.status.as_str(), approved.approved_by.as_str()), ("approved", "sup-1"));

    let orders = read_topic(&app.settings.kafka, "bank.payment-orders", 2, Duration::from_secs(60)).await?;
    let second: serde_json::Value = orders
        .iter()
        .map(|(value, _)| serde_json::from_slice::<serde_json::Value>(value))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|order| order["order_id"] != first["order_id"])
        .expect("a second order");
    assert_eq!(second["payee_account"], "6217000099998888");
    assert_eq!(second["principal"], "50000.00");
    assert_ne!(second["order_id"], first["order_id"]);
    bank_result(&app, second["order_id"].as_str().unwrap_or_default(), "S2", "succeeded").await?;
    // A late answer to the first order changes nothing.
    bank_result(&app, first["order_id"].as_str().unwrap_or_default(), "F1-late", "succeeded").await?;
    wait_until("the second refund", || async { Ok(refund_statuses(&app, "SECOND").await?.get(&loser.uscc).map(String::as_str) == Some("settled")) }).await?;
    wait_until("the late result", || async {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.payment_results").fetch_one(&app.pool).await?;
        Ok(count == 3)
    })
    .await?;
    assert_eq!(balance(&app, &format!("deposit:SECOND:{}", loser.uscc)).await?, 0);
    assert_eq!(balance(&app, "refund-in-transit").await?, 0);
    let result = verify::verify(&app.pool).await?;
    assert!(result.ok(), "{:?}", result.violations);
    Ok(())
}

/// How many `deposit.stale` events the ledger has written to its outbox for `bidder`.
async fn stale_announcements(app: &TestApp, bidder: &TestBidder) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE message_key = $1 AND convert_from(payload, 'UTF8')::jsonb ->> 'type' = 'deposit.stale'")
        .bind(&bidder.uscc)
        .fetch_one(&app.pool)
        .await?)
}

#[tokio::test]
async fn a_deposit_held_past_its_due_date_is_listed_as_stale_and_announced_once() -> anyhow::Result<()> {
    use jinfu_proto::ledger::v1 as pb;
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let bidders = paid_section(&app, "STALE", 2, 601).await?;
    let (stale_first, stale_later) = (&bidders[0], &bidders[1]);
    trading_event(&app, "STALE", "tender.terminated", json!({})).await?;
    wait_until("the scheduled refunds", || async { Ok(refund_statuses(&app, "STALE").await?.len() == 2) }).await?;
    // Pretend the first refund was due last week; a one-day hold keeps both refunds unordered.
    sqlx::query("UPDATE ledger.refunds SET order_after = now() + interval '1 day' WHERE section_id = 'STALE'").execute(&app.pool).await?;
    sqlx::query("UPDATE ledger.refunds SET due_on = current_date - 7 WHERE section_id = 'STALE' AND bidder_uscc = $1")
        .bind(&stale_first.uscc)
        .execute(&app.pool)
        .await?;
    let request = pb::ListStaleDepositsRequest { centre_id: CENTRE.into() };
    let stale = app.client.grpc.clone().list_stale_deposits(app.client.operator(request)).await?.into_inner().deposits;
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0].bidder_uscc.as_str(), stale[0].held_fen), (stale_first.uscc.as_str(), 5_000_000));
    wait_until("the stale event", || async { Ok(stale_announcements(&app, stale_first).await? >= 1) }).await?;

    // Only now does the second refund fall due. The runner round that announces it runs its
    // stale query after the first announcement was committed, so it is a later round than the
    // one that announced the first: had that round announced the first again, it would have
    // done so in the same transaction as the second.
    sqlx::query("UPDATE ledger.refunds SET due_on = current_date - 7 WHERE section_id = 'STALE' AND bidder_uscc = $1")
        .bind(&stale_later.uscc)
        .execute(&app.pool)
        .await?;
    wait_until("a later round's stale event", || async { Ok(stale_announcements(&app, stale_later).await? >= 1) }).await?;
    assert_eq!(stale_announcements(&app, stale_first).await?, 1, "announced once, not every round");
    assert_eq!(stale_announcements(&app, stale_later).await?, 1, "announced once, not every round");
    Ok(())
}

#[tokio::test]
async fn a_withdrawal_before_the_deadline_and_a_contract_seen_before_its_award_refund_the_right_bidders_with_due_dates_by_regime() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    // Bids still open: the deadline is tomorrow, so a withdrawal now is before it.
    let now = Utc::now();
    app.client.create_section("EARLY", 5_000_000, now + chrono::Duration::days(1), now + chrono::Duration::days(2), false).await?;
    let withdrawing = TestBidder::new(701);
    let account = app.client.open_sub_account("EARLY", &withdrawing).await?;
    app.send(&[sign_icbc(&app.banks, &icbc_notice(&app.banks, "EARLY-1", &account, &withdrawing, "50000.00"))]).await?;
    wait_for_records(&app.pool, 1, Duration::from_secs(60)).await?;
    trading_event(&app, "EARLY", "bidder.withdrew", json!({ "bidder_uscc": withdrawing.uscc })).await?;
    wait_until("the withdrawal refund", || async { Ok(refund_statuses(&app, "EARLY").await?.get(&withdrawing.uscc).map(String::as_str) == Some("scheduled")) })
        .await?;

    // A procurement section whose contract arrives before its award: everyone is refunded once.
    let bidders = paid_section(&app, "LATEAWARD", 3, 711).await?;
    trading_event(&app, "LATEAWARD", "contract.signed", json!({ "winner_uscc": bidders[0].uscc })).await?;
    wait_until("three refunds", || async { Ok(refund_statuses(&app, "LATEAWARD").await?.len() == 3) }).await?;
    trading_event(&app, "LATEAWARD", "award.announced", json!({ "winner_uscc": bidders[0].uscc })).await?;
    wait_until("the award applied", || async {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.trading_events WHERE section_id = 'LATEAWARD' AND type <> 'bids.opened'")
            .fetch_one(&app.pool)
            .await?;
        Ok(applied == 2)
    })
    .await?;
    let rows: Vec<(String, chrono::NaiveDate, chrono::NaiveDate)> =
        sqlx::query_as("SELECT trigger, due_on, (triggered_at AT TIME ZONE 'Asia/Shanghai')::date FROM ledger.refunds WHERE section_id = 'LATEAWARD'")
            .fetch_all(&app.pool)
            .await?;
    assert_eq!(rows.len(), 3, "the late award scheduled nothing twice");
    let calendar = jinfu_ledger::calendar::Calendar::china();
    for (trigger, due_on, day) in rows {
        assert_eq!(trigger, "contract_signed");
        // Procurement: five working days by the State Council calendar.
        assert_eq!(due_on, calendar.add_working_days(day, 5)?);
    }
    Ok(())
}
