//! Bidders' applications: applying, cancelling, the issuer's listing and rejection, reading one.

use jinfu_ledger::ids::{CentreCode, Uscc};
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, printable, reason, required_text, timestamp};
use jinfu_platform::outbox::OutboxRows;
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::issuers::locked_issuer;
use super::{centre, client_ip, date_text, failed, guarantee_type, province, viewer, GuaranteeApi};
use crate::domain::applications::{self, Ask};
use crate::domain::{issuers, sealing, ApplicationState, GuaranteeType, SealedApplication, Section};
use crate::store::applications::{Application, NewApplication};
use crate::store::{self, Tx};
use crate::{domain, fraud};

/// An Apply request, converted.
struct Applying {
    centre: CentreCode,
    section_id: String,
    issuer_code: String,
    product_id: String,
    beneficiary: String,
    ask: Ask,
}

impl TryFrom<pb::ApplyRequest> for Applying {
    type Error = Status;
    fn try_from(body: pb::ApplyRequest) -> Result<Self, Status> {
        let centre = centre(&body.centre_id)?;
        let beneficiary = required_text("beneficiary", &body.beneficiary)?.to_owned();
        let valid_to = domain::parse_date(&body.valid_to).ok_or_else(|| invalid("valid_to must be an ISO date (YYYY-MM-DD)"))?;
        // A request that names no type asks for a bid guarantee.
        let kind = if body.r#type == pb::GuaranteeType::Unspecified as i32 { GuaranteeType::Bid } else { guarantee_type(body.r#type)? };
        let ask = Ask { kind, amount_fen: body.amount_fen, contract_amount_fen: body.contract_amount_fen, valid_to };
        printable("section_id", &body.section_id)?;
        printable("issuer_code", &body.issuer_code)?;
        printable("product_id", &body.product_id)?;
        Ok(Applying { centre, section_id: body.section_id, issuer_code: body.issuer_code.trim().to_owned(), product_id: body.product_id, beneficiary, ask })
    }
}

pub(super) fn application_id(text: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(text).map_err(|_| invalid("application_id is not a UUID"))
}

pub(super) fn application_message(application: &Application, sealed: &SealedApplication) -> pb::Application {
    pb::Application {
        application_id: application.application_id.to_string(),
        centre_id: application.centre_id.clone(),
        section_id: application.section_id.clone(),
        bidder_uscc: sealed.bidder_uscc.clone(),
        issuer_code: application.issuer_code.clone(),
        product_id: application.product_id.clone(),
        r#type: application.kind.into(),
        beneficiary: sealed.beneficiary.clone(),
        amount_fen: sealed.amount_fen,
        premium_fen: sealed.premium_fen,
        valid_to: date_text(sealed.valid_to),
        status: application.state.code().to_owned(),
        reason: sealed.reason.clone(),
        applied_at: Some(timestamp(application.applied_at)),
        guarantee_no: application.guarantee_no.clone().unwrap_or_default(),
    }
}

impl GuaranteeApi {
    fn open_application(&self, application: &Application) -> Result<SealedApplication, Status> {
        self.open(&application.application_id.to_string(), &application.sealed)
    }
}

pub(super) async fn apply(api: &GuaranteeApi, request: Request<pb::ApplyRequest>) -> Result<Response<pb::Application>, Status> {
    let caller = Caller::of(&request)?;
    let ip = client_ip(&request);
    let applying = Applying::try_from(request.into_inner())?;
    caller.authorize(&[Role::Bidder], applying.centre.as_str())?;
    let bidder = Uscc::parse(&caller.party).map_err(|_| Status::permission_denied("a bidder's token must carry its unified social credit code as party"))?;
    let section = api.sections.require(applying.centre.as_str(), &applying.section_id).await?;
    if let Some(credit) = &api.credit {
        credit.require_eligible(applying.centre.as_str(), bidder.as_str(), &section.regime, api.clock.now()).await?;
    }
    let amount = applications::applied_amount(api.clock.now(), &section, bidder.as_str(), applying.ask)?;
    let mut transaction = api.begin().await?;
    let premium_fen = priced(&mut transaction, &applying, &section, amount).await?;
    let sealed = SealedApplication {
        bidder_uscc: bidder.as_str().to_owned(),
        beneficiary: applying.beneficiary.clone(),
        amount_fen: amount,
        premium_fen,
        valid_to: applying.ask.valid_to,
        reason: String::new(),
    };
    let application = record(api, &mut transaction, &applying, &section, &sealed, ip.as_deref()).await?;
    let mut outbox = OutboxRows::default();
    fraud::after_application(
        &mut transaction,
        &mut outbox,
        &api.events_topic,
        &api.fraud,
        applying.centre.as_str(),
        &section.section_id,
        &applying.issuer_code,
        ip.as_deref(),
    )
    .await
    .map_err(failed("checking fraud rules"))?;
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(application_message(&application, &sealed)))
}

