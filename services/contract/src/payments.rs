//! Recording a payment and allocating it to a contract's invoices: one use case for the
//! purchaser's gRPC call (`RecordPayment`) and the purchaser's signed payment records on
//! `contract.payments` (docs/schemas/contract.payment.v1.json), so both check and apply the same.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::Fen;
use serde_json::json;

use crate::domain::invoices::{after_payment, may_allocate};
use crate::domain::{is_invoice_no, is_reference, InvoiceStatus, Refusal};
use crate::events::{yuan, Events};
use crate::store::contracts::ContractRow;
use crate::store::invoices::{self as store, NewPayment};
use crate::store::Tx;

/// Allocations one payment may carry.
pub const ALLOCATIONS_MAX: usize = 100;

/// A payment as the purchaser reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInput {
    pub payment_id: String,
    pub contract_id: String,
    /// The value date of the transfer.
    pub paid_on: NaiveDate,
    /// Invoice number and amount, in the order given.
    pub allocations: Vec<(String, Fen)>,
}

impl PaymentInput {
    /// Checks the payment's shape on `today`: a reference, a value date not in the future, 1 to
    /// [`ALLOCATIONS_MAX`] allocations to distinct invoice numbers of positive amounts.
    pub fn check(&self, today: NaiveDate) -> Result<(), String> {
        if !is_reference(&self.payment_id) {
            return Err("payment_id: 1-64 letters, digits, '-', '_' or '.'".into());
        }
        if self.paid_on > today {
            return Err("paid_on: not in the future".into());
        }
        if self.allocations.is_empty() || self.allocations.len() > ALLOCATIONS_MAX {
            return Err(format!("allocations: 1 to {ALLOCATIONS_MAX}"));
        }
        let mut seen = BTreeSet::new();
        for (index, (invoice_no, amount)) in self.allocations.iter().enumerate() {
            if !is_invoice_no(invoice_no) || !amount.is_positive() || amount.fen() > jinfu_ledger::money::AMOUNT_FEN_MAX || !seen.insert(invoice_no.as_str()) {
                return Err(format!("allocations[{index}]: an invoice number of 8-20 digits, once, and an amount above 0"));
            }
        }
        Ok(())
    }

    pub fn total(&self) -> Fen {
        Fen::from_fen(self.allocations.iter().map(|(_, amount)| amount.fen()).sum())
    }

    /// What a repeat must match: the same payment whatever the order of its allocations.
    fn hash(&self) -> Vec<u8> {
        use sha2::Digest;
        let mut lines: Vec<String> = self.allocations.iter().map(|(invoice_no, amount)| format!("{invoice_no}={}", amount.fen())).collect();
        lines.sort();
        sha2::Sha256::digest(format!("{}|{}|{}|{}", self.payment_id, self.contract_id, self.paid_on, lines.join(",")).as_bytes()).to_vec()
    }
}

/// Why a payment was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRecorded {
    /// A rule of the domain (`overpaid`, `foreign_invoice`).
    Refused(Refusal),
    /// The payment id was used before with other content.
    IdReused,
}

/// Whether the payment was new or a repeat of one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Repeated,
}

/// Records `payment` of `contract` (locked by the caller) by `by`, with its events, in
/// `transaction`; the caller commits. A payment id repeated with the same content is `Repeated`
/// and changes nothing.
pub async fn record(
    transaction: &mut Tx,
    events_topic: &str,
    contract: &ContractRow,
    payment: &PaymentInput,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<Recorded, NotRecorded>> {
    let centre = contract.centre_id.as_str();
    let hash = payment.hash();
    if let Some(stored) = store::payment_hash(transaction, centre, &payment.payment_id).await? {
        return Ok(if stored == hash { Ok(Recorded::Repeated) } else { Err(NotRecorded::IdReused) });
    }
    let row = NewPayment {
        centre_id: centre,
        payment_id: &payment.payment_id,
        contract_id: &contract.contract_id,
        paid_on: payment.paid_on,
        amount: payment.total(),
        request_hash: &hash,
        by,
        at: now,
    };
    store::insert_payment(transaction, &row).await?;
    let mut events = Events::new(events_topic);
    for (invoice_no, amount) in &payment.allocations {
        let invoice = store::lock(transaction, centre, invoice_no).await?.filter(|invoice| invoice.contract_id == contract.contract_id);
        let Some(invoice) = invoice else { return Ok(Err(NotRecorded::Refused(Refusal::ForeignInvoice { invoice_no: invoice_no.clone() }))) };
        let mut amounts = invoice.amounts();
        if let Err(refusal) = may_allocate(&invoice.invoice_no, amounts, *amount) {
            return Ok(Err(NotRecorded::Refused(refusal)));
        }
        amounts.paid = Fen::from_fen(amounts.paid.fen() + amount.fen());
        let status = after_payment(InvoiceStatus::parse(&invoice.status).unwrap_or(InvoiceStatus::Received), amounts);
        store::allocate(transaction, &row, &invoice.invoice_no, *amount, status.code()).await?;
        if status == InvoiceStatus::Paid {
            let data = json!({ "invoice_no": invoice.invoice_no, "contract_id": contract.contract_id, "paid_on": payment.paid_on, "supplier_uscc": contract.supplier_uscc });
            events.push(centre, &contract.contract_id, "invoice.paid", data);
        }
    }
    let allocations: Vec<_> =
        payment.allocations.iter().map(|(invoice_no, amount)| json!({ "invoice_no": invoice_no, "amount": yuan(amount.fen()) })).collect();
    events.push(
        centre,
        &contract.contract_id,
        "payment.recorded",
        json!({
            "payment_id": payment.payment_id, "contract_id": contract.contract_id, "paid_on": payment.paid_on, "amount": yuan(payment.total().fen()),
            "purchaser_uscc": contract.purchaser_uscc, "supplier_uscc": contract.supplier_uscc, "allocations": allocations,
            "account_no": contract.account_no, "locked_by": contract.account_locked_by,
        }),
    );
    events.insert(transaction).await?;
    Ok(Ok(Recorded::New))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> PaymentInput {
        PaymentInput {
            payment_id: "PAY-1".into(),
            contract_id: "HT-1".into(),
            paid_on: NaiveDate::from_ymd_opt(2026, 3, 16).unwrap(),
            allocations: vec![("26522000000000000001".into(), Fen::from_fen(100)), ("26522000000000000002".into(), Fen::from_fen(200))],
        }
    }

    #[test]
    fn a_payment_is_checked_once_and_its_order_does_not_change_what_it_is() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 16).unwrap();
        assert_eq!(payment().check(today), Ok(()));
        assert_eq!(payment().check(today.pred_opt().unwrap()), Err("paid_on: not in the future".into()));
        let mut twice = payment();
        twice.allocations[1].0 = twice.allocations[0].0.clone();
        assert!(twice.check(today).unwrap_err().starts_with("allocations[1]"));
        let mut reversed = payment();
        reversed.allocations.reverse();
        assert_eq!(reversed.hash(), payment().hash());
        assert_eq!(payment().total(), Fen::from_fen(300));
    }
}
