//! The ledger's gRPC API (proto/jinfu/ledger/v1/ledger.proto), one module per resource. Each
//! handler converts its request into domain types once, authorises the caller's role and
//! centre before touching data, calls the domain and `crate::store`, and maps what comes back
//! to a `Status`. There is no SQL here and no business rule.

use std::sync::Arc;

use jinfu_platform::auth::Role;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields;
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_server::LedgerService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

mod calendar;
mod centres;
mod deposits;
mod reconciliation;
mod refunds;
mod sections;
mod sub_accounts;
mod suspense;

pub struct LedgerApi {
    /// The ledger's pool; its search path is the `ledger` schema.
    pub pool: PgPool,
    /// Applies tender events submitted by call, exactly as the topic consumer does.
    pub trading: Arc<crate::trading::TradingHandler>,
    /// Configured bank key references, so an account cannot be registered with a key that
    /// would make every one of its notices fail verification.
    pub known_key_refs: Vec<String>,
    /// Signs payment orders for suspense returns; `None` when no key is configured.
    pub signer: Option<Arc<crate::refunds::OrderSigner>>,
    /// Where the ledger's events go (`ledger.events` with the deployment's prefix).
    pub events_topic: String,
    /// Where payment orders go (`bank.payment-orders` with the deployment's prefix).
    pub orders_topic: String,
    /// "Now" for every rule that depends on the time (sealing, staleness, report windows).
    pub clock: SharedClock,
}

/// Roles of a centre's staff: they may read everything of their centre that is not sealed.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

/// A database error, logged in full and answered without detail.
fn database(error: sqlx::Error) -> Status {
    fields::internal("a database call", error)
}

/// The page size a list call asked for: `default` when zero, never more than `max`.
fn page(limit: u32, default: u32, max: u32) -> i64 {
    i64::from(if limit == 0 { default } else { limit.min(max) })
}

