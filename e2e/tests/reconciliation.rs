//! Daily statement reconciliation against a real PostgreSQL and broker: banks' end-of-day
//! statements on `bank.statements`, in signed parts, compared with the ledger.

use std::time::Duration;

use chrono::{FixedOffset, TimeZone, Utc};
use jinfu_bank_sim::{statement_records, BankRecord, StatementHeader, StatementLine};
use jinfu_e2e::*;
use jinfu_ledger_service::verify;
use jinfu_proto::ledger::v1 as pb;

fn china() -> FixedOffset {
    jinfu_ledger::beijing::offset()
}

fn header(id: &str, day: u32, opening: &str, closing: &str) -> StatementHeader {
    let start = china().with_ymd_and_hms(2026, 11, day, 0, 0, 0).single().expect("a valid time");
    StatementHeader {
        statement_id: id.into(),
        bank: "ICBC".into(),
        account_number: ICBC_ACCOUNT.into(),
        centre_id: CENTRE.into(),
        statement_date: start.date_naive(),
        period_start: start,
        cut_off: start + chrono::Duration::days(1),
        opening_balance: opening.into(),
        closing_balance: closing.into(),
    }
}

fn line(
    serial: &str,
    direction: &'static str,
    amount: &str,
    payer: &TestBidder,
    sub_account: Option<&str>,
    value_time: chrono::DateTime<FixedOffset>,
) -> StatementLine {
    StatementLine {
        serial: serial.into(),
        direction,
        amount: amount.into(),
        counterparty_name: payer.name.replace('(', "（").replace(')', "）"),
        counterparty_account: payer.basic_account.clone(),
        sub_account_number: sub_account.map(str::to_owned),
        value_time,
    }
}

async fn send_statement(app: &TestApp, records: &[BankRecord]) -> anyhow::Result<()> {
    send_to(&app.settings.kafka, jinfu_platform::topics::BANK_STATEMENTS, records).await
}

