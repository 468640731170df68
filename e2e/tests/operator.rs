//! The operator's side of the platform against a real ledger (PostgreSQL and broker): the admin
//! calls a TradingCentre is reconciled into, the holdings that gate its deletion, and the health
//! the chart's probes and `helm test` ask. The Kubernetes side is tested with kube's mocked API
//! in services/operator/tests/controller.rs.

use std::time::Duration;

use jinfu_e2e::*;
use jinfu_operator::crd::{BankAccount, CalendarOverride, DayKind, RateChange, RefundRules};
use jinfu_operator::platform::{LedgerPlatform, Platform, PlatformError};
use jinfu_platform::auth::TokenKeys;
use jinfu_platform::grpc;
use secrecy::SecretString;

fn account(number: &str, key: &str) -> BankAccount {
    BankAccount {
        bank: "ICBC".into(),
        account_number: number.into(),
        signing_key_ref: key.into(),
        demand_deposit_rate: "0.0035".into(),
        rate_changes: vec![RateChange { effective_from: "2026-07-01".into(), annual_rate: "0.0030".into() }],
    }
}

fn day(date: &str, kind: DayKind) -> CalendarOverride {
    CalendarOverride { date: date.into(), kind, reason: "测试".into() }
}

#[tokio::test]
async fn a_trading_centre_is_registered_through_the_admin_api_and_its_holdings_gate_deletion() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let endpoint = format!("http://{}", app.address);

    // Probes: alive at once; ready once PostgreSQL and the broker have answered.
    assert!(grpc::probe(&endpoint, grpc::LIVENESS, Duration::from_secs(5)).await?);
    wait_until("the ledger reports ready", || async { Ok(grpc::probe(&endpoint, "", Duration::from_secs(5)).await.unwrap_or(false)) }).await?;
    assert!(grpc::probe(&endpoint, "jinfu.ledger.v1.LedgerService", Duration::from_secs(5)).await?);

    let platform = LedgerPlatform::new(&endpoint, TokenKeys::new(&SecretString::from(TOKEN_SECRET))?)?;
    assert_eq!(platform.holdings(CENTRE).await?, None, "an unregistered centre holds nothing");

    // A city before its province: not yet (the operator retries).
    let rules = RefundRules { period_days: Some(7), hold_working_days: Some(2) };
    let early = platform.register_centre(CENTRE, "贵阳市公共资源交易中心", Some("520000"), Some(&rules)).await;
    assert!(matches!(early, Err(PlatformError::NotYet(_))), "{early:?}");
    platform.register_centre("520000", "贵州省公共资源交易中心", None, None).await?;
    platform.register_centre(CENTRE, "贵阳市公共资源交易中心", Some("520000"), Some(&rules)).await?;
    // Idempotent: the next resync changes nothing.
    platform.register_centre(CENTRE, "贵阳市公共资源交易中心", Some("520000"), Some(&rules)).await?;
    let stored: (i32, i32) = sqlx::query_as("SELECT refund_period_days, refund_hold_working_days FROM ledger.centres WHERE centre_id = $1")
        .bind(CENTRE)
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(stored, (7, 2));
    let renamed = platform.register_centre(CENTRE, "另一个名字", Some("520000"), None).await;
    assert!(matches!(renamed, Err(PlatformError::Refused(_))), "{renamed:?}");

    platform.register_bank_account(CENTRE, &account(ICBC_ACCOUNT, "icbc_test")).await?;
    platform.register_bank_account(CENTRE, &account(ICBC_ACCOUNT, "icbc_test")).await?;
    let rates: Vec<(String, String)> =
        sqlx::query_as("SELECT effective_from::text, annual_rate::text FROM ledger.bank_account_rates WHERE account_number = $1 ORDER BY effective_from")
            .bind(ICBC_ACCOUNT)
            .fetch_all(&app.pool)
            .await?;
    assert_eq!(rates.iter().map(|(from, _)| from.as_str()).collect::<Vec<_>>(), vec!["2000-01-01", "2026-07-01"]);
    let bad_rate = BankAccount { demand_deposit_rate: "3.5%".into(), ..account("6222000000000009", "icbc_test") };
    assert!(matches!(platform.register_bank_account(CENTRE, &bad_rate).await, Err(PlatformError::Refused(_))));

    // Calendar overrides replace the centre's set as a whole.
    platform.set_calendar_overrides(CENTRE, &[day("2026-12-31", DayKind::Holiday), day("2027-01-09", DayKind::Workday)]).await?;
    platform.set_calendar_overrides(CENTRE, &[day("2026-12-30", DayKind::Holiday)]).await?;
    let days: Vec<(String, String)> =
        sqlx::query_as("SELECT day::text, kind FROM ledger.calendar_overrides WHERE centre_id = $1 ORDER BY day").bind(CENTRE).fetch_all(&app.pool).await?;
    assert_eq!(days, vec![("2026-12-30".to_owned(), "holiday".to_owned())]);
    let twice = platform.set_calendar_overrides(CENTRE, &[day("2026-12-30", DayKind::Holiday), day("2026-12-30", DayKind::Workday)]).await;
    assert!(matches!(twice, Err(PlatformError::Refused(_))), "{twice:?}");
    let unknown = platform.set_calendar_overrides("520300", &[]).await;
    assert!(matches!(unknown, Err(PlatformError::NotYet(_))), "{unknown:?}");

    // Nothing held yet: deletion would be allowed. A deposit arrives: it would be refused.
    assert_eq!(platform.holdings(CENTRE).await?.map(|held| held.total_fen), Some(0));
    let now = chrono::Utc::now();
    app.client.create_section("OPER", 50_000, now + chrono::Duration::days(2), now + chrono::Duration::days(3), false).await?;
    let bidder = TestBidder::new(801);
    let sub_account = app.client.open_sub_account("OPER", &bidder).await?;
    let stranger = TestBidder::new(802);
    app.send(&[
        sign_icbc(&app.banks, &icbc_notice(&app.banks, "OPER-1", &sub_account, &bidder, "500.00")),
        sign_icbc(&app.banks, &icbc_notice(&app.banks, "OPER-2", &sub_account, &stranger, "12.34")),
    ])
    .await?;
    app.wait_for_records(2).await?;
    let held = platform.holdings(CENTRE).await?.expect("registered");
    assert_eq!((held.deposits_fen, held.suspense_fen, held.total_fen), (50_000, 1_234, 51_234));
    Ok(())
}
