//! Issuers of a province: registration, state, onboarding pause, listing.

use jinfu_ledger::ids::CentreCode;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{invalid, reason, required_text};
use jinfu_platform::outbox::OutboxRows;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::guarantee::v1 as pb;
use tonic::{Request, Response, Status};

use super::{failed, province, GuaranteeApi};
use crate::domain::issuers::{self, is_issuer_code};
use crate::domain::{IssuerKind, IssuerState};
use crate::store;

impl TryFrom<i32> for IssuerKind {
    type Error = Status;
    fn try_from(value: i32) -> Result<Self, Status> {
        match pb::IssuerKind::try_from(value) {
            Ok(pb::IssuerKind::Bank) => Ok(IssuerKind::Bank),
            Ok(pb::IssuerKind::Insurer) => Ok(IssuerKind::Insurer),
            Ok(pb::IssuerKind::Guarantor) => Ok(IssuerKind::Guarantor),
            _ => Err(invalid("kind must be bank, insurer, guarantor")),
        }
    }
}

impl From<IssuerKind> for i32 {
    fn from(kind: IssuerKind) -> i32 {
        let value = match kind {
            IssuerKind::Bank => pb::IssuerKind::Bank,
            IssuerKind::Insurer => pb::IssuerKind::Insurer,
            IssuerKind::Guarantor => pb::IssuerKind::Guarantor,
        };
        value as i32
    }
}

impl TryFrom<i32> for IssuerState {
    type Error = Status;
    fn try_from(value: i32) -> Result<Self, Status> {
        match pb::IssuerState::try_from(value) {
            Ok(pb::IssuerState::Active) => Ok(IssuerState::Active),
            Ok(pb::IssuerState::Suspended) => Ok(IssuerState::Suspended),
            Ok(pb::IssuerState::Exited) => Ok(IssuerState::Exited),
            _ => Err(invalid("state must be active, suspended, exited")),
        }
    }
}

impl From<IssuerState> for i32 {
    fn from(state: IssuerState) -> i32 {
        let value = match state {
            IssuerState::Active => pb::IssuerState::Active,
            IssuerState::Suspended => pb::IssuerState::Suspended,
            IssuerState::Exited => pb::IssuerState::Exited,
        };
        value as i32
    }
}

fn scheme_of(value: i32) -> Result<Scheme, Status> {
    match pb::SignatureScheme::try_from(value) {
        Ok(pb::SignatureScheme::Sm2Sm3) => Ok(Scheme::Sm2Sm3),
        Ok(pb::SignatureScheme::Ed25519) => Ok(Scheme::Ed25519),
        _ => Err(invalid("scheme must be SM2_SM3 or ED25519")),
    }
}

fn scheme_value(scheme: Scheme) -> i32 {
    let value = match scheme {
        Scheme::Sm2Sm3 => pb::SignatureScheme::Sm2Sm3,
        Scheme::Ed25519 => pb::SignatureScheme::Ed25519,
    };
    value as i32
}

pub(super) fn issuer_message(issuer: &store::issuers::Issuer) -> pb::Issuer {
    pb::Issuer {
        centre_id: issuer.centre_id.clone(),
        issuer_code: issuer.issuer_code.clone(),
        name: issuer.name.clone(),
        kind: issuer.kind.into(),
        state: issuer.state.into(),
        scheme: scheme_value(issuer.scheme),
        public_key: issuer.public_key.clone(),
    }
}

/// A RegisterIssuer request, converted.
struct Registration {
    province: CentreCode,
    issuer_code: String,
    name: String,
    kind: IssuerKind,
    scheme: Scheme,
    /// Lower-case hex, checked to be a key of `scheme`.
    public_key: String,
}

impl TryFrom<pb::RegisterIssuerRequest> for Registration {
    type Error = Status;
    fn try_from(body: pb::RegisterIssuerRequest) -> Result<Self, Status> {
        let province = province(&body.centre_id)?;
        let issuer_code = body.issuer_code.trim();
        if !is_issuer_code(issuer_code) {
            return Err(invalid("issuer_code must be 1–32 upper-case letters, digits or _"));
        }
        let name = required_text("name", &body.name)?;
        let kind = IssuerKind::try_from(body.kind)?;
        let scheme = scheme_of(body.scheme)?;
        VerifyingKey::from_hex(scheme, body.public_key.trim()).map_err(|error| invalid(format!("public_key: {error}")))?;
        Ok(Registration {
            province,
            issuer_code: issuer_code.to_owned(),
            name: name.to_owned(),
            kind,
            scheme,
            public_key: body.public_key.trim().to_ascii_lowercase(),
        })
    }
}

