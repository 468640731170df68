//! The GuaranteeService gRPC API (proto/jinfu/guarantee/v1/guarantee.proto documents every call,
//! role and error). Every write is one transaction; an event it causes is written to the outbox
//! in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
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

fn kind_code(kind: i32) -> Result<&'static str, Status> {
    match pb::IssuerKind::try_from(kind) {
        Ok(pb::IssuerKind::Bank) => Ok("bank"),
        Ok(pb::IssuerKind::Insurer) => Ok("insurer"),
        Ok(pb::IssuerKind::Guarantor) => Ok("guarantor"),
        _ => Err(invalid("kind must be bank, insurer or guarantor")),
    }
}

fn kind_enum(code: &str) -> i32 {
    match code {
        "bank" => pb::IssuerKind::Bank as i32,
        "insurer" => pb::IssuerKind::Insurer as i32,
        "guarantor" => pb::IssuerKind::Guarantor as i32,
        _ => pb::IssuerKind::Unspecified as i32,
    }
}

fn state_code(state: i32) -> Result<&'static str, Status> {
    match pb::IssuerState::try_from(state) {
        Ok(pb::IssuerState::Active) => Ok("active"),
        Ok(pb::IssuerState::Suspended) => Ok("suspended"),
        Ok(pb::IssuerState::Exited) => Ok("exited"),
        _ => Err(invalid("state must be active, suspended or exited")),
    }
}

