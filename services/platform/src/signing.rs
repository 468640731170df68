//! Signatures of banks (credit notices, statements), issuers (guarantees) and Jinfu's own
//! services (every record an outbox publishes: [`Signer`], checked by consumers with
//! [`EventVerifier`]).
//!
//! Two schemes, chosen per key:
//! - `sm2-sm3`: SM2 digital signature over an SM3 digest (GM/T 0003-2012, GM/T 0004-2012), with
//!   the standard default distinguishing identifier `1234567812345678`. Public keys are SEC1
//!   points in hex (uncompressed `04…`, 65 bytes, or compressed, 33 bytes). Signatures are
//!   `r‖s` (64 bytes) or ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }`, base64-encoded.
//! - `ed25519`: RFC 8032 Ed25519. Public keys are 32 bytes in hex; signatures 64 bytes, base64.
//!
//! What is signed is exactly the bytes of the Kafka record value, nothing re-serialised.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use ed25519_dalek::{Signer as _, Verifier as _};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The header carrying the base64 signature over the record value's exact bytes.
pub const SIGNATURE_HEADER: &str = "jinfu-signature";
/// The header naming the signer's key reference (lower-case letters, digits, `_`).
pub const SIGNING_KEY_HEADER: &str = "jinfu-signing-key";
/// The longest key reference accepted, in characters.
pub const KEY_REF_MAX_CHARS: usize = 64;

/// The distinguishing identifier GM/T 0009 sets as default for SM2 signatures.
pub const SM2_DEFAULT_DISTINGUISHING_ID: &str = "1234567812345678";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    #[serde(rename = "sm2-sm3")]
    Sm2Sm3,
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl Scheme {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Sm2Sm3 => "sm2-sm3",
            Scheme::Ed25519 => "ed25519",
        }
    }
}

impl FromStr for Scheme {
    type Err = SignatureError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sm2-sm3" => Ok(Scheme::Sm2Sm3),
            "ed25519" => Ok(Scheme::Ed25519),
            other => Err(SignatureError::UnknownScheme(other.to_owned())),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unknown signature scheme {0:?} (expected sm2-sm3 or ed25519)")]
    UnknownScheme(String),
    #[error("malformed public key: {0}")]
    MalformedPublicKey(String),
    #[error("malformed private key: {0}")]
    MalformedPrivateKey(String),
    #[error("signature is not valid base64")]
    SignatureNotBase64,
    #[error("signature has the wrong length or encoding for {0}")]
    MalformedSignature(Scheme),
    #[error("signature does not verify")]
    Invalid,
}

/// A public key that verifies one signer's signatures.
#[derive(Clone)]
pub enum VerifyingKey {
    Sm2(Box<sm2::dsa::VerifyingKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "VerifyingKey({})", self.scheme())
    }
}

impl VerifyingKey {
    pub fn from_hex(scheme: Scheme, public_key_hex: &str) -> Result<VerifyingKey, SignatureError> {
        let bytes = hex::decode(public_key_hex.trim()).map_err(|error| SignatureError::MalformedPublicKey(error.to_string()))?;
        match scheme {
            Scheme::Sm2Sm3 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_DISTINGUISHING_ID, &bytes)
                .map(|key| VerifyingKey::Sm2(Box::new(key)))
                .map_err(|error| SignatureError::MalformedPublicKey(error.to_string())),
            Scheme::Ed25519 => {
                let array: [u8; 32] =
                    bytes.as_slice().try_into().map_err(|_| SignatureError::MalformedPublicKey("an Ed25519 public key is 32 bytes".into()))?;
                ed25519_dalek::VerifyingKey::from_bytes(&array)
                    .map(VerifyingKey::Ed25519)
                    .map_err(|error| SignatureError::MalformedPublicKey(error.to_string()))
            }
        }
    }

    pub fn scheme(&self) -> Scheme {
        match self {
            VerifyingKey::Sm2(_) => Scheme::Sm2Sm3,
            VerifyingKey::Ed25519(_) => Scheme::Ed25519,
        }
    }

    /// Verifies a base64 signature over `message`.
    pub fn verify(&self, message: &[u8], signature_base64: &str) -> Result<(), SignatureError> {
        match self {
            VerifyingKey::Sm2(key) => {
                let bytes = decode_base64(signature_base64)?;
                let signature = if bytes.len() == 64 { sm2::dsa::Signature::from_slice(&bytes) } else { sm2_signature_from_der(&bytes) }
                    .map_err(|_| SignatureError::MalformedSignature(Scheme::Sm2Sm3))?;
                key.verify(message, &signature).map_err(|_| SignatureError::Invalid)
            }
            VerifyingKey::Ed25519(key) => {
                let signature = decode_ed25519_signature(signature_base64)?;
                key.verify(message, &signature).map_err(|_| SignatureError::Invalid)
            }
        }
    }
}

