//! The services the loans service asks, over gRPC with short-lived service tokens (`admin`,
//! party `jinfu-loans`): the contract service for an application's facts and the lock on the
//! collection account, the credit service for eligibility (with its signed receipt) and for
//! proposals. Both connect lazily, so the service starts while they are down; a call that finds
//! them down answers UNAVAILABLE and stores nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::contract::v1 as contract;
use jinfu_proto::contract::v1::contract_service_client::ContractServiceClient;
use jinfu_proto::credit::v1 as credit;
use jinfu_proto::credit::v1::credit_service_client::CreditServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::domain::rules::ContractFacts;

/// Who the tokens name.
const PARTY: &str = "jinfu-loans";

fn channel(endpoint: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy())
}

/// A refusal of the peer passes through with its code and text (FAILED_PRECONDITION,
/// NOT_FOUND, INVALID_ARGUMENT); anything else is UNAVAILABLE naming the peer.
fn relay(peer: &'static str) -> impl Fn(Status) -> Status {
    move |status| match status.code() {
        Code::FailedPrecondition | Code::NotFound | Code::InvalidArgument | Code::AlreadyExists => Status::new(status.code(), status.message().to_owned()),
        _ => Status::unavailable(format!("{peer}_unavailable: the {peer} service could not answer: {}", status.message())),
    }
}

/// A contract as an application needs it.
#[derive(Debug, Clone)]
pub struct ContractView {
    pub facts: ContractFacts,
    pub section_id: String,
    pub purchaser_uscc: String,
    /// `award` (drafted, not signed) or `contract` (signed).
    pub basis: &'static str,
}

#[derive(Clone)]
pub struct Contracts {
    client: ContractServiceClient<Channel>,
    keys: TokenKeys,
}

impl Contracts {
    pub fn new(endpoint: &str, keys: TokenKeys) -> anyhow::Result<Contracts> {
        Ok(Contracts { client: ContractServiceClient::new(channel(endpoint)?), keys })
    }

    /// The contract's facts as the contract service states them.
    pub async fn get(&self, centre_id: &str, contract_id: &str) -> Result<ContractView, Status> {
        let asked = contract::ContractRef { centre_id: centre_id.to_owned(), contract_id: contract_id.to_owned() };
        let request = self.keys.request(Role::Admin, centre_id, PARTY, 60, asked)?;
        let found = self.client.clone().get_contract(request).await.map_err(relay("contract"))?.into_inner();
        let status = contract::ContractStatus::try_from(found.status).unwrap_or(contract::ContractStatus::Unspecified);
        let regime = match contract::Regime::try_from(found.regime) {
            Ok(contract::Regime::Engineering) => "engineering",
            _ => "procurement",
        };
        let sme = !matches!(contract::Scale::try_from(found.supplier_scale), Ok(contract::Scale::Large));
        Ok(ContractView {
            facts: ContractFacts {
                centre_id: centre_id.to_owned(),
                contract_id: found.contract_id,
                supplier_uscc: found.supplier_uscc.clone(),
                amount_fen: found.amount_fen,
                regime: regime.to_owned(),
                sme,
                terminated: status == contract::ContractStatus::Terminated,
            },
            section_id: found.section_id,
            purchaser_uscc: found.purchaser_uscc,
            basis: if status == contract::ContractStatus::Active { "contract" } else { "award" },
        })
    }

    /// Sets the collection account to `account` and locks it to `lock_ref`.
    pub async fn lock(&self, centre_id: &str, contract_id: &str, account: contract::CollectionAccount, lock_ref: &str, reason: String) -> Result<(), Status> {
        let asked = contract::LockCollectionAccountRequest {
            centre_id: centre_id.to_owned(),
            contract_id: contract_id.to_owned(),
            account: Some(account),
            lock_ref: lock_ref.to_owned(),
            reason,
        };
        let request = self.keys.request(Role::Admin, centre_id, PARTY, 60, asked)?;
        self.client.clone().lock_collection_account(request).await.map_err(relay("contract"))?;
        Ok(())
    }

