//! Caller authentication and centre scoping.
//!
//! Every gRPC call carries `authorization: Bearer <token>`, an HS256 JWT signed with the
//! platform's token secret, with claims `role`, `centre_id`, `party`, `iat` and `exp`. The
//! interceptor verifies it and puts a [`Caller`] in the request's extensions; handlers then
//! check the role and scope every query to the centres the caller may see.
//!
//! A token's lifetime (`exp - iat`) is bounded by its role ([`TokenLifetimes`]): a leaked token
//! is useful for minutes (service roles) or a working day (people), never for centuries.

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
    /// A purchaser (采购人) acting on its own contracts; `party` is its USCC.
    Purchaser,
    /// A supplier (供应商) acting on its own contracts; `party` is its USCC.
    Supplier,
    /// An officer of a lender onboarded by the province (the loans service); `party` is
    /// `<lender_id>:<officer>`.
    Lender,
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|_| anyhow::anyhow!("unknown role {text:?}: operator, bidder, supervisor, bank, issuer, admin, purchaser, supplier or lender"))
    }
}

impl Role {
    /// Whether tokens of this role are minted by systems for machine-to-machine calls (the
    /// operator and the guarantee service call the ledger as `admin`; banks' and issuers'
    /// systems call as `bank` and `issuer`), rather than held by a person for a working session
    /// (`operator`, `bidder`, `supervisor`).
    pub fn is_service(self) -> bool {
        match self {
            Role::Admin | Role::Bank | Role::Issuer => true,
            Role::Operator | Role::Bidder | Role::Supervisor | Role::Purchaser | Role::Supplier | Role::Lender => false,
        }
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
    /// Issue time, seconds since the Unix epoch. Required: without it a token's lifetime is
    /// unknown. `Option` only so that a token without it is refused with a sentence saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
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

/// Clock skew tolerated between the issuer and the verifier, in seconds: an `exp` this far in
/// the past or an `iat` this far in the future is still accepted.
pub const LEEWAY_SECONDS: i64 = 30;

/// The platform's token secret (`JINFU_AUTH__TOKEN_SECRET`) and the longest lifetime a token
/// may have (`JINFU_AUTH__SERVICE_TOKEN_MAX_SECONDS`, `JINFU_AUTH__PERSON_TOKEN_MAX_SECONDS`).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// HS256 secret for bearer tokens, at least 32 bytes.
    pub token_secret: SecretString,
    /// Longest `exp - iat` of a token of a service role (`admin`, `bank`, `issuer`), in
    /// seconds; default 900. Services mint a fresh token per call, so minutes are plenty.
    #[serde(default = "default_service_token_max_seconds")]
    pub service_token_max_seconds: i64,
    /// Longest `exp - iat` of a token of a person's role (`operator`, `bidder`, `supervisor`),
    /// in seconds; default 36,000 (ten hours, a working day).
    #[serde(default = "default_person_token_max_seconds")]
    pub person_token_max_seconds: i64,
}

fn default_service_token_max_seconds() -> i64 {
    TokenLifetimes::default().service_max_seconds
}
fn default_person_token_max_seconds() -> i64 {
    TokenLifetimes::default().person_max_seconds
}

impl AuthSettings {
    /// Settings with `token_secret` and the default lifetimes (tests, tools).
    pub fn new(token_secret: SecretString) -> AuthSettings {
        let lifetimes = TokenLifetimes::default();
        AuthSettings { token_secret, service_token_max_seconds: lifetimes.service_max_seconds, person_token_max_seconds: lifetimes.person_max_seconds }
    }

    pub fn lifetimes(&self) -> TokenLifetimes {
        TokenLifetimes { service_max_seconds: self.service_token_max_seconds, person_max_seconds: self.person_token_max_seconds }
    }
}

/// The longest lifetime (`exp - iat`) of a token, by kind of role: see [`AuthSettings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub service_max_seconds: i64,
    pub person_max_seconds: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes { service_max_seconds: 900, person_max_seconds: 10 * 3600 }
    }
}

