//! The per-centre hash chain over journal entries (invariant 6).
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and a canonical, length-prefixed
//! encoding of the entry: centre, sequence number, entry id, kind, reference, and every posting
//! in order. Changing, inserting, deleting or reordering any entry or posting breaks every hash
//! after it, which the verification command detects.

use sha2::{Digest, Sha256};

use crate::entry::Side;

/// The hash before a centre's first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// One posting as the chain sees it.
pub struct ChainedPosting<'a> {
    pub account: &'a str,
    pub side: Side,
    pub amount_fen: i64,
}

pub struct ChainedEntry<'a> {
    pub centre_id: &'a str,
    pub sequence: i64,
    pub entry_id: &'a str,
    pub kind: &'a str,
    pub reference: &'a str,
    pub postings: &'a [ChainedPosting<'a>],
}

pub fn entry_hash(previous: &[u8; 32], entry: &ChainedEntry<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(entry.centre_id.as_bytes());
    field(&entry.sequence.to_be_bytes());
    field(entry.entry_id.as_bytes());
    field(entry.kind.as_bytes());
    field(entry.reference.as_bytes());
    field(&(entry.postings.len() as u64).to_be_bytes());
    for posting in entry.postings {
        field(posting.account.as_bytes());
        field(posting.side.as_str().as_bytes());
        field(&posting.amount_fen.to_be_bytes());
    }
    hasher.finalize().into()
}

/// SHA-256 of arbitrary bytes: used for notice content hashes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_with_amount(amount_fen: i64) -> [u8; 32] {
        let postings = [
            ChainedPosting { account: "bank:ICBC:1", side: Side::Debit, amount_fen },
            ChainedPosting { account: "deposit:S:B", side: Side::Credit, amount_fen },
        ];
        let entry = ChainedEntry { centre_id: "520100", sequence: 1, entry_id: "e1", kind: "deposit_received", reference: "ICBC/1", postings: &postings };
        entry_hash(&GENESIS_HASH, &entry)
    }

    #[test]
    fn changing_one_fen_changes_the_hash() {
        assert_eq!(hash_with_amount(100), hash_with_amount(100));
        assert_ne!(hash_with_amount(100), hash_with_amount(101));
    }
}
