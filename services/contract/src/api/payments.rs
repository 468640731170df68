//! Payments recorded by the purchaser and allocated to a contract's invoices.

use std::collections::BTreeSet;

use jinfu_platform::auth::Role;
use jinfu_platform::fields::invalid;
use jinfu_proto::contract::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::{date_text, failed, fen, parse_date, request_hash, ContractApi};
use crate::domain::invoices::{after_payment, may_allocate};
use crate::domain::{is_invoice_no, is_reference, InvoiceStatus, Refusal};
use crate::events::{yuan, Events};
use crate::store::invoices::{self as store, NewPayment};

/// Allocations one payment may carry.
const ALLOCATIONS_MAX: usize = 100;

pub(super) async fn record(api: &ContractApi, request: Request<pb::RecordPaymentRequest>) -> Result<Response<pb::Payment>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Purchaser], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    if !is_reference(&body.payment_id) {
        return Err(invalid("payment_id: 1-64 letters, digits, '-', '_' or '.'"));
    }
    let paid_on = parse_date("paid_on", &body.paid_on)?;
    if paid_on > api.today() {
        return Err(invalid("paid_on: not in the future"));
    }
    if body.allocations.is_empty() || body.allocations.len() > ALLOCATIONS_MAX {
        return Err(invalid(format!("allocations: 1 to {ALLOCATIONS_MAX}")));
    }
    let mut seen = BTreeSet::new();
    let mut total: i64 = 0;
    for (index, allocation) in body.allocations.iter().enumerate() {
        let amount = fen(&format!("allocations[{index}].amount_fen"), allocation.amount_fen)?;
        if !is_invoice_no(&allocation.invoice_no) || !amount.is_positive() || !seen.insert(allocation.invoice_no.as_str()) {
            return Err(invalid(format!("allocations[{index}]: an invoice number of 8-20 digits, once, and an amount above 0")));
        }
        total = total.saturating_add(amount.fen());
    }
    let hash = request_hash(&format!("{}|{}|{}|{:?}", body.payment_id, body.contract_id, body.paid_on, body.allocations));
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    if caller.party != contract.purchaser_uscc {
        return Err(Status::permission_denied("only the contract's purchaser records its payments"));
    }
    if let Some(stored) = store::payment_hash(&mut transaction, centre.as_str(), &body.payment_id).await.map_err(failed("reading a payment"))? {
        if stored != hash {
            return Err(Status::already_exists(format!("payment {} was recorded with other content", body.payment_id)));
        }
        return Ok(Response::new(payment_pb(body, total)));
    }
    let payment = NewPayment {
        centre_id: centre.as_str(),
        payment_id: &body.payment_id,
        contract_id: &contract.contract_id,
        paid_on,
        amount: jinfu_ledger::Fen::from_fen(total),
        request_hash: &hash,
        by: &caller.party,
        at: now,
    };
    store::insert_payment(&mut transaction, &payment).await.map_err(failed("storing a payment"))?;
    let mut events = Events::new(&api.events_topic);
    for allocation in &body.allocations {
        let invoice = store::lock(&mut transaction, centre.as_str(), &allocation.invoice_no).await.map_err(failed("locking an invoice"))?;
        let invoice = invoice.filter(|invoice| invoice.contract_id == contract.contract_id).ok_or_else(|| Refusal::ForeignInvoice { invoice_no: allocation.invoice_no.clone() })?;
        let amount = jinfu_ledger::Fen::from_fen(allocation.amount_fen);
        let mut amounts = invoice.amounts();
        may_allocate(&invoice.invoice_no, amounts, amount)?;
        amounts.paid = jinfu_ledger::Fen::from_fen(amounts.paid.fen() + amount.fen());
        let status = after_payment(InvoiceStatus::parse(&invoice.status).unwrap_or(InvoiceStatus::Received), amounts);
        store::allocate(&mut transaction, &payment, &invoice.invoice_no, amount, status.code()).await.map_err(failed("allocating a payment"))?;
        if status == InvoiceStatus::Paid {
            events.push(
                centre.as_str(),
                &contract.contract_id,
                "invoice.paid",
                json!({ "invoice_no": invoice.invoice_no, "contract_id": contract.contract_id, "paid_on": date_text(paid_on), "supplier_uscc": contract.supplier_uscc }),
            );
        }
    }
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "payment.recorded",
        json!({
            "payment_id": body.payment_id, "contract_id": contract.contract_id, "paid_on": date_text(paid_on), "amount": yuan(total),
            "purchaser_uscc": contract.purchaser_uscc, "supplier_uscc": contract.supplier_uscc,
            "allocations": body.allocations.iter().map(|a| json!({ "invoice_no": a.invoice_no, "amount": yuan(a.amount_fen) })).collect::<Vec<_>>(),
        }),
    );
    events.insert(&mut transaction).await.map_err(failed("writing events"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(payment_pb(body, total)))
}

fn payment_pb(request: &pb::RecordPaymentRequest, total: i64) -> pb::Payment {
    pb::Payment {
        centre_id: request.centre_id.clone(),
        payment_id: request.payment_id.clone(),
        contract_id: request.contract_id.clone(),
        paid_on: request.paid_on.clone(),
        allocations: request.allocations.clone(),
        amount_fen: total,
    }
}
