//! The contract service against a real PostgreSQL and broker: its `contract.signed` refunds
//! deposits through the ledger once, signatures are verified, every clock runs on the working-day
//! calendar across the Spring Festival 2026 make-up days, invoices are deemed received, objected
//! to in part, and overdue interest accrues across an LPR change.

use chrono::{Duration, Utc};
use jinfu_e2e::contracts::{award, beijing, draft_request, spawn_contracts, tender_event_at, Parties, TestContracts};
use jinfu_e2e::{paid_section, wait_until, TestApp, TestBidder, CENTRE};
use jinfu_platform::auth::Role;
use jinfu_platform::signing::{Scheme, SigningKey};
use jinfu_proto::contract::v1 as pb;
use tonic::Code;

/// Drafts `draft` once the award the contract service consumes has arrived (until then the
/// draft is refused `award_unknown`); fails after 60 s.
async fn draft_when_awarded(contracts: &TestContracts, draft: pb::DraftContractRequest) -> anyhow::Result<pb::Contract> {
    let started = std::time::Instant::now();
    loop {
        match contracts.draft(draft.clone()).await {
            Ok(contract) => return Ok(contract),
            Err(status) if status.message().starts_with("award_unknown") && started.elapsed() < std::time::Duration::from_secs(60) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
}

fn clock<'a>(contract: &'a pb::Contract, name: &str) -> &'a pb::Clock {
    contract.clocks.iter().find(|clock| clock.name == name).unwrap_or_else(|| panic!("no clock {name} in {:?}", contract.clocks))
}

async fn refunds_of(app: &TestApp, section: &str) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT bidder_uscc, count(*) FROM ledger.refunds WHERE centre_id = $1 AND section_id = $2 GROUP BY bidder_uscc ORDER BY bidder_uscc")
        .bind(CENTRE)
        .bind(section)
        .fetch_all(&app.pool)
        .await?)
}

