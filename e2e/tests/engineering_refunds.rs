//! Engineering tenders (招标投标法实施条例 art. 55, 57): the award refunds nobody, because a
//! runner-up may still be awarded when the winner refuses to sign; the contract's signing
//! refunds every bidder, due after the centre's engineering period in calendar days.

use std::collections::HashMap;

use chrono::NaiveDate;

use jinfu_e2e::*;
use jinfu_proto::ledger::v1 as pb;
use serde_json::json;

async fn refund_statuses(app: &TestApp, section: &str) -> anyhow::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT bidder_uscc, status FROM ledger.refunds WHERE section_id = $1").bind(section).fetch_all(&app.pool).await?;
    Ok(rows.into_iter().collect())
}

/// Waits until `count` tender events other than `bids.opened` are applied to `section`.
async fn events_applied(app: &TestApp, section: &str, count: i64) -> anyhow::Result<()> {
    wait_until(&format!("{count} events applied to {section}"), || async {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.trading_events WHERE section_id = $1 AND type <> 'bids.opened'")
            .bind(section)
            .fetch_one(&app.pool)
            .await?;
        Ok(applied == count)
    })
    .await
}

/// (trigger, due date, Beijing date of the trigger) of each refund of `section`.
async fn refund_dates(app: &TestApp, section: &str) -> anyhow::Result<Vec<(String, NaiveDate, NaiveDate)>> {
    Ok(sqlx::query_as("SELECT trigger, due_on, (triggered_at AT TIME ZONE 'Asia/Shanghai')::date FROM ledger.refunds WHERE section_id = $1")
        .bind(section)
        .fetch_all(&app.pool)
        .await?)
}

#[tokio::test]
async fn an_engineering_award_refunds_nobody_and_the_contract_signing_refunds_everyone_after_the_engineering_period() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let calendar = jinfu_ledger::calendar::Calendar::china();

    // The law's default: 5 calendar days after the signing.
    let bidders = paid_engineering_section(&app, "ENG", 3, 801).await?;
    let winner = &bidders[0];
    trading_event(&app, "ENG", "award.announced", json!({ "winner_uscc": winner.uscc })).await?;
    events_applied(&app, "ENG", 1).await?;
    assert_eq!(refund_statuses(&app, "ENG").await?, HashMap::new(), "the losers of an engineering tender wait for the contract");

    trading_event(&app, "ENG", "contract.signed", json!({ "winner_uscc": winner.uscc })).await?;
    wait_until("every bidder's refund", || async { Ok(refund_statuses(&app, "ENG").await?.len() == 3) }).await?;
    let rows = refund_dates(&app, "ENG").await?;
    assert_eq!(rows.len(), 3);
    for (trigger, due_on, day) in rows {
        assert_eq!(trigger, "contract_signed");
        assert_eq!(due_on, calendar.add_calendar_days(day, 5)?, "engineering: 5 calendar days");
    }

    // A centre's own engineering period for the signing; procurement keeps the general one.
    let request = pb::RegisterCentreRequest {
        centre_id: CENTRE.into(),
        name: "贵阳市公共资源交易中心".into(),
        parent_centre_id: "520000".into(),
        refund_periods: vec![pb::RefundPeriod { regime: pb::Regime::Engineering as i32, trigger: "contract_signed".into(), days: 3 }],
        ..Default::default()
    };
    app.client.grpc.clone().register_centre(app.client.admin(request)).await?;
    let bidders = paid_engineering_section(&app, "ENG3", 2, 811).await?;
    trading_event(&app, "ENG3", "contract.signed", json!({ "winner_uscc": bidders[0].uscc })).await?;
    wait_until("both refunds", || async { Ok(refund_statuses(&app, "ENG3").await?.len() == 2) }).await?;
    for (trigger, due_on, day) in refund_dates(&app, "ENG3").await? {
        assert_eq!(trigger, "contract_signed");
        assert_eq!(due_on, calendar.add_calendar_days(day, 3)?, "the centre's engineering period");
    }

    // An engineering award has no period to set.
    let refused = pb::RegisterCentreRequest {
        centre_id: CENTRE.into(),
        name: "贵阳市公共资源交易中心".into(),
        parent_centre_id: "520000".into(),
        refund_periods: vec![pb::RefundPeriod { regime: pb::Regime::Engineering as i32, trigger: "award".into(), days: 5 }],
        ..Default::default()
    };
    let status = app.client.grpc.clone().register_centre(app.client.admin(refused)).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("refund_periods"), "{}", status.message());
    Ok(())
}