async fn report(app: &TestApp, id: &str) -> anyhow::Result<Option<pb::ReconciliationReport>> {
    let request = pb::GetReconciliationReportRequest { centre_id: CENTRE.into(), statement_id: id.into(), limit: 0 };
    match app.client.grpc.clone().get_reconciliation_report(app.client.operator(request)).await {
        Ok(response) => Ok(Some(response.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

async fn wait_for_report(app: &TestApp, id: &str) -> anyhow::Result<pb::ReconciliationReport> {
    wait_until(&format!("the report of {id}"), || async { Ok(report(app, id).await?.is_some()) }).await?;
    Ok(report(app, id).await?.expect("the report exists"))
}

#[tokio::test]
async fn statements_in_parts_reconcile_balanced_then_report_every_kind_of_discrepancy() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("RECON", 5_000_000, now + chrono::Duration::days(30), now + chrono::Duration::days(30), false).await?;
    let (paid, late, stranger) = (TestBidder::new(801), TestBidder::new(802), TestBidder::new(803));
    let paid_account = app.client.open_sub_account("RECON", &paid).await?;
    let late_account = app.client.open_sub_account("RECON", &late).await?;
    let day1 = china().with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single().expect("a valid time");
    let day2 = day1 + chrono::Duration::days(1);

    // Day 1: one deposit and 2,100 small unknown credits, all notified; the statement has 2,101
    // lines in two parts, sent last part first.
    let mut notices = Vec::new();
    let mut lines = Vec::new();
    let mut first = icbc_notice(&app.banks, "D1-PAID", &paid_account, &paid, "50000.00");
    first.value_time = day1;
    notices.push(sign_icbc(&app.banks, &first));
    lines.push(line("D1-PAID", "credit", "50000.00", &paid, Some(&paid_account), day1));
    for number in 0..2100 {
        let serial = format!("D1-U{number:04}");
        let mut notice = icbc_notice(&app.banks, &serial, "52010099999999999", &stranger, "1.00");
        notice.value_time = day1 + chrono::Duration::seconds(number);
        notices.push(sign_icbc(&app.banks, &notice));
        lines.push(line(&serial, "credit", "1.00", &stranger, Some("52010099999999999"), notice.value_time));
    }
    app.send(&notices).await?;
    wait_for_records(&app.pool, notices.len() as i64, Duration::from_secs(180)).await?;
    let mut parts = statement_records(&header("ICBC-D1", 20, "0.00", "52100.00"), &lines, "icbc_test", &app.banks.icbc);
    assert_eq!(parts.len(), 2, "2,101 lines travel in two parts");
    parts.reverse();
    send_statement(&app, &parts).await?;
    let balanced = wait_for_report(&app, "ICBC-D1").await?;
    assert_eq!((balanced.status.as_str(), balanced.line_count, balanced.discrepancy_count), ("balanced", 2101, 0), "{balanced:?}");
    assert_eq!((balanced.bank_closing_fen, balanced.ledger_closing_fen), (5_210_000, 5_210_000));

    // A redelivered part changes nothing; a part with the same number but other content, and a
    // forged part, go to the dead-letter topic.
    send_statement(&app, &parts[..1]).await?;
    let mut other = lines.clone();
    other[0].amount = "1.00".into();
    let conflicting = statement_records(&header("ICBC-D1", 20, "0.00", "52100.00"), &other, "icbc_test", &app.banks.icbc);
    // Part 1 with other bytes under the original part 1's signature.
    let mut forged = conflicting[0].clone();
    forged.headers[0].1 = parts[1].headers[0].1.clone();
    send_statement(&app, &[conflicting[0].clone(), forged]).await?;
    let dead = read_topic(&app.settings.kafka, &jinfu_platform::kafka::dlq_topic(jinfu_platform::topics::BANK_STATEMENTS), 2, Duration::from_secs(60)).await?;
    let mut reasons: Vec<String> =
        dead.iter().map(|(_, headers)| String::from_utf8_lossy(&headers["jinfu-dlq-reason"]).split(':').next().unwrap_or("").to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, vec!["bad_signature", "statement_conflict"]);

    // Day 2: the ledger saw a notice the bank leaves out; the bank shows a credit nobody
    // notified (ingested now, matched to the late payer's deposit) and a debit no order explains.
    let mut day2_notice = icbc_notice(&app.banks, "D2-NOTIFIED", &paid_account, &paid, "10.00");
    day2_notice.value_time = day2;
    app.send(&[sign_icbc(&app.banks, &day2_notice)]).await?;
    app.wait_for_records(notices.len() as i64 + 1).await?;
    let day2_lines = vec![
        line("D2-UNNOTIFIED", "credit", "50000.00", &late, Some(&late_account), day2 + chrono::Duration::hours(1)),
        line("D2-DEBIT", "debit", "300.00", &stranger, None, day2 + chrono::Duration::hours(2)),
    ];
    // Bank: 52,100 + 50,000 − 300 = 101,800. Ledger after ingesting the unnotified credit:
    // 52,100 + 10 + 50,000 = 102,110.
    let records = statement_records(&header("ICBC-D2", 21, "52100.00", "101800.00"), &day2_lines, "icbc_test", &app.banks.icbc);
    send_statement(&app, &records).await?;
    let report = wait_for_report(&app, "ICBC-D2").await?;
    assert_eq!(report.status, "discrepancies");
    assert_eq!(report.late_notified, 1);
    let mut kinds: Vec<(String, String)> = report.discrepancies.iter().map(|d| (d.kind.clone(), d.bank_serial.clone())).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("closing_balance_mismatch".into(), String::new()),
            ("late_notified".into(), "D2-UNNOTIFIED".into()),
            ("missing_from_statement".into(), "D2-NOTIFIED".into()),
            ("unknown_debit".into(), "D2-DEBIT".into()),
        ]
    );
    assert_eq!((report.bank_closing_fen, report.ledger_closing_fen), (10_180_000, 10_211_000));
    let mismatch = report.discrepancies.iter().find(|d| d.kind == "closing_balance_mismatch").expect("listed");
    assert_eq!(mismatch.amount_fen, 10_180_000 - 10_211_000, "bank minus ledger");
    assert!(app.client.deposit_status("RECON", &late).await?.satisfied, "the unnotified credit was matched like a notice");
    let flagged: bool = sqlx::query_scalar("SELECT late_notified FROM ledger.credit_notices WHERE bank_serial = 'D2-UNNOTIFIED'").fetch_one(&app.pool).await?;
    assert!(flagged);

    // Listed by centre and date; the discrepancies are published on ledger.events.
    let listed = app
        .client
        .grpc
        .clone()
        .list_reconciliation_reports(app.client.operator(pb::ListReconciliationReportsRequest {
            centre_id: CENTRE.into(),
            from_date: "2026-11-01".into(),
            to_date: "2026-11-30".into(),
        }))
        .await?
        .into_inner();
    assert_eq!(listed.reports.iter().map(|r| r.statement_id.as_str()).collect::<Vec<_>>(), vec!["ICBC-D2", "ICBC-D1"]);
    let published: i64 =
        // Only events: dead-letter copies may be a prefix of a refused record, not JSON.
        sqlx::query_scalar(
            "SELECT count(*) FROM ledger.outbox
             WHERE (CASE WHEN topic = $1 THEN convert_from(payload, 'UTF8')::jsonb ->> 'type' END) = 'reconciliation.discrepancy'",
        )
        .bind(app.settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS))
        .fetch_one(&app.pool)
            .await?;
    assert_eq!(published, 4);

    // Every part sent matches the published statement schema; every event the event schema.
    let statement_schema = schema("bank.statement.v1.json");
    for part in parts.iter().chain(&records) {
        let value: serde_json::Value = serde_json::from_slice(&part.value)?;
        assert!(statement_schema.is_valid(&value), "a part does not match bank.statement.v1.json");
    }
    assert!(assert_events_match_schema(&app.pool).await? > 2100);

    let verification = verify::verify(&app.pool).await?;
    assert!(verification.ok(), "{:?}", verification.violations);
    Ok(())
}
