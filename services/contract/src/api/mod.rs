//! The ContractService gRPC API (proto/jinfu/contract/v1/contract.proto documents every call,
//! role and error), one module per resource. A handler checks who may call it, converts its
//! request into domain types once, asks the domain and the store, and maps refusals to a
//! `Status`. Every write is one transaction with the events it causes.

mod acceptances;
mod accounts;
mod contracts;
mod convert;
mod invoices;
mod payments;
mod report;
mod rules;

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::fields;
use jinfu_proto::contract::v1 as pb;
use jinfu_proto::contract::v1::contract_service_server::ContractService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::Refusal;
use crate::store::contracts::ContractRow;
use crate::store::Tx;

/// Operators, supervisors and administrators of a centre: they see every contract.
const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];
/// Who may change a contract on the purchaser's behalf.
const PURCHASER_SIDE: &[Role] = &[Role::Purchaser, Role::Operator, Role::Admin];
/// Who may read contracts at all.
const READERS: &[Role] = &[Role::Purchaser, Role::Supplier, Role::Operator, Role::Supervisor, Role::Admin];

pub struct ContractApi {
    /// The service's own schema.
    pub pool: PgPool,
    /// `contract.events` (with the deployment's topic prefix).
    pub events_topic: String,
    /// The working-day calendar (shipped, plus the years the ledger loaded).
    pub calendar: crate::calendar::SharedCalendar,
    /// Where "now" is read for the domain's decisions.
    pub clock: SharedClock,
}

#[tonic::async_trait]
impl ContractService for ContractApi {
    async fn set_centre_rules(&self, request: Request<pb::CentreRules>) -> Result<Response<pb::CentreRules>, Status> {
        rules::set(self, request).await
    }

    async fn get_centre_rules(&self, request: Request<pb::CentreRef>) -> Result<Response<pb::CentreRules>, Status> {
        rules::get(self, request).await
    }

    async fn register_party_key(&self, request: Request<pb::PartyKey>) -> Result<Response<pb::PartyKey>, Status> {
        rules::register_key(self, request).await
    }

    async fn add_lpr_rate(&self, request: Request<pb::LprRate>) -> Result<Response<pb::LprRate>, Status> {
        rules::add_lpr(self, request).await
    }

    async fn draft_contract(&self, request: Request<pb::DraftContractRequest>) -> Result<Response<pb::Contract>, Status> {
        contracts::draft(self, request).await
    }

    async fn get_contract(&self, request: Request<pb::ContractRef>) -> Result<Response<pb::Contract>, Status> {
        contracts::get(self, request).await
    }

    async fn list_contracts(&self, request: Request<pb::ListContractsRequest>) -> Result<Response<pb::ListContractsResponse>, Status> {
        contracts::list(self, request).await
    }

    async fn sign_contract(&self, request: Request<pb::SignContractRequest>) -> Result<Response<pb::Contract>, Status> {
        contracts::sign(self, request).await
    }

    async fn record_disclosure(&self, request: Request<pb::RecordDisclosureRequest>) -> Result<Response<pb::Contract>, Status> {
        contracts::disclose(self, request).await
    }

    async fn amend_contract(&self, request: Request<pb::AmendContractRequest>) -> Result<Response<pb::Contract>, Status> {
        contracts::amend(self, request).await
    }

    async fn terminate_contract(&self, request: Request<pb::TerminateContractRequest>) -> Result<Response<pb::Contract>, Status> {
        contracts::terminate(self, request).await
    }

    async fn change_collection_account(&self, request: Request<pb::ChangeCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
        accounts::change(self, request).await
    }

    async fn lock_collection_account(&self, request: Request<pb::LockCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
        accounts::lock(self, request).await
    }

    async fn unlock_collection_account(&self, request: Request<pb::UnlockCollectionAccountRequest>) -> Result<Response<pb::Contract>, Status> {
        accounts::unlock(self, request).await
    }

    async fn request_acceptance(&self, request: Request<pb::RequestAcceptanceRequest>) -> Result<Response<pb::Acceptance>, Status> {
        acceptances::request(self, request).await
    }

    async fn record_acceptance(&self, request: Request<pb::RecordAcceptanceRequest>) -> Result<Response<pb::Acceptance>, Status> {
        acceptances::record(self, request).await
    }

