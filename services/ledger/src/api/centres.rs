//! Centres, their collection accounts and rates, calendar overrides and holdings.

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, identifier, invalid, printable};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, LedgerApi, Reply, STAFF};
use crate::domain::centres::{holdings, AnnualRate, OverrideKind, Overrides, RefundRules};
use crate::domain::refund_triggers::{RefundPeriod, RefundTrigger, Regime};
use crate::store::centres::{self as store, AccountRegistered, CentreRegistered, NewBankAccount};

/// A centre to register, as converted from its request.
struct NewCentre<'a> {
    code: CentreCode,
    name: &'a str,
    parent: Option<CentreCode>,
    rules: RefundRules,
}

impl<'a> TryFrom<&'a pb::RegisterCentreRequest> for NewCentre<'a> {
    type Error = Status;

    fn try_from(body: &'a pb::RegisterCentreRequest) -> Result<Self, Status> {
        let code = fields::centre("centre_id", &body.centre_id)?;
        let name = identifier("name", &body.name)?;
        let parent = if body.parent_centre_id.is_empty() { None } else { Some(fields::centre("parent_centre_id", &body.parent_centre_id)?) };
        let periods = body.refund_periods.iter().map(refund_period).collect::<Result<Vec<_>, Status>>()?;
        let rules = RefundRules::new(body.refund_period_days, body.refund_hold_working_days).map_err(invalid)?.with_periods(periods).map_err(invalid)?;
        Ok(NewCentre { code, name, parent, rules })
    }
}

/// One of `refund_periods`, converted.
fn refund_period(period: &pb::RefundPeriod) -> Result<RefundPeriod, Status> {
    let regime = match pb::Regime::try_from(period.regime) {
        Ok(pb::Regime::Engineering) => Regime::Engineering,
        Ok(pb::Regime::Procurement) => Regime::Procurement,
        _ => return Err(invalid("refund_periods: regime must be REGIME_ENGINEERING or REGIME_PROCUREMENT")),
    };
    let trigger = RefundTrigger::parse(&period.trigger).ok_or_else(|| {
        invalid(format!("refund_periods: trigger {:?} must be withdrawal, award, contract_signed, terminated or failed_tender", period.trigger))
    })?;
    RefundPeriod::new(regime, trigger, period.days).map_err(invalid)
}

pub(super) async fn register_centre(api: &LedgerApi, request: Request<pb::RegisterCentreRequest>) -> Reply<pb::RegisterCentreResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let code = fields::centre("centre_id", &body.centre_id)?;
    caller.authorize(&[Role::Admin], code.as_str())?;
    let centre = NewCentre::try_from(&body)?;
    let parent = centre.parent.as_ref().map(CentreCode::as_str);
    match store::register_centre(&api.pool, centre.code.as_str(), centre.name, parent, &centre.rules).await.map_err(database)? {
        CentreRegistered::Created => Ok(Response::new(pb::RegisterCentreResponse { created: true })),
        CentreRegistered::AlreadyRegistered => Ok(Response::new(pb::RegisterCentreResponse { created: false })),
        CentreRegistered::Conflict => Err(Status::already_exists(format!("centre {code} is registered with another name or parent"))),
        CentreRegistered::UnknownParent => Err(Status::failed_precondition(format!("parent centre {} is not registered", parent.unwrap_or_default()))),
    }
}

