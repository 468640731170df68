//! Journal entries: a set of postings whose debits equal their credits. The only constructor
//! checks that, so an unbalanced entry cannot exist (invariant 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::account::AccountKey;
use crate::money::Fen;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }
}

/// Why an entry was written. Stored with the entry and covered by the hash chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A bank credit notice bound to a bidder's deposit account.
    DepositReceived,
    /// A bank credit notice that could not be bound, held in suspense.
    SuspenseReceived,
    /// A refund ordered from the bank: deposit (and interest expense) to refund-in-transit.
    RefundOrdered,
    /// The bank paid the refund: refund-in-transit to the collection account.
    RefundConfirmed,
    /// The bank could not pay: the order entry reversed, money back to the deposit.
    RefundFailed,
    /// A deposit not refunded (不予退还), owed onward to the purchaser.
    DepositForfeited,
    /// An operator bound a suspense item to the sub-account it was meant for: suspense to deposit.
    SuspenseBound,
    /// An operator ordered a suspense item back to its payer: suspense to refund-in-transit.
    SuspenseReturnOrdered,
    /// The bank could not return a suspense item: refund-in-transit back to suspense.
    SuspenseReturnFailed,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::DepositReceived => "deposit_received",
            EntryKind::SuspenseReceived => "suspense_received",
            EntryKind::RefundOrdered => "refund_ordered",
            EntryKind::RefundConfirmed => "refund_confirmed",
            EntryKind::RefundFailed => "refund_failed",
            EntryKind::DepositForfeited => "deposit_forfeited",
            EntryKind::SuspenseBound => "suspense_bound",
            EntryKind::SuspenseReturnOrdered => "suspense_return_ordered",
            EntryKind::SuspenseReturnFailed => "suspense_return_failed",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        match text {
            "deposit_received" => Some(EntryKind::DepositReceived),
            "suspense_received" => Some(EntryKind::SuspenseReceived),
            "refund_ordered" => Some(EntryKind::RefundOrdered),
            "refund_confirmed" => Some(EntryKind::RefundConfirmed),
            "refund_failed" => Some(EntryKind::RefundFailed),
            "deposit_forfeited" => Some(EntryKind::DepositForfeited),
            "suspense_bound" => Some(EntryKind::SuspenseBound),
            "suspense_return_ordered" => Some(EntryKind::SuspenseReturnOrdered),
            "suspense_return_failed" => Some(EntryKind::SuspenseReturnFailed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Posting {
    pub account: AccountKey,
    pub side: Side,
    pub amount: Fen,
}

impl Posting {
    /// The change this posting makes to its account's balance, signed so that a positive number
    /// grows the account on its normal side.
    pub fn balance_delta(&self) -> Fen {
        if self.side == self.account.kind().normal_side() {
            self.amount
        } else {
            Fen::from_fen(-self.amount.fen())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("an entry needs at least one debit and one credit")]
    OneSided,
    #[error("posting to {account} has a non-positive amount {amount}")]
    NonPositivePosting { account: String, amount: Fen },
    #[error("entry does not balance: debits {debits} != credits {credits}")]
    Unbalanced { debits: Fen, credits: Fen },
    #[error("entry amounts overflow")]
    Overflow,
}

/// A balanced set of postings. Immutable once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    kind: EntryKind,
    postings: Vec<Posting>,
}

impl JournalEntry {
    pub fn new(kind: EntryKind, postings: Vec<Posting>) -> Result<Self, EntryError> {
        let mut debits = Fen::ZERO;
        let mut credits = Fen::ZERO;
        for posting in &postings {
            if !posting.amount.is_positive() {
                return Err(EntryError::NonPositivePosting { account: posting.account.to_string(), amount: posting.amount });
            }
            let total = match posting.side {
                Side::Debit => &mut debits,
                Side::Credit => &mut credits,
            };
            *total = total.checked_add(posting.amount).ok_or(EntryError::Overflow)?;
        }
        if debits == Fen::ZERO || credits == Fen::ZERO {
            return Err(EntryError::OneSided);
        }
        if debits != credits {
            return Err(EntryError::Unbalanced { debits, credits });
        }
        Ok(JournalEntry { kind, postings })
    }

    /// The common two-legged entry: debit one account, credit another, same amount.
    pub fn transfer(kind: EntryKind, debit: AccountKey, credit: AccountKey, amount: Fen) -> Result<Self, EntryError> {
        JournalEntry::new(kind, vec![Posting { account: debit, side: Side::Debit, amount }, Posting { account: credit, side: Side::Credit, amount }])
    }

    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The net balance change per account, for applying the entry to stored balances.
    pub fn balance_deltas(&self) -> BTreeMap<AccountKey, Fen> {
        let mut deltas: BTreeMap<AccountKey, Fen> = BTreeMap::new();
        for posting in &self.postings {
            let delta = deltas.entry(posting.account.clone()).or_default();
            *delta = *delta + posting.balance_delta();
        }
        deltas
    }
}

/// Checks invariant 1 on postings built or read back from storage, where the type system no
/// longer protects them: one check per condition, so the error says which failed. For callers
/// that cannot stop with an error of their own; a service turns the `Err` into a permanent
/// failure that names the entry.
pub fn check_postings_balance(postings: &[Posting]) -> Result<(), EntryError> {
    let mut debits = Fen::ZERO;
    let mut credits = Fen::ZERO;
    for posting in postings {
        if !posting.amount.is_positive() {
            return Err(EntryError::NonPositivePosting { account: posting.account.to_string(), amount: posting.amount });
        }
        let total = match posting.side {
            Side::Debit => &mut debits,
            Side::Credit => &mut credits,
        };
        *total = total.checked_add(posting.amount).ok_or(EntryError::Overflow)?;
    }
    if debits == Fen::ZERO {
        return Err(EntryError::OneSided);
    }
    if credits == Fen::ZERO {
        return Err(EntryError::OneSided);
    }
    if debits != credits {
        return Err(EntryError::Unbalanced { debits, credits });
    }
    Ok(())
}

/// Asserts invariant 1 on postings read back from storage, where the type system no longer
/// protects them. Panics name the entry so a failure can be traced; a service prefers
/// [`check_postings_balance`], which it can turn into a failure with coordinates.
pub fn assert_postings_balance(entry_label: &str, postings: &[Posting]) {
    if let Err(error) = check_postings_balance(postings) {
        panic!("entry {entry_label}: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> AccountKey {
        AccountKey::Bank { bank: "ICBC".into(), account_number: "1".into() }
    }
    fn deposit() -> AccountKey {
        AccountKey::Deposit { section: "S".into(), bidder: "B".into() }
    }

    #[test]
    fn an_unbalanced_entry_cannot_be_built() {
        let result = JournalEntry::new(
            EntryKind::DepositReceived,
            vec![
                Posting { account: bank(), side: Side::Debit, amount: Fen::from_fen(100) },
                Posting { account: deposit(), side: Side::Credit, amount: Fen::from_fen(99) },
            ],
        );
        assert!(matches!(result, Err(EntryError::Unbalanced { .. })));
    }

    #[test]
    fn zero_and_one_sided_entries_are_refused() {
        assert!(matches!(JournalEntry::transfer(EntryKind::DepositReceived, bank(), deposit(), Fen::ZERO), Err(EntryError::NonPositivePosting { .. })));
        assert!(matches!(JournalEntry::new(EntryKind::DepositReceived, vec![]), Err(EntryError::OneSided)));
    }

    #[test]
    fn postings_read_back_are_checked_one_condition_at_a_time() {
        let debit = |amount| Posting { account: bank(), side: Side::Debit, amount: Fen::from_fen(amount) };
        let credit = |amount| Posting { account: deposit(), side: Side::Credit, amount: Fen::from_fen(amount) };
        assert_eq!(check_postings_balance(&[debit(100), credit(100)]), Ok(()));
        assert!(matches!(check_postings_balance(&[debit(100), credit(99)]), Err(EntryError::Unbalanced { .. })));
        assert_eq!(check_postings_balance(&[debit(100)]), Err(EntryError::OneSided));
        assert_eq!(check_postings_balance(&[credit(100)]), Err(EntryError::OneSided));
        assert!(matches!(check_postings_balance(&[debit(0), credit(0)]), Err(EntryError::NonPositivePosting { .. })));
    }

    #[test]
    #[should_panic(expected = "entry 520100#7: entry does not balance")]
    fn the_assertion_names_the_entry() {
        let postings = [
            Posting { account: bank(), side: Side::Debit, amount: Fen::from_fen(100) },
            Posting { account: deposit(), side: Side::Credit, amount: Fen::from_fen(99) },
        ];
        assert_postings_balance("520100#7", &postings);
    }

    #[test]
    fn a_deposit_grows_both_the_bank_asset_and_the_deposit_liability() {
        let entry = JournalEntry::transfer(EntryKind::DepositReceived, bank(), deposit(), Fen::from_fen(500)).unwrap();
        let deltas = entry.balance_deltas();
        assert_eq!(deltas[&bank()], Fen::from_fen(500));
        assert_eq!(deltas[&deposit()], Fen::from_fen(500));
    }
}
