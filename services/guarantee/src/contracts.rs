//! Contracts signed, from the contract service (`contract.events`, signed by its outbox relay
//! and verified before this handler runs, publisher `contract`). Its `contract.signed` is the
//! same fact as the e-trading system's `contract.signed` on `trading.events` and takes the same
//! path ([`TradingHandler::apply_event`]): the section's bid guarantees still in force are
//! released, one `guarantee.released` each. Deduplicated under the source
//! `kafka:contract.events`, centre and event id; whichever of the two signings arrives second
//! finds nothing in force and publishes nothing. Every other type on the topic is applied as a
//! no-op; a record that is not a valid envelope, or a `contract.signed` with a missing or
//! malformed field, goes to `contract.events.dlq` with its reason (`malformed_json`,
//! `bad_field`, …).

use futures::future::BoxFuture;
use jinfu_platform::consumer::{Handled, Record, RecordHandler};
use jinfu_platform::events::{ContractSignedV1, EnvelopeV1};
use jinfu_platform::topics::CONTRACT_EVENTS;
use sqlx::{Postgres, Transaction};

use crate::domain::tender_events::topic_source;
use crate::lifecycle::TradingHandler;
use crate::store::Tx;

/// Applies the contract service's events to guarantees.
pub struct ContractHandler {
    /// The tender-event path a signing is applied on.
    pub trading: TradingHandler,
}

impl RecordHandler for ContractHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

impl ContractHandler {
    async fn apply(&self, transaction: &mut Tx, record: &Record) -> anyhow::Result<Handled> {
        let signed = match EnvelopeV1::parse(record).and_then(|envelope| ContractSignedV1::from_envelope(&envelope)) {
            Ok(Some(signed)) => signed,
            Ok(None) => return Ok(Handled::Applied),
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        self.trading.apply_event(transaction, &signed.as_tender_event(), &topic_source(CONTRACT_EVENTS)).await
    }
}
