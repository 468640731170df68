//! The national working-day calendar: loading a year from the State Council's notice (admin of
//! a province centre) and listing the years in force.

use chrono::NaiveDate;
use jinfu_ledger::calendar::{Calendar, YearData};
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, invalid};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, LedgerApi, Reply, STAFF};
use crate::domain::calendar as domain;
use crate::store::calendar as store;
use crate::trading::{load_calendar_year as load, LoadYearError};

/// A year's data as converted from its request.
struct Load<'a> {
    data: YearData,
    source: &'a str,
}

impl<'a> TryFrom<&'a pb::LoadCalendarYearRequest> for Load<'a> {
    type Error = Status;

    fn try_from(body: &'a pb::LoadCalendarYearRequest) -> Result<Self, Status> {
        let dates = |field: &str, texts: &[String]| -> Result<Vec<NaiveDate>, Status> {
            texts
                .iter()
                .map(|text| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map_err(|_| invalid(format!("calendar_inconsistent: {field} {text:?} is not an ISO date (YYYY-MM-DD)")))
                })
                .collect()
        };
        let holidays = dates("holidays", &body.holidays)?;
        let workdays = dates("make_up_workdays", &body.make_up_workdays)?;
        let data = YearData::new(body.year, &holidays, &workdays).map_err(|error| invalid(format!("calendar_inconsistent: {error}")))?;
        let source = domain::source(&body.source).map_err(invalid)?;
        Ok(Load { data, source })
    }
}

pub(super) async fn load_calendar_year(api: &LedgerApi, request: Request<pb::LoadCalendarYearRequest>) -> Reply<pb::LoadCalendarYearResponse> {
    let caller = Caller::of(&request)?;
    if caller.role != Role::Admin || !caller.centre.is_province() {
        return Err(Status::permission_denied("only an admin of a province centre may load a calendar year"));
    }
    let body = request.into_inner();
    let year = Load::try_from(&body)?;
    let now = api.clock.now();
    match load(&api.pool, Some(&api.trading.calendar), &year.data, year.source, &caller.party, now, &api.events_topic).await {
        Ok(loaded) => Ok(Response::new(pb::LoadCalendarYearResponse {
            outcome: loaded.outcome.code().to_owned(),
            load_id: loaded.load_id,
            refunds_scheduled: i64::try_from(loaded.refunds_scheduled).unwrap_or(i64::MAX),
        })),
        Err(LoadYearError::Refused(refusal)) => Err(Status::failed_precondition(refusal.to_string())),
        Err(LoadYearError::Failed(error)) => Err(fields::internal("loading a calendar year", error)),
    }
}

pub(super) async fn list_calendar_years(api: &LedgerApi, request: Request<pb::ListCalendarYearsRequest>) -> Reply<pb::ListCalendarYearsResponse> {
    let caller = Caller::of(&request)?;
    if !STAFF.contains(&caller.role) {
        return Err(Status::permission_denied(format!("role {} may not make this call", caller.role)));
    }
    let loaded = store::loaded_years(&api.pool).await.map_err(database)?;
    let pending = store::pending_count(&api.pool).await.map_err(database)?;
    let calendar = api.trading.calendar.current();
    let today = jinfu_ledger::beijing::date(api.clock.now());
    let years = listing(&loaded)
        .into_iter()
        .map(|(year, entry)| match entry {
            Some(loaded) => pb::CalendarYear {
                year,
                origin: "loaded".into(),
                source: loaded.source.clone(),
                loaded_by: loaded.loaded_by.clone(),
                loaded_at: Some(fields::timestamp(loaded.loaded_at)),
                holiday_count: i32::try_from(loaded.data.holidays().count()).unwrap_or(i32::MAX),
                make_up_workday_count: i32::try_from(loaded.data.make_up_workdays().count()).unwrap_or(i32::MAX),
                holidays: loaded.data.holidays().map(|day| day.to_string()).collect(),
                make_up_workdays: loaded.data.make_up_workdays().map(|day| day.to_string()).collect(),
            },
            None => pb::CalendarYear { year, origin: "seed".into(), source: "compiled-in data".into(), ..Default::default() },
        })
        .collect();
    Ok(Response::new(pb::ListCalendarYearsResponse {
        years,
        covered_until: calendar.covered_until(today).map(|day| day.to_string()).unwrap_or_default(),
        days_left: calendar.days_left(today),
        refunds_pending_calendar: pending,
    }))
}

/// Every year of the calendar in order, with its loaded entry or `None` for a seed year.
pub fn listing(loaded: &[store::LoadedYear]) -> Vec<(i32, Option<&store::LoadedYear>)> {
    let mut years: std::collections::BTreeMap<i32, Option<&store::LoadedYear>> = Calendar::china().years().map(|year| (year, None)).collect();
    for entry in loaded {
        years.insert(entry.data.year(), Some(entry));
    }
    years.into_iter().collect()
}
