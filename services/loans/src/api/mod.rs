//! The LoanService gRPC API (proto/jinfu/loan/v1/loan.proto documents every call, role and
//! error), one module per resource. A handler checks who may call it, converts its request once,
//! asks the domain and the store, and maps refusals to a `Status`. Every write is one
//! transaction with the events it causes; calls to the contract and credit services happen
//! before it opens, so a peer that is down leaves nothing half done.

mod applications;
mod convert;
mod disbursement;
mod lenders;
mod views;

use std::sync::Arc;

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields;
use jinfu_proto::loan::v1 as pb;
use jinfu_proto::loan::v1::loan_service_server::LoanService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::{Officer, Refusal};
use crate::peers::{Contracts, Credit};
use crate::store::lenders::{self as lender_store, LenderRow};
use crate::store::loans::{self as loan_store, LoanRow};
use crate::store::Tx;

/// Staff of a centre: they read every loan and the figures.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];
/// Everyone who may read a loan they may see.
const READERS: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin, Role::Supplier, Role::Purchaser, Role::Lender];

pub struct LoanApi {
    pub pool: PgPool,
    /// `loan.events` (with the deployment's topic prefix).
    pub events_topic: String,
    pub clock: SharedClock,
    pub contracts: Arc<Contracts>,
    pub credit: Arc<Credit>,
    /// Days the purchaser has to confirm a receivable.
    pub confirmation_days: i64,
}

#[tonic::async_trait]
impl LoanService for LoanApi {
    async fn onboard_lender(&self, request: Request<pb::Lender>) -> Result<Response<pb::Lender>, Status> {
        lenders::onboard(self, request).await
    }
    async fn set_lender_status(&self, request: Request<pb::SetLenderStatusRequest>) -> Result<Response<pb::Lender>, Status> {
        lenders::set_status(self, request).await
    }
    async fn list_lenders(&self, request: Request<pb::ListLendersRequest>) -> Result<Response<pb::ListLendersResponse>, Status> {
        lenders::list(self, request).await
    }
    async fn publish_product(&self, request: Request<pb::Product>) -> Result<Response<pb::Product>, Status> {
        lenders::publish_product(self, request).await
    }
    async fn list_products(&self, request: Request<pb::ListProductsRequest>) -> Result<Response<pb::ListProductsResponse>, Status> {
        lenders::list_products(self, request).await
    }
    async fn grant_consent(&self, request: Request<pb::ConsentRequest>) -> Result<Response<pb::Consent>, Status> {
        lenders::consent(self, request, true).await
    }
    async fn revoke_consent(&self, request: Request<pb::ConsentRequest>) -> Result<Response<pb::Consent>, Status> {
        lenders::consent(self, request, false).await
    }
    async fn list_opportunities(&self, request: Request<pb::ListOpportunitiesRequest>) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
        lenders::opportunities(self, request).await
    }
    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::Loan>, Status> {
        applications::apply(self, request).await
    }
    async fn withdraw(&self, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
        applications::withdraw(self, request).await
    }
    async fn propose_terms(&self, request: Request<pb::ProposeTermsRequest>) -> Result<Response<pb::Loan>, Status> {
        applications::propose_terms(self, request).await
    }
    async fn approve(&self, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
        applications::approve(self, request).await
    }
    async fn reject(&self, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
        applications::reject(self, request).await
    }
    async fn undo_approval(&self, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
        applications::undo_approval(self, request).await
    }
    async fn disburse(&self, request: Request<pb::DisburseRequest>) -> Result<Response<pb::Loan>, Status> {
        disbursement::disburse(self, request).await
    }
    async fn undo_disbursement(&self, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
        disbursement::undo(self, request).await
    }
    async fn request_confirmation(&self, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
        disbursement::request_confirmation(self, request).await
    }
    async fn confirm_receivable(&self, request: Request<pb::ConfirmReceivableRequest>) -> Result<Response<pb::Loan>, Status> {
        disbursement::confirm_receivable(self, request).await
    }
    async fn write_off(&self, request: Request<pb::DecisionRequest>) -> Result<Response<pb::Loan>, Status> {
        disbursement::write_off(self, request).await
    }
    async fn report_misconduct(&self, request: Request<pb::ReportMisconductRequest>) -> Result<Response<pb::Loan>, Status> {
        disbursement::report_misconduct(self, request).await
    }
    async fn get_loan(&self, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
        views::get(self, request).await
    }
    async fn list_loans(&self, request: Request<pb::ListLoansRequest>) -> Result<Response<pb::ListLoansResponse>, Status> {
        views::list(self, request).await
    }
    async fn credit_line(&self, request: Request<pb::CreditLineRequest>) -> Result<Response<pb::CreditLineAnswer>, Status> {
        views::credit_line(self, request).await
    }
    async fn figures(&self, request: Request<pb::FiguresRequest>) -> Result<Response<pb::FiguresResponse>, Status> {
        views::figures(self, request).await
    }
}

