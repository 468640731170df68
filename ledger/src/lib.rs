//! The Jinfu deposit ledger core.
//!
//! Everything here is pure: money in exact fen, account identities, journal entries that cannot
//! be built unbalanced, the matching rules of DESIGN.md §3 as functions returning an outcome and a
//! reason, identifiers with check digits, the per-centre hash chain, and the invariants as
//! assertions. The ledger service owns every byte of I/O; this crate depends on none of it.

pub mod account;
pub mod beijing;
pub mod calendar;
pub mod chain;
pub mod entry;
pub mod ids;
pub mod interest;
pub mod matching;
pub mod money;
pub mod overdue;

pub use account::{AccountKey, AccountKind};
pub use entry::{EntryError, EntryKind, JournalEntry, Posting, Side};
pub use matching::{DepositProgress, Outcome, SuspenseReason};
pub use money::{Fen, MoneyError};
