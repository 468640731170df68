//! Sealing (密封): who applied for or holds a guarantee for a section is confidential until the
//! section's bids are opened. Everything that names the bidder or its terms is stored as one
//! AES-256-GCM ciphertext; rows are found by a keyed tag (HMAC-SHA-256) of the bidder instead
//! of its code, so the database alone tells nobody which bidders secured which section.
//!
//! The associated data binds each ciphertext to its row (an application's id, a guarantee's
//! number), so a ciphertext copied onto another row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

const NONCE_BYTES: usize = 12;

/// The service's sealing key: 32 bytes, from configuration (a Kubernetes Secret).
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    tag_key: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealing key must be 64 hex digits (32 bytes)")]
    BadKey,
    #[error("sealed data does not decrypt with this key (tampered, moved, or another key)")]
    Undecryptable,
    #[error("sealed data is not what was sealed: {0}")]
    Malformed(String),
}

impl Sealer {
    pub fn from_hex(key: &SecretString) -> Result<Sealer, SealError> {
        let bytes = hex::decode(key.expose_secret().trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        // A separate key for tags, derived so that a tag reveals nothing about the cipher key.
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        derive.update(b"jinfu-guarantee-bidder-tag-v1");
        Ok(Sealer { cipher, tag_key: derive.finalize().into_bytes().to_vec() })
    }

    /// Encrypts `value` (as JSON) for the row `row_id`: nonce ‖ ciphertext.
    pub fn seal<T: Serialize>(&self, row_id: &str, value: &T) -> Result<Vec<u8>, SealError> {
        let plaintext = serde_json::to_vec(value).map_err(|error| SealError::Malformed(error.to_string()))?;
        let mut nonce = [0_u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext =
            self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: row_id.as_bytes() }).map_err(|_| SealError::Undecryptable)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open<T: DeserializeOwned>(&self, row_id: &str, sealed: &[u8]) -> Result<T, SealError> {
        if sealed.len() <= NONCE_BYTES {
            return Err(SealError::Undecryptable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let plaintext =
            self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: row_id.as_bytes() }).map_err(|_| SealError::Undecryptable)?;
        serde_json::from_slice(&plaintext).map_err(|error| SealError::Malformed(error.to_string()))
    }

    /// The lookup tag of a bidder within one centre: equal inputs give equal tags; without the
    /// key a tag cannot be linked to a bidder.
    pub fn bidder_tag(&self, centre_id: &str, bidder_uscc: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.tag_key).expect("HMAC takes any key length");
        mac.update(centre_id.as_bytes());
        mac.update(b"\n");
        mac.update(bidder_uscc.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::from_hex(&SecretString::from(hex::encode([byte; 32]))).expect("key")
    }

    #[test]
    fn what_is_sealed_for_a_row_opens_only_for_that_row_and_key() {
        let sealer = sealer(7);
        let sealed = sealer.seal("row-1", &("91520100MA6DKQ5X2L", 5_000_000_i64)).expect("seal");
        assert!(!String::from_utf8_lossy(&sealed).contains("91520100MA6DKQ5X2L"));
        let opened: (String, i64) = sealer.open("row-1", &sealed).expect("open");
        assert_eq!(opened, ("91520100MA6DKQ5X2L".to_owned(), 5_000_000));
        assert!(matches!(sealer.open::<(String, i64)>("row-2", &sealed), Err(SealError::Undecryptable)));
        assert!(matches!(self::sealer(8).open::<(String, i64)>("row-1", &sealed), Err(SealError::Undecryptable)));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(sealer.open::<(String, i64)>("row-1", &tampered), Err(SealError::Undecryptable)));
    }

    #[test]
    fn tags_are_stable_per_key_and_centre() {
        let (one, other) = (sealer(1), sealer(2));
        assert_eq!(one.bidder_tag("520100", "A"), one.bidder_tag("520100", "A"));
        assert_ne!(one.bidder_tag("520100", "A"), one.bidder_tag("520100", "B"));
        assert_ne!(one.bidder_tag("520100", "A"), one.bidder_tag("520300", "A"));
        assert_ne!(one.bidder_tag("520100", "A"), other.bidder_tag("520100", "A"));
    }

    #[test]
    fn a_short_or_non_hex_key_is_refused() {
        assert!(Sealer::from_hex(&SecretString::from("00ff".to_owned())).is_err());
        assert!(Sealer::from_hex(&SecretString::from("zz".repeat(32))).is_err());
    }
}