pub(super) async fn register_bank_account(api: &LedgerApi, request: Request<pb::RegisterBankAccountRequest>) -> Reply<pb::RegisterBankAccountResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let code = fields::centre("centre_id", &body.centre_id)?;
    caller.authorize(&[Role::Admin], code.as_str())?;
    let bank = identifier("bank", &body.bank)?;
    let account_number = identifier("account_number", &body.account_number)?;
    let key_ref = identifier("signing_key_ref", &body.signing_key_ref)?.to_ascii_lowercase();
    if !api.known_key_refs.contains(&key_ref) {
        return Err(Status::failed_precondition(format!("signing key {key_ref:?} is not configured on the ledger (banks.{key_ref}.scheme / public_key)")));
    }
    let rate = AnnualRate::parse(&body.demand_deposit_rate).map_err(|refused| invalid(refused.message("demand_deposit_rate")))?;
    let account = NewBankAccount { centre_id: code.as_str(), bank, account_number, signing_key_ref: &key_ref, rate };
    match store::register_bank_account(&api.pool, &account).await.map_err(database)? {
        AccountRegistered::Stored { created } => Ok(Response::new(pb::RegisterBankAccountResponse { created })),
        AccountRegistered::OtherCentre => Err(Status::already_exists(format!("account {bank}/{account_number} belongs to another centre"))),
        AccountRegistered::UnknownCentre => Err(Status::failed_precondition(format!("centre {code} is not registered"))),
    }
}

pub(super) async fn set_demand_deposit_rate(api: &LedgerApi, request: Request<pb::SetDemandDepositRateRequest>) -> Reply<pb::SetDemandDepositRateResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Admin], &body.centre_id)?;
    let from = chrono::NaiveDate::parse_from_str(&body.effective_from, "%Y-%m-%d").map_err(|_| invalid("effective_from must be YYYY-MM-DD"))?;
    let rate = AnnualRate::parse(&body.annual_rate).map_err(|refused| invalid(refused.message("annual_rate")))?;
    printable("bank", &body.bank)?;
    printable("account_number", &body.account_number)?;
    if !store::set_rate(&api.pool, &body.centre_id, &body.bank, &body.account_number, from, rate).await.map_err(database)? {
        return Err(Status::not_found("no such collection account in this centre"));
    }
    Ok(Response::new(pb::SetDemandDepositRateResponse {}))
}

/// A centre's overrides from the request, each day at most once.
fn overrides_of(entries: &[pb::CalendarOverride]) -> Result<Overrides, Status> {
    let mut overrides = Overrides::default();
    for entry in entries {
        let day = chrono::NaiveDate::parse_from_str(&entry.date, "%Y-%m-%d")
            .map_err(|_| invalid(format!("override date {:?} must be an ISO date (YYYY-MM-DD)", entry.date)))?;
        let kind = OverrideKind::parse(&entry.kind).ok_or_else(|| invalid(format!("override kind {:?} must be \"holiday\" or \"workday\"", entry.kind)))?;
        overrides.add(day, kind).map_err(invalid)?;
    }
    Ok(overrides)
}

pub(super) async fn set_calendar_overrides(api: &LedgerApi, request: Request<pb::SetCalendarOverridesRequest>) -> Reply<pb::SetCalendarOverridesResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Admin], &body.centre_id)?;
    let overrides = overrides_of(&body.overrides)?;
    if !store::replace_calendar_overrides(&api.pool, &body.centre_id, overrides.days()).await.map_err(database)? {
        return Err(Status::not_found(format!("centre {} is not registered", body.centre_id)));
    }
    let count = i32::try_from(overrides.days().len()).map_err(|_| invalid("too many overrides"))?;
    Ok(Response::new(pb::SetCalendarOverridesResponse { count }))
}

pub(super) async fn get_centre_holdings(api: &LedgerApi, request: Request<pb::GetCentreHoldingsRequest>) -> Reply<pb::CentreHoldings> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    if !store::is_registered(&api.pool, &body.centre_id).await.map_err(database)? {
        return Err(Status::not_found(format!("centre {} is not registered", body.centre_id)));
    }
    let classes = store::liabilities_by_class(&api.pool, &body.centre_id).await.map_err(database)?;
    let held = holdings(classes.iter().map(|(class, fen)| (class.as_str(), *fen)));
    Ok(Response::new(pb::CentreHoldings {
        deposits_fen: held.deposits_fen,
        suspense_fen: held.suspense_fen,
        refund_in_transit_fen: held.refund_in_transit_fen,
        forfeited_fen: held.forfeited_fen,
        total_fen: held.total_fen,
    }))
}