    async fn submit_invoice(&self, request: Request<pb::SubmitInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        invoices::submit(self, request).await
    }

    async fn object_to_invoice(&self, request: Request<pb::ObjectToInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        invoices::object(self, request).await
    }

    async fn accept_invoice(&self, request: Request<pb::InvoiceRef>) -> Result<Response<pb::Invoice>, Status> {
        invoices::accept(self, request).await
    }

    async fn get_invoice(&self, request: Request<pb::InvoiceRef>) -> Result<Response<pb::Invoice>, Status> {
        invoices::get(self, request).await
    }

    async fn list_invoices(&self, request: Request<pb::ContractRef>) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        invoices::list(self, request).await
    }

    async fn record_payment(&self, request: Request<pb::RecordPaymentRequest>) -> Result<Response<pb::Payment>, Status> {
        payments::record(self, request).await
    }

    async fn overdue_report(&self, request: Request<pb::OverdueReportRequest>) -> Result<Response<pb::OverdueReportResponse>, Status> {
        report::overdue(self, request).await
    }
}

impl ContractApi {
    async fn begin(&self) -> Result<Tx, Status> {
        self.pool.begin().await.map_err(failed("beginning a transaction"))
    }

    /// The caller, authorised for one of `roles` in `centre_id` (parsed).
    fn caller<T>(request: &Request<T>, roles: &[Role], centre_id: &str) -> Result<(Caller, CentreCode), Status> {
        let centre = fields::centre("centre_id", centre_id)?;
        let caller = Caller::of(request)?;
        caller.authorize(roles, centre.as_str())?;
        Ok((caller, centre))
    }

    /// The contract as `caller` may see it: staff see every contract of their centre, a
    /// purchaser or supplier only its own; anything else is NOT_FOUND, as an unknown id is.
    async fn visible(&self, caller: &Caller, centre: &CentreCode, contract_id: &str) -> Result<ContractRow, Status> {
        let contract = crate::store::contracts::get(&self.pool, centre.as_str(), contract_id).await.map_err(failed("reading a contract"))?;
        contract.filter(|contract| may_see(caller, contract)).ok_or_else(|| not_found(contract_id))
    }

    /// The contract locked for a change by `caller` (same visibility as [`Self::visible`]).
    async fn lock_visible(&self, transaction: &mut Tx, caller: &Caller, centre: &CentreCode, contract_id: &str) -> Result<ContractRow, Status> {
        let contract = crate::store::contracts::lock(transaction, centre.as_str(), contract_id).await.map_err(failed("locking a contract"))?;
        contract.filter(|contract| may_see(caller, contract)).ok_or_else(|| not_found(contract_id))
    }

    /// Today in Beijing.
    fn today(&self) -> chrono::NaiveDate {
        jinfu_ledger::beijing::date(self.clock.now())
    }
}

/// Whether `caller` may see `contract` (its centre already authorised).
fn may_see(caller: &Caller, contract: &ContractRow) -> bool {
    match caller.role {
        Role::Purchaser => caller.party == contract.purchaser_uscc,
        Role::Supplier => caller.party == contract.supplier_uscc,
        role => STAFF.contains(&role),
    }
}

fn not_found(contract_id: &str) -> Status {
    Status::not_found(format!("contract {} not found", fields::clip(contract_id, 64)))
}

/// INTERNAL for a failure of `what` (logged in full, answered without detail).
fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Status {
    move |error| fields::internal(what, error)
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        Status::failed_precondition(format!("{}: {refusal}", refusal.code()))
    }
}

fn date_text(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn parse_date(field: &str, text: &str) -> Result<chrono::NaiveDate, Status> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| fields::invalid(format!("{field}: a date YYYY-MM-DD is required")))
}

/// A non-negative amount of fen within the platform's limit.
fn fen(field: &str, value: i64) -> Result<jinfu_ledger::Fen, Status> {
    if !(0..=jinfu_ledger::money::AMOUNT_FEN_MAX).contains(&value) {
        return Err(fields::invalid(format!("{field}: 0 to {} fen", jinfu_ledger::money::AMOUNT_FEN_MAX)));
    }
    Ok(jinfu_ledger::Fen::from_fen(value))
}

/// SHA-256 of a request's canonical description (idempotent repeats).
fn request_hash(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}
