//! Lenders onboarded by the province, their products, and suppliers' consents.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, invalid, reason, required_text};
use jinfu_proto::loan::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::convert::{consent_pb, lender_pb, opportunity_pb, product_pb};
use super::{failed, LoanApi, Who};
use crate::domain::rules::may_change_lender;
use crate::domain::{is_code, LenderStatus, ProductKind, Refusal};
use crate::events::push;
use crate::store::facts;
use crate::store::lenders::{self as store, LenderRow, ProductRow};

/// Everyone who reads lenders and products.
const ANYONE: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin, Role::Supplier, Role::Purchaser, Role::Lender, Role::Bidder];

/// The caller as the admin of `province_id` (a province centre's admin token).
fn province_admin<T>(request: &Request<T>, province_id: &str) -> Result<(Caller, String), Status> {
    let province = fields::centre("province_id", province_id)?;
    if !province.is_province() {
        return Err(invalid("province_id: a province centre's code (ending 0000)"));
    }
    let caller = Caller::of(request)?;
    caller.authorize(&[Role::Admin], province.as_str())?;
    Ok((caller, province.as_str().to_owned()))
}

fn text(field: &str, value: &str) -> Result<String, Status> {
    let value = fields::printable(field, required_text(field, value)?)?;
    if value.chars().count() > 200 {
        return Err(invalid(format!("{field}: at most 200 characters")));
    }
    Ok(value.to_owned())
}

/// An account field as the contract service records it on the contract: no '|'.
fn account_text(field: &str, value: &str) -> Result<String, Status> {
    let value = text(field, value)?;
    if value.contains('|') {
        return Err(invalid(format!("{field}: no '|'")));
    }
    Ok(value)
}

fn code(field: &str, value: &str) -> Result<String, Status> {
    if !is_code(value) {
        return Err(invalid(format!("{field}: 1-32 letters, digits, '-' or '_'")));
    }
    Ok(value.to_owned())
}

pub(super) async fn onboard(api: &LoanApi, request: Request<pb::Lender>) -> Result<Response<pb::Lender>, Status> {
    let (caller, province) = province_admin(&request, &request.get_ref().province_id)?;
    let body = request.get_ref();
    if !matches!(body.kind.as_str(), "bank" | "other") {
        return Err(invalid("kind: bank or other"));
    }
    let row = LenderRow {
        lender_id: code("lender_id", &body.lender_id)?,
        province_id: province.clone(),
        name: text("name", &body.name)?,
        kind: body.kind.clone(),
        bank_name: account_text("bank_name", &body.bank_name)?,
        account_no: account_text("account_no", &body.account_no)?,
        account_name: account_text("account_name", &body.account_name)?,
        status: String::new(),
        status_reason: String::new(),
        onboarded_at: api.clock.now(),
    };
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    if let Some(existing) = store::lock_lender(&mut transaction, &row.lender_id).await.map_err(failed("reading a lender"))? {
        if existing.province_id != province {
            return Err(Status::already_exists(format!("lender {} is onboarded in another province", row.lender_id)));
        }
        if existing.status == LenderStatus::Exited.code() {
            return Err(Refusal::LenderExited { lender_id: row.lender_id }.into());
        }
    }
    store::upsert_lender(&mut transaction, &row, &caller.party, now).await.map_err(failed("storing a lender"))?;
    let status =
        store::lock_lender(&mut transaction, &row.lender_id).await.map_err(failed("reading a lender"))?.map(|lender| lender.status).unwrap_or_default();
    let data = json!({ "lender_id": row.lender_id, "name": row.name, "kind": row.kind, "status": status, "account_no": row.account_no });
    push(&mut transaction, &api.events_topic, &province, &row.lender_id, "lender.onboarded", data).await.map_err(failed("writing an event"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(lender_pb(&api.lender(&row.lender_id).await?)))
}

pub(super) async fn set_status(api: &LoanApi, request: Request<pb::SetLenderStatusRequest>) -> Result<Response<pb::Lender>, Status> {
    let (caller, province) = province_admin(&request, &request.get_ref().province_id)?;
    let body = request.get_ref();
    let next = LenderStatus::parse(&body.status).ok_or_else(|| invalid("status: active, suspended or exited"))?;
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let lender = store::lock_lender(&mut transaction, &body.lender_id)
        .await
        .map_err(failed("reading a lender"))?
        .filter(|lender| lender.province_id == province)
        .ok_or_else(|| Status::not_found(format!("lender {} not found", fields::clip(&body.lender_id, 32))))?;
    let current = LenderStatus::parse(&lender.status).unwrap_or(LenderStatus::Exited);
    let open = store::open_loans(&mut transaction, &lender.lender_id).await.map_err(failed("counting open loans"))?;
    may_change_lender(&lender.lender_id, current, next, open)?;
    if current != next {
        store::set_status(&mut transaction, &lender.lender_id, next.code(), why, &caller.party, now).await.map_err(failed("changing a lender"))?;
        let data = json!({ "lender_id": lender.lender_id, "name": lender.name, "kind": lender.kind, "status": next.code(), "reason": why });
        push(&mut transaction, &api.events_topic, &province, &lender.lender_id, "lender.status_changed", data).await.map_err(failed("writing an event"))?;
    }
    if next == LenderStatus::Exited {
        // Applications it will never decide stop holding their contracts.
        for loan in crate::store::loans::reject_submitted_of(&mut transaction, &lender.lender_id, why).await.map_err(failed("rejecting loans"))? {
            let mut data = super::applications::loan_facts(&loan);
            data["rejection_code"] = json!("lender_exited");
            data["reason"] = json!(why);
            push(&mut transaction, &api.events_topic, &loan.centre_id, &loan.loan_id, "loan.rejected", data).await.map_err(failed("writing an event"))?;
        }
    }
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(lender_pb(&api.lender(&lender.lender_id).await?)))
}

