//! Invoices: submission by the supplier, objection or acceptance by the purchaser, and what is
//! due, paid and owed in interest.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, reason};
use jinfu_proto::contract::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::convert::{invoice_pb, invoice_type};
use super::{failed, fen, parse_date, request_hash, ContractApi, READERS};
use crate::domain::invoices;
use crate::domain::{is_invoice_no, ContractStatus, InvoiceStatus, Refusal};
use crate::events::{yuan, Events};
use crate::facts::{invoice_facts, ContractFacts};
use crate::store::contracts::{self as contract_store, ContractRow};
use crate::store::invoices::{self as store, InvoiceRow, NewInvoice};
use crate::store::{rules, Tx};

/// The invoice with its due date and the interest accrued through today.
pub(super) async fn view(api: &ContractApi, contract: ContractRow, invoice: InvoiceRow) -> Result<pb::Invoice, Status> {
    let facts = ContractFacts::load(&api.pool, contract).await.map_err(failed("reading a contract's facts"))?;
    let lpr = rules::lpr_history(&api.pool).await.map_err(failed("reading the LPR"))?;
    let facts = invoice_facts(&api.pool, &facts, invoice, &api.calendar.current(), &lpr, api.today()).await.map_err(failed("computing an invoice's dates"))?;
    Ok(invoice_pb(&facts))
}

/// The invoice and its contract as `caller` may see them (NOT_FOUND otherwise, as unknown).
async fn visible(api: &ContractApi, caller: &Caller, centre: &str, invoice_no: &str) -> Result<(ContractRow, InvoiceRow), Status> {
    let not_found = || Status::not_found(format!("invoice {} not found", jinfu_platform::fields::clip(invoice_no, 32)));
    let invoice = store::get(&api.pool, centre, invoice_no).await.map_err(failed("reading an invoice"))?.ok_or_else(not_found)?;
    let contract = contract_store::get(&api.pool, centre, &invoice.contract_id).await.map_err(failed("reading a contract"))?;
    let contract = contract.filter(|contract| super::may_see(caller, contract)).ok_or_else(not_found)?;
    Ok((contract, invoice))
}

/// The invoice locked for a change by the contract's purchaser.
async fn lock_for_purchaser(
    api: &ContractApi,
    transaction: &mut Tx,
    caller: &Caller,
    centre: &str,
    invoice_no: &str,
) -> Result<(ContractRow, InvoiceRow), Status> {
    let (contract, _) = visible(api, caller, centre, invoice_no).await?;
    let invoice =
        store::lock(transaction, centre, invoice_no).await.map_err(failed("locking an invoice"))?.ok_or_else(|| Status::not_found("invoice not found"))?;
    Ok((contract, invoice))
}

