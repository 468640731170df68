//! The bank credit notice, JSON format v1 (docs/bank-integration.md,
//! docs/schemas/bank.credit-notice.v1.json), and its validation at the boundary.
//!
//! A record becomes a [`CreditNotice`] here, once, or is refused with a [`Refusal`] whose code
//! goes to the dead-letter topic. Nothing inside the ledger re-validates.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, Utc};
use jinfu_ledger::chain::sha256;
use jinfu_ledger::money::{Fen, MoneyError};
use jinfu_platform::signing::{SignatureError, VerifyingKey};
use serde::Deserialize;

/// Header carrying the base64 signature over the record value.
pub const SIGNATURE_HEADER: &str = "jinfu-signature";
/// Header naming the key the bank signed with (its `signing_key_ref`).
pub const SIGNING_KEY_HEADER: &str = "jinfu-signing-key";

/// A record value larger than this is refused unread.
pub const NOTICE_BYTES_MAX: usize = 16 * 1024;
/// Text fields longer than this are refused: no bank field needs more.
const FIELD_CHARS_MAX: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditNoticeV1 {
    schema_version: u32,
    event_id: String,
    centre_id: String,
    bank: String,
    bank_serial: String,
    account_number: String,
    sub_account_number: String,
    amount: String,
    currency: String,
    payer_name: String,
    payer_account: String,
    #[serde(default)]
    payer_bank: Option<String>,
    value_time: DateTime<FixedOffset>,
    occurred_at: DateTime<FixedOffset>,
    #[serde(default)]
    memo: Option<String>,
}

/// A validated, signature-checked credit notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNotice {
    pub event_id: String,
    pub centre_id: String,
    pub bank: String,
    pub bank_serial: String,
    pub account_number: String,
    pub sub_account_number: String,
    pub amount: Fen,
    pub payer_name: String,
    pub payer_account: String,
    pub value_time: DateTime<Utc>,
    /// SHA-256 over the money-relevant fields; equal for a redelivery or a bank's re-send of the
    /// same transfer, different for a reused serial with other content.
    pub content_hash: [u8; 32],
}

/// Why a record was refused. `code()` is the published DLQ reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("record value is {0} bytes, more than the {NOTICE_BYTES_MAX} allowed")]
    Oversized(usize),
    #[error("record has no {SIGNATURE_HEADER} or {SIGNING_KEY_HEADER} header")]
    MissingSignature,
    #[error("record value is not a valid v1 credit notice: {0}")]
    MalformedJson(String),
    #[error("schema_version {0} is not supported (expected 1)")]
    UnsupportedSchemaVersion(u32),
    #[error("field {0} is empty or longer than {FIELD_CHARS_MAX} characters")]
    BadField(&'static str),
    #[error("collection account {0} is not registered")]
    UnknownCollectionAccount(String),
    #[error("signing key {presented:?} is not the key registered for the account ({registered:?}) or is not configured")]
    UnknownSigningKey { presented: String, registered: String },
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    #[error("centre {0} is not registered")]
    UnknownCentre(String),
    #[error("collection account belongs to centre {account_centre}, not {notice_centre}")]
    CentreMismatch { notice_centre: String, account_centre: String },
    #[error("amount is not positive: {0}")]
    NonPositiveAmount(String),
    #[error("amount has more than two decimals: {0}")]
    TooManyDecimals(String),
    #[error("amount is not a decimal number: {0}")]
    AmountNotANumber(String),
    #[error("currency {0:?} is not CNY")]
    UnsupportedCurrency(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Oversized(_) => "oversized",
            Refusal::MissingSignature => "missing_signature",
            Refusal::MalformedJson(_) => "malformed_json",
            Refusal::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            Refusal::BadField(_) => "bad_field",
            Refusal::UnknownCollectionAccount(_) => "unknown_collection_account",
            Refusal::UnknownSigningKey { .. } => "unknown_signing_key",
            Refusal::BadSignature(_) => "bad_signature",
            Refusal::UnknownCentre(_) => "unknown_centre",
            Refusal::CentreMismatch { .. } => "centre_mismatch",
            Refusal::NonPositiveAmount(_) => "non_positive_amount",
            Refusal::TooManyDecimals(_) => "too_many_decimals",
            Refusal::AmountNotANumber(_) => "amount_not_a_number",
            Refusal::UnsupportedCurrency(_) => "unsupported_currency",
        }
    }

    /// `<code>: <sentence>`, as written to the `jinfu-dlq-reason` header.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code(), self)
    }
}

