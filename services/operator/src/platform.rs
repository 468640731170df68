//! What the operator asks of the platform, as a trait (the reconciler's view), and its gRPC
//! implementation against the ledger's admin API. Tests of the reconciler script the Kubernetes
//! side with kube's mocked client and give it a recording implementation of this trait.

use std::future::Future;
use std::time::Duration;

use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::crd::{BankAccount, CalendarOverride, DayKind, RefundRules};

/// A failed platform call, sorted by what the reconciler does about it.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The spec asks for something the platform refuses for good (a conflicting name, a bad
    /// rate): fixed only by editing the resource.
    #[error("the platform refused the spec: {0}")]
    Refused(String),
    /// Something the spec depends on is not there yet (the parent centre): retried.
    #[error("not yet possible: {0}")]
    NotYet(String),
    /// The platform could not be reached or failed: retried with back-off.
    #[error("platform unavailable: {0}")]
    Unavailable(String),
}

impl From<Status> for PlatformError {
    fn from(status: Status) -> Self {
        let message = format!("{}: {}", status.code(), status.message());
        match status.code() {
            Code::InvalidArgument | Code::AlreadyExists | Code::PermissionDenied | Code::Unauthenticated => PlatformError::Refused(message),
            Code::FailedPrecondition | Code::NotFound => PlatformError::NotYet(message),
            _ => PlatformError::Unavailable(message),
        }
    }
}

/// Money a centre still holds, in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holdings {
    pub deposits_fen: i64,
    pub suspense_fen: i64,
    pub refund_in_transit_fen: i64,
    pub forfeited_fen: i64,
    pub total_fen: i64,
}

/// The platform's admin API as the reconciler uses it. Every call is idempotent.
pub trait Platform: Send + Sync + 'static {
    fn register_centre(
        &self,
        centre_id: &str,
        name: &str,
        parent: Option<&str>,
        refunds: Option<&RefundRules>,
    ) -> impl Future<Output = Result<(), PlatformError>> + Send;
    fn register_bank_account(&self, centre_id: &str, account: &BankAccount) -> impl Future<Output = Result<(), PlatformError>> + Send;
    fn set_calendar_overrides(&self, centre_id: &str, overrides: &[CalendarOverride]) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// `None` when the centre was never registered (nothing can be held).
    fn holdings(&self, centre_id: &str) -> impl Future<Output = Result<Option<Holdings>, PlatformError>> + Send;
}

/// The ledger's gRPC admin API, called with short-lived admin tokens the operator mints for the
/// centre it is reconciling.
pub struct LedgerPlatform {
    /// A lazily connected channel: the operator starts even while the ledger is down.
    client: LedgerServiceClient<Channel>,
    /// Mints the admin tokens.
    keys: TokenKeys,
}

impl LedgerPlatform {
    pub fn new(endpoint: &str, keys: TokenKeys) -> anyhow::Result<LedgerPlatform> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(30)).connect_lazy();
        Ok(LedgerPlatform { client: LedgerServiceClient::new(channel), keys })
    }

    fn request<T>(&self, centre_id: &str, body: T) -> Result<Request<T>, PlatformError> {
        self.keys.request(Role::Admin, centre_id, "jinfu-operator", 300, body).map_err(|status| PlatformError::Refused(status.message().to_owned()))
    }
}

impl Platform for LedgerPlatform {
    async fn register_centre(&self, centre_id: &str, name: &str, parent: Option<&str>, refunds: Option<&RefundRules>) -> Result<(), PlatformError> {
        let body = pb::RegisterCentreRequest {
            centre_id: centre_id.to_owned(),
            name: name.to_owned(),
            parent_centre_id: parent.unwrap_or_default().to_owned(),
            refund_period_days: refunds.and_then(|rules| rules.period_days),
            refund_hold_working_days: refunds.and_then(|rules| rules.hold_working_days),
            // Manifests set no per-regime, per-trigger periods yet: the ledger keeps what it has.
            refund_periods: Vec::new(),
        };
        self.client.clone().register_centre(self.request(centre_id, body)?).await?;
        Ok(())
    }

    async fn register_bank_account(&self, centre_id: &str, account: &BankAccount) -> Result<(), PlatformError> {
        let body = pb::RegisterBankAccountRequest {
            centre_id: centre_id.to_owned(),
            bank: account.bank.clone(),
            account_number: account.account_number.clone(),
            signing_key_ref: account.signing_key_ref.clone(),
            demand_deposit_rate: account.demand_deposit_rate.clone(),
        };
        self.client.clone().register_bank_account(self.request(centre_id, body)?).await?;
        for change in &account.rate_changes {
            let body = pb::SetDemandDepositRateRequest {
                centre_id: centre_id.to_owned(),
                bank: account.bank.clone(),
                account_number: account.account_number.clone(),
                effective_from: change.effective_from.clone(),
                annual_rate: change.annual_rate.clone(),
            };
            self.client.clone().set_demand_deposit_rate(self.request(centre_id, body)?).await?;
        }
        Ok(())
    }

    async fn set_calendar_overrides(&self, centre_id: &str, overrides: &[CalendarOverride]) -> Result<(), PlatformError> {
        let body = pb::SetCalendarOverridesRequest {
            centre_id: centre_id.to_owned(),
            overrides: overrides
                .iter()
                .map(|day| pb::CalendarOverride {
                    date: day.date.clone(),
                    kind: match day.kind {
                        DayKind::Holiday => "holiday".into(),
                        DayKind::Workday => "workday".into(),
                    },
                })
                .collect(),
        };
        self.client.clone().set_calendar_overrides(self.request(centre_id, body)?).await?;
        Ok(())
    }

    async fn holdings(&self, centre_id: &str) -> Result<Option<Holdings>, PlatformError> {
        let body = pb::GetCentreHoldingsRequest { centre_id: centre_id.to_owned() };
        match self.client.clone().get_centre_holdings(self.request(centre_id, body)?).await {
            Ok(response) => {
                let held = response.into_inner();
                Ok(Some(Holdings {
                    deposits_fen: held.deposits_fen,
                    suspense_fen: held.suspense_fen,
                    refund_in_transit_fen: held.refund_in_transit_fen,
                    forfeited_fen: held.forfeited_fen,
                    total_fen: held.total_fen,
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }
}

/// A shared platform (tests keep a handle to what the reconciler was given).
impl<P: Platform> Platform for std::sync::Arc<P> {
    async fn register_centre(&self, centre_id: &str, name: &str, parent: Option<&str>, refunds: Option<&RefundRules>) -> Result<(), PlatformError> {
        self.as_ref().register_centre(centre_id, name, parent, refunds).await
    }
    async fn register_bank_account(&self, centre_id: &str, account: &BankAccount) -> Result<(), PlatformError> {
        self.as_ref().register_bank_account(centre_id, account).await
    }
    async fn set_calendar_overrides(&self, centre_id: &str, overrides: &[CalendarOverride]) -> Result<(), PlatformError> {
        self.as_ref().set_calendar_overrides(centre_id, overrides).await
    }
    async fn holdings(&self, centre_id: &str) -> Result<Option<Holdings>, PlatformError> {
        self.as_ref().holdings(centre_id).await
    }
}
