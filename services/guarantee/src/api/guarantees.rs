//! Guarantees: signed issuance, verification (验真) and the section's listing after opening.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, printable, required_text, timestamp};
use jinfu_platform::outbox::OutboxRows;
use jinfu_platform::signing::VerifyingKey;
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::applications::{application_id, issuer_application};
use super::issuers::locked_issuer;
use super::{centre, date_text, failed, viewer, GuaranteeApi, STAFF};
use crate::domain::guarantees::{self, GuaranteeStatus};
use crate::domain::{issuers, sealing, GuaranteeTerms, GuaranteeType, SealedApplication, SealedGuarantee, Section};
use crate::store::guarantees::{Guarantee, NewGuarantee};
use crate::{domain, store};

/// An IssueGuarantee request, converted.
struct Issuing {
    centre_id: String,
    application_id: Uuid,
    guarantee_no: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    document_sha256: String,
    signature: String,
}

impl TryFrom<pb::IssueGuaranteeRequest> for Issuing {
    type Error = Status;
    fn try_from(body: pb::IssueGuaranteeRequest) -> Result<Self, Status> {
        let application_id = application_id(&body.application_id)?;
        let guarantee_no = body.guarantee_no.trim();
        if !domain::is_guarantee_no(guarantee_no) {
            return Err(invalid("guarantee_no must be 6–64 letters, digits, '-' or '/'"));
        }
        let valid_from = domain::parse_date(&body.valid_from).ok_or_else(|| invalid("valid_from must be an ISO date (YYYY-MM-DD)"))?;
        let valid_to = domain::parse_date(&body.valid_to).ok_or_else(|| invalid("valid_to must be an ISO date (YYYY-MM-DD)"))?;
        if !domain::is_sha256_hex(&body.document_sha256) {
            return Err(invalid("document_sha256 must be 64 lower-case hex digits"));
        }
        Ok(Issuing {
            centre_id: body.centre_id,
            application_id,
            guarantee_no: guarantee_no.to_owned(),
            valid_from,
            valid_to,
            document_sha256: body.document_sha256,
            signature: body.signature.trim().to_owned(),
        })
    }
}

fn guarantee_message(sealed: &SealedGuarantee, issuer_code: &str, status: &str, issued_at: DateTime<Utc>) -> pb::Guarantee {
    let terms = &sealed.terms;
    pb::Guarantee {
        guarantee_no: terms.guarantee_no.clone(),
        application_id: terms.application_id.clone(),
        centre_id: terms.centre_id.clone(),
        section_id: terms.section_id.clone(),
        r#type: terms.kind.into(),
        issuer_code: issuer_code.to_owned(),
        bidder_uscc: terms.principal_uscc.clone(),
        beneficiary: terms.beneficiary.clone(),
        amount_fen: terms.amount_fen,
        premium_fen: sealed.premium_fen,
        valid_from: date_text(terms.valid_from),
        valid_to: date_text(terms.valid_to),
        document_sha256: terms.document_sha256.clone(),
        signature: sealed.signature.clone(),
        status: status.to_owned(),
        issued_at: Some(timestamp(issued_at)),
    }
}

impl GuaranteeApi {
    pub(super) fn open_guarantee(&self, guarantee: &Guarantee) -> Result<SealedGuarantee, Status> {
        self.open(&guarantee.guarantee_no, &guarantee.sealed)
    }

    /// What a caller is told of the guarantee now.
    pub(super) fn status(&self, guarantee: &Guarantee, sealed: &SealedGuarantee, section: &Section) -> GuaranteeStatus {
        guarantees::status(self.clock.now(), guarantee.state, sealed.terms.valid_to, section.bids_opened)
    }
}

