//! The contract service's events (`contract.events`, verified against the `contract`
//! publisher's keys before this handler runs), applied in the transaction that stores the
//! consumer's offset:
//! - `contract.drafted`, `contract.signed`, `contract.amended`, `contract.terminated` keep the
//!   contracts lenders may be shown (with the supplier's consent);
//! - `payment.recorded` is the purchaser's payment: kept for credit-flow lines, and, when it
//!   went into an account locked to an active loan (`locked_by`), applied to that loan as a
//!   repayment — interest first, then principal; a loan repaid in full is closed (or overpaid,
//!   the surplus the supplier's) and the sweeper lifts the lock.
//!
//! A payment is applied once whatever the redelivery (its `payment_id` is the key). Refusal
//! codes (dead-letter reasons): the platform's envelope codes (`malformed_json`,
//! `unsupported_schema_version`, `bad_field`), the signature codes, and `bad_field` for a
//! known type missing a field this service needs. Other types are applied as no-ops.

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::Fen;
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{refused, Handled, Record, RecordHandler};
use jinfu_platform::events::EnvelopeV1;
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};

use crate::domain::LoanStatus;
use crate::events::{push, yuan};
use crate::store::facts::{self, ContractFact, PaymentFact};
use crate::store::loans::{self, RepaymentRow};
use crate::store::Tx;

pub struct ContractEvents {
    /// `loan.events` (with the deployment's topic prefix).
    pub events_topic: String,
    pub clock: SharedClock,
}

impl RecordHandler for ContractEvents {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(async move {
            let envelope = match EnvelopeV1::parse(record) {
                Ok(envelope) => envelope,
                Err(refusal) => return Ok(Handled::Refused(refusal)),
            };
            let now = self.clock.now();
            let data = Data(&envelope.data);
            let centre = envelope.centre_id.as_str();
            match envelope.event_type.as_str() {
                kind @ ("contract.drafted" | "contract.signed") => {
                    let (Some(contract_id), Some(section_id), Some(supplier), Some(purchaser), Some(amount)) =
                        (data.text("contract_id"), data.text("section_id"), data.text("supplier_uscc"), data.text("purchaser_uscc"), data.fen("amount"))
                    else {
                        return refused("bad_field", format!("{kind}: contract_id, section_id, supplier_uscc, purchaser_uscc and amount are required"));
                    };
                    let status = if kind == "contract.signed" { "active" } else { "pending" };
                    let fact = ContractFact {
                        centre_id: centre.to_owned(),
                        contract_id: contract_id.to_owned(),
                        section_id: section_id.to_owned(),
                        supplier_uscc: supplier.to_owned(),
                        purchaser_uscc: purchaser.to_owned(),
                        amount_fen: amount.fen(),
                        status: status.to_owned(),
                    };
                    facts::upsert_contract(transaction, &fact, now).await?;
                }
                "contract.amended" => {
                    let (Some(contract_id), Some(amount)) = (data.text("contract_id"), data.fen("new_amount")) else {
                        return refused("bad_field", "contract.amended: contract_id and new_amount are required");
                    };
                    facts::update_contract(transaction, centre, contract_id, Some(amount.fen()), false, now).await?;
                }
                "contract.terminated" => {
                    let Some(contract_id) = data.text("contract_id") else {
                        return refused("bad_field", "contract.terminated: contract_id is required");
                    };
                    facts::update_contract(transaction, centre, contract_id, None, true, now).await?;
                }
                "payment.recorded" => return self.payment(transaction, centre, data, now).await,
                _ => {}
            }
            Ok(Handled::Applied)
        })
    }
}

/// An event's `data`.
struct Data<'a>(&'a Value);

impl Data<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str).filter(|text| !text.is_empty())
    }

    fn fen(&self, key: &str) -> Option<Fen> {
        Fen::parse_balance_yuan(self.text(key)?).ok()
    }

    fn date(&self, key: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.text(key)?, "%Y-%m-%d").ok()
    }
}

impl ContractEvents {
    async fn payment(&self, transaction: &mut Tx, centre: &str, data: Data<'_>, now: DateTime<Utc>) -> anyhow::Result<Handled> {
        let (Some(payment_id), Some(contract_id), Some(supplier), Some(purchaser), Some(amount), Some(paid_on)) = (
            data.text("payment_id"),
            data.text("contract_id"),
            data.text("supplier_uscc"),
            data.text("purchaser_uscc"),
            data.fen("amount").filter(|amount| amount.is_positive()),
            data.date("paid_on"),
        ) else {
            return refused("bad_field", "payment.recorded: payment_id, contract_id, supplier_uscc, purchaser_uscc, amount > 0 and paid_on are required");
        };
        let payment = PaymentFact {
            centre_id: centre.to_owned(),
            payment_id: payment_id.to_owned(),
            contract_id: contract_id.to_owned(),
            supplier_uscc: supplier.to_owned(),
            purchaser_uscc: purchaser.to_owned(),
            amount_fen: amount.fen(),
            paid_on,
            locked_by: data.text("locked_by").map(str::to_owned),
        };
        if !facts::insert_payment(transaction, &payment, now).await? {
            return Ok(Handled::Applied);
        }
        if let Some(lock_ref) = &payment.locked_by {
            self.repay(transaction, lock_ref, &payment, now).await?;
        }
        Ok(Handled::Applied)
    }