fn state_enum(code: &str) -> i32 {
    match code {
        "active" => pb::IssuerState::Active as i32,
        "suspended" => pb::IssuerState::Suspended as i32,
        "exited" => pb::IssuerState::Exited as i32,
        _ => pb::IssuerState::Unspecified as i32,
    }
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

/// Beijing's calendar date of an instant.
fn china_date(time: DateTime<Utc>) -> NaiveDate {
    (time + chrono::Duration::hours(8)).date_naive()
}

/// A bid guarantee may be offered only for bids; performance and quality guarantees follow the
/// award and the contract (not offered yet: they need the contract amount).
fn bid_only(kind: GuaranteeType) -> Result<(), Status> {
    if kind != GuaranteeType::Bid {
        return Err(Status::unimplemented("performance and quality guarantees are not offered yet; only bid guarantees"));
    }
    Ok(())
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
            kind: kind_enum(row.get("kind")),
            state: state_enum(row.get("state")),
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

    /// A guarantee's status now: `expired` after its validity, `unsealed` once the bids are
    /// opened, `issued` before.
    fn guarantee_status(sealed: &SealedGuarantee, section: &Section) -> &'static str {
        if sealed.terms.valid_to < china_date(Utc::now()) {
            "expired"
        } else if section.bids_opened {
            "unsealed"
        } else {
            "issued"
        }
    }

    /// Whether the issuer's registered key verifies the guarantee's signature now.
    async fn authentic(&self, province: &str, issuer_code: &str, sealed: &SealedGuarantee) -> Result<bool, Status> {
        let key: Option<(String, String)> = sqlx::query_as("SELECT scheme, public_key FROM issuers WHERE centre_id = $1 AND issuer_code = $2")
            .bind(province)
            .bind(issuer_code)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        let Some((scheme, public_key)) = key else { return Ok(false) };
        let scheme = if scheme == "sm2-sm3" { Scheme::Sm2Sm3 } else { Scheme::Ed25519 };
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
        let kind = kind_code(body.kind)?;
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
        let state = state_code(body.state)?;
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
        sqlx::query(
            "INSERT INTO products (centre_id, issuer_code, product_id, name, kind, premium_rate, minimum_premium_fen, minimum_amount_fen, maximum_amount_fen, centres, regimes)
             VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11)
             ON CONFLICT (centre_id, issuer_code, product_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                premium_rate = EXCLUDED.premium_rate, minimum_premium_fen = EXCLUDED.minimum_premium_fen,
                minimum_amount_fen = EXCLUDED.minimum_amount_fen, maximum_amount_fen = EXCLUDED.maximum_amount_fen,
                centres = EXCLUDED.centres, regimes = EXCLUDED.regimes",
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
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(pb::Product { premium_rate: rate.to_string(), product_id: product_id.to_owned(), name: name.to_owned(), ..body }))
    }

    async fn list_eligible_products(&self, request: Request<pb::ListEligibleProductsRequest>) -> Result<Response<pb::ListEligibleProductsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Bidder, Role::Operator], code.as_str())?;
        let kind = type_of(body.r#type)?;
        bid_only(kind)?;
        let section = self.sections.require(code.as_str(), &body.section_id).await?;
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
        .bind(section.required_fen)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut products = Vec::with_capacity(rows.len());
        for row in &rows {
            let rate: Decimal = row.get::<String, _>("rate").parse().map_err(internal)?;
            let premium = domain::premium(Fen::from_fen(section.required_fen), rate, Fen::from_fen(row.get("minimum_premium_fen")))
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
                issuer_kind: kind_enum(row.get("issuer_kind")),
                amount_fen: section.required_fen,
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
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Bidder], code.as_str())?;
        let bidder = Uscc::parse(&caller.party).map_err(|_| Status::permission_denied("a bidder's token must carry its unified social credit code as party"))?;
        let beneficiary = required("beneficiary", &body.beneficiary)?;
        let valid_to = domain::parse_date(&body.valid_to).ok_or_else(|| invalid("valid_to must be an ISO date (YYYY-MM-DD)"))?;
        let section = self.sections.require(code.as_str(), &body.section_id).await?;
        if !section.open {
            return Err(Status::failed_precondition(format!("section {} is closed", section.section_id)));
        }
        if Utc::now() >= section.deposit_deadline {
            return Err(Status::failed_precondition(format!("the deposit deadline of section {} ({}) has passed", section.section_id, section.deposit_deadline.to_rfc3339())));
        }
        if valid_to <= china_date(section.bid_opening_time) {
            return Err(invalid(format!("valid_to {valid_to} must be after bid opening ({})", china_date(section.bid_opening_time))));
        }
        let amount = match body.amount_fen {
            0 => section.required_fen,
            amount if amount > section.required_fen => {
                return Err(invalid(format!("amount {} exceeds the section's requirement {}", Fen::from_fen(amount), Fen::from_fen(section.required_fen))))
            }
            amount if amount < section.required_fen => {
                return Err(invalid(format!("amount {} does not cover the section's requirement {}", Fen::from_fen(amount), Fen::from_fen(section.required_fen))))
            }
            amount => amount,
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
        bid_only(kind)?;
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
        let inserted = sqlx::query(
            "INSERT INTO applications (application_id, centre_id, province_id, section_id, bidder_tag, issuer_code, product_id, kind, status, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9)
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
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?;
        let Some(row) = inserted else {
            let existing: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT application_id, status FROM applications WHERE centre_id = $1 AND section_id = $2 AND bidder_tag = $3 AND kind = $4 AND status IN ('pending', 'issued')",
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
        let guarantee = SealedGuarantee { terms: terms.clone(), signature: body.signature.trim().to_owned(), premium_fen: sealed.premium_fen };
        let inserted = sqlx::query(
            "INSERT INTO guarantees (guarantee_no, application_id, centre_id, section_id, issuer_code, kind, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (guarantee_no) DO NOTHING RETURNING issued_at",
        )
        .bind(guarantee_no)
        .bind(id)
        .bind(&body.centre_id)
        .bind(&terms.section_id)
        .bind(&issuer.issuer_code)
        .bind(kind.code())
        .bind(self.sealer.seal(guarantee_no, &guarantee).map_err(internal)?)
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
        if !caller.may_access(code.as_str()) && !(matches!(caller.role, Role::Issuer) && caller.centre.province() == code.province()) {
            return Err(Status::permission_denied(format!("caller of centre {} may not verify guarantees of centre {code}", caller.centre)));
        }
        let by_number = !body.guarantee_no.trim().is_empty();
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
            sqlx::query(
                "SELECT g.*, a.province_id FROM guarantees g JOIN applications a USING (application_id)
                 WHERE a.centre_id = $1 AND a.section_id = $2 AND a.bidder_tag = $3 AND a.kind = 'bid' AND a.status = 'issued'",
            )
            .bind(code.as_str())
            .bind(section_id)
            .bind(self.sealer.bidder_tag(code.as_str(), bidder))
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?
        };
        let not_authentic = || pb::Verification { authentic: false, ..Default::default() };
        let Some(row) = row else {
            return if by_number { Ok(Response::new(not_authentic())) } else { Err(Status::not_found("no guarantee visible to this caller for that bidder and section")) };
        };
        let number: String = row.get("guarantee_no");
        let sealed: SealedGuarantee = self.sealer.open(&number, row.get::<&[u8], _>("sealed")).map_err(internal)?;
        let section = self.sections.require(code.as_str(), &sealed.terms.section_id).await?;
        let issuer_code: String = row.get("issuer_code");
        let visible = Self::may_see(&caller, &section, &sealed.terms.principal_uscc, &issuer_code) || (section.bids_opened && caller.may_access(code.as_str()));
        if !by_number && !visible {
            return Err(Status::not_found("no guarantee visible to this caller for that bidder and section"));
        }
        let authentic = self.authentic(row.get("province_id"), &issuer_code, &sealed).await?;
        if !authentic {
            return Ok(Response::new(not_authentic()));
        }
        Ok(Response::new(pb::Verification {
            authentic,
            status: Self::guarantee_status(&sealed, &section).to_owned(),
            guarantee_no: number,
            issuer_code,
            amount_fen: sealed.terms.amount_fen,
            valid_to: sealed.terms.valid_to.format("%Y-%m-%d").to_string(),
            bidder_uscc: if visible { sealed.terms.principal_uscc.clone() } else { String::new() },
            section_id: if visible { sealed.terms.section_id.clone() } else { String::new() },
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
            guarantees.push(Self::guarantee_message(&sealed, row.get("issuer_code"), Self::guarantee_status(&sealed, &section), row.get("issued_at")));
        }
        Ok(Response::new(pb::ListSectionGuaranteesResponse { guarantees }))
    }
}

impl GuaranteeApi {
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