pub(super) async fn issue(api: &GuaranteeApi, request: Request<pb::IssueGuaranteeRequest>) -> Result<Response<pb::Guarantee>, Status> {
    let caller = Caller::of(&request)?;
    let issuing = Issuing::try_from(request.into_inner())?;
    let id = issuing.application_id;
    let mut transaction = api.begin().await?;
    let application = issuer_application(&mut transaction, &caller, &issuing.centre_id, id).await?;
    let requested: SealedApplication = api.open(&id.to_string(), &application.sealed)?;
    let issuer = locked_issuer(&mut transaction, &application.province_id, &caller.party).await?;
    issuers::may_issue(&issuer.issuer_code, issuer.state)?;
    guarantees::number_of_issuer(&issuer.issuer_code, &issuing.guarantee_no)?;
    guarantees::validity_covers(issuing.valid_from, issuing.valid_to, requested.valid_to)?;
    if application.kind == GuaranteeType::Bid {
        let section = api.sections.require(&issuing.centre_id, &application.section_id).await?;
        guarantees::may_issue_bid(api.clock.now(), &section, issuing.valid_from)?;
    }
    let terms = GuaranteeTerms {
        guarantee_no: issuing.guarantee_no.clone(),
        application_id: id.to_string(),
        centre_id: issuing.centre_id.clone(),
        section_id: application.section_id.clone(),
        kind: application.kind,
        principal_uscc: requested.bidder_uscc.clone(),
        beneficiary: requested.beneficiary.clone(),
        amount_fen: requested.amount_fen,
        valid_from: issuing.valid_from,
        valid_to: issuing.valid_to,
        document_sha256: issuing.document_sha256.clone(),
    };
    let key = VerifyingKey::from_hex(issuer.scheme, &issuer.public_key).map_err(failed("reading the issuer's key"))?;
    key.verify(terms.canonical_text().as_bytes(), &issuing.signature)
        .map_err(|error| invalid(format!("the signature does not verify with issuer {}'s registered key: {error}", issuer.issuer_code)))?;
    let sealed = SealedGuarantee {
        terms,
        signature: issuing.signature.clone(),
        premium_fen: requested.premium_fen,
        issuer_key: Some((issuer.scheme.as_str().to_owned(), issuer.public_key.clone())),
    };
    let new = NewGuarantee {
        guarantee_no: &issuing.guarantee_no,
        application_id: id,
        centre_id: &issuing.centre_id,
        section_id: &sealed.terms.section_id,
        issuer_code: &issuer.issuer_code,
        kind: application.kind,
        sealed: api.seal(&issuing.guarantee_no, &sealed)?,
        amount_fen: sealed.terms.amount_fen,
        valid_to: issuing.valid_to,
    };
    let issued_at = store::guarantees::issue(&mut transaction, &new)
        .await
        .map_err(failed("storing the guarantee"))?
        .ok_or_else(|| invalid(format!("guarantee number {} is already used", issuing.guarantee_no)))?;
    let mut outbox = OutboxRows::default();
    let terms = &sealed.terms;
    api.event(
        &mut outbox,
        &terms.section_id,
        "guarantee.issued",
        &issuing.centre_id,
        serde_json::json!({
            "guarantee_no": terms.guarantee_no, "application_id": id, "section_id": terms.section_id, "type": terms.kind.code(),
            "bidder_uscc": terms.principal_uscc, "issuer_code": issuer.issuer_code, "amount_fen": terms.amount_fen,
            "valid_from": terms.valid_from, "valid_to": terms.valid_to,
        }),
    );
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(guarantee_message(&sealed, &issuer.issuer_code, GuaranteeStatus::Issued.code(), issued_at)))
}

/// A VerifyGuarantee request: by number, or by bidder and section.
enum Verifying {
    ByNumber(String),
    ByBidder { bidder_uscc: String, section_id: String },
}

impl TryFrom<&pb::VerifyGuaranteeRequest> for Verifying {
    type Error = Status;
    fn try_from(body: &pb::VerifyGuaranteeRequest) -> Result<Self, Status> {
        let number = body.guarantee_no.trim();
        if !number.is_empty() {
            return Ok(Verifying::ByNumber(number.to_owned()));
        }
        let bidder_uscc = required_text("bidder_uscc", &body.bidder_uscc)?.to_owned();
        let section_id = required_text("section_id", &body.section_id)?.to_owned();
        Ok(Verifying::ByBidder { bidder_uscc, section_id })
    }
}