/// What validation needs to know about a registered collection account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionAccount {
    pub centre_id: String,
    pub signing_key_ref: String,
}

/// The reference data a batch validates against.
pub struct Registry<'a> {
    /// Keyed by (bank, account number).
    pub accounts: &'a HashMap<(String, String), CollectionAccount>,
    pub centres: &'a std::collections::HashSet<String>,
    /// Configured bank public keys, keyed by lower-case key reference.
    pub keys: &'a HashMap<String, VerifyingKey>,
}

/// Validates one record: size, signature headers, JSON, schema, signature, centre, amount.
pub fn validate(value: &[u8], signature: Option<&str>, signing_key: Option<&str>, registry: &Registry<'_>) -> Result<CreditNotice, Refusal> {
    let unverified = check_before_signature(value, signature, signing_key, registry)?;
    let verdict = unverified.key.verify(value, unverified.signature);
    check_after_signature(unverified, verdict, registry)
}

/// A record that passed every check that comes before its signature's, with what verifying
/// the signature needs. Batch validation verifies many of these at once
/// ([`jinfu_platform::signing::verify_many`]) and finishes each with [`check_after_signature`].
pub struct Unverified<'a> {
    wire: CreditNoticeV1,
    account: &'a CollectionAccount,
    pub key: &'a VerifyingKey,
    pub signature: &'a str,
}

/// Size, signature headers, JSON, schema, text fields, collection account and signing key, in
/// the order of docs/bank-integration.md §6.
pub fn check_before_signature<'a>(
    value: &[u8],
    signature: Option<&'a str>,
    signing_key: Option<&str>,
    registry: &Registry<'a>,
) -> Result<Unverified<'a>, Refusal> {
    if value.len() > NOTICE_BYTES_MAX {
        return Err(Refusal::Oversized(value.len()));
    }
    let (Some(signature), Some(signing_key)) = (signature, signing_key) else {
        return Err(Refusal::MissingSignature);
    };
    let wire: CreditNoticeV1 = serde_json::from_slice(value).map_err(|error| {
        // A later version may add fields v1 refuses: name the version, not the field.
        match serde_json::from_slice::<VersionOnly>(value) {
            Ok(VersionOnly { schema_version }) if schema_version != 1 => Refusal::UnsupportedSchemaVersion(schema_version),
            _ => Refusal::MalformedJson(printable(&error.to_string())),
        }
    })?;
    if wire.schema_version != 1 {
        return Err(Refusal::UnsupportedSchemaVersion(wire.schema_version));
    }
    let text_fields = [
        ("event_id", &wire.event_id),
        ("centre_id", &wire.centre_id),
        ("bank", &wire.bank),
        ("bank_serial", &wire.bank_serial),
        ("account_number", &wire.account_number),
        ("sub_account_number", &wire.sub_account_number),
        ("payer_name", &wire.payer_name),
        ("payer_account", &wire.payer_account),
    ];
    for (name, text) in text_fields {
        if text.trim().is_empty() || !acceptable_text(text) {
            return Err(Refusal::BadField(name));
        }
    }
    for (name, text) in [("payer_bank", &wire.payer_bank), ("memo", &wire.memo), ("amount", &Some(wire.amount.clone()))] {
        if text.as_deref().is_some_and(|text| !acceptable_text(text)) {
            return Err(Refusal::BadField(name));
        }
    }
    let account_key = (wire.bank.clone(), wire.account_number.clone());
    let account = registry.accounts.get(&account_key).ok_or_else(|| Refusal::UnknownCollectionAccount(format!("{}/{}", wire.bank, wire.account_number)))?;
    let presented = signing_key.to_ascii_lowercase();
    let key = registry
        .keys
        .get(&presented)
        .filter(|_| presented == account.signing_key_ref)
        .ok_or_else(|| Refusal::UnknownSigningKey { presented: printable(&presented), registered: account.signing_key_ref.clone() })?;
    Ok(Unverified { wire, account, key, signature })
}

