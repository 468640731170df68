//! Whether a bidder may take part, asked of the credit service (which keeps debarments) over
//! gRPC with a short-lived service token, at the moment of applying. Fail closed: when the
//! credit service cannot answer, the application is refused UNAVAILABLE (a ban that does not
//! reach the moment of bidding protects nobody). Every answer is asked afresh (no cache yet).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::credit::v1 as credit;
use jinfu_proto::credit::v1::credit_service_client::CreditServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// The credit service's eligibility check.
#[derive(Clone)]
pub struct Credit {
    /// Lazily connected: the service starts while the credit service is down.
    client: CreditServiceClient<Channel>,
    keys: TokenKeys,
}

impl Credit {
    pub fn new(endpoint: &str, keys: TokenKeys) -> anyhow::Result<Credit> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(5)).connect_lazy();
        Ok(Credit { client: CreditServiceClient::new(channel), keys })
    }

    /// `Ok` when `bidder` may take part in a tender of `centre_id` and `regime` (`procurement`,
    /// `engineering`) at `at`; FAILED_PRECONDITION `barred: …` naming the records and their end
    /// when debarred; UNAVAILABLE when the credit service cannot answer.
    pub async fn require_eligible(&self, centre_id: &str, bidder: &str, regime: &str, at: DateTime<Utc>) -> Result<(), Status> {
        let regime = match regime {
            "procurement" => credit::Regime::Procurement,
            "engineering" => credit::Regime::Engineering,
            _ => credit::Regime::Unspecified,
        };
        let asked = credit::CheckEligibilityRequest {
            centre_id: centre_id.to_owned(),
            subject_uscc: bidder.to_owned(),
            regime: regime as i32,
            at: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        };
        let request = self.keys.request(Role::Admin, centre_id, "jinfu-guarantee", 60, asked)?;
        let answer = self
            .client
            .clone()
            .check_eligibility(request)
            .await
            .map_err(|status| {
                Status::unavailable(format!("credit_unavailable: the credit service could not say whether the bidder may take part: {}", status.message()))
            })?
            .into_inner();
        if answer.eligible {
            return Ok(());
        }
        let records: Vec<String> = answer
            .barring
            .iter()
            .map(|record| {
                let until = record.debarred_until.as_ref().and_then(|until| DateTime::from_timestamp(until.seconds, 0)).map(jinfu_ledger::beijing::rfc3339);
                format!("record {} ({}) until {}", record.record_id, record.legal_basis, until.unwrap_or_default())
            })
            .collect();
        Err(Status::failed_precondition(format!("barred: the bidder is debarred from this tender: {}", records.join("; "))))
    }
}