/// Ed25519 signatures verified together, at most this many at a time: one batch equation
/// costs about half of verifying each alone, and a batch with a bad signature is verified again
/// one by one, so small groups keep a rare bad signature cheap.
const ED25519_BATCH: usize = 32;

/// Verifies many base64 signatures, each `(key, message, signature)`; the verdicts line up with
/// `items`. Ed25519 signatures are checked in batches (one multi-scalar multiplication per
/// batch, with random weights from the system's generator, so a forger cannot arrange for bad
/// signatures to cancel out); a batch that fails is re-checked signature by signature to find
/// which are bad. SM2 signatures are checked one by one.
///
/// The verdicts are those of [`VerifyingKey::verify`] one by one for every signature an honest
/// signer makes. One difference remains: the batch equation is the cofactored one, so a
/// signature whose `R` carries a small-order component — which only the holder of the private
/// key can make, never a forger — may pass here (with probability about 1/8 per batch) where
/// one-by-one verification refuses it. It proves the key holder signed, so no money can move on
/// a forged notice either way.
pub fn verify_many(items: &[(&VerifyingKey, &[u8], &str)]) -> Vec<Result<(), SignatureError>> {
    let mut verdicts: Vec<Option<Result<(), SignatureError>>> = vec![None; items.len()];
    // (index, key, message, signature) of the well-formed Ed25519 signatures.
    let mut ed25519: Vec<(usize, ed25519_dalek::VerifyingKey, &[u8], ed25519_dalek::Signature)> = Vec::new();
    for (index, (key, message, signature_base64)) in items.iter().enumerate() {
        match key {
            VerifyingKey::Ed25519(public) => match decode_ed25519_signature(signature_base64) {
                Ok(signature) => ed25519.push((index, *public, message, signature)),
                Err(error) => verdicts[index] = Some(Err(error)),
            },
            VerifyingKey::Sm2(_) => verdicts[index] = Some(key.verify(message, signature_base64)),
        }
    }
    for group in ed25519.chunks(ED25519_BATCH) {
        let messages: Vec<&[u8]> = group.iter().map(|item| item.2).collect();
        let signatures: Vec<ed25519_dalek::Signature> = group.iter().map(|item| item.3).collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = group.iter().map(|item| item.1).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            for item in group {
                verdicts[item.0] = Some(Ok(()));
            }
        } else {
            for (index, public, message, signature) in group {
                verdicts[*index] = Some(public.verify(message, signature).map_err(|_| SignatureError::Invalid));
            }
        }
    }
    verdicts.into_iter().map(|verdict| verdict.unwrap_or(Err(SignatureError::Invalid))).collect()
}

fn decode_base64(signature_base64: &str) -> Result<Vec<u8>, SignatureError> {
    base64::engine::general_purpose::STANDARD.decode(signature_base64.trim()).map_err(|_| SignatureError::SignatureNotBase64)
}

fn decode_ed25519_signature(signature_base64: &str) -> Result<ed25519_dalek::Signature, SignatureError> {
    ed25519_dalek::Signature::from_slice(&decode_base64(signature_base64)?).map_err(|_| SignatureError::MalformedSignature(Scheme::Ed25519))
}

