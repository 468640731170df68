//! The collection account: the supplier's supplementary agreements, and the loans service's lock
//! for an open loan (proto: ChangeCollectionAccount, LockCollectionAccount,
//! UnlockCollectionAccount).

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{invalid, reason};
use jinfu_proto::contract::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::contracts::{finish, name, view};
use super::{failed, ContractApi};
use crate::domain::accounts::{decide, Asked, Decision};
use crate::domain::contracts::CollectionAccount;
use crate::domain::ContractStatus;
use crate::events::Events;
use crate::store::accounts::{self as store, Action, Change};

/// Who may name another account: the supplier it is paid to, or an operator for it.
const CHANGERS: &[Role] = &[Role::Supplier, Role::Operator];
/// Who holds locks: the loans service's service token.
const LOCKERS: &[Role] = &[Role::Admin];

fn account(request: Option<&pb::CollectionAccount>) -> Result<CollectionAccount, Status> {
    let account = request.ok_or_else(|| invalid("account is required"))?;
    Ok(CollectionAccount {
        bank_name: name("account.bank_name", &account.bank_name)?,
        account_no: name("account.account_no", &account.account_no)?,
        account_name: name("account.account_name", &account.account_name)?,
    })
}

fn lock_ref(text: &str) -> Result<&str, Status> {
    let valid = (1..=100).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !valid {
        return Err(invalid("lock_ref: 1-100 letters, digits, '-', '_', '.' or ':'"));
    }
    Ok(text)
}

/// What one of the three calls asks, checked.
struct Asking<'a> {
    centre_id: &'a str,
    contract_id: &'a str,
    action: Action,
    /// The account it leaves (for an unlock: the account as it is).
    account: Option<CollectionAccount>,
    lock_ref: Option<&'a str>,
    reason: &'a str,
}

pub(super) async fn change(api: &ContractApi, request: Request<pb::ChangeCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
    let body = request.get_ref();
    let asking = Asking {
        centre_id: &body.centre_id,
        contract_id: &body.contract_id,
        action: Action::Change,
        account: Some(account(body.account.as_ref())?),
        lock_ref: None,
        reason: reason(&body.reason)?,
    };
    apply(api, &request, CHANGERS, asking).await
}

pub(super) async fn lock(api: &ContractApi, request: Request<pb::LockCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
    let body = request.get_ref();
    let asking = Asking {
        centre_id: &body.centre_id,
        contract_id: &body.contract_id,
        action: Action::Lock,
        account: Some(account(body.account.as_ref())?),
        lock_ref: Some(lock_ref(&body.lock_ref)?),
        reason: reason(&body.reason)?,
    };
    apply(api, &request, LOCKERS, asking).await
}

pub(super) async fn unlock(api: &ContractApi, request: Request<pb::UnlockCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
    let body = request.get_ref();
    let asking = Asking {
        centre_id: &body.centre_id,
        contract_id: &body.contract_id,
        action: Action::Unlock,
        account: None,
        lock_ref: Some(lock_ref(&body.lock_ref)?),
        reason: reason(&body.reason)?,
    };
    apply(api, &request, LOCKERS, asking).await
}

async fn apply<T>(api: &ContractApi, request: &Request<T>, roles: &[Role], asking: Asking<'_>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(request, roles, asking.centre_id)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, asking.contract_id).await?;
    let current =
        CollectionAccount { bank_name: contract.bank_name.clone(), account_no: contract.account_no.clone(), account_name: contract.account_name.clone() };
    let account = asking.account.unwrap_or_else(|| current.clone());
    let asked = match (asking.action, asking.lock_ref) {
        (Action::Lock, Some(lock_ref)) => Asked::Lock { lock_ref, same_account: account == current },
        (Action::Unlock, Some(lock_ref)) => Asked::Unlock { lock_ref },
        _ => Asked::Change,
    };
    let status = ContractStatus::parse(&contract.status).unwrap_or(ContractStatus::Terminated);
    if decide(status, contract.account_locked_by.as_deref(), asked)? == Decision::AlreadyDone {
        return Ok(Response::new(view(api, &contract).await?));
    }
    let change = Change { action: asking.action, account: &account, lock_ref: asking.lock_ref, reason: asking.reason, by: &caller.party, at: now };
    store::record(&mut transaction, &contract, &change).await.map_err(failed("changing the collection account"))?;
    let locked_by = if asking.action == Action::Lock { asking.lock_ref } else { None };
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "contract.account_changed",
        json!({
            "contract_id": contract.contract_id, "section_id": contract.section_id, "purchaser_uscc": contract.purchaser_uscc,
            "supplier_uscc": contract.supplier_uscc, "action": asking.action.code(), "bank_name": account.bank_name, "account_no": account.account_no,
            "account_name": account.account_name, "previous_account_no": contract.account_no, "locked_by": locked_by, "reason": asking.reason,
        }),
    );
    let contract = finish(transaction, events, centre.as_str(), &contract.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}
