//! Caller authentication and centre scoping.
//!
//! Every gRPC call carries `authorization: Bearer <token>`, an HS256 JWT signed with the
//! platform's token secret, with claims `role`, `centre_id`, `party` and `exp`. The interceptor
//! verifies it and puts a [`Caller`] in the request's extensions; handlers then check the role
//! and scope every query to the centres the caller may see.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jinfu_ledger::ids::CentreCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Bidder,
    Supervisor,
    Bank,
    Issuer,
    Admin,
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|_| anyhow::anyhow!("unknown role {text:?}: operator, bidder, supervisor, bank, issuer or admin"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        formatter.write_str(&text)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub role: Role,
    pub centre_id: String,
    /// The party acting: a bidder's unified social credit code, a bank's code, a user id.
    pub party: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    pub centre: CentreCode,
    pub party: String,
}

impl Caller {
    /// Whether the caller may see `centre`'s data: its own centre always; every centre of its
    /// province for a supervisor or admin of the province centre.
    pub fn may_access(&self, centre: &str) -> bool {
        if self.centre.as_str() == centre {
            return true;
        }
        let Ok(centre) = CentreCode::parse(centre) else { return false };
        matches!(self.role, Role::Supervisor | Role::Admin) && self.centre.is_province() && centre.province() == self.centre
    }

    /// Refuses the call unless the caller has one of `roles` and may access `centre`.
    pub fn authorize(&self, roles: &[Role], centre: &str) -> Result<(), Status> {
        if !roles.contains(&self.role) {
            return Err(Status::permission_denied(format!("role {} may not make this call", self.role)));
        }
        if !self.may_access(centre) {
            return Err(Status::permission_denied(format!("caller of centre {} may not access centre {centre}", self.centre)));
        }
        Ok(())
    }

    /// Takes the caller the interceptor stored. Missing means the service was wired without the
    /// interceptor, which is a programming error reported as an internal error.
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::internal("request reached a handler without authentication"))
    }
}

/// The platform's token secret (`JINFU_AUTH__TOKEN_SECRET`).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// HS256 secret for bearer tokens, at least 32 bytes.
    pub token_secret: SecretString,
}

/// Signs and verifies bearer tokens with the platform's shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> anyhow::Result<TokenKeys> {
        let bytes = secret.expose_secret().as_bytes();
        anyhow::ensure!(bytes.len() >= 32, "auth token secret must be at least 32 bytes");
        Ok(TokenKeys { encoding: EncodingKey::from_secret(bytes), decoding: DecodingKey::from_secret(bytes) })
    }

    pub fn issue(&self, role: Role, centre: &CentreCode, party: &str, valid_seconds: i64) -> anyhow::Result<String> {
        let claims = Claims { role, centre_id: centre.as_str().to_owned(), party: party.to_owned(), exp: chrono::Utc::now().timestamp() + valid_seconds };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// A request carrying a fresh bearer token for `role` of `centre`: how one service calls
    /// another (the operator and the guarantee service call the ledger as `admin`).
    pub fn request<T>(&self, role: Role, centre: &str, party: &str, valid_seconds: i64, body: T) -> Result<Request<T>, Status> {
        let centre = CentreCode::parse(centre).map_err(|_| Status::invalid_argument(format!("centre {centre:?} is not a six-digit code")))?;
        let token = self.issue(role, &centre, party, valid_seconds).map_err(|error| Status::internal(format!("minting a token: {error}")))?;
        let mut request = Request::new(body);
        let value = format!("Bearer {token}").parse().map_err(|_| Status::internal("token is not ASCII"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|error| Status::unauthenticated(format!("invalid bearer token: {error}")))?;
        let centre = CentreCode::parse(&data.claims.centre_id).map_err(|_| Status::unauthenticated("bearer token carries an invalid centre_id"))?;
        Ok(Caller { role: data.claims.role, centre, party: data.claims.party })
    }
}

/// A tonic interceptor that authenticates every call.
pub fn interceptor(keys: Arc<TokenKeys>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization metadata"))?
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization metadata is not text"))?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let caller = keys.verify(token)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&SecretString::from("a-test-secret-that-is-long-enough-0123")).unwrap()
    }

    #[test]
    fn a_province_supervisor_sees_its_cities_but_a_city_operator_sees_only_its_own() {
        let province = CentreCode::parse("520000").unwrap();
        let token = keys().issue(Role::Supervisor, &province, "s1", 60).unwrap();
        let supervisor = keys().verify(&token).unwrap();
        assert!(supervisor.may_access("520100"));
        assert!(!supervisor.may_access("530100"));
        let city = CentreCode::parse("520100").unwrap();
        let operator = keys().verify(&keys().issue(Role::Operator, &city, "o1", 60).unwrap()).unwrap();
        assert!(operator.may_access("520100"));
        assert!(!operator.may_access("520300"));
        let province_operator = keys().verify(&keys().issue(Role::Operator, &province, "o2", 60).unwrap()).unwrap();
        assert!(!province_operator.may_access("520100"));
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let centre = CentreCode::parse("520100").unwrap();
        let expired = keys().issue(Role::Operator, &centre, "o", -120).unwrap();
        assert_eq!(keys().verify(&expired).unwrap_err().code(), tonic::Code::Unauthenticated);
        let other = TokenKeys::new(&SecretString::from("another-secret-that-is-long-enough-987")).unwrap();
        let foreign = other.issue(Role::Admin, &centre, "x", 60).unwrap();
        assert_eq!(keys().verify(&foreign).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