#[tokio::test]
async fn the_ledger_refunds_the_winner_on_contract_signed_from_this_service_once_even_when_the_trading_system_sends_it_too() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let bidders = paid_section(&app, "CT-1", 3, 1).await?;
    let contracts = spawn_contracts(&app, Utc::now()).await?;
    let parties = Parties::new(900, 1);
    contracts.register(&parties).await?;
    award(&app, "CT-1", &bidders[0].uscc, Utc::now() - Duration::hours(2)).await?;
    // Procurement: the award refunds the two others; the winner waits for the contract.
    wait_until("the losers' refunds", || async { Ok(refunds_of(&app, "CT-1").await?.len() == 2) }).await?;
    let contract = draft_when_awarded(&contracts, draft_request("CT-1", "HT-CT-1", &parties, None)).await?;
    assert_eq!(contract.status, pb::ContractStatus::Pending as i32);
    let signed = contracts.sign_both(&contract, &parties, Duration::minutes(5)).await?;
    assert_eq!(signed.status, pb::ContractStatus::Active as i32);
    assert_eq!(signed.signed_at, signed.supplier_signed_at, "signed_at is the later signature");
    wait_until("the winner's refund after contract.signed from the contract service", || async {
        Ok(refunds_of(&app, "CT-1").await?.iter().any(|(bidder, _)| *bidder == bidders[0].uscc))
    })
    .await?;
    // The e-trading system reports the same signing: applied, and nothing happens twice.
    let again = jinfu_e2e::trading_event(&app, "CT-1", "contract.signed", serde_json::json!({ "winner_uscc": bidders[0].uscc })).await?;
    wait_until("the trading system's contract.signed applied", || async {
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.trading_events WHERE event_id = $1").bind(&again).fetch_one(&app.pool).await?;
        Ok(seen == 1)
    })
    .await?;
    let refunds = refunds_of(&app, "CT-1").await?;
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    assert!(refunds.iter().all(|(_, count)| *count == 1), "one refund per bidder: {refunds:?}");
    let scheduled: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.outbox WHERE convert_from(payload, 'UTF8')::jsonb ->> 'type' = 'refund.scheduled'")
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(scheduled, 3, "one refund.scheduled per bidder");
    let signed_events = contracts.events("contract.signed").await?;
    assert_eq!(signed_events.len(), 1);
    assert_eq!(signed_events[0]["data"]["supplier_uscc"], bidders[0].uscc);
    assert_eq!(signed_events[0]["data"]["amount"], "100000.00");
    contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_forged_or_altered_signature_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T10:00")).await?;
    let parties = Parties::new(901, 11);
    contracts.register(&parties).await?;
    let contract = contracts.draft(draft_request("SG-1", "HT-SG-1", &parties, Some(beijing("2026-03-01T10:00")))).await?;
    let purchaser = parties.purchaser.uscc.as_str();
    let forger = SigningKey::generate(Scheme::Sm2Sm3);
    let refused = contracts.sign(&contract, Role::Purchaser, purchaser, &forger).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().starts_with("bad_signature:"), "{}", refused.message());
    let mut altered = contract.clone();
    altered.canonical_text = altered.canonical_text.replace("amount_fen=10000000", "amount_fen=1000000");
    let refused = contracts.sign(&altered, Role::Purchaser, purchaser, &parties.purchaser_key).await.unwrap_err();
    assert!(refused.message().starts_with("bad_signature:"), "{}", refused.message());
    // Signing for the other party, or as a stranger, is not possible.
    let refused = contracts.sign(&contract, Role::Supplier, purchaser, &parties.purchaser_key).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "a supplier that is not this contract's sees nothing");
    let stranger = TestBidder::new(12);
    let hidden = contracts
        .grpc
        .clone()
        .get_contract(contracts.as_role(Role::Supplier, &stranger.uscc, pb::ContractRef { centre_id: CENTRE.into(), contract_id: "HT-SG-1".into() }))
        .await
        .unwrap_err();
    let unknown = contracts
        .grpc
        .clone()
        .get_contract(contracts.as_role(Role::Supplier, &stranger.uscc, pb::ContractRef { centre_id: CENTRE.into(), contract_id: "HT-NONE".into() }))
        .await
        .unwrap_err();
    assert_eq!((hidden.code(), hidden.message().replace("HT-SG-1", "X")), (unknown.code(), unknown.message().replace("HT-NONE", "X")));
    let stored = contracts.get_contract("HT-SG-1").await?;
    assert_eq!((stored.purchaser_signed_at, stored.status), (None, pb::ContractStatus::Pending as i32), "nothing stored");
    // The real signatures: active.
    let signed = contracts.sign_both(&contract, &parties, Duration::hours(1)).await?;
    assert_eq!(signed.status, pb::ContractStatus::Active as i32);
    // The same draft again returns the contract; other terms under its id are refused.
    assert_eq!(contracts.draft(draft_request("SG-1", "HT-SG-1", &parties, Some(beijing("2026-03-01T10:00")))).await?.status, pb::ContractStatus::Active as i32);
    let mut other = draft_request("SG-1", "HT-SG-1", &parties, Some(beijing("2026-03-01T10:00")));
    other.amount_fen += 1;
    assert_eq!(contracts.draft(other).await.unwrap_err().code(), Code::AlreadyExists);
    Ok(())
}

/// Xuchang's clocks (2 working days to sign, 1 to publish, 1 to file, 1 to organise acceptance).
fn xuchang() -> pb::CentreRules {
    pb::CentreRules {
        sign_days: 2,
        sign_in_working_days: true,
        publish_working_days: 1,
        file_working_days: 1,
        acceptance_working_days: 1,
        invoice_payment_working_days: 2,
        ..Default::default()
    }
}