pub(super) async fn submit(api: &ContractApi, request: Request<pb::SubmitInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Supplier], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    if !is_invoice_no(&body.invoice_no) {
        return Err(invalid("invoice_no: 8-20 digits"));
    }
    let kind = invoice_type(body.r#type)?;
    let issue_date = parse_date("issue_date", &body.issue_date)?;
    let (without_tax, tax, with_tax) =
        (fen("amount_without_tax_fen", body.amount_without_tax_fen)?, fen("tax_fen", body.tax_fen)?, fen("amount_with_tax_fen", body.amount_with_tax_fen)?);
    if !with_tax.is_positive() || without_tax.checked_add(tax) != Some(with_tax) {
        return Err(invalid("amount_with_tax_fen: more than 0 and equal to amount_without_tax_fen + tax_fen"));
    }
    let now = api.clock.now();
    if issue_date > jinfu_ledger::beijing::date(now) {
        return Err(invalid("issue_date: not in the future"));
    }
    let hash = request_hash(&format!("{body:?}"));
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    if let Some(existing) = store::lock(&mut transaction, centre.as_str(), &body.invoice_no).await.map_err(failed("reading an invoice"))? {
        if existing.submit_hash != hash {
            return Err(Status::already_exists(format!("invoice {} was submitted with other content", body.invoice_no)));
        }
        drop(transaction);
        return Ok(Response::new(view(api, contract, existing).await?));
    }
    if contract.status != ContractStatus::Active.code() {
        return Err(Refusal::WrongStatus { status: ContractStatus::parse(&contract.status).map_or("unknown", ContractStatus::code), what: "invoicing" }.into());
    }
    if body.buyer_uscc != contract.purchaser_uscc || body.seller_uscc != contract.supplier_uscc {
        return Err(Refusal::InvoiceParties.into());
    }
    let milestones = contract_store::milestones(&mut *transaction, centre.as_str(), &contract.contract_id).await.map_err(failed("reading milestones"))?;
    let milestone = milestones.iter().find(|milestone| milestone.sequence == body.milestone).ok_or(Refusal::NoSuchMilestone { milestone: body.milestone })?;
    let before = store::milestone_total(&mut transaction, centre.as_str(), &contract.contract_id, body.milestone).await.map_err(failed("summing invoices"))?;
    let total = before.saturating_add(with_tax.fen());
    if total > milestone.amount.fen() {
        return Err(Refusal::InvoiceExceedsMilestone { milestone: body.milestone, total_fen: total, limit_fen: milestone.amount.fen() }.into());
    }
    let centre_rules = rules::centre_rules(&mut *transaction, centre.as_str()).await.map_err(failed("reading centre rules"))?;
    let object_by = super::contracts::pending(centre_rules.object_by(&api.calendar.current(), jinfu_ledger::beijing::date(now)))?;
    let new = NewInvoice {
        centre_id: centre.as_str(),
        invoice_no: &body.invoice_no,
        contract_id: &contract.contract_id,
        milestone: body.milestone,
        invoice_type: kind,
        issue_date,
        without_tax,
        tax,
        with_tax,
        buyer_uscc: &body.buyer_uscc,
        seller_uscc: &body.seller_uscc,
        received_at: now,
        object_by,
        submit_hash: &hash,
    };
    store::insert(&mut transaction, &new).await.map_err(failed("storing an invoice"))?;
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "invoice.received",
        json!({
            "invoice_no": body.invoice_no, "contract_id": contract.contract_id, "milestone": body.milestone, "amount": yuan(with_tax.fen()),
            "object_by": object_by, "purchaser_uscc": contract.purchaser_uscc, "supplier_uscc": contract.supplier_uscc,
        }),
    );
    commit(transaction, events).await?;
    let invoice = store::get(&api.pool, centre.as_str(), &body.invoice_no)
        .await
        .map_err(failed("reading an invoice"))?
        .ok_or_else(|| Status::internal("invoice vanished"))?;
    Ok(Response::new(view(api, contract, invoice).await?))
}

async fn commit(mut transaction: Tx, events: Events<'_>) -> Result<(), Status> {
    events.insert(&mut transaction).await.map_err(failed("writing events"))?;
    transaction.commit().await.map_err(failed("committing"))
}

fn purchaser_of(caller: &Caller, contract: &ContractRow) -> Result<(), Status> {
    if caller.role == Role::Purchaser && caller.party == contract.purchaser_uscc {
        Ok(())
    } else {
        Err(Status::permission_denied("only the contract's purchaser answers its invoices"))
    }
}

pub(super) async fn object(api: &ContractApi, request: Request<pb::ObjectToInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Purchaser], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let why = reason(&body.reason)?;
    let disputed = fen("disputed_fen", body.disputed_fen)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let (contract, invoice) = lock_for_purchaser(api, &mut transaction, &caller, centre.as_str(), &body.invoice_no).await?;
    purchaser_of(&caller, &contract)?;
    if invoice.disputed_fen == disputed.fen() && invoice.objection_reason.as_deref() == Some(why) {
        // The same objection again changes nothing.
        drop(transaction);
        return Ok(Response::new(view(api, contract, invoice).await?));
    }
    let status = InvoiceStatus::parse(&invoice.status).unwrap_or(InvoiceStatus::Paid);
    let new_status =
        invoices::object(status, invoice.amounts(), disputed, invoice.object_by, jinfu_ledger::beijing::date(now)).map_err(|refusal| match refusal {
            Refusal::Overpaid { .. } => {
                invalid(format!("disputed_fen: 1 to {} fen (the invoice's unpaid amount)", invoice.amount_with_tax_fen - invoice.paid_fen))
            }
            other => other.into(),
        })?;
    store::object(&mut transaction, &invoice, new_status.code(), disputed, why, now).await.map_err(failed("storing an objection"))?;
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "invoice.objected",
        json!({
            "invoice_no": invoice.invoice_no, "contract_id": contract.contract_id, "status": new_status.code(), "disputed": yuan(disputed.fen()),
            "payable": yuan(invoice.amount_with_tax_fen - disputed.fen()), "reason": why, "supplier_uscc": contract.supplier_uscc,
        }),
    );
    commit(transaction, events).await?;
    reread(api, contract, centre.as_str(), &body.invoice_no).await
}

