//! Validation of received records, before their batch transaction: size, signature, JSON,
//! schema, registered account and centre ([`crate::notice`] holds the checks themselves).

use jinfu_platform::signing::VerifyingKey;

use super::Record;
use crate::notice::{self, CreditNotice, Refusal, Registry, SIGNATURE_HEADER, SIGNING_KEY_HEADER};

/// Validates records, in order: the checks before the signature one by one, then every
/// signature together ([`jinfu_platform::signing::verify_many`]: Ed25519 in batches, about half
/// the cost of one by one), then the checks after it. The receiver runs this on the blocking
/// pool, a chunk at a time, so chunks are validated on every core.
pub(super) fn validate_all(records: &[Record], registry: &Registry<'_>) -> Vec<Result<CreditNotice, Refusal>> {
    let checked: Vec<Result<notice::Unverified<'_>, Refusal>> = records
        .iter()
        .map(|record| notice::check_before_signature(&record.value, record.header(SIGNATURE_HEADER), record.header(SIGNING_KEY_HEADER), registry))
        .collect();
    let items: Vec<(&VerifyingKey, &[u8], &str)> = checked
        .iter()
        .zip(records)
        .filter_map(|(checked, record)| checked.as_ref().ok().map(|unverified| (unverified.key, record.value.as_slice(), unverified.signature)))
        .collect();
    let mut verdicts = jinfu_platform::signing::verify_many(&items).into_iter();
    checked
        .into_iter()
        .map(|checked| {
            checked.and_then(|unverified| {
                let verdict = verdicts.next().expect("one verdict per record that reached its signature");
                notice::check_after_signature(unverified, verdict, registry)
            })
        })
        .collect()
}