/// Decodes an ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }` into an SM2 signature.
fn sm2_signature_from_der(bytes: &[u8]) -> Result<sm2::dsa::Signature, sm2::dsa::signature::Error> {
    use der::{Decode, Reader};
    let malformed = |_| sm2::dsa::signature::Error::new();
    let mut reader = der::SliceReader::new(bytes).map_err(malformed)?;
    let (r, s) = reader.sequence(|sequence| Ok((der::asn1::UintRef::decode(sequence)?, der::asn1::UintRef::decode(sequence)?))).map_err(malformed)?;
    reader.finish(()).map_err(malformed)?;
    let mut fixed = [0u8; 64];
    let (r_half, s_half) = fixed.split_at_mut(32);
    for (integer, half) in [(r, r_half), (s, s_half)] {
        let digits = integer.as_bytes();
        if digits.len() > 32 {
            return Err(sm2::dsa::signature::Error::new());
        }
        half[32 - digits.len()..].copy_from_slice(digits);
    }
    sm2::dsa::Signature::from_slice(&fixed)
}

/// A private key, for the bank simulator and tests. Production banks sign in their own HSMs.
#[allow(clippy::large_enum_variant, reason = "a handful of keys per process, made once; boxing the Ed25519 key would buy nothing")]
pub enum SigningKey {
    Sm2(Box<sm2::dsa::SigningKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    pub fn generate(scheme: Scheme) -> SigningKey {
        let mut rng = rand::rngs::OsRng;
        match scheme {
            Scheme::Sm2Sm3 => {
                let secret = sm2::SecretKey::random(&mut rng);
                let key = sm2::dsa::SigningKey::new(SM2_DEFAULT_DISTINGUISHING_ID, &secret).expect("a freshly generated SM2 secret key is valid");
                SigningKey::Sm2(Box::new(key))
            }
            Scheme::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        }
    }

    pub fn from_hex(scheme: Scheme, private_key_hex: &str) -> Result<SigningKey, SignatureError> {
        let bytes = hex::decode(private_key_hex.trim()).map_err(|error| SignatureError::MalformedPrivateKey(error.to_string()))?;
        match scheme {
            Scheme::Sm2Sm3 => {
                let secret = sm2::SecretKey::from_slice(&bytes).map_err(|error| SignatureError::MalformedPrivateKey(error.to_string()))?;
                sm2::dsa::SigningKey::new(SM2_DEFAULT_DISTINGUISHING_ID, &secret)
                    .map(|key| SigningKey::Sm2(Box::new(key)))
                    .map_err(|error| SignatureError::MalformedPrivateKey(error.to_string()))
            }
            Scheme::Ed25519 => {
                let array: [u8; 32] =
                    bytes.as_slice().try_into().map_err(|_| SignatureError::MalformedPrivateKey("an Ed25519 private key is 32 bytes".into()))?;
                Ok(SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&array)))
            }
        }
    }

    pub fn scheme(&self) -> Scheme {
        match self {
            SigningKey::Sm2(_) => Scheme::Sm2Sm3,
            SigningKey::Ed25519(_) => Scheme::Ed25519,
        }
    }

    pub fn private_key_hex(&self) -> String {
        match self {
            SigningKey::Sm2(key) => hex::encode(key.as_nonzero_scalar().to_bytes()),
            SigningKey::Ed25519(key) => hex::encode(key.to_bytes()),
        }
    }

    pub fn public_key_hex(&self) -> String {
        match self {
            SigningKey::Sm2(key) => hex::encode(key.verifying_key().to_sec1_bytes()),
            SigningKey::Ed25519(key) => hex::encode(key.verifying_key().to_bytes()),
        }
    }

    /// Signs `message`; returns the base64 signature (`r‖s` for SM2).
    pub fn sign(&self, message: &[u8]) -> String {
        let bytes = match self {
            SigningKey::Sm2(key) => {
                let signature: sm2::dsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            SigningKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// Whether `key_ref` is a well-formed key reference: 1–64 lower-case ASCII letters, digits or `_`.
pub fn is_key_ref(key_ref: &str) -> bool {
    !key_ref.is_empty() && key_ref.len() <= KEY_REF_MAX_CHARS && key_ref.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

fn default_scheme() -> Scheme {
    Scheme::Ed25519
}

/// A service's own signing key (`JINFU_SIGNING__KEY_REF`, `JINFU_SIGNING__SCHEME`,
/// `JINFU_SIGNING__PRIVATE_KEY`): what its outbox relay signs every record with.
#[derive(Debug, Clone, Deserialize)]
pub struct SigningSettings {
    /// The reference consumers know the public key by; sent in `jinfu-signing-key`.
    pub key_ref: String,
    /// `ed25519` (default) or `sm2-sm3`.
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    /// Hex private key (32 bytes): Ed25519 seed or SM2 scalar. From a Kubernetes Secret.
    pub private_key: SecretString,
}

/// One public key of a publishing service a consumer trusts. A service may have several at once
/// while a key is rotated.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TrustedKeySettings {
    pub key_ref: String,
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    /// Hex public key: 32 bytes for ed25519, a SEC1 point for sm2-sm3.
    pub public_key: String,
}

/// The public keys a consumer trusts for one publishing service. Written as a list
/// `[{ key_ref, scheme, public_key }]` (a configuration file), or as a map by key reference
/// `{ <key_ref>: { scheme, public_key } }`, the form environment variables can express
/// (`JINFU_TRUSTED_PUBLISHERS__GUARANTEE__GUARANTEE_2026__PUBLIC_KEY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys(pub Vec<TrustedKeySettings>);

impl<'de> Deserialize<'de> for TrustedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default = "default_scheme")]
            scheme: Scheme,
            public_key: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<TrustedKeySettings>),
            Map(BTreeMap<String, Body>),
        }
        Ok(TrustedKeys(match Form::deserialize(deserializer)? {
            Form::List(list) => list,
            Form::Map(map) => map.into_iter().map(|(key_ref, body)| TrustedKeySettings { key_ref, scheme: body.scheme, public_key: body.public_key }).collect(),
        }))
    }
}