/// The signature's verdict, then centre, amount and currency.
pub fn check_after_signature(unverified: Unverified<'_>, verdict: Result<(), SignatureError>, registry: &Registry<'_>) -> Result<CreditNotice, Refusal> {
    verdict.map_err(|error| Refusal::BadSignature(error.to_string()))?;
    let Unverified { wire, account, .. } = unverified;
    if !registry.centres.contains(&wire.centre_id) {
        return Err(Refusal::UnknownCentre(wire.centre_id));
    }
    if account.centre_id != wire.centre_id {
        return Err(Refusal::CentreMismatch { notice_centre: wire.centre_id, account_centre: account.centre_id.clone() });
    }
    let amount = Fen::parse_positive_yuan(&wire.amount).map_err(|error| match error {
        MoneyError::NotPositive(text) => Refusal::NonPositiveAmount(printable(&text)),
        MoneyError::TooManyDecimals(text) => Refusal::TooManyDecimals(printable(&text)),
        MoneyError::NotANumber(text) | MoneyError::TooLarge(text) => Refusal::AmountNotANumber(printable(&text)),
    })?;
    if wire.currency != "CNY" {
        return Err(Refusal::UnsupportedCurrency(printable(&wire.currency)));
    }
    let _ = wire.occurred_at;
    let value_time = wire.value_time.with_timezone(&Utc);
    let content_hash = content_hash(&wire, amount, value_time);
    Ok(CreditNotice {
        event_id: wire.event_id,
        centre_id: wire.centre_id,
        bank: wire.bank,
        bank_serial: wire.bank_serial,
        account_number: wire.account_number,
        sub_account_number: wire.sub_account_number,
        amount,
        payer_name: wire.payer_name,
        payer_account: wire.payer_account,
        value_time,
        content_hash,
    })
}

#[derive(Deserialize)]
struct VersionOnly {
    schema_version: u32,
}

/// At most [`FIELD_CHARS_MAX`] characters and no control characters (which PostgreSQL text
/// cannot hold, in the case of NUL, and no bank field needs).
fn acceptable_text(text: &str) -> bool {
    text.chars().count() <= FIELD_CHARS_MAX && !text.chars().any(char::is_control)
}

/// Text from outside, made safe to store and print in a reason: control characters replaced,
/// length bounded at a word.
fn printable(text: &str) -> String {
    jinfu_platform::fields::clip(text, 200)
}

fn content_hash(wire: &CreditNoticeV1, amount: Fen, value_time: DateTime<Utc>) -> [u8; 32] {
    content_hash_of(
        &wire.centre_id,
        &wire.bank,
        &wire.bank_serial,
        &wire.account_number,
        &wire.sub_account_number,
        amount,
        &wire.payer_name,
        &wire.payer_account,
        value_time,
    )
}

/// SHA-256 over the money-relevant fields of a credit, whether a notice announced it or a
/// statement line showed it, so the two compare equal for the same transfer.
#[allow(clippy::too_many_arguments)]
pub fn content_hash_of(
    centre_id: &str,
    bank: &str,
    bank_serial: &str,
    account_number: &str,
    sub_account_number: &str,
    amount: Fen,
    payer_name: &str,
    payer_account: &str,
    value_time: DateTime<Utc>,
) -> [u8; 32] {
    let canonical = serde_json::json!([
        centre_id,
        bank,
        bank_serial,
        account_number,
        sub_account_number,
        amount.fen(),
        payer_name,
        payer_account,
        value_time.timestamp_micros(),
    ]);
    sha256(canonical.to_string().as_bytes())
}
