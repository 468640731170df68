//! The GuaranteeService gRPC API (proto/jinfu/guarantee/v1/guarantee.proto documents every call,
//! role and error), one module per resource. A handler converts its request into domain types
//! once, checks who may call it, asks the domain and the store, and maps refusals to a
//! `Status`. Every write is one transaction; an event it causes is written to the outbox in the
//! same transaction.

mod applications;
mod claims;
mod figures;
mod guarantees;
mod issuers;
mod products;

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields::{self, invalid};
use jinfu_platform::outbox::OutboxRows;
use jinfu_proto::guarantee::v1 as pb;
use jinfu_proto::guarantee::v1::guarantee_service_server::GuaranteeService;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::applications::ApplicationRefusal;
use crate::domain::claims::ClaimRefusal;
use crate::domain::guarantees::IssuanceRefusal;
use crate::domain::issuers::IssuerRefusal;
use crate::domain::products::ProductRefusal;
use crate::domain::sealing::{Party, Sealed, Viewer};
use crate::domain::GuaranteeType;
use crate::fraud::FraudSettings;
use crate::seal::Sealer;
use crate::sections::Sections;
use crate::store::Tx;

/// Operators, supervisors and administrators of a centre.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

pub struct GuaranteeApi {
    /// The service's own schema.
    pub pool: PgPool,
    /// Seals what names a bidder until bid opening.
    pub sealer: Sealer,
    /// The ledger's sections.
    pub sections: Sections,
    /// `guarantee.events` (with the deployment's topic prefix).
    pub events_topic: String,
    /// Fraud-warning thresholds.
    pub fraud: FraudSettings,
    /// Where "now" is read for the domain's decisions.
    pub clock: SharedClock,
    /// The credit service, asked whether a bidder may take part; `None`: not deployed.
    pub credit: Option<crate::credit::Credit>,
    /// Answers that could reveal a sealed guarantee leave at a multiple of this after arrival
    /// (`sealing.answer_floor_ms`).
    pub answer_floor: std::time::Duration,
}

/// Waits until the first multiple of `floor` after `started`: the time an answer takes then
/// says nothing about the work behind it (unless the work outlasts several floors).
async fn at_floor(floor: std::time::Duration, started: tokio::time::Instant) {
    if floor.is_zero() {
        return;
    }
    let periods = started.elapsed().as_nanos() / floor.as_nanos() + 1;
    tokio::time::sleep_until(started + floor * u32::try_from(periods).unwrap_or(u32::MAX)).await;
}

#[tonic::async_trait]
impl GuaranteeService for GuaranteeApi {
    async fn register_issuer(&self, request: Request<pb::RegisterIssuerRequest>) -> Result<Response<pb::Issuer>, Status> {
        issuers::register(self, request).await
    }

    async fn set_issuer_state(&self, request: Request<pb::SetIssuerStateRequest>) -> Result<Response<pb::Issuer>, Status> {
        issuers::set_state(self, request).await
    }

    async fn set_onboarding_paused(&self, request: Request<pb::SetOnboardingPausedRequest>) -> Result<Response<pb::SetOnboardingPausedResponse>, Status> {
        issuers::set_onboarding_paused(self, request).await
    }

    async fn list_issuers(&self, request: Request<pb::ListIssuersRequest>) -> Result<Response<pb::ListIssuersResponse>, Status> {
        issuers::list(self, request).await
    }

    async fn register_product(&self, request: Request<pb::Product>) -> Result<Response<pb::Product>, Status> {
        products::register(self, request).await
    }

    async fn list_eligible_products(&self, request: Request<pb::ListEligibleProductsRequest>) -> Result<Response<pb::ListEligibleProductsResponse>, Status> {
        products::list_eligible(self, request).await
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::Application>, Status> {
        applications::apply(self, request).await
    }

    async fn cancel_application(&self, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
        applications::cancel(self, request).await
    }

    async fn list_applications(&self, request: Request<pb::ListApplicationsRequest>) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        applications::list(self, request).await
    }