pub(super) async fn list(api: &LoanApi, request: Request<pb::ListLendersRequest>) -> Result<Response<pb::ListLendersResponse>, Status> {
    let province = in_province(&request, &request.get_ref().province_id)?;
    let rows = store::lenders(&api.pool, &province).await.map_err(failed("listing lenders"))?;
    Ok(Response::new(pb::ListLendersResponse { lenders: rows.iter().map(lender_pb).collect() }))
}

/// A province any caller of one of its centres may read.
fn in_province<T>(request: &Request<T>, province_id: &str) -> Result<String, Status> {
    let province = fields::centre("province_id", province_id)?;
    let caller = Caller::of(request)?;
    if !ANYONE.contains(&caller.role) || caller.centre.province() != province.province() {
        return Err(Status::permission_denied(format!("a caller of province {} may read it", province.province())));
    }
    Ok(province.province().as_str().to_owned())
}

fn product_row(body: &pb::Product) -> Result<ProductRow, Status> {
    let kind = ProductKind::parse(&body.kind)
        .ok_or_else(|| invalid("kind: contract_financing, performance, engineering_award, revolving, quality_retention or credit_flow"))?;
    if !(1..=2400).contains(&body.rate_min_bp) || !(body.rate_min_bp..=2400).contains(&body.rate_max_bp) {
        return Err(invalid("rate_min_bp, rate_max_bp: 1 <= min <= max <= 2400"));
    }
    if !(1..=10_000).contains(&body.max_ratio_bp) || !(1..=1095).contains(&body.term_days) || body.grace_days > 180 {
        return Err(invalid("max_ratio_bp 1-10000, term_days 1-1095, grace_days 0-180"));
    }
    for centre in &body.centres {
        fields::centre("centres", centre)?;
    }
    if body.regimes.iter().any(|regime| !matches!(regime.as_str(), "procurement" | "engineering")) {
        return Err(invalid("regimes: procurement, engineering"));
    }
    let number = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    Ok(ProductRow {
        lender_id: code("lender_id", &body.lender_id)?,
        product_id: code("product_id", &body.product_id)?,
        name: text("name", &body.name)?,
        kind: kind.code().to_owned(),
        rate_min_bp: number(body.rate_min_bp),
        rate_max_bp: number(body.rate_max_bp),
        max_ratio_bp: number(body.max_ratio_bp),
        term_days: number(body.term_days),
        grace_days: number(body.grace_days),
        sme_only: body.sme_only,
        centres: body.centres.clone(),
        regimes: body.regimes.clone(),
        contact: text("contact", &body.contact)?,
    })
}

