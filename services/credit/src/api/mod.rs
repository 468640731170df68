//! The CreditService gRPC API (proto/jinfu/credit/v1/credit.proto documents every call, role
//! and error), one module per resource.

mod convert;
mod eligibility;
mod proposals;
mod records;

use std::sync::Arc;

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields;
use jinfu_platform::signing::Signer;
use jinfu_proto::credit::v1 as pb;
use jinfu_proto::credit::v1::credit_service_server::CreditService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::Refusal;

/// Staff who read a centre's proposals and records.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

pub struct CreditApi {
    pub pool: PgPool,
    /// `credit.events` (with the deployment's topic prefix).
    pub events_topic: String,
    /// The service's key: signs eligibility receipts (and, in the relay, its events).
    pub signer: Arc<Signer>,
    pub clock: SharedClock,
}

#[tonic::async_trait]
impl CreditService for CreditApi {
    async fn propose(&self, request: Request<pb::ProposeRequest>) -> Result<Response<pb::Proposal>, Status> {
        proposals::propose(self, request).await
    }

    async fn confirm(&self, request: Request<pb::ConfirmRequest>) -> Result<Response<pb::Record>, Status> {
        proposals::confirm(self, request).await
    }

    async fn dismiss(&self, request: Request<pb::DismissRequest>) -> Result<Response<pb::Proposal>, Status> {
        proposals::dismiss(self, request).await
    }

    async fn list_proposals(&self, request: Request<pb::ListProposalsRequest>) -> Result<Response<pb::ListProposalsResponse>, Status> {
        proposals::list(self, request).await
    }

    async fn apply_for_repair(&self, request: Request<pb::RepairRequest>) -> Result<Response<pb::Record>, Status> {
        records::apply_for_repair(self, request).await
    }

    async fn decide_repair(&self, request: Request<pb::DecideRepairRequest>) -> Result<Response<pb::Record>, Status> {
        records::decide_repair(self, request).await
    }

    async fn list_records(&self, request: Request<pb::ListRecordsRequest>) -> Result<Response<pb::ListRecordsResponse>, Status> {
        records::list(self, request).await
    }

    async fn check_eligibility(&self, request: Request<pb::CheckEligibilityRequest>) -> Result<Response<pb::Eligibility>, Status> {
        eligibility::check(self, request).await
    }
}

impl CreditApi {
    /// The caller, authorised for one of `roles` in `centre_id` (parsed).
    fn caller<T>(request: &Request<T>, roles: &[Role], centre_id: &str) -> Result<(Caller, CentreCode), Status> {
        let centre = fields::centre("centre_id", centre_id)?;
        let caller = Caller::of(request)?;
        caller.authorize(roles, centre.as_str())?;
        Ok((caller, centre))
    }

    async fn begin(&self) -> Result<crate::store::Tx, Status> {
        self.pool.begin().await.map_err(failed("beginning a transaction"))
    }
}

/// INTERNAL for a failure of `what` (logged in full, answered without detail).
fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Status {
    move |error| fields::internal(what, error)
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::PeriodOutOfBounds { .. } | Refusal::NeverDebarred { .. } | Refusal::NotProvince => {
                fields::invalid(format!("{}: {refusal}", refusal.code()))
            }
            Refusal::ProposerIsConfirmer => Status::permission_denied(format!("{}: {refusal}", refusal.code())),
            _ => Status::failed_precondition(format!("{}: {refusal}", refusal.code())),
        }
    }
}