    /// Lifts the lock `lock_ref` (nothing when it is not held).
    pub async fn unlock(&self, centre_id: &str, contract_id: &str, lock_ref: &str, reason: String) -> Result<(), Status> {
        let asked = contract::UnlockCollectionAccountRequest {
            centre_id: centre_id.to_owned(),
            contract_id: contract_id.to_owned(),
            lock_ref: lock_ref.to_owned(),
            reason,
        };
        let request = self.keys.request(Role::Admin, centre_id, PARTY, 60, asked)?;
        self.client.clone().unlock_collection_account(request).await.map_err(relay("contract"))?;
        Ok(())
    }
}

/// The credit service's answer, kept on the loan as proof of the check.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub eligible: bool,
    pub text: String,
    pub signature: String,
    pub key_ref: String,
    /// The barring records, "record <id> (<basis>)", for the rejection's reason.
    pub barring: Vec<String>,
}

/// A proposal to the credit service, as stored in `credit_proposals`.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub centre_id: String,
    pub proposal_id: String,
    pub subject_uscc: String,
    /// `loan_default` or `false_materials`.
    pub behaviour: String,
    pub evidence_refs: Vec<String>,
    pub summary: String,
}

#[derive(Clone)]
pub struct Credit {
    client: CreditServiceClient<Channel>,
    keys: TokenKeys,
}

impl Credit {
    pub fn new(endpoint: &str, keys: TokenKeys) -> anyhow::Result<Credit> {
        Ok(Credit { client: CreditServiceClient::new(channel(endpoint)?), keys })
    }

    /// May `subject` take part in `regime` tenders of `centre_id` at `at`? With the receipt.
    pub async fn check(&self, centre_id: &str, subject: &str, regime: &str, at: DateTime<Utc>) -> Result<Receipt, Status> {
        let regime = if regime == "engineering" { credit::Regime::Engineering } else { credit::Regime::Procurement };
        let asked = credit::CheckEligibilityRequest {
            centre_id: centre_id.to_owned(),
            subject_uscc: subject.to_owned(),
            regime: regime as i32,
            at: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        };
        let request = self.keys.request(Role::Admin, centre_id, PARTY, 60, asked)?;
        let answer = self.client.clone().check_eligibility(request).await.map_err(|status| {
            Status::unavailable(format!("credit_unavailable: the credit service could not say whether the supplier is eligible: {}", status.message()))
        })?;
        let answer = answer.into_inner();
        Ok(Receipt {
            eligible: answer.eligible,
            barring: answer.barring.iter().map(|record| format!("record {} ({})", record.record_id, record.legal_basis)).collect(),
            text: answer.receipt,
            signature: answer.receipt_signature,
            key_ref: answer.receipt_key_ref,
        })
    }

    /// Hands `proposal` to the credit service (idempotent there on its id).
    pub async fn propose(&self, proposal: &Proposal) -> Result<(), Status> {
        let behaviour = if proposal.behaviour == "false_materials" { credit::Behaviour::FalseMaterials } else { credit::Behaviour::LoanDefault };
        let asked = credit::ProposeRequest {
            centre_id: proposal.centre_id.clone(),
            proposal_id: proposal.proposal_id.clone(),
            subject_uscc: proposal.subject_uscc.clone(),
            behaviour: behaviour as i32,
            source: format!("loans:{}", proposal.behaviour),
            evidence_refs: proposal.evidence_refs.clone(),
            summary: proposal.summary.clone(),
            regime: credit::Regime::Unspecified as i32,
        };
        let request = self.keys.request(Role::Admin, &proposal.centre_id, PARTY, 60, asked)?;
        match self.client.clone().propose(request).await {
            Ok(_) => Ok(()),
            // The same id with other content: it is there already; nothing more to deliver.
            Err(status) if status.code() == Code::AlreadyExists => Ok(()),
            Err(status) => Err(relay("credit")(status)),
        }
    }
}