async fn breaches(contracts: &TestContracts) -> anyhow::Result<Vec<(String, String, String)>> {
    Ok(contracts
        .events("contract.deadline_breached")
        .await?
        .iter()
        .map(|event| {
            let data = &event["data"];
            (
                data["clock"].as_str().unwrap_or_default().to_owned(),
                data["due_on"].as_str().unwrap_or_default().to_owned(),
                data["parties"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

// Spring Festival 2026 (国办发明电〔2025〕7号): holidays 15-23 February; make-up workdays
// Saturday 14 and Saturday 28 February.
#[tokio::test]
async fn each_clock_runs_on_working_days_across_the_spring_festival_2026_make_up_days() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-02-13T10:00")).await?;
    contracts.set_rules(xuchang()).await?;
    let parties = Parties::new(902, 21);
    contracts.register(&parties).await?;
    award(&app, "XC-1", &parties.supplier.uscc, beijing("2026-02-13T09:00")).await?;
    award(&app, "XC-2", &TestBidder::new(22).uscc, beijing("2026-02-13T09:00")).await?;
    let contract = draft_when_awarded(&contracts, draft_request("XC-1", "HT-XC-1", &parties, None)).await?;
    // Award Friday 13 Feb: Saturday 14 (make-up) is the first working day, Tuesday 24 the second.
    assert_eq!(clock(&contract, "signing").due_on, "2026-02-24");
    // Signed on the make-up Saturday: publish and file by the next working day, Tuesday 24.
    contracts.clock.set(beijing("2026-02-14T09:00"));
    let signed = contracts.sign_both(&contract, &parties, Duration::hours(1)).await?;
    assert_eq!((clock(&signed, "publication").due_on.as_str(), clock(&signed, "filing").due_on.as_str()), ("2026-02-24", "2026-02-24"));
    assert!(!clock(&signed, "signing").late);
    contracts.clock.set(beijing("2026-02-24T16:00"));
    let published = pb::RecordDisclosureRequest {
        centre_id: CENTRE.into(),
        contract_id: "HT-XC-1".into(),
        kind: pb::record_disclosure_request::Kind::Publication as i32,
        reference: "https://ggzy.xuchang.gov.cn/ht/HT-XC-1".into(),
    };
    contracts.grpc.clone().record_disclosure(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, published)).await?;
    // Nothing is late on its last day.
    assert_eq!(contracts.sweep().await?.breaches, 0);
    assert!(breaches(&contracts).await?.is_empty());
    // Wednesday 25: the filing is late (the purchaser's), and XC-2's winner never got a contract (both parties').
    contracts.clock.set(beijing("2026-02-25T00:30"));
    assert_eq!(contracts.sweep().await?.breaches, 2);
    let mut found = breaches(&contracts).await?;
    found.sort();
    assert_eq!(found, vec![("filing".into(), "2026-02-24".into(), "purchaser".into()), ("signing".into(), "2026-02-24".into(), "purchaser,supplier".into())]);
    // A breach is published once.
    assert_eq!(contracts.sweep().await?.breaches, 0);
    // Acceptance asked on the make-up Saturday 28 February: organised by Monday 2 March.
    contracts.clock.set(beijing("2026-02-28T10:00"));
    let asked = pb::RequestAcceptanceRequest { centre_id: CENTRE.into(), contract_id: "HT-XC-1".into(), milestone: 2 };
    let acceptance = contracts.grpc.clone().request_acceptance(contracts.as_role(Role::Supplier, &parties.supplier.uscc, asked)).await?.into_inner();
    assert_eq!(acceptance.organise_by, "2026-03-02");
    // An invoice received on the 28th: objection window of 5 working days (2-6 March), and
    // Xuchang pays within 2 working days of receipt — but the acceptance milestone's clock has not started.
    let invoice = contracts.invoice(&signed, "26522000000000000001", 2, 7_000_000).await?;
    assert_eq!((invoice.object_by.as_str(), invoice.due_on.as_str()), ("2026-03-06", ""));
    contracts.clock.set(beijing("2026-03-03T08:00"));
    assert_eq!(contracts.sweep().await?.breaches, 1);
    assert!(breaches(&contracts).await?.contains(&("acceptance.2".into(), "2026-03-02".into(), "purchaser".into())));
    // The acceptance not organised in time: the payment clock runs from its last day (条例 art. 10);
    // Xuchang's 2 working days from receipt (Mon 2, Tue 3 March) is the earliest rule.
    let invoice = contracts.get_invoice("26522000000000000001", &parties.supplier.uscc).await?;
    assert_eq!((invoice.due_on.as_str(), invoice.due_by.as_str()), ("2026-03-03", "centre"));
    contracts.assert_events_match_schema().await?;
    Ok(())
}

/// A signed contract of `parties` for `section`, signed at the clock's time.
async fn signed_contract(contracts: &TestContracts, parties: &Parties, section: &str, draft: pb::DraftContractRequest) -> anyhow::Result<pb::Contract> {
    contracts.register(parties).await?;
    let contract = contracts.draft(pb::DraftContractRequest { section_id: section.into(), ..draft }).await?;
    contracts.sign_both(&contract, parties, Duration::minutes(10)).await
}

#[tokio::test]
async fn an_invoice_not_objected_to_within_five_working_days_is_deemed_received() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T09:00")).await?;
    let parties = Parties::new(903, 31);
    let draft = draft_request("DR-1", "HT-DR-1", &parties, Some(beijing("2026-02-27T10:00")));
    let contract = signed_contract(&contracts, &parties, "DR-1", draft).await?;
    let invoice = contracts.invoice(&contract, "26522000000000000011", 1, 3_000_000).await?;
    assert_eq!((invoice.status, invoice.object_by.as_str()), (pb::InvoiceStatus::Received as i32, "2026-03-09"));
    // Prepayment: 10 working days from signing on Monday 2 March is Monday 16 March.
    assert_eq!((invoice.due_on.as_str(), invoice.due_by.as_str()), ("2026-03-16", "contract"));
    contracts.clock.set(beijing("2026-03-09T23:59"));
    assert_eq!(contracts.sweep().await?.deemed, 0, "the window is open through its last day");
    contracts.clock.set(beijing("2026-03-10T00:01"));
    assert_eq!(contracts.sweep().await?.deemed, 1);
    let invoice = contracts.get_invoice("26522000000000000011", &parties.supplier.uscc).await?;
    assert_eq!(invoice.status, pb::InvoiceStatus::Accepted as i32);
    let accepted = contracts.events("invoice.accepted").await?;
    assert_eq!((accepted.len(), &accepted[0]["data"]["deemed"]), (1, &serde_json::json!(true)));
    let late =
        pb::ObjectToInvoiceRequest { centre_id: CENTRE.into(), invoice_no: "26522000000000000011".into(), disputed_fen: 100, reason: "数量不符".into() };
    let refused = contracts.grpc.clone().object_to_invoice(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, late)).await.unwrap_err();
    assert!(refused.message().starts_with("invoice_not_open:") || refused.message().starts_with("objection_window_closed:"), "{}", refused.message());
    assert_eq!(contracts.sweep().await?.deemed, 0, "deemed once");
    contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_partial_objection_leaves_the_undisputed_part_payable_on_its_due_date() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T09:00")).await?;
    let parties = Parties::new(904, 41);
    let draft = draft_request("PO-1", "HT-PO-1", &parties, Some(beijing("2026-02-27T10:00")));
    let contract = signed_contract(&contracts, &parties, "PO-1", draft).await?;
    contracts.invoice(&contract, "26522000000000000021", 1, 3_000_000).await?;
    contracts.clock.set(beijing("2026-03-05T10:00"));
    let objection = pb::ObjectToInvoiceRequest {
        centre_id: CENTRE.into(),
        invoice_no: "26522000000000000021".into(),
        disputed_fen: 750_000,
        reason: "预付比例与合同不符".into(),
    };
    let invoice = contracts.grpc.clone().object_to_invoice(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, objection.clone())).await?.into_inner();
    assert_eq!((invoice.status, invoice.payable_fen, invoice.due_on.as_str()), (pb::InvoiceStatus::ConditionallyAccepted as i32, 2_250_000, "2026-03-16"));
    // The same objection again changes nothing (one event); another amount is refused.
    let again = contracts.grpc.clone().object_to_invoice(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, objection.clone())).await?.into_inner();
    assert_eq!(again.payable_fen, 2_250_000);
    assert_eq!(contracts.events("invoice.objected").await?.len(), 1);
    let other = pb::ObjectToInvoiceRequest { disputed_fen: 1, ..objection };
    let refused = contracts.grpc.clone().object_to_invoice(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, other)).await.unwrap_err();
    assert!(refused.message().starts_with("invoice_not_open:"), "{}", refused.message());
    // More than the undisputed part cannot be paid against it.
    let refused = contracts.pay(&contract, "PAY-PO-1", "2026-03-05", &[("26522000000000000021", 2_250_001)]).await.unwrap_err();
    assert!(refused.message().starts_with("overpaid:"), "{}", refused.message());
    // Paid on the due date: paid, no interest.
    contracts.clock.set(beijing("2026-03-16T15:00"));
    contracts.pay(&contract, "PAY-PO-1", "2026-03-16", &[("26522000000000000021", 2_250_000)]).await?;
    // The same payment again is the same payment.
    contracts.pay(&contract, "PAY-PO-1", "2026-03-16", &[("26522000000000000021", 2_250_000)]).await?;
    contracts.clock.set(beijing("2026-04-20T15:00"));
    let invoice = contracts.get_invoice("26522000000000000021", &parties.supplier.uscc).await?;
    assert_eq!((invoice.status, invoice.paid_fen, invoice.overdue_interest_fen), (pb::InvoiceStatus::Paid as i32, 2_250_000, 0));
    assert_eq!(contracts.sweep().await?.overdue, 0);
    contracts.assert_events_match_schema().await?;
    Ok(())
}

