//! Bounds on what a caller sends, against the real ledger (issue 13, "Bounds"): text the
//! database cannot store and instants outside its range are refused as INVALID_ARGUMENT naming
//! the field, never reported as an internal database error; a token that lives for centuries is
//! refused.

use chrono::{Duration, Utc};
use jinfu_e2e::*;
use jinfu_platform::auth::{Role, TokenKeys, TokenLifetimes};
use jinfu_proto::ledger::v1 as pb;
use secrecy::SecretString;

/// Asserts `status` is INVALID_ARGUMENT and its message names `field`.
fn assert_names_field(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {status:?}");
    assert!(status.message().contains(field), "the message names {field}: {status:?}");
}

#[tokio::test]
async fn a_nul_in_a_section_id_and_a_deadline_in_the_year_minus_200000_are_invalid_arguments_naming_the_field() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let now = Utc::now();
    app.client.create_section("S-1", 5_000_000, now + Duration::days(1), now + Duration::days(2), false).await?;

    // Year -200000: chrono holds it, PostgreSQL's timestamptz does not.
    let year_minus_200000 = prost_types::Timestamp { seconds: -6_373_281_168_000, nanos: 0 };
    let request = pb::CreateSectionRequest {
        centre_id: CENTRE.into(),
        section_id: "S-ANCIENT".into(),
        name: "远古标段".into(),
        regime: pb::Regime::Procurement as i32,
        required_deposit_fen: 5_000_000,
        deposit_deadline: Some(year_minus_200000),
        bid_opening_time: Some(prost_types::Timestamp { seconds: (now + Duration::days(2)).timestamp(), nanos: 0 }),
        bank: "ICBC".into(),
        account_number: ICBC_ACCOUNT.into(),
        basic_account_required: false,
    };
    let refused = app.client.grpc.clone().create_section(app.client.operator(request)).await.expect_err("an ancient deadline is refused");
    assert_names_field(&refused, "deposit_deadline");

    let bidder = TestBidder::new(1);
    let open = pb::OpenSubAccountRequest {
        centre_id: CENTRE.into(),
        section_id: "S\u{0}1".into(),
        bidder_uscc: bidder.uscc.clone(),
        bidder_name: bidder.name.clone(),
        basic_account: bidder.basic_account.clone(),
    };
    let refused = app.client.grpc.clone().open_sub_account(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, open)).await.expect_err("a NUL is refused");
    assert_names_field(&refused, "section_id");

    let get = pb::GetSectionRequest { centre_id: CENTRE.into(), section_id: "S-1\u{0}".into() };
    let refused = app.client.grpc.clone().get_section(app.client.operator(get)).await.expect_err("a NUL is refused");
    assert_names_field(&refused, "section_id");

    let status = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: "S-1\u{0}".into(), bidder_uscc: bidder.uscc.clone() };
    let refused =
        app.client.grpc.clone().get_deposit_status(app.client.as_role(Role::Bidder, CENTRE, &bidder.uscc, status)).await.expect_err("a NUL is refused");
    assert_names_field(&refused, "section_id");

    // Nothing else changed: the good section is still there and answers.
    let get = pb::GetSectionRequest { centre_id: CENTRE.into(), section_id: "S-1".into() };
    assert_eq!(app.client.grpc.clone().get_section(app.client.operator(get)).await?.into_inner().section_id, "S-1");
    Ok(())
}

#[tokio::test]
async fn a_token_expiring_in_the_year_2999_is_unauthenticated() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // An issuer configured without a sane bound, as the one the outside test used.
    let unbounded = TokenLifetimes { service_max_seconds: i64::from(i32::MAX) * 100, person_max_seconds: i64::from(i32::MAX) * 100 };
    let careless = TokenKeys::with_lifetimes(&SecretString::from(TOKEN_SECRET), unbounded)?;
    let until_2999 = 32_472_144_000 - Utc::now().timestamp();
    let request = careless.request(Role::Admin, CENTRE, "admin", until_2999, pb::GetIngestSummaryRequest { centre_id: CENTRE.into() })?;
    let refused = app.client.grpc.clone().get_ingest_summary(request).await.expect_err("a token for centuries is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // A token the issuer mints is accepted.
    app.client.grpc.clone().get_ingest_summary(app.client.admin(pb::GetIngestSummaryRequest { centre_id: CENTRE.into() })).await?;
    Ok(())
}

#[tokio::test]
async fn a_rate_with_more_decimal_places_than_its_numeric_12_8_column_keeps_is_an_invalid_argument_naming_the_field() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let stored_rates = || async {
        let rates: Vec<String> =
            sqlx::query_scalar("SELECT annual_rate::text FROM ledger.bank_account_rates WHERE account_number = $1 ORDER BY effective_from")
                .bind(ICBC_ACCOUNT)
                .fetch_all(&app.pool)
                .await?;
        anyhow::Ok(rates)
    };
    let before = stored_rates().await?;

    // 0.999999999 is below 1, but numeric(12, 8) rounds it to 1, which the column refuses.
    let register = pb::RegisterBankAccountRequest {
        centre_id: CENTRE.into(),
        bank: "ICBC".into(),
        account_number: ICBC_ACCOUNT.into(),
        signing_key_ref: "icbc_test".into(),
        demand_deposit_rate: "0.999999999".into(),
    };
    let refused = app.client.grpc.clone().register_bank_account(app.client.admin(register)).await.expect_err("nine decimal places are refused");
    assert_names_field(&refused, "demand_deposit_rate");
    assert!(refused.message().contains("8 decimal places") && refused.message().contains("up to but not including 1"), "the limits: {refused:?}");

    // 0.000000001 would be stored silently as 0.
    let set = pb::SetDemandDepositRateRequest {
        centre_id: CENTRE.into(),
        bank: "ICBC".into(),
        account_number: ICBC_ACCOUNT.into(),
        effective_from: "2026-07-01".into(),
        annual_rate: "0.000000001".into(),
    };
    let refused = app.client.grpc.clone().set_demand_deposit_rate(app.client.admin(set.clone())).await.expect_err("nine decimal places are refused");
    assert_names_field(&refused, "annual_rate");
    assert!(refused.message().contains("8 decimal places"), "the limits: {refused:?}");
    assert_eq!(stored_rates().await?, before, "nothing stored");

    // Eight places are kept exactly.
    let eight = pb::SetDemandDepositRateRequest { annual_rate: "0.00000001".into(), ..set };
    app.client.grpc.clone().set_demand_deposit_rate(app.client.admin(eight)).await?;
    assert_eq!(stored_rates().await?.last().map(String::as_str), Some("0.00000001"));
    Ok(())
}