/// The public keys a consumer trusts, by publishing service (`guarantee`, `ledger`, …):
/// `trusted_publishers: { guarantee: [{ key_ref, scheme, public_key }] }`. Several keys per
/// service let a rotation overlap.
pub type TrustedPublishers = BTreeMap<String, TrustedKeys>;

/// Signs what a service publishes, and names its key in the record's headers.
pub struct Signer {
    key: SigningKey,
    key_ref: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Signer({}, {})", self.key_ref, self.key.scheme())
    }
}

impl Signer {
    pub fn new(key_ref: &str, key: SigningKey) -> anyhow::Result<Signer> {
        anyhow::ensure!(is_key_ref(key_ref), "signing key reference {key_ref:?} must be 1-{KEY_REF_MAX_CHARS} lower-case letters, digits or _");
        Ok(Signer { key, key_ref: key_ref.to_owned() })
    }

    /// The signer `serve` needs (DESIGN.md §7: every published record is signed); an error
    /// naming the variables when no key is configured.
    pub fn required(settings: &Option<SigningSettings>) -> anyhow::Result<Signer> {
        let settings = settings.as_ref().ok_or_else(|| anyhow::anyhow!("no event-signing key configured (JINFU_SIGNING__KEY_REF, __SCHEME, __PRIVATE_KEY)"))?;
        Signer::from_settings(settings)
    }

    pub fn from_settings(settings: &SigningSettings) -> anyhow::Result<Signer> {
        let key = SigningKey::from_hex(settings.scheme, settings.private_key.expose_secret())
            .map_err(|error| anyhow::anyhow!("signing key {}: {error}", settings.key_ref))?;
        Signer::new(&settings.key_ref, key)
    }

    pub fn key_ref(&self) -> &str {
        &self.key_ref
    }

    /// Signs `message` (base64 signature), e.g. a receipt a caller keeps as proof.
    pub fn sign(&self, message: &[u8]) -> String {
        self.key.sign(message)
    }

    pub fn public_key_hex(&self) -> String {
        self.key.public_key_hex()
    }

    /// Signs `value` and sets `jinfu-signature` and `jinfu-signing-key` in `headers`, replacing
    /// any there were.
    pub fn sign_record(&self, value: &[u8], headers: &mut Vec<(String, Vec<u8>)>) {
        headers.retain(|(name, _)| name != SIGNATURE_HEADER && name != SIGNING_KEY_HEADER);
        headers.push((SIGNATURE_HEADER.into(), self.key.sign(value).into_bytes()));
        headers.push((SIGNING_KEY_HEADER.into(), self.key_ref.clone().into_bytes()));
    }
}