/// An ISO date (YYYY-MM-DD) field, or `default` when empty.
fn date_or(field: &str, text: &str, default: chrono::NaiveDate) -> Result<chrono::NaiveDate, Status> {
    if text.is_empty() {
        return Ok(default);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| fields::invalid(format!("{field} must be an ISO date (YYYY-MM-DD)")))
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn register_centre(&self, request: Request<pb::RegisterCentreRequest>) -> Reply<pb::RegisterCentreResponse> {
        centres::register_centre(self, request).await
    }

    async fn register_bank_account(&self, request: Request<pb::RegisterBankAccountRequest>) -> Reply<pb::RegisterBankAccountResponse> {
        centres::register_bank_account(self, request).await
    }

    async fn create_section(&self, request: Request<pb::CreateSectionRequest>) -> Reply<pb::CreateSectionResponse> {
        sections::create_section(self, request).await
    }

    async fn close_section(&self, request: Request<pb::CloseSectionRequest>) -> Reply<pb::CloseSectionResponse> {
        sections::close_section(self, request).await
    }

    async fn open_sub_account(&self, request: Request<pb::OpenSubAccountRequest>) -> Reply<pb::OpenSubAccountResponse> {
        sub_accounts::open_sub_account(self, request).await
    }

    async fn open_sub_accounts(&self, request: Request<pb::OpenSubAccountsRequest>) -> Reply<pb::OpenSubAccountsResponse> {
        sub_accounts::open_sub_accounts(self, request).await
    }

    async fn get_deposit_status(&self, request: Request<pb::GetDepositStatusRequest>) -> Reply<pb::DepositStatus> {
        deposits::get_deposit_status(self, request).await
    }

    async fn list_section_deposits(&self, request: Request<pb::ListSectionDepositsRequest>) -> Reply<pb::ListSectionDepositsResponse> {
        deposits::list_section_deposits(self, request).await
    }

    async fn get_account_balances(&self, request: Request<pb::GetAccountBalancesRequest>) -> Reply<pb::GetAccountBalancesResponse> {
        deposits::get_account_balances(self, request).await
    }

    async fn list_suspense(&self, request: Request<pb::ListSuspenseRequest>) -> Reply<pb::ListSuspenseResponse> {
        suspense::list_suspense(self, request).await
    }

    async fn bind_suspense_item(&self, request: Request<pb::BindSuspenseItemRequest>) -> Reply<pb::SuspenseResolution> {
        suspense::bind_suspense_item(self, request).await
    }

    async fn return_suspense_item(&self, request: Request<pb::ReturnSuspenseItemRequest>) -> Reply<pb::SuspenseResolution> {
        suspense::return_suspense_item(self, request).await
    }

    async fn list_suspense_resolutions(&self, request: Request<pb::ListSuspenseResolutionsRequest>) -> Reply<pb::ListSuspenseResolutionsResponse> {
        suspense::list_suspense_resolutions(self, request).await
    }

    async fn list_reconciliation_reports(&self, request: Request<pb::ListReconciliationReportsRequest>) -> Reply<pb::ListReconciliationReportsResponse> {
        reconciliation::list_reconciliation_reports(self, request).await
    }

    async fn set_calendar_overrides(&self, request: Request<pb::SetCalendarOverridesRequest>) -> Reply<pb::SetCalendarOverridesResponse> {
        centres::set_calendar_overrides(self, request).await
    }

    async fn load_calendar_year(&self, request: Request<pb::LoadCalendarYearRequest>) -> Reply<pb::LoadCalendarYearResponse> {
        calendar::load_calendar_year(self, request).await
    }

    async fn list_calendar_years(&self, request: Request<pb::ListCalendarYearsRequest>) -> Reply<pb::ListCalendarYearsResponse> {
        calendar::list_calendar_years(self, request).await
    }

    async fn get_centre_holdings(&self, request: Request<pb::GetCentreHoldingsRequest>) -> Reply<pb::CentreHoldings> {
        centres::get_centre_holdings(self, request).await
    }

    async fn get_section(&self, request: Request<pb::GetSectionRequest>) -> Reply<pb::Section> {
        sections::get_section(self, request).await
    }

    async fn get_reconciliation_report(&self, request: Request<pb::GetReconciliationReportRequest>) -> Reply<pb::ReconciliationReport> {
        reconciliation::get_reconciliation_report(self, request).await
    }

    async fn get_ingest_summary(&self, request: Request<pb::GetIngestSummaryRequest>) -> Reply<pb::IngestSummary> {
        reconciliation::get_ingest_summary(self, request).await
    }

    async fn submit_tender_event(&self, request: Request<pb::SubmitTenderEventRequest>) -> Reply<pb::SubmitTenderEventResponse> {
        sections::submit_tender_event(self, request).await
    }

    async fn set_demand_deposit_rate(&self, request: Request<pb::SetDemandDepositRateRequest>) -> Reply<pb::SetDemandDepositRateResponse> {
        centres::set_demand_deposit_rate(self, request).await
    }

    async fn submit_refund_correction(&self, request: Request<pb::SubmitRefundCorrectionRequest>) -> Reply<pb::RefundCorrection> {
        refunds::submit_refund_correction(self, request).await
    }

    async fn verify_refund_correction(&self, request: Request<pb::RefundCorrectionDecision>) -> Reply<pb::RefundCorrection> {
        refunds::verify_refund_correction(self, request).await
    }

    async fn approve_refund_correction(&self, request: Request<pb::RefundCorrectionDecision>) -> Reply<pb::RefundCorrection> {
        refunds::approve_refund_correction(self, request).await
    }

    async fn list_refunds(&self, request: Request<pb::ListRefundsRequest>) -> Reply<pb::ListRefundsResponse> {
        refunds::list_refunds(self, request).await
    }

    async fn list_stale_deposits(&self, request: Request<pb::ListStaleDepositsRequest>) -> Reply<pb::ListStaleDepositsResponse> {
        deposits::list_stale_deposits(self, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_defaults_when_zero_and_is_capped() {
        assert_eq!(page(0, 100, 1000), 100);
        assert_eq!(page(7, 100, 1000), 7);
        assert_eq!(page(5000, 100, 1000), 1000);
    }

    #[test]
    fn an_empty_date_takes_the_default_and_a_bad_one_names_its_field() {
        let default = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).expect("valid");
        assert_eq!(date_or("to_date", "", default).ok(), Some(default));
        assert_eq!(date_or("to_date", "2026-01-02", default).ok(), chrono::NaiveDate::from_ymd_opt(2026, 1, 2));
        let refused = date_or("from_date", "2026/01/02", default).err().map(|status| status.message().to_owned());
        assert_eq!(refused.as_deref(), Some("from_date must be an ISO date (YYYY-MM-DD)"));
    }
}
