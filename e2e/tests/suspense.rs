//! Suspense resolution against a real PostgreSQL and broker: an operator binds a suspended
//! credit to the right sub-account or orders it back to its payer; every step is a journal
//! entry, kept with who, when and why, and the verification command covers them.

use std::time::Duration;

use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::ledger::v1 as pb;

const SUSPENSE: &str = "suspense:ICBC:2402001029200012345";
const BANK: &str = "bank:ICBC:2402001029200012345";

fn bind(serial: &str, sub_account: &str, reason: &str) -> pb::BindSuspenseItemRequest {
    pb::BindSuspenseItemRequest {
        centre_id: CENTRE.into(),
        bank: "ICBC".into(),
        bank_serial: serial.into(),
        sub_account_number: sub_account.into(),
        reason: reason.into(),
    }
}

fn give_back(serial: &str) -> pb::ReturnSuspenseItemRequest {
    pb::ReturnSuspenseItemRequest {
        centre_id: CENTRE.into(), bank: "ICBC".into(), bank_serial: serial.into(), reason: "付款人来电确认汇错，原路退回".into()
    }
}

#[tokio::test]
async fn an_operator_binds_one_suspense_item_and_returns_another_and_every_step_is_an_entry() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = chrono::Utc::now();
    app.client.create_section("SUSP", 5_000_000, now + chrono::Duration::days(2), now + chrono::Duration::days(2), false).await?;
    let bidder = TestBidder::new(701);
    let account = app.client.open_sub_account("SUSP", &bidder).await?;

    // The bidder typed one digit wrong: unknown sub-account. A stranger paid: wrong payer.
    let typo = format!("{}0", &account[..account.len() - 1]);
    let typo = if typo == account { format!("{}1", &account[..account.len() - 1]) } else { typo };
    let stranger = TestBidder::new(702);
    let records = [
        sign_icbc(&app.banks, &icbc_notice(&app.banks, "TYPO-1", &typo, &bidder, "50000.00")),
        sign_icbc(&app.banks, &icbc_notice(&app.banks, "STRANGER-1", &account, &stranger, "800.00")),
    ];
    app.send(&records).await?;
    app.wait_for_records(2).await?;
    let balances = app.client.balances("").await?;
    assert_eq!(balances.get(SUSPENSE).copied(), Some(5_080_000));
    // Before the bids are opened the stranger's payment is sealed: it would name a bidder.
    let listed = app
        .client
        .grpc
        .clone()
        .list_suspense(app.client.operator(pb::ListSuspenseRequest { centre_id: CENTRE.into(), ..Default::default() }))
        .await?
        .into_inner();
    assert_eq!(listed.items.iter().map(|item| item.bank_serial.as_str()).collect::<Vec<_>>(), vec!["TYPO-1"]);
    let opened = pb::SubmitTenderEventRequest {
        event_id: "bids-opened-SUSP".into(),
        centre_id: CENTRE.into(),
        section_id: "SUSP".into(),
        r#type: "bids.opened".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: chrono::Utc::now().timestamp(), nanos: 0 }),
        data_json: String::new(),
    };
    app.client.grpc.clone().submit_tender_event(app.client.operator(opened)).await?;
    let listed = app
        .client
        .grpc
        .clone()
        .list_suspense(app.client.operator(pb::ListSuspenseRequest { centre_id: CENTRE.into(), ..Default::default() }))
        .await?
        .into_inner();
    assert_eq!(listed.items.len(), 2);
    assert!(listed.items.iter().all(|item| item.resolution_status.is_empty()), "both items are open");

    // Refusals: a bidder may not decide; a reason is required; the sub-account must exist.
    let mut grpc = app.client.grpc.clone();
    let as_bidder = app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, bind("TYPO-1", &account, "我的钱"));
    assert_eq!(grpc.bind_suspense_item(as_bidder).await.expect_err("bidders cannot bind").code(), tonic::Code::PermissionDenied);
    let no_reason = grpc.bind_suspense_item(app.client.operator(bind("TYPO-1", &account, " "))).await.expect_err("a reason is required");
    assert_eq!(no_reason.code(), tonic::Code::InvalidArgument);
    let nowhere = grpc.bind_suspense_item(app.client.operator(bind("TYPO-1", "52010000000000000", "x"))).await.expect_err("no such sub-account");
    assert_eq!(nowhere.code(), tonic::Code::NotFound);
    let not_suspense = grpc.bind_suspense_item(app.client.operator(bind("NOPE-1", &account, "x"))).await.expect_err("no such notice");
    assert_eq!(not_suspense.code(), tonic::Code::NotFound);

    // Bind the typo to the bidder's sub-account: the deposit is now satisfied.
    let bound = grpc.bind_suspense_item(app.client.operator(bind("TYPO-1", &account, "银行回单显示子账号录入错误一位"))).await?.into_inner();
    assert_eq!((bound.action.as_str(), bound.status.as_str(), bound.amount_fen), ("bind", "bound", 5_000_000));
    assert_eq!((bound.bidder_uscc.as_str(), bound.decided_by.as_str()), (bidder.uscc.as_str(), "operator-1"));
    let status = app.client.deposit_status("SUSP", &bidder).await?;
    assert!(status.satisfied, "the bound transfer counts for the deposit: {status:?}");
    let again = grpc.bind_suspense_item(app.client.operator(bind("TYPO-1", &account, "again"))).await.expect_err("bound once");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let back = grpc.return_suspense_item(app.client.operator(give_back("TYPO-1"))).await.expect_err("already bound");
    assert_eq!(back.code(), tonic::Code::FailedPrecondition);

    // Return the stranger's 800 yuan: a signed payment order to the payer's account.
    let ordered = grpc.return_suspense_item(app.client.operator(give_back("STRANGER-1"))).await?.into_inner();
    assert_eq!(ordered.status, "return_ordered");
    let orders = read_topic(&app.settings.kafka, jinfu_platform::topics::BANK_PAYMENT_ORDERS, 1, Duration::from_secs(60)).await?;
    let (value, headers) = &orders[0];
    let platform = VerifyingKey::from_hex(Scheme::Ed25519, &app.banks.platform.public_key_hex())?;
    platform.verify(value, &String::from_utf8(headers["jinfu-signature"].clone())?).map_err(|e| anyhow::anyhow!("order signature: {e}"))?;
    let order: serde_json::Value = serde_json::from_slice(value)?;
    assert_eq!((order["purpose"].as_str(), order["amount"].as_str(), order["interest"].as_str()), (Some("suspense_return"), Some("800.00"), Some("0.00")));
    assert_eq!(order["payee_account"].as_str(), Some(stranger.basic_account.as_str()));
    assert_eq!(order["order_id"].as_str(), Some(ordered.order_id.as_str()));
    let balances = app.client.balances("").await?;
    assert_eq!((balances.get(SUSPENSE).copied(), balances.get("refund-in-transit").copied()), (Some(0), Some(80_000)));

    // The bank bounces it: the money is back in suspense and the item open again.
    bank_result(&app, &ordered.order_id, "RET-1", "failed").await?;
    wait_until("the failed return", || async { Ok(app.client.balances("").await?.get(SUSPENSE).copied() == Some(80_000)) }).await?;
    let listed = app
        .client
        .grpc
        .clone()
        .list_suspense(app.client.operator(pb::ListSuspenseRequest { centre_id: CENTRE.into(), ..Default::default() }))
        .await?
        .into_inner();
    let stranger_item = listed.items.iter().find(|item| item.bank_serial == "STRANGER-1").expect("listed");
    assert_eq!(stranger_item.resolution_status, "", "open again after the failed return");

    // Ordered again, paid this time.
    let second = grpc.return_suspense_item(app.client.operator(give_back("STRANGER-1"))).await?.into_inner();
    bank_result(&app, &second.order_id, "RET-2", "succeeded").await?;
    wait_until("the paid return", || async { Ok(app.client.balances("").await?.get("refund-in-transit").copied() == Some(0)) }).await?;
    let balances = app.client.balances("").await?;
    assert_eq!(balances.get(SUSPENSE).copied(), Some(0));
    assert_eq!(balances.get(BANK).copied(), Some(5_000_000), "800 yuan left the collection account");

    // The audit trail keeps every decision, the failed return included.
    let trail = grpc
        .list_suspense_resolutions(app.client.operator(pb::ListSuspenseResolutionsRequest { centre_id: CENTRE.into(), limit: 0 }))
        .await?
        .into_inner()
        .resolutions;
    let mut seen: Vec<(String, String)> = trail.iter().map(|r| (r.bank_serial.clone(), r.status.clone())).collect();
    seen.sort();
    assert_eq!(seen, vec![("STRANGER-1".into(), "return_failed".into()), ("STRANGER-1".into(), "returned".into()), ("TYPO-1".into(), "bound".into())]);
    assert!(trail.iter().all(|r| !r.reason.is_empty() && r.decided_by == "operator-1" && r.entry_sequence > 0));

    assert!(assert_events_match_schema(&app.pool).await? >= 6);
    let verification = verify::verify(&app.pool).await?;
    assert!(verification.ok(), "{:?}", verification.violations);

    // Tampering with a decision's money is caught: the suspense check and the chain.
    sqlx::query("UPDATE ledger.accounts SET balance_fen = balance_fen + 1 WHERE account = $1").bind(SUSPENSE).execute(&app.pool).await?;
    let tampered = verify::verify(&app.pool).await?;
    assert!(tampered.violations.iter().any(|v| v.starts_with("suspense:")), "{:?}", tampered.violations);
    Ok(())
}