    /// Applies the payment to the active loan holding `lock_ref` (a lock that is not a loan's,
    /// or a loan no longer active, takes nothing: the payment stays recorded).
    async fn repay(&self, transaction: &mut Tx, lock_ref: &str, payment: &PaymentFact, now: DateTime<Utc>) -> anyhow::Result<()> {
        let Some(mut loan) = loans::lock_by_lock_ref(transaction, lock_ref).await? else { return Ok(()) };
        if loan.contract_id != payment.contract_id {
            return Ok(());
        }
        // The payment went into the account while this loan held it (`locked_by`), whenever it
        // is consumed: after closing, all of it is the supplier's.
        if matches!(loan.state(), LoanStatus::Closed | LoanStatus::Overpaid) {
            return self.overpaid(transaction, loan, payment, now).await;
        }
        let Some(position) = loan.position().filter(|_| loan.state() == LoanStatus::Active) else {
            return Ok(());
        };
        let (after, split) = position.repay(payment.amount_fen, payment.paid_on);
        let repayment = RepaymentRow {
            payment_id: payment.payment_id.clone(),
            paid_on: payment.paid_on,
            amount_fen: payment.amount_fen,
            interest_fen: split.interest_fen,
            principal_fen: split.principal_fen,
            surplus_fen: split.surplus_fen,
        };
        loans::insert_repayment(transaction, &loan, &repayment, now).await?;
        loan.set_position(after);
        let topic = &self.events_topic;
        let (centre, id) = (loan.centre_id.clone(), loan.loan_id.clone());
        push(
            transaction,
            topic,
            &centre,
            &id,
            "loan.repaid",
            json!({
                "loan_id": id, "lender_id": loan.lender_id, "supplier_uscc": loan.supplier_uscc, "contract_id": loan.contract_id,
                "payment_id": payment.payment_id, "paid_on": payment.paid_on, "amount": yuan(payment.amount_fen), "interest": yuan(split.interest_fen),
                "principal": yuan(split.principal_fen), "surplus": yuan(split.surplus_fen), "principal_outstanding": yuan(after.principal_fen),
                "interest_due": yuan(after.interest_due_fen()),
            }),
        )
        .await?;
        if after.owed_fen() == 0 {
            let closed = LoanStatus::Closed;
            loan.set_state(closed);
            loan.closed_at = Some(now);
            let data = json!({
                "loan_id": id, "lender_id": loan.lender_id, "supplier_uscc": loan.supplier_uscc, "contract_id": loan.contract_id,
                "status": closed.code(), "status_code": closed.number(), "surplus": yuan(split.surplus_fen),
                "interest_paid": yuan(after.interest_paid_fen),
            });
            push(transaction, topic, &centre, &id, "loan.closed", data).await?;
        }
        loans::save(transaction, &loan).await?;
        Ok(())
    }

    /// A payment into the account of a loan already closed, recorded before its lock was lifted:
    /// all of it is the supplier's surplus, and the loan is OVERPAID.
    async fn overpaid(&self, transaction: &mut Tx, mut loan: loans::LoanRow, payment: &PaymentFact, now: DateTime<Utc>) -> anyhow::Result<()> {
        let repayment = RepaymentRow {
            payment_id: payment.payment_id.clone(),
            paid_on: payment.paid_on,
            amount_fen: payment.amount_fen,
            interest_fen: 0,
            principal_fen: 0,
            surplus_fen: payment.amount_fen,
        };
        loans::insert_repayment(transaction, &loan, &repayment, now).await?;
        loan.set_state(LoanStatus::Overpaid);
        let data = json!({
            "loan_id": loan.loan_id, "lender_id": loan.lender_id, "supplier_uscc": loan.supplier_uscc, "contract_id": loan.contract_id,
            "payment_id": payment.payment_id, "paid_on": payment.paid_on, "surplus": yuan(payment.amount_fen),
            "status": LoanStatus::Overpaid.code(), "status_code": LoanStatus::Overpaid.number(),
        });
        push(transaction, &self.events_topic, &loan.centre_id, &loan.loan_id, "loan.overpaid", data).await?;
        loans::save(transaction, &loan).await?;
        Ok(())
    }
}
