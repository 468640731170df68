//! Signed payment records from purchasers' payment systems (`contract.payments`, JSON v1,
//! docs/schemas/contract.payment.v1.json): the same payment the purchaser may record with
//! `RecordPayment`, sent as a Kafka record signed with a key registered for the purchaser
//! (`RegisterPartyKey`; headers `jinfu-signature`, `jinfu-signing-key`). Checked once at the
//! boundary; refusals are dead-lettered with a code and the consumer goes on: `malformed_json`,
//! `oversized`, `unsupported_schema_version`, `bad_field`, `missing_signature`,
//! `unknown_signing_key`, `bad_signature`, `unknown_contract`, `not_the_purchaser`,
//! `payment_id_reused`, and the domain's `overpaid`, `foreign_invoice`. A record repeated (same
//! payment id and content) changes nothing.

use futures::future::BoxFuture;
use jinfu_ledger::Fen;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler, Refused};
use jinfu_platform::events::{parse_v1, Versioned};
use jinfu_platform::signing::{Scheme, VerifyingKey, SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use serde::Deserialize;
use sqlx::{Postgres, Transaction};

use crate::domain::is_uscc;
use crate::payments::{self, NotRecorded, PaymentInput};
use crate::store::{contracts, rules, Tx};

/// A payment record as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentRecordV1 {
    schema_version: i64,
    payment_id: String,
    centre_id: String,
    contract_id: String,
    purchaser_uscc: String,
    paid_on: chrono::NaiveDate,
    allocations: Vec<AllocationV1>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocationV1 {
    invoice_no: String,
    /// Yuan with at most two decimals, as text ("22500.00").
    amount: String,
}

impl Versioned for PaymentRecordV1 {
    fn schema_version(&self) -> i64 {
        self.schema_version
    }
}

pub struct PaymentRecordHandler {
    pub events_topic: String,
    pub clock: SharedClock,
}

impl RecordHandler for PaymentRecordHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

/// The record's payment, or why it is refused.
fn parse(record: &Record, today: chrono::NaiveDate) -> Result<(PaymentRecordV1, PaymentInput), Refused> {
    let sent: PaymentRecordV1 = parse_v1(record)?;
    let bad = |text: String| Refused("bad_field", text);
    if jinfu_ledger::ids::CentreCode::parse(&sent.centre_id).is_err() || !is_uscc(&sent.purchaser_uscc) {
        return Err(bad("centre_id must be a centre code and purchaser_uscc a unified social credit code".into()));
    }
    let mut allocations = Vec::with_capacity(sent.allocations.len());
    for (index, allocation) in sent.allocations.iter().enumerate() {
        let amount = Fen::parse_positive_yuan(&allocation.amount).map_err(|error| bad(format!("allocations[{index}].amount: {error}")))?;
        allocations.push((allocation.invoice_no.clone(), amount));
    }
    let payment = PaymentInput { payment_id: sent.payment_id.clone(), contract_id: sent.contract_id.clone(), paid_on: sent.paid_on, allocations };
    payment.check(today).map_err(bad)?;
    Ok((sent, payment))
}

impl PaymentRecordHandler {
    async fn apply(&self, transaction: &mut Tx, record: &Record) -> anyhow::Result<Handled> {
        let now = self.clock.now();
        let (sent, payment) = match parse(record, jinfu_ledger::beijing::date(now)) {
            Ok(parsed) => parsed,
            Err(refusal) => return Ok(Handled::Refused(refusal)),
        };
        let header = |name: &str| record.headers.iter().find(|(key, _)| key == name).map(|(_, value)| String::from_utf8_lossy(value).into_owned());
        let (Some(signature), Some(key_ref)) = (header(SIGNATURE_HEADER), header(SIGNING_KEY_HEADER)) else {
            return refused("missing_signature", format!("{SIGNATURE_HEADER} and {SIGNING_KEY_HEADER} headers are required"));
        };
        let Some((scheme, public_key)) = rules::party_key(&mut **transaction, &sent.centre_id, &sent.purchaser_uscc, &key_ref).await? else {
            return refused(
                "unknown_signing_key",
                format!("no key {:?} is registered for purchaser {}", jinfu_platform::fields::clip(&key_ref, 64), sent.purchaser_uscc),
            );
        };
        let key = VerifyingKey::from_hex(scheme.parse::<Scheme>()?, &public_key)?;
        if key.verify(&record.value, &signature).is_err() {
            return refused("bad_signature", format!("the record does not verify against key {key_ref} of purchaser {}", sent.purchaser_uscc));
        }
        let Some(contract) = contracts::lock(transaction, &sent.centre_id, &sent.contract_id).await? else {
            return refused("unknown_contract", format!("centre {} has no contract {}", sent.centre_id, jinfu_platform::fields::clip(&sent.contract_id, 64)));
        };
        if contract.purchaser_uscc != sent.purchaser_uscc {
            return refused("not_the_purchaser", format!("{} is not the purchaser of contract {}", sent.purchaser_uscc, contract.contract_id));
        }
        let by = format!("kafka:{}", sent.purchaser_uscc);
        Ok(match payments::record(transaction, &self.events_topic, &contract, &payment, &by, now).await? {
            Ok(_) => Handled::Applied,
            Err(NotRecorded::Refused(refusal)) => Handled::Refused(Refused(refusal.code(), refusal.to_string())),
            Err(NotRecorded::IdReused) => {
                Handled::Refused(Refused("payment_id_reused", format!("payment {} was recorded with other content", payment.payment_id)))
            }
        })
    }
}
