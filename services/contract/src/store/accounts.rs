//! The collection account's changes (supplementary agreements) and the lender's lock on it.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;
use crate::domain::contracts::CollectionAccount;
use crate::store::contracts::ContractRow;

/// What a change does to the account and its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The supplier (or an operator for it) names another account.
    Change,
    /// A lender's account, locked to the loan `lock_ref`.
    Lock,
    /// The loan is closed: the lock is lifted (the account stays the lender's until changed).
    Unlock,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Action::Change => "change",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
        }
    }
}

/// One change as it is recorded.
pub struct Change<'a> {
    pub action: Action,
    pub account: &'a CollectionAccount,
    pub lock_ref: Option<&'a str>,
    pub reason: &'a str,
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

/// Records `change` on `contract` (locked by the caller's transaction) and sets the account and
/// the lock it leaves.
pub async fn record(transaction: &mut Tx, contract: &ContractRow, change: &Change<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO account_changes (centre_id, contract_id, sequence, action, bank_name, account_no, account_name, previous_account_no, lock_ref,
                                      reason, changed_at, changed_by)
         SELECT $1, $2, coalesce(max(sequence), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM account_changes WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(&contract.centre_id)
    .bind(&contract.contract_id)
    .bind(change.action.code())
    .bind(&change.account.bank_name)
    .bind(&change.account.account_no)
    .bind(&change.account.account_name)
    .bind(&contract.account_no)
    .bind(change.lock_ref)
    .bind(change.reason)
    .bind(change.at)
    .bind(change.by)
    .execute(&mut **transaction)
    .await?;
    let locked_by = match change.action {
        Action::Lock => change.lock_ref,
        Action::Change | Action::Unlock => None,
    };
    sqlx::query("UPDATE contracts SET bank_name = $3, account_no = $4, account_name = $5, account_locked_by = $6 WHERE centre_id = $1 AND contract_id = $2")
        .bind(&contract.centre_id)
        .bind(&contract.contract_id)
        .bind(&change.account.bank_name)
        .bind(&change.account.account_no)
        .bind(&change.account.account_name)
        .bind(locked_by)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// One change as read back: when, action, account number, lock, reason.
type ChangeRow = (DateTime<Utc>, String, String, Option<String>, String);

/// The changes as shown: "<date> <action> <account_no>[ lock <ref>]: <reason>", oldest first.
pub async fn history(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT changed_at, action, account_no, lock_ref, reason FROM account_changes WHERE centre_id = $1 AND contract_id = $2 ORDER BY sequence",
    )
    .bind(centre_id)
    .bind(contract_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, action, account_no, lock_ref, reason)| {
            let lock = lock_ref.map(|lock| format!(" lock {lock}")).unwrap_or_default();
            format!("{} {action} {account_no}{lock}: {reason}", jinfu_ledger::beijing::date(at))
        })
        .collect())
}