/// The premium of the product applied for, once the issuer takes applications and the product
/// fits the section and amount.
async fn priced(transaction: &mut Tx, applying: &Applying, section: &Section, amount_fen: i64) -> Result<i64, Status> {
    let province = applying.centre.province();
    let issuer = locked_issuer(transaction, province.as_str(), &applying.issuer_code).await?;
    issuers::takes_applications(&issuer.issuer_code, issuer.state)?;
    let product = store::products::get(transaction, province.as_str(), &issuer.issuer_code, &applying.product_id)
        .await
        .map_err(failed("reading the product"))?
        .ok_or_else(|| Status::not_found(format!("issuer {} has no product {:?}", issuer.issuer_code, applying.product_id)))?;
    product.fits(applying.ask.kind, applying.centre.as_str(), &section.regime, amount_fen)?;
    Ok(product.premium(amount_fen)?.fen())
}

/// Stores the application, unless the bidder already holds a guarantee or has a pending
/// application of the same type for the section (ALREADY_EXISTS).
async fn record(
    api: &GuaranteeApi,
    transaction: &mut Tx,
    applying: &Applying,
    section: &Section,
    sealed: &SealedApplication,
    ip: Option<&str>,
) -> Result<Application, Status> {
    let (centre_id, kind, province) = (applying.centre.as_str(), applying.ask.kind, applying.centre.province());
    let tag = api.sealer.bidder_tag(centre_id, &sealed.bidder_uscc);
    // One bidder, section and type at a time: serialise applications of the same three.
    store::applications::lock_bidder(transaction, centre_id, &section.section_id, kind, &tag).await.map_err(failed("locking the bidder"))?;
    let in_force =
        store::applications::guarantee_in_force(transaction, centre_id, &section.section_id, kind, &tag).await.map_err(failed("reading guarantees"))?;
    if let Some(number) = in_force {
        return Err(Status::already_exists(format!("the bidder already holds guarantee {number} for section {}", section.section_id)));
    }
    let id = Uuid::now_v7();
    let new = NewApplication {
        application_id: id,
        centre_id,
        province_id: province.as_str(),
        section_id: &section.section_id,
        bidder_tag: &tag,
        issuer_code: &applying.issuer_code,
        product_id: &applying.product_id,
        kind,
        sealed: api.seal(&id.to_string(), sealed)?,
        client_ip: ip,
    };
    if let Some(application) = store::applications::insert(transaction, &new).await.map_err(failed("storing the application"))? {
        return Ok(application);
    }
    let pending = store::applications::pending(transaction, centre_id, &section.section_id, kind, &tag).await.map_err(failed("reading applications"))?;
    let existing = pending.ok_or_else(|| Status::aborted("a concurrent application changed the section; retry"))?;
    Err(Status::already_exists(format!("the bidder already has a pending application {existing} for section {}", section.section_id)))
}

pub(super) async fn cancel(api: &GuaranteeApi, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(&[Role::Bidder], &body.centre_id)?;
    let id = application_id(&body.application_id)?;
    let mut transaction = api.begin().await?;
    let not_found = || Status::not_found(format!("no application {id} of this bidder"));
    let application =
        store::applications::lock(&mut transaction, id, &body.centre_id).await.map_err(failed("locking the application"))?.ok_or_else(not_found)?;
    let sealed = api.open_application(&application)?;
    if sealed.bidder_uscc != caller.party {
        return Err(not_found());
    }
    applications::may_cancel(&id.to_string(), application.state)?;
    let application =
        store::applications::decide(&mut transaction, id, ApplicationState::Cancelled, None).await.map_err(failed("cancelling the application"))?;
    let mut outbox = OutboxRows::default();
    api.event(
        &mut outbox,
        &application.section_id,
        "guarantee.application_cancelled",
        &body.centre_id,
        serde_json::json!({
            "application_id": id, "section_id": application.section_id, "issuer_code": application.issuer_code,
        }),
    );
    fraud::after_failed_application(
        &mut transaction,
        &mut outbox,
        &api.events_topic,
        &api.fraud,
        &body.centre_id,
        &application.bidder_tag,
        &sealed.bidder_uscc,
    )
    .await
    .map_err(failed("checking fraud rules"))?;
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(application_message(&application, &sealed)))
}