    async fn get_application(&self, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
        applications::get(self, request).await
    }

    async fn reject_application(&self, request: Request<pb::RejectApplicationRequest>) -> Result<Response<pb::Application>, Status> {
        applications::reject(self, request).await
    }

    async fn issue_guarantee(&self, request: Request<pb::IssueGuaranteeRequest>) -> Result<Response<pb::Guarantee>, Status> {
        guarantees::issue(self, request).await
    }

    async fn verify_guarantee(&self, request: Request<pb::VerifyGuaranteeRequest>) -> Result<Response<pb::Verification>, Status> {
        let started = tokio::time::Instant::now();
        let answer = guarantees::verify(self, request).await;
        at_floor(self.answer_floor, started).await;
        answer
    }

    async fn list_section_guarantees(&self, request: Request<pb::ListSectionGuaranteesRequest>) -> Result<Response<pb::ListSectionGuaranteesResponse>, Status> {
        guarantees::list_of_section(self, request).await
    }

    async fn submit_claim(&self, request: Request<pb::SubmitClaimRequest>) -> Result<Response<pb::Claim>, Status> {
        let started = tokio::time::Instant::now();
        let answer = claims::submit(self, request).await;
        at_floor(self.answer_floor, started).await;
        answer
    }

    async fn decide_claim(&self, request: Request<pb::DecideClaimRequest>) -> Result<Response<pb::Claim>, Status> {
        claims::decide(self, request).await
    }

    async fn record_claim_payment(&self, request: Request<pb::RecordClaimPaymentRequest>) -> Result<Response<pb::Claim>, Status> {
        claims::record_payment(self, request).await
    }

    async fn list_claims(&self, request: Request<pb::ListClaimsRequest>) -> Result<Response<pb::ListClaimsResponse>, Status> {
        claims::list(self, request).await
    }

    async fn list_fraud_warnings(&self, request: Request<pb::ListFraudWarningsRequest>) -> Result<Response<pb::ListFraudWarningsResponse>, Status> {
        figures::list_fraud_warnings(self, request).await
    }

    async fn get_figures(&self, request: Request<pb::GetFiguresRequest>) -> Result<Response<pb::Figures>, Status> {
        figures::get(self, request).await
    }
}

impl GuaranteeApi {
    async fn begin(&self) -> Result<Tx, Status> {
        self.pool.begin().await.map_err(failed("beginning a transaction"))
    }

    /// Opens what was sealed for the row `row_id`.
    fn open<T: DeserializeOwned>(&self, row_id: &str, sealed: &[u8]) -> Result<T, Status> {
        self.sealer.open(row_id, sealed).map_err(failed("opening sealed data"))
    }

    /// Seals `value` for the row `row_id`.
    fn seal<T: serde::Serialize>(&self, row_id: &str, value: &T) -> Result<Vec<u8>, Status> {
        self.sealer.seal(row_id, value).map_err(failed("sealing"))
    }

    /// Adds an event on `guarantee.events` to `outbox`.
    fn event(&self, outbox: &mut OutboxRows, key: &str, event_type: &str, centre_id: &str, data: serde_json::Value) {
        outbox.push_event(&self.events_topic, key, event_type, centre_id, data);
    }
}

/// INTERNAL for a failure of `what` (logged in full, answered without detail).
fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Status {
    move |error| fields::internal(what, error)
}

/// The `centre_id` of a request.
fn centre(text: &str) -> Result<CentreCode, Status> {
    fields::centre("centre_id", text)
}

/// The `centre_id` of a province-wide request (issuers and products).
fn province(text: &str) -> Result<CentreCode, Status> {
    let code = centre(text)?;
    if !code.is_province() {
        return Err(invalid(format!("issuers and products are province-wide: centre_id must be a province centre (e.g. {}), not {code}", code.province())));
    }
    Ok(code)
}

