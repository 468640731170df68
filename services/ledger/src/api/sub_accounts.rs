//! Sub-accounts: a bidder opens its own; an operator opens one or many for bidders.

use jinfu_ledger::ids::Uscc;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, identifier, invalid};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, LedgerApi, Reply};
use crate::domain::sections::NotAccepting;
use crate::store::sub_accounts::{self as store, NewSubAccount, Opened};

/// Most sub-accounts opened in one call.
const SUB_ACCOUNTS_PER_CALL_MAX: usize = 1000;

/// The request's account once its fields are valid; authorisation is the caller's concern.
fn new_sub_account<'a>(
    centre_id: &str,
    section_id: &str,
    bidder_uscc: &str,
    bidder_name: &'a str,
    basic_account: &'a str,
) -> Result<NewSubAccount<'a>, Status> {
    let centre = fields::centre("centre_id", centre_id)?;
    let bidder = Uscc::parse(bidder_uscc).map_err(|error| invalid(error.to_string()))?;
    let section_id = identifier("section_id", section_id)?;
    Ok(NewSubAccount { centre, section_id: section_id.to_owned(), bidder, bidder_name, basic_account })
}

fn names<'a>(bidder_name: &'a str, basic_account: &'a str) -> Result<(&'a str, &'a str), Status> {
    Ok((identifier("bidder_name", bidder_name)?, identifier("basic_account", basic_account)?))
}

pub(super) async fn open_sub_account(api: &LedgerApi, request: Request<pb::OpenSubAccountRequest>) -> Reply<pb::OpenSubAccountResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let account = new_sub_account(&body.centre_id, &body.section_id, &body.bidder_uscc, "", "")?;
    caller.authorize(&[Role::Bidder, Role::Operator], account.centre.as_str())?;
    if caller.role == Role::Bidder && caller.party != account.bidder.as_str() {
        return Err(Status::permission_denied("a bidder may open a sub-account only for itself"));
    }
    let (bidder_name, basic_account) = names(&body.bidder_name, &body.basic_account)?;
    let account = NewSubAccount { bidder_name, basic_account, ..account };
    let code = account.centre.clone();
    match store::open(&api.pool, std::slice::from_ref(&account)).await.map_err(database)? {
        Opened::Accounts(mut numbers) => {
            let (sub_account_number, created) = numbers.pop().ok_or_else(|| Status::internal("no sub-account was opened"))?;
            Ok(Response::new(pb::OpenSubAccountResponse { sub_account_number, created }))
        }
        Opened::NotAccepting(_, NotAccepting::Unknown) => Err(Status::not_found(format!("section {} not found in centre {code}", body.section_id))),
        Opened::NotAccepting(_, NotAccepting::Closed) => Err(Status::failed_precondition(format!("section {} is closed", body.section_id))),
        Opened::Raced => Err(Status::aborted("a concurrent request opened this sub-account; retry to read it")),
    }
}

pub(super) async fn open_sub_accounts(api: &LedgerApi, request: Request<pb::OpenSubAccountsRequest>) -> Reply<pb::OpenSubAccountsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    if body.accounts.len() > SUB_ACCOUNTS_PER_CALL_MAX {
        return Err(invalid("at most 1000 sub-accounts per call"));
    }
    // Everything is validated and authorised before the database is touched.
    let mut accounts = Vec::with_capacity(body.accounts.len());
    for (index, item) in body.accounts.iter().enumerate() {
        let at = |status: Status| Status::new(status.code(), format!("accounts[{index}]: {}", status.message()));
        let code = fields::centre("centre_id", &item.centre_id).map_err(at)?;
        caller.authorize(&[Role::Operator], code.as_str()).map_err(at)?;
        let account = new_sub_account(&item.centre_id, &item.section_id, &item.bidder_uscc, "", "").map_err(at)?;
        let (bidder_name, basic_account) = names(&item.bidder_name, &item.basic_account).map_err(at)?;
        accounts.push(NewSubAccount { bidder_name, basic_account, ..account });
    }
    match store::open(&api.pool, &accounts).await.map_err(database)? {
        Opened::Accounts(numbers) => {
            let accounts = numbers.into_iter().map(|(sub_account_number, created)| pb::OpenSubAccountResponse { sub_account_number, created }).collect();
            Ok(Response::new(pb::OpenSubAccountsResponse { accounts }))
        }
        Opened::NotAccepting(index, refusal) => {
            let account = &accounts[index];
            let section = &account.section_id;
            Err(match refusal {
                NotAccepting::Unknown => Status::not_found(format!("accounts[{index}]: section {section} not found in centre {}", account.centre)),
                NotAccepting::Closed => Status::failed_precondition(format!("accounts[{index}]: section {section} is closed")),
            })
        }
        Opened::Raced => Err(Status::aborted("a concurrent request opened some of these sub-accounts; retry to read them")),
    }
}
