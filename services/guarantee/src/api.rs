//! The GuaranteeService gRPC API (proto/jinfu/guarantee/v1/guarantee.proto documents every call,
//! role and error). Every write is one transaction; an event it causes is written to the outbox
//! in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::calendar::china_date;
use jinfu_ledger::ids::{CentreCode, Uscc};
use jinfu_ledger::Fen;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::outbox::OutboxRows;
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::guarantee::v1 as pb;
use jinfu_proto::guarantee::v1::guarantee_service_server::GuaranteeService;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{self, GuaranteeTerms, GuaranteeType};
use crate::fraud::{self, FraudSettings};
use crate::seal::Sealer;
use crate::sections::{Section, Sections};

const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

pub struct GuaranteeApi {
    /// The service's own schema.
    pub pool: PgPool,
    /// Seals what names a bidder until bid opening.
    pub sealer: Sealer,
    /// The ledger's sections.
    pub sections: Sections,
    /// `guarantee.events` (with the deployment's topic prefix).
    pub events_topic: String,
    /// Fraud-warning thresholds.
    pub fraud: FraudSettings,
}

/// The sealed part of an application.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedApplication {
    bidder_uscc: String,
    beneficiary: String,
    amount_fen: i64,
    premium_fen: i64,
    valid_to: NaiveDate,
    #[serde(default)]
    reason: String,
}

/// The sealed part of a guarantee: the signed terms and the signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedGuarantee {
    terms: GuaranteeTerms,
    signature: String,
    premium_fen: i64,
    /// The issuer's key that verified the signature at issue (`scheme`, hex public key): a
    /// guarantee stays verifiable after the issuer registers a new key.
    #[serde(default)]
    issuer_key: Option<(String, String)>,
}

fn internal(error: impl std::fmt::Display) -> Status {
    tracing::error!(error = %error, "guarantee service error");
    Status::internal("internal error; the request changed nothing")
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

fn centre(text: &str) -> Result<CentreCode, Status> {
    CentreCode::parse(text).map_err(|_| invalid(format!("centre_id {text:?} is not a six-digit administrative-division code")))
}

fn province(text: &str) -> Result<CentreCode, Status> {
    let code = centre(text)?;
    if !code.is_province() {
        return Err(invalid(format!("issuers and products are province-wide: centre_id must be a province centre (e.g. {}), not {code}", code.province())));
    }
    Ok(code)
}

fn required<'a>(field: &str, text: &'a str) -> Result<&'a str, Status> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
        return Err(invalid(format!("{field} is required: 1–200 printable characters")));
    }
    Ok(text)
}

/// Issuer kinds and states as the API numbers them and as they are stored and published.
const ISSUER_KINDS: [(pb::IssuerKind, &str); 3] = [(pb::IssuerKind::Bank, "bank"), (pb::IssuerKind::Insurer, "insurer"), (pb::IssuerKind::Guarantor, "guarantor")];
const ISSUER_STATES: [(pb::IssuerState, &str); 3] = [(pb::IssuerState::Active, "active"), (pb::IssuerState::Suspended, "suspended"), (pb::IssuerState::Exited, "exited")];