// One-year LPR 3.10 % until 19 May 2025, 3.00 % from 20 May 2025 (ledger/data/lpr-1y.txt).
#[tokio::test]
async fn overdue_interest_accrues_daily_over_a_month_across_an_lpr_change() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2025-04-28T09:00")).await?;
    let parties = Parties::new(905, 51);
    let mut draft = draft_request("LP-1", "HT-LP-1", &parties, Some(beijing("2025-04-25T10:00")));
    // The LPR plus 0.50 percentage points, floating.
    draft.overdue_rate = Some(pb::OverdueRate { kind: pb::overdue_rate::Kind::LprPlus as i32, annual_percent: "0.50".into() });
    draft.milestones[0].period_days = 5;
    let contract = signed_contract(&contracts, &parties, "LP-1", draft).await?;
    contracts.invoice(&contract, "25522000000000000031", 1, 3_000_000).await?;
    // 5 working days after Monday 28 April 2025: 29, 30 April, then the Labour Day holiday
    // (1-5 May), 6, 7, 8 May.
    let invoice = contracts.get_invoice("25522000000000000031", &parties.supplier.uscc).await?;
    assert_eq!(invoice.due_on, "2025-05-08");
    contracts.clock.set(beijing("2025-06-09T10:00"));
    contracts.pay(&contract, "PAY-LP-1", "2025-06-09", &[("25522000000000000031", 3_000_000)]).await?;
    contracts.clock.set(beijing("2025-07-01T10:00"));
    let invoice = contracts.get_invoice("25522000000000000031", &parties.supplier.uscc).await?;
    // 9-19 May: 11 days × 30,000.00 × 3.60 % / 365 = 1,188,000 / 365 fen;
    // 20 May-9 June: 21 days × 30,000.00 × 3.50 % / 365 = 2,205,000 / 365 fen;
    // 3,393,000 / 365 = 9,295.89 fen → 92.96 yuan.
    let segments: Vec<(&str, &str, u32)> = invoice.interest.iter().map(|segment| (segment.from.as_str(), segment.to.as_str(), segment.days)).collect();
    assert_eq!(segments, vec![("2025-05-09", "2025-05-19", 11), ("2025-05-20", "2025-06-09", 21)]);
    assert_eq!(invoice.overdue_interest_fen, 9_296);
    // The same month at the statutory rate (万分之五): 32 days × 30,000.00 × 0.0005 = 480.00 yuan.
    let statutory = Parties::new(906, 52);
    contracts.clock.set(beijing("2025-04-28T09:00"));
    let mut draft = draft_request("LP-2", "HT-LP-2", &statutory, Some(beijing("2025-04-25T10:00")));
    draft.milestones[0].period_days = 5;
    let other = signed_contract(&contracts, &statutory, "LP-2", draft).await?;
    contracts.invoice(&other, "25522000000000000032", 1, 3_000_000).await?;
    contracts.clock.set(beijing("2025-06-09T10:00"));
    let before_paying = contracts.get_invoice("25522000000000000032", &statutory.supplier.uscc).await?;
    assert_eq!(before_paying.overdue_interest_fen, 48_000, "accrued through today, unpaid");
    assert_eq!(contracts.sweep().await?.overdue, 1, "one overdue warning");
    // The annual report (条例 art. 18) for 2025, as of today: LP-2's purchaser owes 30,000.00 and 480.00 of interest.
    let report =
        contracts.grpc.clone().overdue_report(contracts.operator(pb::OverdueReportRequest { centre_id: CENTRE.into(), year: 2025 })).await?.into_inner();
    let rows: Vec<(&str, u32, i64, i64)> =
        report.rows.iter().map(|row| (row.purchaser_uscc.as_str(), row.contracts, row.overdue_unpaid_fen, row.overdue_interest_fen)).collect();
    assert_eq!(rows, vec![(statutory.purchaser.uscc.as_str(), 1, 3_000_000, 48_000)]);
    assert_eq!(contracts.events("payment.overdue").await?.len(), 1);
    contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn acceptance_delayed_by_the_purchaser_starts_the_payment_clock_at_the_end_of_its_period() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T09:00")).await?;
    contracts.set_rules(pb::CentreRules { acceptance_working_days: 3, ..Default::default() }).await?;
    let parties = Parties::new(907, 61);
    let draft = draft_request("AC-1", "HT-AC-1", &parties, Some(beijing("2026-02-27T10:00")));
    let contract = signed_contract(&contracts, &parties, "AC-1", draft).await?;
    let asked = pb::RequestAcceptanceRequest { centre_id: CENTRE.into(), contract_id: "HT-AC-1".into(), milestone: 2 };
    let acceptance = contracts.grpc.clone().request_acceptance(contracts.as_role(Role::Supplier, &parties.supplier.uscc, asked)).await?.into_inner();
    assert_eq!((acceptance.organise_by.as_str(), acceptance.payment_clock_from.as_str()), ("2026-03-05", ""));
    contracts.invoice(&contract, "26522000000000000041", 2, 7_000_000).await?;
    assert_eq!(contracts.get_invoice("26522000000000000041", &parties.supplier.uscc).await?.due_on, "", "not due before the acceptance");
    // The period passed without a result: 30 days from Thursday 5 March is Saturday 4 April, in
    // the Qingming holiday (4-6 April): Tuesday 7 April.
    contracts.clock.set(beijing("2026-03-06T09:00"));
    let invoice = contracts.get_invoice("26522000000000000041", &parties.supplier.uscc).await?;
    assert_eq!(invoice.due_on, "2026-04-07");
    // Recorded late, on 10 March: the clock still runs from 5 March.
    contracts.clock.set(beijing("2026-03-10T09:00"));
    let result = pb::RecordAcceptanceRequest {
        centre_id: CENTRE.into(),
        contract_id: "HT-AC-1".into(),
        milestone: 2,
        passed: true,
        note: "验收合格".into(),
        settlement_amount_fen: 0,
    };
    let recorded = contracts.grpc.clone().record_acceptance(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, result.clone())).await?.into_inner();
    assert_eq!(recorded.payment_clock_from, "2026-03-05");
    // The same result again answers the same; a different one is refused.
    let again = contracts.grpc.clone().record_acceptance(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, result.clone())).await?.into_inner();
    assert_eq!((again.recorded_at, again.payment_clock_from.as_str()), (recorded.recorded_at, "2026-03-05"));
    let failed = pb::RecordAcceptanceRequest { passed: false, ..result };
    let refused = contracts.grpc.clone().record_acceptance(contracts.as_role(Role::Purchaser, &parties.purchaser.uscc, failed)).await.unwrap_err();
    assert!(refused.message().starts_with("acceptance_recorded:"), "{}", refused.message());
    assert_eq!(contracts.get_invoice("26522000000000000041", &parties.supplier.uscc).await?.due_on, "2026-04-07");
    let events = contracts.events("acceptance.recorded").await?;
    assert_eq!(events[0]["data"]["late"], true);
    contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_award_is_dead_lettered_while_the_one_behind_it_applies_and_a_replay_changes_nothing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T09:00")).await?;
    let parties = Parties::new(908, 71);
    tender_event_at(&app, "DL-1", "award.announced", serde_json::json!({ "winner_uscc": "not-a-code" }), beijing("2026-03-01T09:00")).await?;
    award(&app, "DL-1", &parties.supplier.uscc, beijing("2026-03-01T10:00")).await?;
    draft_when_awarded(&contracts, draft_request("DL-1", "HT-DL-1", &parties, None)).await?;
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM contract.dead_letters ORDER BY id").fetch_all(&contracts.pool).await?;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("bad_field"), "{reasons:?}");
    // A replay of an applied award (same id, same content) changes nothing; the id reused with other content is dead-lettered.
    let id = "award-replayed";
    let produce = |winner: String| {
        let app = &app;
        async move {
            let value = serde_json::to_vec(&serde_json::json!({
                "schema_version": 1, "event_id": id, "centre_id": CENTRE, "section_id": "DL-2", "type": "award.announced",
                "occurred_at": "2026-03-01T10:00:00+08:00", "data": { "winner_uscc": winner },
            }))?;
            let record = jinfu_bank_sim::BankRecord { key: "DL-2".into(), value, headers: vec![] };
            jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await
        }
    };
    produce(parties.supplier.uscc.clone()).await?;
    produce(parties.supplier.uscc.clone()).await?;
    produce(TestBidder::new(72).uscc).await?;
    wait_until("the reused id dead-lettered", || async {
        let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM contract.dead_letters").fetch_all(&contracts.pool).await?;
        Ok(reasons.iter().any(|reason| reason.contains("event_id_reused")))
    })
    .await?;
    let recorded = contracts.events("award.recorded").await?;
    assert_eq!(recorded.iter().filter(|event| event["data"]["section_id"] == "DL-2").count(), 1, "the replay recorded nothing");
    contracts.assert_events_match_schema().await?;
    Ok(())
}

