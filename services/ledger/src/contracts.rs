//! Contracts signed, from the contract service (`contract.events`, signed by its outbox relay
//! and verified before this handler runs, publisher `contract`). Its `contract.signed` is the
//! same fact as the e-trading system's `contract.signed` on `trading.events`, and takes the
//! same path ([`TradingHandler::apply_event`]): the winner's refund, and in an engineering
//! tender everyone's (`crate::domain::refund_triggers`). Deduplicated under the source
//! `kafka:contract.events`, centre and event id; a refund is scheduled only where none exists,
//! so whichever of the two signings arrives second schedules nothing. Every other type on the
//! topic (drafts, invoices, payments) is applied as a no-op. A record that is not a valid
//! envelope, or a `contract.signed` with a missing or malformed field, goes to
//! `contract.events.dlq` with its reason (`malformed_json`, `bad_field`, …).

use chrono::Utc;
use futures::future::BoxFuture;
use jinfu_platform::events::{ContractSignedV1, EnvelopeV1};
use jinfu_platform::topics::CONTRACT_EVENTS;
use sqlx::{Postgres, Transaction};

use crate::consumer::{Handled, RecordHandler};
use crate::domain::tender_events::Source;
use crate::ingest::Record;
use crate::trading::TradingHandler;

/// Applies the contract service's events to sections and refunds.
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
    async fn apply(&self, transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
        let signed = match EnvelopeV1::parse(record).and_then(|envelope| ContractSignedV1::from_envelope(&envelope)) {
            Ok(Some(signed)) => signed,
            Ok(None) => return Ok(Handled::Applied),
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        self.trading.apply_event(transaction, &signed.as_tender_event(), &record.value, Source::Topic(CONTRACT_EVENTS), Utc::now()).await
    }
}