/// A request's guarantee type.
fn guarantee_type(value: i32) -> Result<GuaranteeType, Status> {
    GuaranteeType::try_from(value).map_err(|unknown| invalid(unknown.to_string()))
}

/// The caller as sealing sees it; `of_centre`: whether it may access the section's centre.
fn viewer(caller: &Caller, of_centre: bool) -> Viewer<'_> {
    let party = match caller.role {
        Role::Bidder => Party::Bidder(&caller.party),
        Role::Issuer => Party::Issuer(&caller.party),
        Role::Operator | Role::Supervisor | Role::Admin => Party::Staff,
        Role::Bank | Role::Purchaser | Role::Supplier | Role::Lender => Party::Other,
    };
    Viewer { party, of_centre }
}

/// The client's address: the last `x-forwarded-for` entry (appended by the ingress), else the
/// peer.
fn client_ip<T>(request: &Request<T>) -> Option<String> {
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        // The ingress appends the address it saw: the rightmost entry. Earlier entries are
        // whatever the client sent.
        .and_then(|value| value.rsplit(',').next())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 64);
    forwarded.or_else(|| request.remote_addr().map(|address| address.ip().to_string()))
}

fn date_text(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

impl From<IssuerRefusal> for Status {
    fn from(refusal: IssuerRefusal) -> Status {
        Status::failed_precondition(refusal.to_string())
    }
}

impl From<ProductRefusal> for Status {
    fn from(refusal: ProductRefusal) -> Status {
        match refusal {
            ProductRefusal::CentreNotServed { .. } | ProductRefusal::RegimeNotServed { .. } => Status::failed_precondition(refusal.to_string()),
            ProductRefusal::PremiumOverflow(_) => fields::internal("computing a premium", refusal),
            ProductRefusal::Limits
            | ProductRefusal::UnknownRegime(_)
            | ProductRefusal::CentreOutsideProvince { .. }
            | ProductRefusal::OtherType { .. }
            | ProductRefusal::AmountOutsideLimits(_) => invalid(refusal.to_string()),
        }
    }
}

impl From<ApplicationRefusal> for Status {
    fn from(refusal: ApplicationRefusal) -> Status {
        match refusal {
            ApplicationRefusal::SectionClosed(_)
            | ApplicationRefusal::NotTheWinner { .. }
            | ApplicationRefusal::DeadlinePassed { .. }
            | ApplicationRefusal::NotCancellable { .. }
            | ApplicationRefusal::NotPending { .. } => Status::failed_precondition(refusal.to_string()),
            ApplicationRefusal::EndsBeforeOpening { .. }
            | ApplicationRefusal::ContractAmountsMissing
            | ApplicationRefusal::AmountMissing
            | ApplicationRefusal::AboveContractShare { .. }
            | ApplicationRefusal::AboveRequirement { .. }
            | ApplicationRefusal::BelowRequirement { .. } => invalid(refusal.to_string()),
        }
    }
}

impl From<IssuanceRefusal> for Status {
    fn from(refusal: IssuanceRefusal) -> Status {
        match refusal {
            IssuanceRefusal::DepositsClosed { .. } => Status::failed_precondition(refusal.to_string()),
            IssuanceRefusal::ValidityShort { .. } | IssuanceRefusal::NotInForceAtOpening { .. } | IssuanceRefusal::ForeignNumber { .. } => {
                invalid(refusal.to_string())
            }
        }
    }
}

impl From<ClaimRefusal> for Status {
    fn from(refusal: ClaimRefusal) -> Status {
        match refusal {
            ClaimRefusal::NotInForce { .. } | ClaimRefusal::WrongState { .. } => Status::failed_precondition(refusal.to_string()),
            ClaimRefusal::ReasonDoesNotFit { .. } | ClaimRefusal::Amount(_) | ClaimRefusal::Payment(_) => invalid(refusal.to_string()),
        }
    }
}

impl From<Sealed> for Status {
    fn from(sealed: Sealed) -> Status {
        Status::failed_precondition(sealed.to_string())
    }
}