/// Why a record's signature was not accepted: a stable reason code (`missing_signature`,
/// `unknown_signing_key`, `bad_signature`) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub code: &'static str,
    pub sentence: String,
}

/// Verifies records of one publishing service against the public keys a consumer trusts for it.
#[derive(Debug, Clone)]
pub struct EventVerifier {
    publisher: String,
    keys: HashMap<String, VerifyingKey>,
}

impl EventVerifier {
    /// The verifier of `publisher`'s records. No key configured is allowed (it refuses every
    /// record, fail-closed); a malformed key or key reference is an error at start.
    pub fn for_publisher(trusted: &TrustedPublishers, publisher: &str) -> anyhow::Result<EventVerifier> {
        let mut keys = HashMap::new();
        for key in trusted.get(publisher).map(|keys| keys.0.as_slice()).unwrap_or_default() {
            anyhow::ensure!(
                is_key_ref(&key.key_ref),
                "trusted key {publisher}/{:?}: a key reference is 1-{KEY_REF_MAX_CHARS} lower-case letters, digits or _",
                key.key_ref
            );
            let verifying =
                VerifyingKey::from_hex(key.scheme, &key.public_key).map_err(|error| anyhow::anyhow!("trusted key {publisher}/{}: {error}", key.key_ref))?;
            anyhow::ensure!(keys.insert(key.key_ref.clone(), verifying).is_none(), "trusted key {publisher}/{} is listed twice", key.key_ref);
        }
        Ok(EventVerifier { publisher: publisher.to_owned(), keys })
    }

    pub fn publisher(&self) -> &str {
        &self.publisher
    }