pub(super) async fn register(api: &GuaranteeApi, request: Request<pb::RegisterIssuerRequest>) -> Result<Response<pb::Issuer>, Status> {
    let caller = Caller::of(&request)?;
    let registration = Registration::try_from(request.into_inner())?;
    let province = registration.province.as_str();
    caller.authorize(&[Role::Admin], province)?;
    let mut transaction = api.begin().await?;
    let paused = store::provinces::lock_onboarding_paused(&mut transaction, province).await.map_err(failed("locking the province"))?;
    let existing = store::issuers::lock(&mut transaction, province, &registration.issuer_code).await.map_err(failed("locking the issuer"))?;
    let existing = existing.map(|issuer| issuer.state);
    issuers::may_register(province, &registration.issuer_code, existing, paused)?;
    let written = store::issuers::Registration {
        province,
        issuer_code: &registration.issuer_code,
        name: &registration.name,
        kind: registration.kind,
        scheme: registration.scheme,
        public_key: &registration.public_key,
    };
    let issuer = store::issuers::upsert(&mut transaction, &written).await.map_err(failed("registering the issuer"))?;
    if existing.is_none() {
        store::issuers::log_state(&mut transaction, province, &issuer.issuer_code, IssuerState::Active, "onboarded", &caller.party)
            .await
            .map_err(failed("logging the issuer's state"))?;
    }
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(issuer_message(&issuer)))
}

pub(super) async fn set_state(api: &GuaranteeApi, request: Request<pb::SetIssuerStateRequest>) -> Result<Response<pb::Issuer>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let province = province(&body.centre_id)?;
    let state = IssuerState::try_from(body.state)?;
    let reason = reason(&body.reason)?;
    caller.authorize(&[Role::Admin], province.as_str())?;
    let mut transaction = api.begin().await?;
    let issuer = locked_issuer(&mut transaction, province.as_str(), body.issuer_code.trim()).await?;
    issuers::may_change_state(&issuer.issuer_code, issuer.state, state)?;
    let issuer = store::issuers::set_state(&mut transaction, province.as_str(), &issuer.issuer_code, state, reason, &caller.party)
        .await
        .map_err(failed("setting the issuer's state"))?;
    let mut outbox = OutboxRows::default();
    api.event(
        &mut outbox,
        &issuer.issuer_code,
        "issuer.state_changed",
        province.as_str(),
        serde_json::json!({
            "issuer_code": issuer.issuer_code, "state": state.code(), "reason": reason,
        }),
    );
    outbox.insert(&mut transaction).await.map_err(failed("writing the outbox"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    Ok(Response::new(issuer_message(&issuer)))
}

pub(super) async fn set_onboarding_paused(
    api: &GuaranteeApi,
    request: Request<pb::SetOnboardingPausedRequest>,
) -> Result<Response<pb::SetOnboardingPausedResponse>, Status> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    let province = province(&body.centre_id)?;
    caller.authorize(&[Role::Admin], province.as_str())?;
    store::provinces::set_onboarding_paused(&api.pool, province.as_str(), body.paused, &caller.party).await.map_err(failed("pausing onboarding"))?;
    Ok(Response::new(pb::SetOnboardingPausedResponse { paused: body.paused }))
}

pub(super) async fn list(api: &GuaranteeApi, request: Request<pb::ListIssuersRequest>) -> Result<Response<pb::ListIssuersResponse>, Status> {
    let caller = Caller::of(&request)?;
    let province = province(&request.get_ref().centre_id)?;
    if caller.centre.province() != province {
        return Err(Status::permission_denied(format!("caller of centre {} may not list the issuers of province {province}", caller.centre)));
    }
    let issuers = store::issuers::list(&api.pool, province.as_str()).await.map_err(failed("listing issuers"))?;
    let paused = store::provinces::onboarding_paused(&api.pool, province.as_str()).await.map_err(failed("reading the province"))?;
    Ok(Response::new(pb::ListIssuersResponse { issuers: issuers.iter().map(issuer_message).collect(), onboarding_paused: paused }))
}

/// The issuer of the province, locked; NOT_FOUND when the province has none of that code.
pub(super) async fn locked_issuer(transaction: &mut store::Tx, province: &str, issuer_code: &str) -> Result<store::issuers::Issuer, Status> {
    store::issuers::lock(transaction, province, issuer_code)
        .await
        .map_err(failed("locking the issuer"))?
        .ok_or_else(|| Status::not_found(format!("province {province} has no issuer {issuer_code}")))
}
