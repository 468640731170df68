//! The working-day calendar deadlines are computed on: the national calendar shipped with
//! Jinfu, plus every year the ledger has loaded since (`LoadCalendarYear`, `ledger calendar
//! load`), asked of the ledger over gRPC (`ListCalendarYears`) at start and every refresh
//! interval — one calendar for the whole platform, owned by the ledger. When the ledger cannot be
//! reached the calendar in hand is kept (at worst the shipped one) and the failure is logged; a
//! deadline in a year nobody loaded is never guessed: it stays pending (NULL) until the sweeper
//! dates it with a calendar that has the year.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::NaiveDate;
use jinfu_ledger::calendar::{Calendar, YearData};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::ledger::v1 as ledger;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};
use tracing::{info, warn};

/// The calendar in force, shared by the API, the consumer and the sweeper.
#[derive(Debug, Clone)]
pub struct SharedCalendar(Arc<RwLock<Calendar>>);

impl SharedCalendar {
    pub fn new(calendar: Calendar) -> SharedCalendar {
        SharedCalendar(Arc::new(RwLock::new(calendar)))
    }

    /// A copy of the calendar in force.
    pub fn current(&self) -> Calendar {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn replace(&self, calendar: Calendar) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = calendar;
    }
}

/// The ledger's calendar API.
#[derive(Clone)]
pub struct LedgerCalendar {
    client: LedgerServiceClient<Channel>,
    keys: TokenKeys,
    /// The centre of the service token (`admin`, party `jinfu-contract`).
    centre_id: String,
}

impl LedgerCalendar {
    pub fn new(endpoint: &str, keys: TokenKeys, centre_id: &str) -> anyhow::Result<LedgerCalendar> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy();
        Ok(LedgerCalendar { client: LedgerServiceClient::new(channel), keys, centre_id: centre_id.to_owned() })
    }

    /// The shipped calendar with every year the ledger loaded.
    pub async fn fetch(&self) -> anyhow::Result<Calendar> {
        let request = self.keys.request(Role::Admin, &self.centre_id, "jinfu-contract", 60, ledger::ListCalendarYearsRequest {})?;
        let years = self.client.clone().list_calendar_years(request).await?.into_inner().years;
        let mut calendar = Calendar::china();
        for year in years.iter().filter(|year| year.origin == "loaded") {
            let days =
                |texts: &[String]| -> anyhow::Result<Vec<NaiveDate>> { texts.iter().map(|text| Ok(NaiveDate::parse_from_str(text, "%Y-%m-%d")?)).collect() };
            let data = YearData::new(year.year, &days(&year.holidays)?, &days(&year.make_up_workdays)?)?;
            calendar = calendar.with_year(&data);
        }
        Ok(calendar)
    }
}

/// Every `interval` until `shutdown`: the ledger's calendar into `shared`.
pub async fn run_refresh(shared: SharedCalendar, source: LedgerCalendar, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut years: Vec<i32> = shared.current().years().collect();
    loop {
        match source.fetch().await {
            Ok(calendar) => {
                let now: Vec<i32> = calendar.years().collect();
                if now != years {
                    info!(years = ?now, "working-day calendar refreshed from the ledger");
                    years = now;
                }
                shared.replace(calendar);
            }
            Err(error) => warn!(error = %format!("{error:#}"), "asking the ledger for its calendar failed; keeping the calendar in hand"),
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(interval) => {},
        }
    }
}