/// A payment record for `contract.payments`, signed with `key` under `key_ref`.
fn payment_record(value: &serde_json::Value, key: &SigningKey, key_ref: &str) -> jinfu_bank_sim::BankRecord {
    let bytes = serde_json::to_vec(value).expect("json");
    let headers = vec![("jinfu-signature".to_owned(), key.sign(&bytes).into_bytes()), ("jinfu-signing-key".to_owned(), key_ref.as_bytes().to_vec())];
    jinfu_bank_sim::BankRecord { key: "520100:HT-PR-1".into(), value: bytes, headers }
}

#[tokio::test]
async fn a_signed_payment_record_pays_an_invoice_once_and_a_forged_one_changes_nothing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let contracts = spawn_contracts(&app, beijing("2026-03-02T09:00")).await?;
    let parties = Parties::new(909, 81);
    let draft = draft_request("PR-1", "HT-PR-1", &parties, Some(beijing("2026-02-27T10:00")));
    let contract = signed_contract(&contracts, &parties, "PR-1", draft).await?;
    contracts.invoice(&contract, "26522000000000000051", 1, 3_000_000).await?;
    contracts.clock.set(beijing("2026-03-10T09:00"));
    let payment = serde_json::json!({
        "schema_version": 1, "payment_id": "GK-2026-0001", "centre_id": CENTRE, "contract_id": "HT-PR-1", "purchaser_uscc": parties.purchaser.uscc,
        "paid_on": "2026-03-09", "allocations": [{ "invoice_no": "26522000000000000051", "amount": "30000.00" }],
    });
    let validator = jinfu_e2e::schema("contract.payment.v1.json");
    assert!(validator.is_valid(&payment), "the test's record matches the published schema");
    let forged = payment_record(&payment, &SigningKey::generate(Scheme::Sm2Sm3), "contract_key_1");
    let overpaid = payment_record(
        &serde_json::json!({
            "schema_version": 1, "payment_id": "GK-2026-0000", "centre_id": CENTRE, "contract_id": "HT-PR-1", "purchaser_uscc": parties.purchaser.uscc,
            "paid_on": "2026-03-09", "allocations": [{ "invoice_no": "26522000000000000051", "amount": "30000.01" }],
        }),
        &parties.purchaser_key,
        "contract_key_1",
    );
    let good = payment_record(&payment, &parties.purchaser_key, "contract_key_1");
    let topic = app.settings.kafka.topic(jinfu_platform::topics::CONTRACT_PAYMENTS);
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &topic, &[forged, overpaid, good.clone(), good]).await?;
    wait_until("the payment applied", || async { Ok(contracts.events("payment.recorded").await?.len() == 1) }).await?;
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM contract.dead_letters WHERE topic = $1 ORDER BY id").bind(&topic).fetch_all(&contracts.pool).await?;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].starts_with("bad_signature:") && reasons[1].starts_with("overpaid:"), "{reasons:?}");
    wait_until("every record consumed", || async {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM contract.consumer_offsets WHERE topic = $1").bind(&topic).fetch_one(&contracts.pool).await?;
        Ok(done == Some(4))
    })
    .await?;
    let invoice = contracts.get_invoice("26522000000000000051", &parties.supplier.uscc).await?;
    assert_eq!(
        (invoice.status, invoice.paid_fen),
        (pb::InvoiceStatus::Paid as i32, 3_000_000),
        "paid once: the repeat changed nothing, the refused ones nothing"
    );
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM contract.payments").fetch_one(&contracts.pool).await?;
    assert_eq!(paid, 1, "the overpaying record left no payment row behind");
    contracts.assert_events_match_schema().await?;
    Ok(())
}