async fn reread(api: &ContractApi, contract: ContractRow, centre: &str, invoice_no: &str) -> Result<Response<pb::Invoice>, Status> {
    let invoice = store::get(&api.pool, centre, invoice_no).await.map_err(failed("reading an invoice"))?.ok_or_else(|| Status::internal("invoice vanished"))?;
    Ok(Response::new(view(api, contract, invoice).await?))
}

pub(super) async fn accept(api: &ContractApi, request: Request<pb::InvoiceRef>) -> Result<Response<pb::Invoice>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Purchaser], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let (contract, invoice) = lock_for_purchaser(api, &mut transaction, &caller, centre.as_str(), &body.invoice_no).await?;
    purchaser_of(&caller, &contract)?;
    if invoice.status != InvoiceStatus::Received.code() {
        if invoice.status == InvoiceStatus::Accepted.code() {
            return Ok(Response::new(view(api, contract, invoice).await?));
        }
        return Err(
            Refusal::InvoiceNotOpen { status: InvoiceStatus::parse(&invoice.status).map_or("unknown", InvoiceStatus::code), what: "an acceptance" }.into()
        );
    }
    let mut events = Events::new(&api.events_topic);
    if store::accept(&mut transaction, centre.as_str(), &invoice.invoice_no, false, now).await.map_err(failed("accepting an invoice"))? {
        events.push(
            centre.as_str(),
            &contract.contract_id,
            "invoice.accepted",
            json!({
                "invoice_no": invoice.invoice_no, "contract_id": contract.contract_id, "deemed": false,
                "supplier_uscc": invoice.seller_uscc, "purchaser_uscc": invoice.buyer_uscc,
            }),
        );
    }
    commit(transaction, events).await?;
    reread(api, contract, centre.as_str(), &body.invoice_no).await
}

pub(super) async fn get(api: &ContractApi, request: Request<pb::InvoiceRef>) -> Result<Response<pb::Invoice>, Status> {
    let (caller, centre) = ContractApi::caller(&request, READERS, &request.get_ref().centre_id)?;
    let (contract, invoice) = visible(api, &caller, centre.as_str(), &request.get_ref().invoice_no).await?;
    Ok(Response::new(view(api, contract, invoice).await?))
}

pub(super) async fn list(api: &ContractApi, request: Request<pb::ContractRef>) -> Result<Response<pb::ListInvoicesResponse>, Status> {
    let (caller, centre) = ContractApi::caller(&request, READERS, &request.get_ref().centre_id)?;
    let contract = api.visible(&caller, &centre, &request.get_ref().contract_id).await?;
    let rows = store::of_contract(&api.pool, centre.as_str(), &contract.contract_id).await.map_err(failed("listing invoices"))?;
    let facts = ContractFacts::load(&api.pool, contract).await.map_err(failed("reading a contract's facts"))?;
    let lpr = rules::lpr_history(&api.pool).await.map_err(failed("reading the LPR"))?;
    let mut invoices = Vec::new();
    for row in rows {
        let facts = invoice_facts(&api.pool, &facts, row, &api.calendar.current(), &lpr, api.today()).await.map_err(failed("computing an invoice's dates"))?;
        invoices.push(invoice_pb(&facts));
    }
    Ok(Response::new(pb::ListInvoicesResponse { invoices }))
}