/// The stored code of an API enum value; INVALID_ARGUMENT naming the allowed codes otherwise.
fn code_of<E: Copy + PartialEq + TryFrom<i32>>(table: &[(E, &'static str)], value: i32, field: &str) -> Result<&'static str, Status> {
    let value = E::try_from(value).ok();
    table.iter().find(|(known, _)| Some(*known) == value).map(|(_, code)| *code).ok_or_else(|| {
        let codes: Vec<&str> = table.iter().map(|(_, code)| *code).collect();
        invalid(format!("{field} must be {}", codes.join(", ")))
    })
}

/// The API enum value of a stored code (0, unspecified, for an unknown one).
fn enum_of<E: Copy + Into<i32>>(table: &[(E, &'static str)], code: &str) -> i32 {
    table.iter().find(|(_, known)| *known == code).map_or(0, |(value, _)| (*value).into())
}

fn scheme_of(scheme: i32) -> Result<Scheme, Status> {
    match pb::SignatureScheme::try_from(scheme) {
        Ok(pb::SignatureScheme::Sm2Sm3) => Ok(Scheme::Sm2Sm3),
        Ok(pb::SignatureScheme::Ed25519) => Ok(Scheme::Ed25519),
        _ => Err(invalid("scheme must be SM2_SM3 or ED25519")),
    }
}

fn scheme_enum(code: &str) -> i32 {
    match code {
        "sm2-sm3" => pb::SignatureScheme::Sm2Sm3 as i32,
        "ed25519" => pb::SignatureScheme::Ed25519 as i32,
        _ => pb::SignatureScheme::Unspecified as i32,
    }
}

fn type_of(kind: i32) -> Result<GuaranteeType, Status> {
    match pb::GuaranteeType::try_from(kind) {
        Ok(pb::GuaranteeType::Bid) => Ok(GuaranteeType::Bid),
        Ok(pb::GuaranteeType::Performance) => Ok(GuaranteeType::Performance),
        Ok(pb::GuaranteeType::Quality) => Ok(GuaranteeType::Quality),
        _ => Err(invalid("type must be BID, PERFORMANCE or QUALITY")),
    }
}

fn type_enum(code: &str) -> i32 {
    match GuaranteeType::parse(code) {
        Some(GuaranteeType::Bid) => pb::GuaranteeType::Bid as i32,
        Some(GuaranteeType::Performance) => pb::GuaranteeType::Performance as i32,
        Some(GuaranteeType::Quality) => pb::GuaranteeType::Quality as i32,
        None => pb::GuaranteeType::Unspecified as i32,
    }
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0) }
}


/// The most a performance (10 %) or quality (3 %) guarantee may cover of a contract amount.
fn contract_share_limit(kind: GuaranteeType, contract_amount_fen: i64) -> i64 {
    match kind {
        GuaranteeType::Bid => i64::MAX,
        GuaranteeType::Performance => contract_amount_fen / 10,
        GuaranteeType::Quality => contract_amount_fen.saturating_mul(3) / 100,
    }
}

/// The client's address: the last `x-forwarded-for` entry (appended by the ingress), else the
/// peer.
fn client_ip<T>(request: &Request<T>) -> Option<String> {
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        // The ingress appends the address it saw: the rightmost entry. Earlier entries are
        // whatever the client sent.
        .and_then(|value| value.rsplit(',').next())
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 64);
    forwarded.or_else(|| request.remote_addr().map(|address| address.ip().to_string()))
}

/// Claim reasons that fit each guarantee type.
fn claim_fits(kind: GuaranteeType, reason: &str) -> bool {
    match kind {
        GuaranteeType::Bid => matches!(reason, "withdrew_after_deadline" | "refused_to_sign"),
        GuaranteeType::Performance => reason == "failed_to_perform",
        GuaranteeType::Quality => reason == "quality_defect",
    }
}

impl GuaranteeApi {
    /// Whether `caller` may see a bidder's application or guarantee for `section`: the bidder
    /// itself and its issuer always; staff of the centre once the bids are opened.
    fn may_see(caller: &Caller, section: &Section, bidder_uscc: &str, issuer_code: &str) -> bool {
        match caller.role {
            Role::Bidder => caller.party == bidder_uscc,
            Role::Issuer => caller.party == issuer_code,
            Role::Operator | Role::Supervisor | Role::Admin => section.bids_opened && caller.may_access(&section.centre_id),
            Role::Bank => false,
        }
    }

    fn issuer_message(row: &sqlx::postgres::PgRow) -> pb::Issuer {
        pb::Issuer {
            centre_id: row.get("centre_id"),
            issuer_code: row.get("issuer_code"),
            name: row.get("name"),
            kind: enum_of(&ISSUER_KINDS, row.get("kind")),
            state: enum_of(&ISSUER_STATES, row.get("state")),
            scheme: scheme_enum(row.get("scheme")),
            public_key: row.get("public_key"),
        }
    }

    async fn issuer(&self, transaction: &mut Transaction<'static, Postgres>, province: &str, issuer_code: &str) -> Result<pb::Issuer, Status> {
        let row = sqlx::query("SELECT * FROM issuers WHERE centre_id = $1 AND issuer_code = $2 FOR UPDATE")
            .bind(province)
            .bind(issuer_code)
            .fetch_optional(&mut **transaction)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("province {province} has no issuer {issuer_code}")))?;
        Ok(Self::issuer_message(&row))
    }

    fn application_message(&self, row: &sqlx::postgres::PgRow, sealed: &SealedApplication, guarantee_no: Option<String>) -> pb::Application {
        let id: Uuid = row.get("application_id");
        pb::Application {
            application_id: id.to_string(),
            centre_id: row.get("centre_id"),
            section_id: row.get("section_id"),
            bidder_uscc: sealed.bidder_uscc.clone(),
            issuer_code: row.get("issuer_code"),
            product_id: row.get("product_id"),
            r#type: type_enum(row.get("kind")),
            beneficiary: sealed.beneficiary.clone(),
            amount_fen: sealed.amount_fen,
            premium_fen: sealed.premium_fen,
            valid_to: sealed.valid_to.format("%Y-%m-%d").to_string(),
            status: row.get("status"),
            reason: sealed.reason.clone(),
            applied_at: Some(timestamp(row.get("applied_at"))),
            guarantee_no: guarantee_no.unwrap_or_default(),
        }
    }

    fn open_application(&self, row: &sqlx::postgres::PgRow) -> Result<SealedApplication, Status> {
        let id: Uuid = row.get("application_id");
        self.sealer.open(&id.to_string(), row.get::<&[u8], _>("sealed")).map_err(internal)
    }

    fn guarantee_message(sealed: &SealedGuarantee, issuer_code: &str, status: &str, issued_at: DateTime<Utc>) -> pb::Guarantee {
        let terms = &sealed.terms;
        pb::Guarantee {
            guarantee_no: terms.guarantee_no.clone(),
            application_id: terms.application_id.clone(),
            centre_id: terms.centre_id.clone(),
            section_id: terms.section_id.clone(),
            r#type: type_enum(terms.kind.code()),
            issuer_code: issuer_code.to_owned(),
            bidder_uscc: terms.principal_uscc.clone(),
            beneficiary: terms.beneficiary.clone(),
            amount_fen: terms.amount_fen,
            premium_fen: sealed.premium_fen,
            valid_from: terms.valid_from.format("%Y-%m-%d").to_string(),
            valid_to: terms.valid_to.format("%Y-%m-%d").to_string(),
            document_sha256: terms.document_sha256.clone(),
            signature: sealed.signature.clone(),
            status: status.to_owned(),
            issued_at: Some(timestamp(issued_at)),
        }
    }

    /// A guarantee's status now: its lifecycle state; one in force is `expired` after its
    /// validity (before the sweeper records it), `unsealed` once the bids are opened, `issued`
    /// before.
    fn guarantee_status(state: &str, sealed: &SealedGuarantee, section: &Section) -> String {
        if state != "issued" {
            state.to_owned()
        } else if sealed.terms.valid_to < china_date(Utc::now()) {
            "expired".to_owned()
        } else if section.bids_opened {
            "unsealed".to_owned()
        } else {
            "issued".to_owned()
        }
    }

    /// Whether the guarantee's signature verifies with the issuer's key it was issued under
    /// (the issuer must still be registered).
    async fn authentic(&self, province: &str, issuer_code: &str, sealed: &SealedGuarantee) -> Result<bool, Status> {
        let current: Option<(String, String)> = sqlx::query_as("SELECT scheme, public_key FROM issuers WHERE centre_id = $1 AND issuer_code = $2")
            .bind(province)
            .bind(issuer_code)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        let Some(current) = current else { return Ok(false) };
        let (scheme, public_key) = sealed.issuer_key.clone().unwrap_or(current);
        let Ok(scheme) = scheme.parse::<Scheme>() else { return Ok(false) };
        let Ok(key) = VerifyingKey::from_hex(scheme, &public_key) else { return Ok(false) };
        Ok(key.verify(sealed.terms.canonical_text().as_bytes(), &sealed.signature).is_ok())
    }

    fn event(&self, outbox: &mut OutboxRows, key: &str, event_type: &str, centre_id: &str, data: serde_json::Value) {
        outbox.push_event(&self.events_topic, key, event_type, centre_id, data);
    }
}