#[tokio::test]
async fn a_deadline_in_a_year_without_calendar_data_waits_instead_of_refusing_and_is_dated_once_the_year_is_loaded() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // The shipped calendar ends with 2026.
    let contracts = spawn_contracts(&app, beijing("2026-12-21T10:00")).await?;
    let parties = Parties::new(910, 91);
    contracts.register(&parties).await?;
    // Awarded Monday 21 December: 30 calendar days runs into 2027.
    let contract = contracts.draft(draft_request("CY-1", "HT-CY-1", &parties, Some(beijing("2026-12-21T09:00")))).await?;
    assert!(contract.clocks.iter().all(|clock| clock.name != "signing"), "the signing deadline is pending: {:?}", contract.clocks);
    let drafted = contracts.events("contract.drafted").await?;
    assert_eq!(drafted[0]["data"]["sign_by"], serde_json::Value::Null);
    contracts.clock.set(beijing("2026-12-22T10:00"));
    let signed = contracts.sign_both(&contract, &parties, Duration::minutes(5)).await?;
    assert_eq!(signed.status, pb::ContractStatus::Active as i32, "signing is never refused for want of a calendar year");
    // Invoiced Monday 28 December: the 5-working-day objection window ends in 2027.
    contracts.clock.set(beijing("2026-12-28T10:00"));
    let invoice = contracts.invoice(&signed, "26522000000000000061", 1, 3_000_000).await?;
    assert_eq!(invoice.object_by, "", "pending");
    assert_eq!(contracts.sweep().await?.dated, 0, "still no 2027 data");
    // 2027 loaded (here: New Year's Day only): the sweeper dates what waited.
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date");
    let with_2027 = jinfu_ledger::calendar::Calendar::china().with_year(&jinfu_ledger::calendar::YearData::new(2027, &[day("2027-01-01")], &[])?);
    assert_eq!(contracts.sweeper_with(with_2027).round().await?.dated, 2);
    assert_eq!(clock(&contracts.get_contract("HT-CY-1").await?, "signing").due_on, "2027-01-20");
    // 29, 30, 31 December, (1 January a holiday), 4 and 5 January.
    assert_eq!(contracts.get_invoice("26522000000000000061", &parties.supplier.uscc).await?.object_by, "2027-01-05");
    contracts.assert_events_match_schema().await?;
    Ok(())
}