impl Verifying {
    /// NOT_FOUND as for an unknown guarantee. Unknown, and sealed from this caller, are
    /// answered alike: the answer must not tell whether a bidder secured a section before its
    /// bids are opened.
    fn hidden(&self) -> Status {
        match self {
            Verifying::ByNumber(number) => Status::not_found(format!("no guarantee numbered {number:?} visible to this caller")),
            Verifying::ByBidder { .. } => Status::not_found("no guarantee visible to this caller for that bidder and section"),
        }
    }
}

/// Whether the caller may verify guarantees of `code`: whoever may access the centre, and the
/// issuers of its province.
fn may_verify_in(caller: &Caller, code: &CentreCode) -> Result<(), Status> {
    let issuer_of_province = caller.role == Role::Issuer && caller.centre.province() == code.province();
    if !caller.may_access(code.as_str()) && !issuer_of_province {
        return Err(Status::permission_denied(format!("caller of centre {} may not verify guarantees of centre {code}", caller.centre)));
    }
    Ok(())
}

pub(super) async fn verify(api: &GuaranteeApi, request: Request<pb::VerifyGuaranteeRequest>) -> Result<Response<pb::Verification>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.get_ref();
    let code = centre(&body.centre_id)?;
    may_verify_in(&caller, &code)?;
    let verifying = Verifying::try_from(body)?;
    let found = match &verifying {
        Verifying::ByNumber(number) => store::guarantees::by_number(&api.pool, code.as_str(), number).await,
        Verifying::ByBidder { bidder_uscc, section_id } => {
            // The section first, on every path, so that a sealed guarantee and none take as long.
            api.sections.require(code.as_str(), section_id).await?;
            store::guarantees::bid_of_bidder(&api.pool, code.as_str(), section_id, &api.sealer.bidder_tag(code.as_str(), bidder_uscc)).await
        }
    };
    let guarantee = found.map_err(failed("finding the guarantee"))?.ok_or_else(|| verifying.hidden())?;
    let sealed = api.open_guarantee(&guarantee)?;
    let section = api.sections.require(code.as_str(), &sealed.terms.section_id).await?;
    let viewer = viewer(&caller, caller.may_access(code.as_str()));
    if !sealing::may_verify(viewer, section.bids_opened, &sealed.terms.principal_uscc, &guarantee.issuer_code) {
        return Err(verifying.hidden());
    }
    let province = guarantee.province_id.as_deref().unwrap_or_default();
    let current_key = store::issuers::key(&api.pool, province, &guarantee.issuer_code).await.map_err(failed("reading the issuer's key"))?;
    if !guarantees::authentic(&sealed, current_key) {
        return Ok(Response::new(pb::Verification { authentic: false, guarantee_no: guarantee.guarantee_no, ..Default::default() }));
    }
    Ok(Response::new(pb::Verification {
        authentic: true,
        status: api.status(&guarantee, &sealed, &section).code().to_owned(),
        guarantee_no: guarantee.guarantee_no,
        issuer_code: guarantee.issuer_code,
        amount_fen: sealed.terms.amount_fen,
        valid_to: date_text(sealed.terms.valid_to),
        bidder_uscc: sealed.terms.principal_uscc,
        section_id: sealed.terms.section_id,
    }))
}

pub(super) async fn list_of_section(
    api: &GuaranteeApi,
    request: Request<pb::ListSectionGuaranteesRequest>,
) -> Result<Response<pb::ListSectionGuaranteesResponse>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    printable("section_id", &body.section_id)?;
    let section = api.sections.require(&body.centre_id, &body.section_id).await?;
    sealing::may_list(&section)?;
    let stored = store::guarantees::of_section(&api.pool, &body.centre_id, &body.section_id).await.map_err(failed("listing guarantees"))?;
    let mut guarantees = Vec::with_capacity(stored.len());
    for guarantee in &stored {
        let sealed = api.open_guarantee(guarantee)?;
        let status = api.status(guarantee, &sealed, &section);
        guarantees.push(guarantee_message(&sealed, &guarantee.issuer_code, status.code(), guarantee.issued_at));
    }
    Ok(Response::new(pb::ListSectionGuaranteesResponse { guarantees }))
}