#[tonic::async_trait]
impl GuaranteeService for GuaranteeApi {
    async fn register_issuer(&self, request: Request<pb::RegisterIssuerRequest>) -> Result<Response<pb::Issuer>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        caller.authorize(&[Role::Admin], province.as_str())?;
        let code = body.issuer_code.trim();
        if code.is_empty() || code.len() > 32 || !code.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_') {
            return Err(invalid("issuer_code must be 1–32 upper-case letters, digits or _"));
        }
        let name = required("name", &body.name)?;
        let kind = code_of(&ISSUER_KINDS, body.kind, "kind")?;
        let scheme = scheme_of(body.scheme)?;
        VerifyingKey::from_hex(scheme, body.public_key.trim()).map_err(|error| invalid(format!("public_key: {error}")))?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        sqlx::query("INSERT INTO provinces (centre_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(province.as_str())
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        let paused: bool = sqlx::query_scalar("SELECT onboarding_paused FROM provinces WHERE centre_id = $1 FOR UPDATE")
            .bind(province.as_str())
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        let existing: Option<String> = sqlx::query_scalar("SELECT state FROM issuers WHERE centre_id = $1 AND issuer_code = $2 FOR UPDATE")
            .bind(province.as_str())
            .bind(code)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        match existing.as_deref() {
            None if paused => return Err(Status::failed_precondition(format!("province {province} has paused the onboarding of new issuers"))),
            Some("exited") => return Err(Status::failed_precondition(format!("issuer {code} has exited; it cannot be registered again"))),
            _ => {}
        }
        let row = sqlx::query(
            "INSERT INTO issuers (centre_id, issuer_code, name, kind, scheme, public_key) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (centre_id, issuer_code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, scheme = EXCLUDED.scheme, public_key = EXCLUDED.public_key
             RETURNING *",
        )
        .bind(province.as_str())
        .bind(code)
        .bind(name)
        .bind(kind)
        .bind(scheme.as_str())
        .bind(body.public_key.trim().to_ascii_lowercase())
        .fetch_one(&mut *transaction)
        .await
        .map_err(internal)?;
        if existing.is_none() {
            sqlx::query("INSERT INTO issuer_state_changes (centre_id, issuer_code, state, reason, changed_by) VALUES ($1, $2, 'active', 'onboarded', $3)")
                .bind(province.as_str())
                .bind(code)
                .bind(&caller.party)
                .execute(&mut *transaction)
                .await
                .map_err(internal)?;
        }
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(Self::issuer_message(&row)))
    }

    async fn set_issuer_state(&self, request: Request<pb::SetIssuerStateRequest>) -> Result<Response<pb::Issuer>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        caller.authorize(&[Role::Admin], province.as_str())?;
        let state = code_of(&ISSUER_STATES, body.state, "state")?;
        let reason = required("reason", &body.reason)?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let issuer = self.issuer(&mut transaction, province.as_str(), body.issuer_code.trim()).await?;
        if issuer.state == pb::IssuerState::Exited as i32 && state != "exited" {
            return Err(Status::failed_precondition(format!("issuer {} has exited; exit is final", issuer.issuer_code)));
        }
        let row = sqlx::query("UPDATE issuers SET state = $3 WHERE centre_id = $1 AND issuer_code = $2 RETURNING *")
            .bind(province.as_str())
            .bind(&issuer.issuer_code)
            .bind(state)
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        sqlx::query("INSERT INTO issuer_state_changes (centre_id, issuer_code, state, reason, changed_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(province.as_str())
            .bind(&issuer.issuer_code)
            .bind(state)
            .bind(reason)
            .bind(&caller.party)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, &issuer.issuer_code, "issuer.state_changed", province.as_str(), serde_json::json!({
            "issuer_code": issuer.issuer_code, "state": state, "reason": reason,
        }));
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(Self::issuer_message(&row)))
    }

    async fn set_onboarding_paused(&self, request: Request<pb::SetOnboardingPausedRequest>) -> Result<Response<pb::SetOnboardingPausedResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        caller.authorize(&[Role::Admin], province.as_str())?;
        sqlx::query(
            "INSERT INTO provinces (centre_id, onboarding_paused, changed_by) VALUES ($1, $2, $3)
             ON CONFLICT (centre_id) DO UPDATE SET onboarding_paused = EXCLUDED.onboarding_paused, changed_by = EXCLUDED.changed_by, changed_at = now()",
        )
        .bind(province.as_str())
        .bind(body.paused)
        .bind(&caller.party)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        Ok(Response::new(pb::SetOnboardingPausedResponse { paused: body.paused }))
    }

    async fn list_issuers(&self, request: Request<pb::ListIssuersRequest>) -> Result<Response<pb::ListIssuersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        if caller.centre.province() != province {
            return Err(Status::permission_denied(format!("caller of centre {} may not list the issuers of province {province}", caller.centre)));
        }
        let rows = sqlx::query("SELECT * FROM issuers WHERE centre_id = $1 ORDER BY issuer_code")
            .bind(province.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let paused: Option<bool> = sqlx::query_scalar("SELECT onboarding_paused FROM provinces WHERE centre_id = $1")
            .bind(province.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListIssuersResponse { issuers: rows.iter().map(Self::issuer_message).collect(), onboarding_paused: paused.unwrap_or(false) }))
    }

    async fn register_product(&self, request: Request<pb::Product>) -> Result<Response<pb::Product>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        match caller.role {
            Role::Issuer if caller.party == body.issuer_code && caller.centre.province() == province => {}
            Role::Admin => caller.authorize(&[Role::Admin], province.as_str())?,
            _ => return Err(Status::permission_denied("only the issuer itself or an admin of the province may register its products")),
        }
        let product_id = required("product_id", &body.product_id)?;
        let name = required("name", &body.name)?;
        let kind = type_of(body.r#type)?;
        let rate = domain::parse_rate(&body.premium_rate).ok_or_else(|| invalid("premium_rate must be a decimal fraction in [0, 0.1], e.g. \"0.0015\""))?;
        if body.minimum_premium_fen < 0 || body.minimum_amount_fen <= 0 || body.maximum_amount_fen < body.minimum_amount_fen {
            return Err(invalid("limits must satisfy 0 ≤ minimum_premium_fen and 0 < minimum_amount_fen ≤ maximum_amount_fen"));
        }
        for code in &body.centres {
            let served = centre(code)?;
            if served.province() != province {
                return Err(invalid(format!("centre {served} is not in province {province}")));
            }
        }
        if let Some(regime) = body.regimes.iter().find(|regime| !matches!(regime.as_str(), "engineering" | "procurement")) {
            return Err(invalid(format!("unknown regime {regime:?}: engineering or procurement")));
        }
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let issuer = self.issuer(&mut transaction, province.as_str(), &body.issuer_code).await?;
        if issuer.state == pb::IssuerState::Exited as i32 {
            return Err(Status::failed_precondition(format!("issuer {} has exited", issuer.issuer_code)));
        }
        let previous: Option<String> = sqlx::query_scalar("SELECT premium_rate::text FROM products WHERE centre_id = $1 AND issuer_code = $2 AND product_id = $3 FOR UPDATE")
            .bind(province.as_str())
            .bind(&issuer.issuer_code)
            .bind(product_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut outbox = OutboxRows::default();
        if let Some(previous) = previous.and_then(|text| text.parse::<Decimal>().ok()) {
            if fraud::premium_swing(previous, rate, self.fraud.premium_swing_percent) {
                let detail = format!(
                    "premium rate of {}/{product_id} changed from {} to {} (more than {} %)",
                    issuer.issuer_code,
                    previous.normalize(),
                    rate.normalize(),
                    self.fraud.premium_swing_percent
                );
                let subject = format!("{}/{product_id}", issuer.issuer_code);
                fraud::warn(&mut transaction, &mut outbox, &self.events_topic, province.as_str(), "premium_swing", &subject, detail).await.map_err(internal)?;
            }
        }
        sqlx::query(
            "INSERT INTO products (centre_id, issuer_code, product_id, name, kind, premium_rate, minimum_premium_fen, minimum_amount_fen, maximum_amount_fen, centres, regimes)
             VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11)
             ON CONFLICT (centre_id, issuer_code, product_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                premium_rate = EXCLUDED.premium_rate, minimum_premium_fen = EXCLUDED.minimum_premium_fen,
                minimum_amount_fen = EXCLUDED.minimum_amount_fen, maximum_amount_fen = EXCLUDED.maximum_amount_fen,
                centres = EXCLUDED.centres, regimes = EXCLUDED.regimes,
                rate_changed_at = CASE WHEN products.premium_rate = EXCLUDED.premium_rate THEN products.rate_changed_at ELSE now() END",
        )
        .bind(province.as_str())
        .bind(&issuer.issuer_code)
        .bind(product_id)
        .bind(name)
        .bind(kind.code())
        .bind(rate.to_string())
        .bind(body.minimum_premium_fen)
        .bind(body.minimum_amount_fen)
        .bind(body.maximum_amount_fen)
        .bind(&body.centres)
        .bind(&body.regimes)
        .execute(&mut *transaction)
        .await
        .map_err(internal)?;
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(pb::Product { premium_rate: rate.to_string(), product_id: product_id.to_owned(), name: name.to_owned(), ..body }))
    }

    async fn list_eligible_products(&self, request: Request<pb::ListEligibleProductsRequest>) -> Result<Response<pb::ListEligibleProductsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Bidder, Role::Operator], code.as_str())?;
        let kind = type_of(body.r#type)?;
        let section = self.sections.require(code.as_str(), &body.section_id).await?;
        let amount = if kind == GuaranteeType::Bid { section.required_fen } else { body.amount_fen };
        if amount <= 0 {
            return Err(invalid("amount_fen is required for performance and quality guarantees"));
        }
        let rows = sqlx::query(
            "SELECT p.*, p.premium_rate::text AS rate, i.name AS issuer_name, i.kind AS issuer_kind
             FROM products p JOIN issuers i USING (centre_id, issuer_code)
             WHERE p.centre_id = $1 AND i.state = 'active' AND p.kind = $2
               AND (cardinality(p.centres) = 0 OR $3 = ANY (p.centres))
               AND (cardinality(p.regimes) = 0 OR $4 = ANY (p.regimes))
               AND p.minimum_amount_fen <= $5 AND $5 <= p.maximum_amount_fen",
        )
        .bind(code.province().as_str())
        .bind(kind.code())
        .bind(code.as_str())
        .bind(&section.regime)
        .bind(amount)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut products = Vec::with_capacity(rows.len());
        for row in &rows {
            let rate: Decimal = row.get::<String, _>("rate").parse().map_err(internal)?;
            let premium = domain::premium(Fen::from_fen(amount), rate, Fen::from_fen(row.get("minimum_premium_fen")))
                .ok_or_else(|| internal("premium overflow"))?;
            products.push(pb::EligibleProduct {
                product: Some(pb::Product {
                    centre_id: row.get("centre_id"),
                    issuer_code: row.get("issuer_code"),
                    product_id: row.get("product_id"),
                    name: row.get("name"),
                    r#type: type_enum(row.get("kind")),
                    premium_rate: rate.normalize().to_string(),
                    minimum_premium_fen: row.get("minimum_premium_fen"),
                    minimum_amount_fen: row.get("minimum_amount_fen"),
                    maximum_amount_fen: row.get("maximum_amount_fen"),
                    centres: row.get("centres"),
                    regimes: row.get("regimes"),
                }),
                issuer_name: row.get("issuer_name"),
                issuer_kind: enum_of(&ISSUER_KINDS, row.get("issuer_kind")),
                amount_fen: amount,
                premium_fen: premium.fen(),
            });
        }
        products.sort_by(|a, b| {
            let issuer = |product: &pb::EligibleProduct| product.product.as_ref().map(|p| (p.issuer_code.clone(), p.product_id.clone()));
            a.premium_fen.cmp(&b.premium_fen).then_with(|| issuer(a).cmp(&issuer(b)))
        });
        Ok(Response::new(pb::ListEligibleProductsResponse { products }))
    }

    async fn apply(&self, request: Request<pb::ApplyRequest>) -> Result<Response<pb::Application>, Status> {
        let caller = Caller::of(&request)?;
        let ip = client_ip(&request);
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Bidder], code.as_str())?;
        let bidder = Uscc::parse(&caller.party).map_err(|_| Status::permission_denied("a bidder's token must carry its unified social credit code as party"))?;
        let beneficiary = required("beneficiary", &body.beneficiary)?;
        let valid_to = domain::parse_date(&body.valid_to).ok_or_else(|| invalid("valid_to must be an ISO date (YYYY-MM-DD)"))?;
        let section = self.sections.require(code.as_str(), &body.section_id).await?;
        let requested = if body.r#type == pb::GuaranteeType::Unspecified as i32 { GuaranteeType::Bid } else { type_of(body.r#type)? };
        if !section.open {
            return Err(Status::failed_precondition(format!("section {} is closed", section.section_id)));
        }
        if valid_to <= china_date(section.bid_opening_time) {
            return Err(invalid(format!("valid_to {valid_to} must be after bid opening ({})", china_date(section.bid_opening_time))));
        }
        let amount = if requested != GuaranteeType::Bid {
            if section.winner_uscc.as_deref() != Some(bidder.as_str()) {
                return Err(Status::failed_precondition(format!("only the announced winner of section {} may apply for a {} guarantee", section.section_id, requested.code())));
            }
            let limit = contract_share_limit(requested, body.contract_amount_fen);
            if body.contract_amount_fen <= 0 || body.amount_fen <= 0 {
                return Err(invalid("contract_amount_fen and amount_fen are required for performance and quality guarantees"));
            }
            if body.amount_fen > limit {
                return Err(invalid(format!(
                    "a {} guarantee may cover at most {} of the contract amount {}: {} is more",
                    requested.code(),
                    if requested == GuaranteeType::Performance { "10 %" } else { "3 %" },
                    Fen::from_fen(body.contract_amount_fen),
                    Fen::from_fen(body.amount_fen)
                )));
            }
            body.amount_fen
        } else if Utc::now() >= section.deposit_deadline {
            return Err(Status::failed_precondition(format!("the deposit deadline of section {} ({}) has passed", section.section_id, section.deposit_deadline.to_rfc3339())));
        } else {
            match body.amount_fen {
            0 => section.required_fen,
            amount if amount > section.required_fen => {
                return Err(invalid(format!("amount {} exceeds the section's requirement {}", Fen::from_fen(amount), Fen::from_fen(section.required_fen))))
            }
            amount if amount < section.required_fen => {
                return Err(invalid(format!("amount {} does not cover the section's requirement {}", Fen::from_fen(amount), Fen::from_fen(section.required_fen))))
            }
            amount => amount,
            }
        };
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let province = code.province();
        let issuer = self.issuer(&mut transaction, province.as_str(), body.issuer_code.trim()).await?;
        if issuer.state != pb::IssuerState::Active as i32 {
            return Err(Status::failed_precondition(format!("issuer {} is not active and takes no applications", issuer.issuer_code)));
        }
        let product = sqlx::query("SELECT *, premium_rate::text AS rate FROM products WHERE centre_id = $1 AND issuer_code = $2 AND product_id = $3")
            .bind(province.as_str())
            .bind(&issuer.issuer_code)
            .bind(&body.product_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("issuer {} has no product {:?}", issuer.issuer_code, body.product_id)))?;
        let kind = GuaranteeType::parse(product.get("kind")).ok_or_else(|| internal("stored product kind"))?;
        if kind != requested {
            return Err(invalid(format!("product {} is a {} guarantee, not {}", body.product_id, kind.code(), requested.code())));
        }
        let centres: Vec<String> = product.get("centres");
        let regimes: Vec<String> = product.get("regimes");
        if !centres.is_empty() && !centres.iter().any(|served| served == code.as_str()) {
            return Err(Status::failed_precondition(format!("product {} does not serve centre {code}", body.product_id)));
        }
        if !regimes.is_empty() && !regimes.contains(&section.regime) {
            return Err(Status::failed_precondition(format!("product {} does not serve {} sections", body.product_id, section.regime)));
        }
        if amount < product.get::<i64, _>("minimum_amount_fen") || amount > product.get::<i64, _>("maximum_amount_fen") {
            return Err(invalid(format!("amount {} is outside the product's limits", Fen::from_fen(amount))));
        }
        let rate: Decimal = product.get::<String, _>("rate").parse().map_err(internal)?;
        let premium = domain::premium(Fen::from_fen(amount), rate, Fen::from_fen(product.get("minimum_premium_fen"))).ok_or_else(|| internal("premium overflow"))?;
        let id = Uuid::now_v7();
        let sealed = SealedApplication {
            bidder_uscc: bidder.as_str().to_owned(),
            beneficiary: beneficiary.to_owned(),
            amount_fen: amount,
            premium_fen: premium.fen(),
            valid_to,
            reason: String::new(),
        };
        let tag = self.sealer.bidder_tag(code.as_str(), bidder.as_str());
        // One bidder, section and type at a time: serialise applications of the same three.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3 || '/' || encode($4, 'hex'), 0))")
            .bind(code.as_str())
            .bind(&section.section_id)
            .bind(kind.code())
            .bind(&tag)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        let in_force: Option<String> = sqlx::query_scalar(
            "SELECT g.guarantee_no FROM applications a JOIN guarantees g USING (application_id)
             WHERE a.centre_id = $1 AND a.section_id = $2 AND a.bidder_tag = $3 AND a.kind = $4 AND g.state IN ('issued', 'claimed')",
        )
        .bind(code.as_str())
        .bind(&section.section_id)
        .bind(&tag)
        .bind(kind.code())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?;
        if let Some(number) = in_force {
            return Err(Status::already_exists(format!("the bidder already holds guarantee {number} for section {}", section.section_id)));
        }
        let inserted = sqlx::query(
            "INSERT INTO applications (application_id, centre_id, province_id, section_id, bidder_tag, issuer_code, product_id, kind, status, sealed, client_ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)
             ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(id)
        .bind(code.as_str())
        .bind(province.as_str())
        .bind(&section.section_id)
        .bind(&tag)
        .bind(&issuer.issuer_code)
        .bind(&body.product_id)
        .bind(kind.code())
        .bind(self.sealer.seal(&id.to_string(), &sealed).map_err(internal)?)
        .bind(&ip)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?;
        let Some(row) = inserted else {
            let existing: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT application_id, status FROM applications WHERE centre_id = $1 AND section_id = $2 AND bidder_tag = $3 AND kind = $4 AND status = 'pending'",
            )
            .bind(code.as_str())
            .bind(&section.section_id)
            .bind(&tag)
            .bind(kind.code())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
            let (existing, status) = existing.ok_or_else(|| Status::aborted("a concurrent application changed the section; retry"))?;
            return Err(Status::already_exists(format!("the bidder already has a {status} application {existing} for section {}", section.section_id)));
        };
        let mut outbox = OutboxRows::default();
        fraud::after_application(&mut transaction, &mut outbox, &self.events_topic, &self.fraud, code.as_str(), &section.section_id, &issuer.issuer_code, ip.as_deref())
            .await
            .map_err(internal)?;
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(self.application_message(&row, &sealed, None)))
    }

    async fn cancel_application(&self, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Bidder], &body.centre_id)?;
        let id = Uuid::parse_str(&body.application_id).map_err(|_| invalid("application_id is not a UUID"))?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let row = sqlx::query("SELECT * FROM applications WHERE application_id = $1 AND centre_id = $2 FOR UPDATE")
            .bind(id)
            .bind(&body.centre_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        let not_found = || Status::not_found(format!("no application {id} of this bidder"));
        let row = row.ok_or_else(not_found)?;
        let sealed = self.open_application(&row)?;
        if sealed.bidder_uscc != caller.party {
            return Err(not_found());
        }
        let status: String = row.get("status");
        if status != "pending" {
            return Err(Status::failed_precondition(format!("application {id} is {status}; only a pending application can be cancelled")));
        }
        let row = sqlx::query("UPDATE applications SET status = 'cancelled', decided_at = now() WHERE application_id = $1 RETURNING *")
            .bind(id)
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, row.get("section_id"), "guarantee.application_cancelled", &body.centre_id, serde_json::json!({
            "application_id": id, "section_id": row.get::<String, _>("section_id"), "issuer_code": row.get::<String, _>("issuer_code"),
        }));
        fraud::after_failed_application(&mut transaction, &mut outbox, &self.events_topic, &self.fraud, &body.centre_id, row.get("bidder_tag"), &sealed.bidder_uscc)
            .await
            .map_err(internal)?;
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(self.application_message(&row, &sealed, None)))
    }

    async fn list_applications(&self, request: Request<pb::ListApplicationsRequest>) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let province = province(&body.centre_id)?;
        if caller.role != Role::Issuer || caller.centre.province() != province {
            return Err(Status::permission_denied("only an issuer lists its applications"));
        }
        let rows = sqlx::query(
            "SELECT a.*, g.guarantee_no FROM applications a LEFT JOIN guarantees g USING (application_id)
             WHERE a.province_id = $1 AND a.issuer_code = $2 AND ($3 = '' OR a.status = $3) ORDER BY a.applied_at LIMIT 1000",
        )
        .bind(province.as_str())
        .bind(&caller.party)
        .bind(&body.status)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut applications = Vec::with_capacity(rows.len());
        for row in &rows {
            let sealed = self.open_application(row)?;
            applications.push(self.application_message(row, &sealed, row.get("guarantee_no")));
        }
        Ok(Response::new(pb::ListApplicationsResponse { applications }))
    }

    async fn get_application(&self, request: Request<pb::ApplicationRef>) -> Result<Response<pb::Application>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let id = Uuid::parse_str(&body.application_id).map_err(|_| invalid("application_id is not a UUID"))?;
        let row = sqlx::query("SELECT a.*, g.guarantee_no FROM applications a LEFT JOIN guarantees g USING (application_id) WHERE a.application_id = $1 AND a.centre_id = $2")
            .bind(id)
            .bind(&body.centre_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        let not_found = || Status::not_found(format!("no application {id} visible to this caller"));
        let row = row.ok_or_else(not_found)?;
        let sealed = self.open_application(&row)?;
        let section = self.sections.require(&body.centre_id, row.get("section_id")).await?;
        let province_ok = caller.centre.province() == centre(&body.centre_id)?.province();
        if !province_ok || !Self::may_see(&caller, &section, &sealed.bidder_uscc, row.get("issuer_code")) {
            return Err(not_found());
        }
        Ok(Response::new(self.application_message(&row, &sealed, row.get("guarantee_no"))))
    }

    async fn reject_application(&self, request: Request<pb::RejectApplicationRequest>) -> Result<Response<pb::Application>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let reason = required("reason", &body.reason)?;
        let id = Uuid::parse_str(&body.application_id).map_err(|_| invalid("application_id is not a UUID"))?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let row = self.issuer_application(&mut transaction, &caller, &body.centre_id, id).await?;
        let mut sealed = self.open_application(&row)?;
        sealed.reason = reason.to_owned();
        let row = sqlx::query("UPDATE applications SET status = 'rejected', decided_at = now(), sealed = $2 WHERE application_id = $1 RETURNING *")
            .bind(id)
            .bind(self.sealer.seal(&id.to_string(), &sealed).map_err(internal)?)
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, row.get("section_id"), "guarantee.application_rejected", &body.centre_id, serde_json::json!({
            "application_id": id, "section_id": row.get::<String, _>("section_id"), "issuer_code": caller.party,
        }));
        fraud::after_failed_application(&mut transaction, &mut outbox, &self.events_topic, &self.fraud, &body.centre_id, row.get("bidder_tag"), &sealed.bidder_uscc)
            .await
            .map_err(internal)?;
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(self.application_message(&row, &sealed, None)))
    }

    async fn issue_guarantee(&self, request: Request<pb::IssueGuaranteeRequest>) -> Result<Response<pb::Guarantee>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let id = Uuid::parse_str(&body.application_id).map_err(|_| invalid("application_id is not a UUID"))?;
        let guarantee_no = body.guarantee_no.trim();
        if !domain::is_guarantee_no(guarantee_no) {
            return Err(invalid("guarantee_no must be 6–64 letters, digits, '-' or '/'"));
        }
        let valid_from = domain::parse_date(&body.valid_from).ok_or_else(|| invalid("valid_from must be an ISO date (YYYY-MM-DD)"))?;
        let valid_to = domain::parse_date(&body.valid_to).ok_or_else(|| invalid("valid_to must be an ISO date (YYYY-MM-DD)"))?;
        if !domain::is_sha256_hex(&body.document_sha256) {
            return Err(invalid("document_sha256 must be 64 lower-case hex digits"));
        }
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let row = self.issuer_application(&mut transaction, &caller, &body.centre_id, id).await?;
        let sealed = self.open_application(&row)?;
        let province: String = row.get("province_id");
        let issuer = self.issuer(&mut transaction, &province, &caller.party).await?;
        if issuer.state != pb::IssuerState::Active as i32 {
            return Err(Status::failed_precondition(format!("issuer {} is not active and may not issue", issuer.issuer_code)));
        }
        if valid_from > valid_to || valid_to < sealed.valid_to {
            return Err(invalid(format!("validity {valid_from}..{valid_to} does not cover the requested period to {}", sealed.valid_to)));
        }
        let kind = GuaranteeType::parse(row.get("kind")).ok_or_else(|| internal("stored application kind"))?;
        if kind == GuaranteeType::Bid {
            // A bid guarantee stands in for a deposit: issued while deposits are taken, and in
            // force when the bids are opened.
            let section = self.sections.require(&body.centre_id, row.get("section_id")).await?;
            if !section.open || section.bids_opened || Utc::now() >= section.deposit_deadline {
                return Err(Status::failed_precondition(format!(
                    "section {} no longer takes deposits (closed, bids opened, or deadline {} passed): the bid guarantee cannot be issued",
                    section.section_id,
                    section.deposit_deadline.to_rfc3339()
                )));
            }
            let opening = china_date(section.bid_opening_time);
            if valid_from > opening {
                return Err(invalid(format!("a bid guarantee must be in force at bid opening ({opening}); valid_from {valid_from} is later")));
            }
        }
        let terms = GuaranteeTerms {
            guarantee_no: guarantee_no.to_owned(),
            application_id: id.to_string(),
            centre_id: body.centre_id.clone(),
            section_id: row.get("section_id"),
            kind,
            principal_uscc: sealed.bidder_uscc.clone(),
            beneficiary: sealed.beneficiary.clone(),
            amount_fen: sealed.amount_fen,
            valid_from,
            valid_to,
            document_sha256: body.document_sha256.clone(),
        };
        let scheme = if issuer.scheme == pb::SignatureScheme::Sm2Sm3 as i32 { Scheme::Sm2Sm3 } else { Scheme::Ed25519 };
        let key = VerifyingKey::from_hex(scheme, &issuer.public_key).map_err(internal)?;
        key.verify(terms.canonical_text().as_bytes(), body.signature.trim())
            .map_err(|error| invalid(format!("the signature does not verify with issuer {}'s registered key: {error}", issuer.issuer_code)))?;
        let guarantee = SealedGuarantee {
            terms: terms.clone(),
            signature: body.signature.trim().to_owned(),
            premium_fen: sealed.premium_fen,
            issuer_key: Some((scheme.as_str().to_owned(), issuer.public_key.clone())),
        };
        let inserted = sqlx::query(
            "INSERT INTO guarantees (guarantee_no, application_id, centre_id, section_id, issuer_code, kind, sealed, amount_fen, valid_to)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (guarantee_no) DO NOTHING RETURNING issued_at",
        )
        .bind(guarantee_no)
        .bind(id)
        .bind(&body.centre_id)
        .bind(&terms.section_id)
        .bind(&issuer.issuer_code)
        .bind(kind.code())
        .bind(self.sealer.seal(guarantee_no, &guarantee).map_err(internal)?)
        .bind(terms.amount_fen)
        .bind(valid_to)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?;
        let Some(issued_at) = inserted.map(|row| row.get::<DateTime<Utc>, _>(0)) else {
            return Err(invalid(format!("guarantee number {guarantee_no} is already used")));
        };
        sqlx::query("UPDATE applications SET status = 'issued', decided_at = now() WHERE application_id = $1")
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, &terms.section_id, "guarantee.issued", &body.centre_id, serde_json::json!({
            "guarantee_no": guarantee_no,
            "application_id": id,
            "section_id": terms.section_id,
            "type": kind.code(),
            "bidder_uscc": terms.principal_uscc,
            "issuer_code": issuer.issuer_code,
            "amount_fen": terms.amount_fen,
            "valid_from": valid_from,
            "valid_to": valid_to,
        }));
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(Self::guarantee_message(&guarantee, &issuer.issuer_code, "issued", issued_at)))
    }

    async fn verify_guarantee(&self, request: Request<pb::VerifyGuaranteeRequest>) -> Result<Response<pb::Verification>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        let issuer_of_province = caller.role == Role::Issuer && caller.centre.province() == code.province();
        if !caller.may_access(code.as_str()) && !issuer_of_province {
            return Err(Status::permission_denied(format!("caller of centre {} may not verify guarantees of centre {code}", caller.centre)));
        }
        let by_number = !body.guarantee_no.trim().is_empty();
        // Unknown, and sealed from this caller, are answered alike: the answer must not tell
        // whether a bidder secured a section before its bids are opened.
        let hidden = || {
            if by_number {
                Status::not_found(format!("no guarantee numbered {:?} visible to this caller", body.guarantee_no.trim()))
            } else {
                Status::not_found("no guarantee visible to this caller for that bidder and section")
            }
        };
        let row = if by_number {
            sqlx::query("SELECT g.*, a.province_id FROM guarantees g JOIN applications a USING (application_id) WHERE g.guarantee_no = $1 AND g.centre_id = $2")
                .bind(body.guarantee_no.trim())
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?
        } else {
            let bidder = required("bidder_uscc", &body.bidder_uscc)?;
            let section_id = required("section_id", &body.section_id)?;
            // The section first, on every path, so that a sealed guarantee and none take as long.
            self.sections.require(code.as_str(), section_id).await?;
            // The bidder's guarantee in force if any, else its latest.
            sqlx::query(
                "SELECT g.*, a.province_id FROM guarantees g JOIN applications a USING (application_id)
                 WHERE a.centre_id = $1 AND a.section_id = $2 AND a.bidder_tag = $3 AND a.kind = 'bid' AND a.status = 'issued'
                 ORDER BY (g.state IN ('issued', 'claimed')) DESC, g.issued_at DESC LIMIT 1",
            )
            .bind(code.as_str())
            .bind(section_id)
            .bind(self.sealer.bidder_tag(code.as_str(), bidder))
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?
        };
        let Some(row) = row else { return Err(hidden()) };
        let number: String = row.get("guarantee_no");
        let sealed: SealedGuarantee = self.sealer.open(&number, row.get::<&[u8], _>("sealed")).map_err(internal)?;
        let section = self.sections.require(code.as_str(), &sealed.terms.section_id).await?;
        let issuer_code: String = row.get("issuer_code");
        let visible = Self::may_see(&caller, &section, &sealed.terms.principal_uscc, &issuer_code) || (section.bids_opened && caller.may_access(code.as_str()));
        if !visible {
            return Err(hidden());
        }
        if !self.authentic(row.get("province_id"), &issuer_code, &sealed).await? {
            return Ok(Response::new(pb::Verification { authentic: false, guarantee_no: number, ..Default::default() }));
        }
        Ok(Response::new(pb::Verification {
            authentic: true,
            status: Self::guarantee_status(row.get("state"), &sealed, &section),
            guarantee_no: number,
            issuer_code,
            amount_fen: sealed.terms.amount_fen,
            valid_to: sealed.terms.valid_to.format("%Y-%m-%d").to_string(),
            bidder_uscc: sealed.terms.principal_uscc.clone(),
            section_id: sealed.terms.section_id.clone(),
        }))
    }

    async fn list_section_guarantees(&self, request: Request<pb::ListSectionGuaranteesRequest>) -> Result<Response<pb::ListSectionGuaranteesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let section = self.sections.require(&body.centre_id, &body.section_id).await?;
        if !section.bids_opened {
            return Err(Status::failed_precondition(format!(
                "sealed until bid opening: the guarantees of section {} are confidential until its bids are opened (scheduled {})",
                section.section_id,
                section.bid_opening_time.to_rfc3339()
            )));
        }
        let rows = sqlx::query("SELECT * FROM guarantees WHERE centre_id = $1 AND section_id = $2 ORDER BY guarantee_no")
            .bind(&body.centre_id)
            .bind(&body.section_id)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let mut guarantees = Vec::with_capacity(rows.len());
        for row in &rows {
            let number: String = row.get("guarantee_no");
            let sealed: SealedGuarantee = self.sealer.open(&number, row.get::<&[u8], _>("sealed")).map_err(internal)?;
            guarantees.push(Self::guarantee_message(&sealed, row.get("issuer_code"), &Self::guarantee_status(row.get("state"), &sealed, &section), row.get("issued_at")));
        }
        Ok(Response::new(pb::ListSectionGuaranteesResponse { guarantees }))
    }

    async fn submit_claim(&self, request: Request<pb::SubmitClaimRequest>) -> Result<Response<pb::Claim>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator, Role::Supervisor], &body.centre_id)?;
        let evidence = required("evidence_ref", &body.evidence_ref)?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let row = sqlx::query("SELECT * FROM guarantees WHERE guarantee_no = $1 AND centre_id = $2 FOR UPDATE")
            .bind(body.guarantee_no.trim())
            .bind(&body.centre_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("centre {} has no guarantee {:?}", body.centre_id, body.guarantee_no)))?;
        let number: String = row.get("guarantee_no");
        let sealed: SealedGuarantee = self.sealer.open(&number, row.get::<&[u8], _>("sealed")).map_err(internal)?;
        let section = self.sections.require(&body.centre_id, &sealed.terms.section_id).await?;
        let kind = sealed.terms.kind;
        if kind == GuaranteeType::Bid && !section.bids_opened {
            // Answered as for an unknown number: before opening, nobody may learn it exists.
            return Err(Status::not_found(format!("centre {} has no guarantee {:?}", body.centre_id, body.guarantee_no)));
        }
        let status = Self::guarantee_status(row.get("state"), &sealed, &section);
        if !matches!(status.as_str(), "issued" | "unsealed") {
            return Err(Status::failed_precondition(format!("guarantee {number} is {status}, not in force")));
        }
        if !claim_fits(kind, &body.reason) {
            return Err(invalid(format!("reason {:?} does not fit a {} guarantee", body.reason, kind.code())));
        }
        if body.amount_fen <= 0 || body.amount_fen > sealed.terms.amount_fen {
            return Err(invalid(format!("amount must be positive and at most the guarantee's {}", Fen::from_fen(sealed.terms.amount_fen))));
        }
        let id = Uuid::now_v7();
        let claim = sqlx::query(
            "INSERT INTO claims (claim_id, guarantee_no, centre_id, reason, evidence_ref, amount_fen, status, submitted_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING *",
        )
        .bind(id)
        .bind(&number)
        .bind(&body.centre_id)
        .bind(&body.reason)
        .bind(evidence)
        .bind(body.amount_fen)
        .bind(format!("{}:{}", caller.role, caller.party))
        .fetch_one(&mut *transaction)
        .await
        .map_err(internal)?;
        self.set_state(&mut transaction, &number, "claimed", &body.reason).await?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, &sealed.terms.section_id, "guarantee.claimed", &body.centre_id, serde_json::json!({
            "claim_id": id, "guarantee_no": number, "section_id": sealed.terms.section_id, "reason": body.reason,
            "evidence_ref": evidence, "amount_fen": body.amount_fen, "issuer_code": row.get::<String, _>("issuer_code"),
        }));
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(claim_message(&claim)))
    }

    async fn decide_claim(&self, request: Request<pb::DecideClaimRequest>) -> Result<Response<pb::Claim>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let reason = required("reason", &body.reason)?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let (claim, section_id) = self.issuer_claim(&mut transaction, &caller, &body.centre_id, &body.claim_id, "pending").await?;
        let number: String = claim.get("guarantee_no");
        let status = if body.accept { "accepted" } else { "rejected" };
        let claim = sqlx::query("UPDATE claims SET status = $2, decision_reason = $3, decided_at = now() WHERE claim_id = $1 RETURNING *")
            .bind(claim.get::<Uuid, _>("claim_id"))
            .bind(status)
            .bind(reason)
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        let mut released = false;
        if !body.accept {
            // The guarantee is back in force, unless the tender ended meanwhile (its release
            // event found it claimed and passed it over): then it is released now.
            let ended: Option<String> = sqlx::query_scalar(
                "SELECT t.event_type FROM trading_events t JOIN guarantees g ON g.centre_id = t.centre_id AND g.section_id = t.section_id
                 WHERE g.guarantee_no = $1 AND g.kind = 'bid' AND t.event_type IN ('contract.signed', 'tender.terminated', 'tender.failed') LIMIT 1",
            )
            .bind(&number)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
            released = ended.is_some();
            match ended {
                Some(event_type) => self.set_state(&mut transaction, &number, "released", &format!("claim rejected after {event_type}")).await?,
                None => self.set_state(&mut transaction, &number, "issued", "claim rejected").await?,
            }
        }
        let mut outbox = OutboxRows::default();
        if released {
            self.event(&mut outbox, &section_id, "guarantee.released", &body.centre_id, serde_json::json!({
                "guarantee_no": number, "section_id": section_id, "reason": "claim rejected after the tender ended", "trading_event_id": "",
            }));
        }
        self.event(&mut outbox, &section_id, &format!("guarantee.claim_{status}"), &body.centre_id, serde_json::json!({
            "claim_id": claim.get::<Uuid, _>("claim_id"), "guarantee_no": number, "section_id": section_id, "reason": reason,
        }));
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(claim_message(&claim)))
    }

    async fn record_claim_payment(&self, request: Request<pb::RecordClaimPaymentRequest>) -> Result<Response<pb::Claim>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let serial = required("payment_serial", &body.payment_serial)?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let (claim, section_id) = self.issuer_claim(&mut transaction, &caller, &body.centre_id, &body.claim_id, "accepted").await?;
        let claimed: i64 = claim.get("amount_fen");
        if body.paid_fen <= 0 || body.paid_fen > claimed {
            return Err(invalid(format!("paid_fen must be positive and at most the claim's {}", Fen::from_fen(claimed))));
        }
        let number: String = claim.get("guarantee_no");
        let claim = sqlx::query("UPDATE claims SET status = 'paid', paid_fen = $2, payment_serial = $3, paid_at = now() WHERE claim_id = $1 RETURNING *")
            .bind(claim.get::<Uuid, _>("claim_id"))
            .bind(body.paid_fen)
            .bind(serial)
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        self.set_state(&mut transaction, &number, "paid", "claim paid").await?;
        let mut outbox = OutboxRows::default();
        self.event(&mut outbox, &section_id, "guarantee.claim_paid", &body.centre_id, serde_json::json!({
            "claim_id": claim.get::<Uuid, _>("claim_id"), "guarantee_no": number, "section_id": section_id,
            "paid_fen": body.paid_fen, "payment_serial": serial,
        }));
        outbox.insert(&mut transaction).await.map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(claim_message(&claim)))
    }

    async fn list_claims(&self, request: Request<pb::ListClaimsRequest>) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let issuer = match caller.role {
            Role::Issuer if caller.centre.province() == centre(&body.centre_id)?.province() => Some(caller.party.clone()),
            _ => {
                caller.authorize(STAFF, &body.centre_id)?;
                None
            }
        };
        let rows = sqlx::query(
            "SELECT c.* FROM claims c JOIN guarantees g USING (guarantee_no)
             WHERE c.centre_id = $1 AND ($2 = '' OR c.guarantee_no = $2) AND ($3::text IS NULL OR g.issuer_code = $3)
             ORDER BY c.submitted_at DESC LIMIT 1000",
        )
        .bind(&body.centre_id)
        .bind(body.guarantee_no.trim())
        .bind(issuer)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        Ok(Response::new(pb::ListClaimsResponse { claims: rows.iter().map(claim_message).collect() }))
    }

    async fn list_fraud_warnings(&self, request: Request<pb::ListFraudWarningsRequest>) -> Result<Response<pb::ListFraudWarningsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Supervisor, Role::Admin], &body.centre_id)?;
        let rows = sqlx::query("SELECT * FROM fraud_warnings WHERE centre_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1000")
            .bind(&body.centre_id)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let warnings = rows
            .iter()
            .map(|row| pb::FraudWarning {
                centre_id: row.get("centre_id"),
                rule: row.get("rule"),
                subject: row.get("subject"),
                detail: row.get("detail"),
                created_at: Some(timestamp(row.get("created_at"))),
            })
            .collect();
        Ok(Response::new(pb::ListFraudWarningsResponse { warnings }))
    }

    async fn get_figures(&self, request: Request<pb::GetFiguresRequest>) -> Result<Response<pb::Figures>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        if !caller.may_access(code.as_str()) && caller.centre.province() != code.province() {
            return Err(Status::permission_denied(format!("caller of centre {} may not read centre {code}", caller.centre)));
        }
        // A province centre's figures cover every centre of the province.
        let prefix = if code.is_province() { code.as_str()[..2].to_owned() } else { code.as_str().to_owned() };
        let rows = sqlx::query(
            "SELECT g.centre_id, a.bidder_tag, g.kind, g.amount_fen, g.guarantee_no, g.sealed
             FROM guarantees g JOIN applications a USING (application_id)
             WHERE starts_with(g.centre_id, $1)
               -- A bid guarantee counts once its section's bids are opened: live figures must
               -- not tell that someone just secured a sealed section.
               AND (g.kind <> 'bid' OR EXISTS (SELECT 1 FROM trading_events t
                    WHERE t.centre_id = g.centre_id AND t.section_id = g.section_id AND t.event_type = 'bids.opened'))",
        )
        .bind(&prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut by_centre: std::collections::BTreeMap<String, (std::collections::HashSet<Vec<u8>>, pb::CentreFigures)> = std::collections::BTreeMap::new();
        for row in &rows {
            let centre_id: String = row.get(0);
            let (firms, figures) = by_centre.entry(centre_id.clone()).or_insert_with(|| (Default::default(), pb::CentreFigures { centre_id, ..Default::default() }));
            firms.insert(row.get(1));
            figures.guarantees_issued += 1;
            if row.get::<&str, _>(2) == "bid" {
                figures.cash_released_fen += row.get::<Option<i64>, _>(3).unwrap_or(0);
            }
            // Premiums are sealed with each guarantee; summed here, never listed per bidder.
            let sealed: SealedGuarantee = self.sealer.open(row.get::<&str, _>(4), row.get::<&[u8], _>(5)).map_err(internal)?;
            figures.premiums_fen += sealed.premium_fen;
        }
        let mut total = pb::CentreFigures { centre_id: code.as_str().to_owned(), ..Default::default() };
        let mut centres = Vec::with_capacity(by_centre.len());
        for (firms, mut figures) in by_centre.into_values() {
            figures.firms_served = i64::try_from(firms.len()).map_err(internal)?;
            total.firms_served += figures.firms_served;
            total.guarantees_issued += figures.guarantees_issued;
            total.cash_released_fen += figures.cash_released_fen;
            total.premiums_fen += figures.premiums_fen;
            centres.push(figures);
        }
        Ok(Response::new(pb::Figures { centres, total: Some(total) }))
    }
}

