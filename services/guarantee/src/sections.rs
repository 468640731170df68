//! What the guarantee service knows of a tender section, asked of the ledger (which owns
//! sections) over gRPC with a short-lived service token. Whether a section's bids are opened —
//! the ledger records the `bids.opened` event of trading.events — decides whether its
//! guarantees are still sealed.

use std::time::Duration;

use chrono::DateTime;
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_proto::ledger::v1 as ledger;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

pub use crate::domain::Section;

/// The ledger's section API.
#[derive(Clone)]
pub struct Sections {
    /// Lazily connected: the service starts while the ledger is down.
    client: LedgerServiceClient<Channel>,
    /// Mints the service's tokens (role admin of the section's centre, party `jinfu-guarantee`).
    keys: TokenKeys,
}

impl Sections {
    pub fn new(endpoint: &str, keys: TokenKeys) -> anyhow::Result<Sections> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).connect_lazy();
        Ok(Sections { client: LedgerServiceClient::new(channel), keys })
    }

    /// `None` when the ledger has no such section; an error when the ledger cannot answer.
    pub async fn get(&self, centre_id: &str, section_id: &str) -> Result<Option<Section>, Status> {
        let request = self.keys.request(
            Role::Admin,
            centre_id,
            "jinfu-guarantee",
            60,
            ledger::GetSectionRequest { centre_id: centre_id.to_owned(), section_id: section_id.to_owned() },
        )?;
        match self.client.clone().get_section(request).await {
            Ok(response) => {
                let section = response.into_inner();
                let time = |value: Option<prost_types::Timestamp>| {
                    value
                        .and_then(|value| DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).unwrap_or(0)))
                        .ok_or_else(|| Status::internal("the ledger sent a section without its times"))
                };
                Ok(Some(Section {
                    centre_id: section.centre_id,
                    section_id: section.section_id,
                    regime: section.regime,
                    required_fen: section.required_deposit_fen,
                    deposit_deadline: time(section.deposit_deadline)?,
                    bid_opening_time: time(section.bid_opening_time)?,
                    open: section.open,
                    bids_opened: section.bids_opened_at.is_some(),
                    winner_uscc: Some(section.winner_uscc).filter(|winner| !winner.is_empty()),
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(Status::unavailable(format!("the ledger could not describe section {section_id}: {}", status.message()))),
        }
    }

    /// The section, or NOT_FOUND.
    pub async fn require(&self, centre_id: &str, section_id: &str) -> Result<Section, Status> {
        self.get(centre_id, section_id).await?.ok_or_else(|| Status::not_found(format!("centre {centre_id} has no section {section_id}")))
    }
}