pub(super) async fn publish_product(api: &LoanApi, request: Request<pb::Product>) -> Result<Response<pb::Product>, Status> {
    let row = product_row(request.get_ref())?;
    let lender = api.lender(&row.lender_id).await?;
    let caller = Caller::of(&request)?;
    let allowed = match caller.role {
        Role::Lender => {
            crate::domain::Officer::parse(&caller.party).is_some_and(|officer| officer.lender_id == lender.lender_id)
                && caller.centre.province().as_str() == lender.province_id
        }
        Role::Admin => caller.centre.as_str() == lender.province_id,
        _ => false,
    };
    if !allowed {
        return Err(Status::permission_denied("the lender's officer or the province's admin publishes its products"));
    }
    if lender.status != LenderStatus::Active.code() {
        let status = LenderStatus::parse(&lender.status).unwrap_or(LenderStatus::Exited).code();
        return Err(Refusal::LenderNotActive { lender_id: lender.lender_id, status }.into());
    }
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    store::upsert_product(&mut transaction, &row, now).await.map_err(failed("storing a product"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(product_pb(&row, &lender.province_id)))
}

pub(super) async fn list_products(api: &LoanApi, request: Request<pb::ListProductsRequest>) -> Result<Response<pb::ListProductsResponse>, Status> {
    let province = in_province(&request, &request.get_ref().province_id)?;
    let rows = store::products(&api.pool, &province).await.map_err(failed("listing products"))?;
    Ok(Response::new(pb::ListProductsResponse { products: rows.iter().map(|row| product_pb(row, &province)).collect() }))
}

pub(super) async fn consent(api: &LoanApi, request: Request<pb::ConsentRequest>, grant: bool) -> Result<Response<pb::Consent>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Supplier], &request.get_ref().centre_id).await?;
    let Who::Supplier(supplier) = who else { return Err(Status::permission_denied("the supplier consents")) };
    let lender_id = request.get_ref().lender_id.as_str();
    if lender_id != "*" {
        let lender = api.lender(lender_id).await?;
        if lender.province_id != centre.province().as_str() {
            return Err(Status::not_found(format!("lender {} not found", fields::clip(lender_id, 32))));
        }
    }
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let row = if grant {
        Some(store::grant(&mut *transaction, centre.as_str(), &supplier, lender_id, now).await.map_err(failed("storing a consent"))?)
    } else {
        store::revoke(&mut *transaction, centre.as_str(), &supplier, lender_id, now).await.map_err(failed("revoking a consent"))?
    };
    let row = row.ok_or_else(|| Status::not_found(format!("no consent to {} was given", fields::clip(lender_id, 32))))?;
    let kind = if grant { "consent.granted" } else { "consent.revoked" };
    let data = json!({ "supplier_uscc": supplier, "lender_id": lender_id });
    push(&mut transaction, &api.events_topic, centre.as_str(), &supplier, kind, data).await.map_err(failed("writing an event"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(consent_pb(&row)))
}

pub(super) async fn opportunities(api: &LoanApi, request: Request<pb::ListOpportunitiesRequest>) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Lender], &request.get_ref().centre_id).await?;
    let Who::Lender(officer) = who else { return Err(Status::permission_denied("lenders list opportunities")) };
    let rows = facts::opportunities(&api.pool, centre.as_str(), &officer.lender_id).await.map_err(failed("listing opportunities"))?;
    Ok(Response::new(pb::ListOpportunitiesResponse { opportunities: rows.iter().map(opportunity_pb).collect() }))
}
