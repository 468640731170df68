//! The ledger's schema against the core's definitions.

use jinfu_e2e::*;
use jinfu_ledger::AccountKey;

#[tokio::test]
async fn account_keys_built_in_sql_are_the_keys_the_core_prints() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    // Awkward but legal parts: Chinese text, dashes, digits with a check letter.
    let (bank, number, section, bidder) = ("ICBC", "2402-0010 29200012345", "标段-1", "91520100MA6DJ0XX1X");
    let (bank_key, deposit_key, suspense_key, prefix): (String, String, String, String) = sqlx::query_as(
        "SELECT ledger.bank_account_key($1, $2), ledger.deposit_account_key($3, $4), ledger.suspense_account_key($1, $2), ledger.deposit_account_prefix($3)",
    )
    .bind(bank)
    .bind(number)
    .bind(section)
    .bind(bidder)
    .fetch_one(&app.pool)
    .await?;
    assert_eq!(bank_key, AccountKey::Bank { bank: bank.into(), account_number: number.into() }.to_string());
    let deposit = AccountKey::Deposit { section: section.into(), bidder: bidder.into() };
    assert_eq!(deposit_key, deposit.to_string());
    assert_eq!(suspense_key, AccountKey::Suspense { bank: bank.into(), account_number: number.into() }.to_string());
    assert!(deposit.to_string().starts_with(&prefix) && prefix.ends_with(':') && prefix.len() < deposit_key.len());
    assert_eq!(deposit_key.parse::<AccountKey>()?, deposit);
    Ok(())
}