fn claim_message(row: &sqlx::postgres::PgRow) -> pb::Claim {
    pb::Claim {
        claim_id: row.get::<Uuid, _>("claim_id").to_string(),
        centre_id: row.get("centre_id"),
        guarantee_no: row.get("guarantee_no"),
        reason: row.get("reason"),
        evidence_ref: row.get("evidence_ref"),
        amount_fen: row.get("amount_fen"),
        status: row.get("status"),
        decision_reason: row.get::<Option<String>, _>("decision_reason").unwrap_or_default(),
        paid_fen: row.get::<Option<i64>, _>("paid_fen").unwrap_or_default(),
        payment_serial: row.get::<Option<String>, _>("payment_serial").unwrap_or_default(),
        submitted_at: Some(timestamp(row.get("submitted_at"))),
    }
}

impl GuaranteeApi {
    async fn set_state(&self, transaction: &mut Transaction<'static, Postgres>, guarantee_no: &str, state: &str, reason: &str) -> Result<(), Status> {
        sqlx::query("UPDATE guarantees SET state = $2, state_reason = $3, state_changed_at = now() WHERE guarantee_no = $1")
            .bind(guarantee_no)
            .bind(state)
            .bind(reason)
            .execute(&mut **transaction)
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// A claim on one of the calling issuer's guarantees, locked, in `status`; with the
    /// guarantee's section. NOT_FOUND for another issuer's.
    async fn issuer_claim(&self, transaction: &mut Transaction<'static, Postgres>, caller: &Caller, centre_id: &str, claim_id: &str, status: &str) -> Result<(sqlx::postgres::PgRow, String), Status> {
        if caller.role != Role::Issuer {
            return Err(Status::permission_denied("only the guarantee's issuer decides and pays claims"));
        }
        let id = Uuid::parse_str(claim_id).map_err(|_| invalid("claim_id is not a UUID"))?;
        let row = sqlx::query(
            "SELECT c.*, g.issuer_code, g.section_id, a.province_id FROM claims c JOIN guarantees g USING (guarantee_no)
             JOIN applications a ON a.application_id = g.application_id
             WHERE c.claim_id = $1 AND c.centre_id = $2 FOR UPDATE OF c",
        )
        .bind(id)
        .bind(centre_id)
        .fetch_optional(&mut **transaction)
        .await
        .map_err(internal)?
        .filter(|row| row.get::<String, _>("issuer_code") == caller.party && row.get::<String, _>("province_id") == caller.centre.province().as_str())
        .ok_or_else(|| Status::not_found(format!("issuer {} has no claim {id}", caller.party)))?;
        let current: String = row.get("status");
        if current != status {
            return Err(Status::failed_precondition(format!("claim {id} is {current}, not {status}")));
        }
        let section_id: String = row.get("section_id");
        Ok((row, section_id))
    }

    /// The pending application `id` of the calling issuer, locked; NOT_FOUND for another
    /// issuer's (it must not learn of it), FAILED_PRECONDITION when no longer pending.
    async fn issuer_application(&self, transaction: &mut Transaction<'static, Postgres>, caller: &Caller, centre_id: &str, id: Uuid) -> Result<sqlx::postgres::PgRow, Status> {
        if caller.role != Role::Issuer {
            return Err(Status::permission_denied("only the issuer decides its applications"));
        }
        let row = sqlx::query("SELECT * FROM applications WHERE application_id = $1 AND centre_id = $2 FOR UPDATE")
            .bind(id)
            .bind(centre_id)
            .fetch_optional(&mut **transaction)
            .await
            .map_err(internal)?;
        let row = row
            .filter(|row| row.get::<String, _>("issuer_code") == caller.party && caller.centre.province().as_str() == row.get::<String, _>("province_id"))
            .ok_or_else(|| Status::not_found(format!("issuer {} has no application {id}", caller.party)))?;
        let status: String = row.get("status");
        if status != "pending" {
            return Err(Status::failed_precondition(format!("application {id} is {status}, not pending")));
        }
        Ok(row)
    }
}