impl TokenLifetimes {
    /// The longest lifetime of a token of `role`, in seconds.
    pub fn max_seconds(&self, role: Role) -> i64 {
        if role.is_service() {
            self.service_max_seconds
        } else {
            self.person_max_seconds
        }
    }
}

/// Signs and verifies bearer tokens with the platform's shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetimes: TokenLifetimes,
}

impl TokenKeys {
    /// Keys for `secret` with the default lifetimes ([`TokenLifetimes::default`]).
    pub fn new(secret: &SecretString) -> anyhow::Result<TokenKeys> {
        TokenKeys::with_lifetimes(secret, TokenLifetimes::default())
    }

    /// Keys for the secret and the lifetimes of `settings`: what a service verifies with.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<TokenKeys> {
        TokenKeys::with_lifetimes(&settings.token_secret, settings.lifetimes())
    }

    pub fn with_lifetimes(secret: &SecretString, lifetimes: TokenLifetimes) -> anyhow::Result<TokenKeys> {
        let bytes = secret.expose_secret().as_bytes();
        anyhow::ensure!(bytes.len() >= 32, "auth token secret must be at least 32 bytes");
        anyhow::ensure!(lifetimes.service_max_seconds > 0, "auth service_token_max_seconds must be positive");
        anyhow::ensure!(lifetimes.person_max_seconds > 0, "auth person_token_max_seconds must be positive");
        Ok(TokenKeys { encoding: EncodingKey::from_secret(bytes), decoding: DecodingKey::from_secret(bytes), lifetimes })
    }

    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// A token for `role` of `centre` issued now and valid for `valid_seconds`; refused when
    /// that exceeds the role's lifetime (a zero or negative lifetime mints an expired token).
    pub fn issue(&self, role: Role, centre: &CentreCode, party: &str, valid_seconds: i64) -> anyhow::Result<String> {
        let max_seconds = self.lifetimes.max_seconds(role);
        anyhow::ensure!(
            valid_seconds <= max_seconds,
            "a {role} token may be valid for at most {max_seconds} seconds, not {valid_seconds} (auth {}_token_max_seconds)",
            if role.is_service() { "service" } else { "person" }
        );
        let issued_at = chrono::Utc::now().timestamp();
        let claims = Claims { role, centre_id: centre.as_str().to_owned(), party: party.to_owned(), iat: Some(issued_at), exp: issued_at + valid_seconds };
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
        validation.set_required_spec_claims(&["exp", "iat"]);
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|error| Status::unauthenticated(format!("invalid bearer token: {error}")))?;
        self.check_lifetime(&data.claims, chrono::Utc::now().timestamp())?;
        let centre = CentreCode::parse(&data.claims.centre_id).map_err(|_| Status::unauthenticated("bearer token carries an invalid centre_id"))?;
        Ok(Caller { role: data.claims.role, centre, party: data.claims.party })
    }

    /// Refuses a token without `iat`, issued after `now` (beyond the leeway), or living longer
    /// than its role's lifetime. The signature and `exp` are checked before this.
    fn check_lifetime(&self, claims: &Claims, now: i64) -> Result<(), Status> {
        let issued_at = claims.iat.ok_or_else(|| Status::unauthenticated("bearer token has no iat (issue time)"))?;
        if issued_at > now.saturating_add(LEEWAY_SECONDS) {
            return Err(Status::unauthenticated("bearer token was issued in the future (iat)"));
        }
        let max_seconds = self.lifetimes.max_seconds(claims.role);
        let lifetime = claims.exp.saturating_sub(issued_at);
        if lifetime > max_seconds {
            return Err(Status::unauthenticated(format!(
                "bearer token lives {lifetime} seconds (exp - iat); a {} token may live at most {max_seconds}",
                claims.role
            )));
        }
        Ok(())
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

    /// A token signed with the test secret carrying exactly `claims`, as a forger holding a
    /// leaked secret or a careless identity provider might mint it.
    fn signed(claims: &serde_json::Value) -> String {
        let secret = EncodingKey::from_secret(b"a-test-secret-that-is-long-enough-0123");
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &secret).unwrap()
    }

    fn refusal(token: &str) -> (tonic::Code, String) {
        let status = keys().verify(token).unwrap_err();
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn a_token_expiring_in_the_year_2999_is_refused() {
        let now = chrono::Utc::now().timestamp();
        let year_2999: i64 = 32_472_144_000;
        let (code, message) = refusal(&signed(&serde_json::json!({"role": "admin", "centre_id": "520100", "party": "x", "iat": now, "exp": year_2999})));
        assert_eq!(code, tonic::Code::Unauthenticated);
        assert!(message.contains("may live at most 900"), "{message}");
        let (code, message) = refusal(&signed(&serde_json::json!({"role": "operator", "centre_id": "520100", "party": "x", "iat": now, "exp": year_2999})));
        assert_eq!(code, tonic::Code::Unauthenticated);
        assert!(message.contains("may live at most 36000"), "{message}");
    }

    #[test]
    fn a_token_without_iat_or_issued_in_the_future_is_refused() {
        let now = chrono::Utc::now().timestamp();
        let (code, message) = refusal(&signed(&serde_json::json!({"role": "operator", "centre_id": "520100", "party": "x", "exp": now + 60})));
        assert_eq!(code, tonic::Code::Unauthenticated);
        assert!(message.contains("iat"), "{message}");
        let future = signed(&serde_json::json!({"role": "operator", "centre_id": "520100", "party": "x", "iat": now + 3600, "exp": now + 3660}));
        let (code, message) = refusal(&future);
        assert_eq!(code, tonic::Code::Unauthenticated);
        assert!(message.contains("future"), "{message}");
        let within_leeway = signed(&serde_json::json!({"role": "operator", "centre_id": "520100", "party": "x", "iat": now + 10, "exp": now + 70}));
        assert!(keys().verify(&within_leeway).is_ok(), "clock skew within the leeway is tolerated");
    }

    #[test]
    fn each_role_gets_its_lifetime_and_the_issuer_refuses_more() {
        let centre = CentreCode::parse("520100").unwrap();
        assert!(keys().verify(&keys().issue(Role::Admin, &centre, "svc", 900).unwrap()).is_ok());
        assert!(keys().issue(Role::Admin, &centre, "svc", 901).is_err());
        assert!(keys().issue(Role::Bank, &centre, "icbc", 3600).is_err());
        assert!(keys().issue(Role::Issuer, &centre, "PICC", 3600).is_err());
        assert!(keys().verify(&keys().issue(Role::Supervisor, &centre, "sup-1", 10 * 3600).unwrap()).is_ok());
        assert!(keys().issue(Role::Bidder, &centre, "91520100000000001X", 10 * 3600 + 1).is_err());
        let short = TokenKeys::with_lifetimes(
            &SecretString::from("a-test-secret-that-is-long-enough-0123"),
            TokenLifetimes { service_max_seconds: 60, person_max_seconds: 120 },
        )
        .unwrap();
        assert!(short.issue(Role::Operator, &centre, "o", 121).is_err());
        let default_lifetime = keys().issue(Role::Operator, &centre, "o", 600).unwrap();
        assert_eq!(short.verify(&default_lifetime).unwrap_err().code(), tonic::Code::Unauthenticated, "the verifier's settings bound the lifetime");
    }

    #[test]
    fn issued_tokens_carry_their_issue_time() {
        let centre = CentreCode::parse("520100").unwrap();
        let token = keys().issue(Role::Operator, &centre, "o", 60).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat"]);
        let claims = jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_secret(b"a-test-secret-that-is-long-enough-0123"), &validation).unwrap().claims;
        let issued_at = claims.iat.unwrap();
        assert!((issued_at - chrono::Utc::now().timestamp()).abs() <= 5);
        assert_eq!(claims.exp - issued_at, 60);
    }

    #[test]
    fn lifetimes_default_when_the_settings_leave_them_out() {
        let settings: AuthSettings = serde_json::from_value(serde_json::json!({"token_secret": "a-test-secret-that-is-long-enough-0123"})).unwrap();
        assert_eq!(settings.lifetimes(), TokenLifetimes { service_max_seconds: 900, person_max_seconds: 36_000 });
    }
}