    /// How many keys are trusted (0: every record is refused).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies the signature over `value` named by the record's headers.
    pub fn verify(&self, value: &[u8], headers: &[(String, Vec<u8>)]) -> Result<(), Unverified> {
        let header = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_slice());
        let (Some(signature), Some(key_ref)) = (header(SIGNATURE_HEADER), header(SIGNING_KEY_HEADER)) else {
            return Err(Unverified { code: "missing_signature", sentence: format!("{SIGNATURE_HEADER} and {SIGNING_KEY_HEADER} headers are required") });
        };
        let key_ref = String::from_utf8_lossy(key_ref);
        let Some(key) = self.keys.get(key_ref.as_ref()) else {
            let shown: String = key_ref.chars().take(KEY_REF_MAX_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect();
            return Err(Unverified { code: "unknown_signing_key", sentence: format!("{shown:?} is not a key trusted for {}", self.publisher) });
        };
        let signature = std::str::from_utf8(signature).map_err(|_| Unverified { code: "bad_signature", sentence: "the signature is not text".into() })?;
        key.verify(value, signature).map_err(|error| Unverified { code: "bad_signature", sentence: format!("key {key_ref}: {error}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_verify_their_own_signature_and_refuse_a_changed_message() {
        for scheme in [Scheme::Sm2Sm3, Scheme::Ed25519] {
            let signer = SigningKey::generate(scheme);
            let restored = SigningKey::from_hex(scheme, &signer.private_key_hex()).unwrap();
            let verifier = VerifyingKey::from_hex(scheme, &signer.public_key_hex()).unwrap();
            let signature = restored.sign(b"{\"amount\":\"100.00\"}");
            assert_eq!(verifier.verify(b"{\"amount\":\"100.00\"}", &signature), Ok(()));
            assert_eq!(verifier.verify(b"{\"amount\":\"900.00\"}", &signature), Err(SignatureError::Invalid));
            assert_eq!(verifier.verify(b"x", "not base64!"), Err(SignatureError::SignatureNotBase64));
        }
    }

    #[test]
    fn many_signatures_get_exactly_the_verdicts_one_by_one_verification_gives() {
        let ed_a = SigningKey::generate(Scheme::Ed25519);
        let ed_b = SigningKey::generate(Scheme::Ed25519);
        let sm = SigningKey::generate(Scheme::Sm2Sm3);
        let keys: Vec<VerifyingKey> = [&ed_a, &ed_b, &sm].iter().map(|k| VerifyingKey::from_hex(k.scheme(), &k.public_key_hex()).unwrap()).collect();
        let messages: Vec<Vec<u8>> = (0..100).map(|i| format!("{{\"serial\":{i}}}").into_bytes()).collect();
        let mut items: Vec<(usize, Vec<u8>, String)> = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let signer = [&ed_a, &ed_b, &sm][if i % 10 == 9 { 2 } else { i % 2 }];
            let key_index = if i % 10 == 9 { 2 } else { i % 2 };
            let mut signature = signer.sign(message);
            let mut signed = message.clone();
            match i {
                // A changed message, in the first batch and in a later one; a signature of the
                // other Ed25519 key; malformed and non-base64 signatures; a bad SM2 signature.
                3 | 70 => signed = b"changed".to_vec(),
                40 => signature = ed_b.sign(message),
                41 => signature = base64::engine::general_purpose::STANDARD.encode([0u8; 12]),
                42 => signature = "not base64!".into(),
                19 => signed = b"changed".to_vec(),
                _ => {}
            }
            items.push((key_index, signed, signature));
        }
        let borrowed: Vec<(&VerifyingKey, &[u8], &str)> = items.iter().map(|(k, m, s)| (&keys[*k], m.as_slice(), s.as_str())).collect();
        let one_by_one: Vec<Result<(), SignatureError>> = borrowed.iter().map(|(k, m, s)| k.verify(m, s)).collect();
        assert_eq!(verify_many(&borrowed), one_by_one);
        let refused: Vec<usize> = one_by_one.iter().enumerate().filter(|(_, v)| v.is_err()).map(|(i, _)| i).collect();
        assert_eq!(refused, vec![3, 19, 40, 41, 42, 70], "the test's bad signatures are the only ones refused");
    }

    #[test]
    fn an_sm2_signature_in_der_form_verifies_too() {
        let signer = SigningKey::generate(Scheme::Sm2Sm3);
        let SigningKey::Sm2(key) = &signer else { unreachable!() };
        let signature: sm2::dsa::Signature = key.sign(b"notice");
        let fixed = signature.to_bytes();
        let integer = |half: &[u8]| {
            let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
            let mut body = if trimmed.first().is_some_and(|b| b & 0x80 != 0) { vec![0] } else { vec![] };
            body.extend(trimmed);
            let mut encoded = vec![0x02, body.len() as u8];
            encoded.extend(body);
            encoded
        };
        let mut content = integer(&fixed[..32]);
        content.extend(integer(&fixed[32..]));
        let mut encoded = vec![0x30, content.len() as u8];
        encoded.extend(content);
        let der = base64::engine::general_purpose::STANDARD.encode(encoded);
        let verifier = VerifyingKey::from_hex(Scheme::Sm2Sm3, &signer.public_key_hex()).unwrap();
        assert_eq!(verifier.verify(b"notice", &der), Ok(()));
    }

    fn trusted(publisher: &str, keys: &[(&str, &SigningKey)]) -> TrustedPublishers {
        let list = keys
            .iter()
            .map(|(key_ref, key)| TrustedKeySettings { key_ref: (*key_ref).into(), scheme: key.scheme(), public_key: key.public_key_hex() })
            .collect();
        TrustedPublishers::from([(publisher.to_owned(), TrustedKeys(list))])
    }

    #[test]
    fn a_signed_record_verifies_under_every_trusted_key_of_its_publisher_and_nothing_else_does() {
        let old = SigningKey::generate(Scheme::Ed25519);
        let new = SigningKey::generate(Scheme::Sm2Sm3);
        let stranger = SigningKey::generate(Scheme::Ed25519);
        let verifier = EventVerifier::for_publisher(&trusted("guarantee", &[("guarantee_2026", &old), ("guarantee_2027", &new)]), "guarantee").unwrap();
        let value = br#"{"type":"guarantee.issued"}"#;
        for (key_ref, key) in [("guarantee_2026", &old), ("guarantee_2027", &new)] {
            let mut headers = vec![("traceparent".to_owned(), b"00-x".to_vec())];
            Signer::new(key_ref, SigningKey::from_hex(key.scheme(), &key.private_key_hex()).unwrap()).unwrap().sign_record(value, &mut headers);
            assert_eq!(verifier.verify(value, &headers), Ok(()));
            assert_eq!(verifier.verify(b"{}", &headers).unwrap_err().code, "bad_signature");
        }
        let code = |headers: &[(String, Vec<u8>)]| verifier.verify(value, headers).unwrap_err().code;
        assert_eq!(code(&[]), "missing_signature");
        assert_eq!(code(&[(SIGNATURE_HEADER.into(), stranger.sign(value).into_bytes())]), "missing_signature");
        let mut forged = Vec::new();
        Signer::new("stranger", SigningKey::from_hex(Scheme::Ed25519, &stranger.private_key_hex()).unwrap()).unwrap().sign_record(value, &mut forged);
        assert_eq!(code(&forged), "unknown_signing_key");
        // A stranger's signature under a trusted key's name.
        let mut misnamed = vec![(SIGNATURE_HEADER.into(), stranger.sign(value).into_bytes()), (SIGNING_KEY_HEADER.into(), b"guarantee_2026".to_vec())];
        assert_eq!(code(&misnamed), "bad_signature");
        misnamed[0].1 = b"not base64!".to_vec();
        assert_eq!(code(&misnamed), "bad_signature");
        // No key configured for a publisher refuses everything; another publisher's keys do not count.
        let none = EventVerifier::for_publisher(&trusted("ledger", &[("guarantee_2026", &old)]), "guarantee").unwrap();
        assert_eq!(none.key_count(), 0);
        let mut headers = Vec::new();
        Signer::new("guarantee_2026", SigningKey::from_hex(Scheme::Ed25519, &old.private_key_hex()).unwrap()).unwrap().sign_record(value, &mut headers);
        assert_eq!(none.verify(value, &headers).unwrap_err().code, "unknown_signing_key");
    }

    #[test]
    fn signing_replaces_earlier_signature_headers_and_key_refs_are_checked() {
        let key = SigningKey::generate(Scheme::Ed25519);
        let signer = Signer::new("ledger_1", key).unwrap();
        let mut headers = vec![(SIGNATURE_HEADER.to_owned(), b"old".to_vec()), (SIGNING_KEY_HEADER.to_owned(), b"old".to_vec())];
        signer.sign_record(b"v", &mut headers);
        assert_eq!(headers.iter().filter(|(name, _)| name == SIGNATURE_HEADER || name == SIGNING_KEY_HEADER).count(), 2);
        assert!(headers.contains(&(SIGNING_KEY_HEADER.to_owned(), b"ledger_1".to_vec())));
        for bad in ["", "Ledger", "ledger-1", "ledger 1"] {
            assert!(Signer::new(bad, SigningKey::generate(Scheme::Ed25519)).is_err(), "{bad:?}");
        }
        let malformed = TrustedPublishers::from([(
            "guarantee".to_owned(),
            TrustedKeys(vec![TrustedKeySettings { key_ref: "g".into(), scheme: Scheme::Ed25519, public_key: "00".into() }]),
        )]);
        assert!(EventVerifier::for_publisher(&malformed, "guarantee").is_err());
    }

    #[test]
    fn trusted_keys_read_as_a_list_or_as_a_map_by_key_reference() {
        let list: TrustedPublishers =
            serde_json::from_str(r#"{"guarantee": [{"key_ref": "g1", "scheme": "sm2-sm3", "public_key": "04ab"}, {"key_ref": "g2", "public_key": "cd"}]}"#)
                .unwrap();
        let map: TrustedPublishers =
            serde_json::from_str(r#"{"guarantee": {"g1": {"scheme": "sm2-sm3", "public_key": "04ab"}, "g2": {"public_key": "cd"}}}"#).unwrap();
        assert_eq!(list, map);
        assert_eq!(list["guarantee"].0[1], TrustedKeySettings { key_ref: "g2".into(), scheme: Scheme::Ed25519, public_key: "cd".into() });
    }
}