pub(super) async fn list(api: &GuaranteeApi, request: Request<pb::ListApplicationsRequest>) -> Result<Response<pb::ListApplicationsResponse>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let province = province(&body.centre_id)?;
    if caller.role != Role::Issuer || caller.centre.province() != province {
        return Err(Status::permission_denied("only an issuer lists its applications"));
    }
    printable("status", &body.status)?;
    let stored = store::applications::of_issuer(&api.pool, province.as_str(), &caller.party, &body.status).await.map_err(failed("listing applications"))?;
    let mut applications = Vec::with_capacity(stored.len());
    for application in &stored {
        applications.push(application_message(application, &api.open_application(application)?));
    }
    Ok(Response::new(pb::ListApplicationsResponse { applications }))
}

pub(super) async fn get(api: &GuaranteeApi, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let id = application_id(&body.application_id)?;
    let not_found = || Status::not_found(format!("no application {id} visible to this caller"));
    let application = store::applications::get(&api.pool, id, &body.centre_id).await.map_err(failed("reading the application"))?.ok_or_else(not_found)?;
    let sealed = api.open_application(&application)?;
    let section = api.sections.require(&body.centre_id, &application.section_id).await?;
    let province_ok = caller.centre.province() == centre(&body.centre_id)?.province();
    let viewer = viewer(&caller, caller.may_access(&section.centre_id));
    if !province_ok || !sealing::may_see(viewer, section.bids_opened, &sealed.bidder_uscc, &application.issuer_code) {
        return Err(not_found());
    }
    Ok(Response::new(application_message(&application, &sealed)))
}

pub(super) async fn reject(api: &GuaranteeApi, request: Request<pb::RejectApplicationRequest>) -> Result<Response<pb::Application>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let reason = reason(&body.reason)?;
    let id = application_id(&body.application_id)?;
    let mut transaction = api.begin().await?;
    let application = issuer_application(&mut transaction, &caller, &body.centre_id, id).await?;
    let mut sealed = api.open_application(&application)?;
    sealed.reason = reason.to_owned();
    let resealed = api.seal(&id.to_string(), &sealed)?;
    let application =
        store::applications::decide(&mut transaction, id, ApplicationState::Rejected, Some(&resealed)).await.map_err(failed("rejecting the application"))?;
    let mut outbox = OutboxRows::default();
    api.event(
        &mut outbox,
        &application.section_id,
        "guarantee.application_rejected",
        &body.centre_id,
        serde_json::json!({
            "application_id": id, "section_id": application.section_id, "issuer_code": caller.party,
        }),
    );
    fraud::after_failed_application(
        &mut transaction,
        &mut outbox,
        &api.events_topic,
        &api.fraud,
        &body.centre_id,
        &application.bidder_tag,
        &sealed.bidder_uscc,
    )
    .await
    .map_err(failed("checking fraud rules"))?;
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(application_message(&application, &sealed)))
}

/// The pending application `id` of the calling issuer, locked; NOT_FOUND for another
/// issuer's (it must not learn of it), FAILED_PRECONDITION when no longer pending.
pub(super) async fn issuer_application(transaction: &mut Tx, caller: &Caller, centre_id: &str, id: Uuid) -> Result<Application, Status> {
    if caller.role != Role::Issuer {
        return Err(Status::permission_denied("only the issuer decides its applications"));
    }
    let application = store::applications::lock(transaction, id, centre_id)
        .await
        .map_err(failed("locking the application"))?
        .filter(|application| application.issuer_code == caller.party && caller.centre.province().as_str() == application.province_id)
        .ok_or_else(|| Status::not_found(format!("issuer {} has no application {id}", caller.party)))?;
    applications::may_decide(&id.to_string(), application.state)?;
    Ok(application)
}