/// Who calls, as far as loans are concerned.
pub(crate) enum Who {
    Staff,
    Supplier(String),
    Purchaser(String),
    Lender(Officer),
}

impl LoanApi {
    /// The caller, authorised for one of `roles` in `centre_id`. A lender's officer may call in
    /// any centre of its lender's province; everyone else as the platform decides.
    async fn caller<T>(&self, request: &Request<T>, roles: &[Role], centre_id: &str) -> Result<(Who, CentreCode), Status> {
        let centre = fields::centre("centre_id", centre_id)?;
        let caller = Caller::of(request)?;
        if !roles.contains(&caller.role) {
            return Err(Status::permission_denied(format!("role {} may not make this call", caller.role)));
        }
        let who = match caller.role {
            Role::Lender => {
                let officer = self.officer(&caller, &centre).await?;
                return Ok((Who::Lender(officer), centre));
            }
            Role::Supplier => Who::Supplier(caller.party.clone()),
            Role::Purchaser => Who::Purchaser(caller.party.clone()),
            _ => Who::Staff,
        };
        caller.authorize(roles, centre.as_str())?;
        Ok((who, centre))
    }

    /// The lender's officer of a `lender` token, its lender onboarded in `centre`'s province.
    async fn officer(&self, caller: &Caller, centre: &CentreCode) -> Result<Officer, Status> {
        let officer = Officer::parse(&caller.party).ok_or_else(|| Status::permission_denied("a lender's token names its party <lender_id>:<officer>"))?;
        let lender = lender_store::lender(&self.pool, &officer.lender_id).await.map_err(failed("reading a lender"))?;
        let province = centre.province();
        let same_province = caller.centre.province() == province;
        match lender {
            Some(lender) if same_province && lender.province_id == province.as_str() => Ok(officer),
            _ => Err(Status::permission_denied(format!("lender {} is not onboarded in province {province}", officer.lender_id))),
        }
    }

    async fn begin(&self) -> Result<Tx, Status> {
        self.pool.begin().await.map_err(failed("beginning a transaction"))
    }

    /// The loan locked for a change, if `who` may see it (else NOT_FOUND, as an unknown id).
    async fn lock_visible(&self, transaction: &mut Tx, who: &Who, centre: &CentreCode, loan_id: &str) -> Result<LoanRow, Status> {
        let loan = loan_store::lock(transaction, centre.as_str(), loan_id).await.map_err(failed("locking a loan"))?;
        loan.filter(|loan| may_see(who, loan)).ok_or_else(|| not_found(loan_id))
    }

    async fn visible(&self, who: &Who, centre: &CentreCode, loan_id: &str) -> Result<LoanRow, Status> {
        let loan = loan_store::get(&self.pool, centre.as_str(), loan_id).await.map_err(failed("reading a loan"))?;
        loan.filter(|loan| may_see(who, loan)).ok_or_else(|| not_found(loan_id))
    }

    async fn lender(&self, lender_id: &str) -> Result<LenderRow, Status> {
        lender_store::lender(&self.pool, lender_id)
            .await
            .map_err(failed("reading a lender"))?
            .ok_or_else(|| Status::not_found(format!("lender {} not found", fields::clip(lender_id, 32))))
    }

    fn today(&self) -> chrono::NaiveDate {
        jinfu_ledger::beijing::date(self.clock.now())
    }
}

/// Whether `who` may see `loan` (its centre already authorised).
fn may_see(who: &Who, loan: &LoanRow) -> bool {
    match who {
        Who::Staff => true,
        Who::Supplier(party) => *party == loan.supplier_uscc,
        Who::Lender(officer) => officer.lender_id == loan.lender_id,
        Who::Purchaser(party) => *party == loan.purchaser_uscc && loan.confirmation.is_some(),
    }
}

fn not_found(loan_id: &str) -> Status {
    Status::not_found(format!("loan {} not found", fields::clip(loan_id, 64)))
}

/// INTERNAL for a failure of `what` (logged in full, answered without detail).
fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Status {
    move |error| fields::internal(what, error)
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::MakerIsChecker => Status::permission_denied(format!("{}: {refusal}", refusal.code())),
            _ => Status::failed_precondition(format!("{}: {refusal}", refusal.code())),
        }
    }
}
