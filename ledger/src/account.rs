//! Account identities of a centre's chart of accounts (DESIGN.md §3).
//!
//! An account is named by a key such as `deposit:<section>:<bidder>`. Keys are unique within a
//! centre; the centre is carried beside the key, not inside it.

use std::fmt;
use std::str::FromStr;

use crate::entry::Side;

/// The accounting type of an account, which decides on which side its balance grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    Asset,
    Liability,
    Income,
    Expense,
}

impl AccountKind {
    /// The side on which the account's balance increases: debit for assets and expenses,
    /// credit for liabilities and income.
    pub const fn normal_side(self) -> Side {
        match self {
            AccountKind::Asset | AccountKind::Expense => Side::Debit,
            AccountKind::Liability | AccountKind::Income => Side::Credit,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Asset => "asset",
            AccountKind::Liability => "liability",
            AccountKind::Income => "income",
            AccountKind::Expense => "expense",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKey {
    /// The centre's deposit collection account (保证金专户) at one bank.
    Bank {
        bank: String,
        account_number: String,
    },
    /// One bidder's deposit for one tender section.
    Deposit {
        section: String,
        bidder: String,
    },
    /// Money that arrived at a collection account but is not a valid deposit.
    Suspense {
        bank: String,
        account_number: String,
    },
    RefundInTransit,
    InterestExpense,
    InterestIncome,
    Forfeited {
        section: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an account key")]
pub struct AccountKeyError(String);

impl AccountKey {
    pub fn kind(&self) -> AccountKind {
        match self {
            AccountKey::Bank { .. } => AccountKind::Asset,
            AccountKey::Deposit { .. } | AccountKey::Suspense { .. } | AccountKey::RefundInTransit | AccountKey::Forfeited { .. } => AccountKind::Liability,
            AccountKey::InterestExpense => AccountKind::Expense,
            AccountKey::InterestIncome => AccountKind::Income,
        }
    }

    /// Accounts whose balance may never be negative (invariant 3). An asset account may not be
    /// negative either: a bank does not hold negative money for us.
    pub fn must_not_go_negative(&self) -> bool {
        !matches!(self, AccountKey::InterestExpense | AccountKey::InterestIncome)
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountKey::Bank { bank, account_number } => write!(formatter, "bank:{bank}:{account_number}"),
            AccountKey::Deposit { section, bidder } => write!(formatter, "deposit:{section}:{bidder}"),
            AccountKey::Suspense { bank, account_number } => {
                write!(formatter, "suspense:{bank}:{account_number}")
            }
            AccountKey::RefundInTransit => formatter.write_str("refund-in-transit"),
            AccountKey::InterestExpense => formatter.write_str("interest-expense"),
            AccountKey::InterestIncome => formatter.write_str("interest-income"),
            AccountKey::Forfeited { section } => write!(formatter, "forfeited:{section}"),
        }
    }
}

impl FromStr for AccountKey {
    type Err = AccountKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || AccountKeyError(text.to_owned());
        let parts: Vec<&str> = text.split(':').collect();
        let valid_part = |part: &&str| !part.is_empty();
        if !parts.iter().all(valid_part) {
            return Err(error());
        }
        match parts.as_slice() {
            ["bank", bank, number] => Ok(AccountKey::Bank { bank: (*bank).into(), account_number: (*number).into() }),
            ["deposit", section, bidder] => Ok(AccountKey::Deposit { section: (*section).into(), bidder: (*bidder).into() }),
            ["suspense", bank, number] => Ok(AccountKey::Suspense { bank: (*bank).into(), account_number: (*number).into() }),
            ["refund-in-transit"] => Ok(AccountKey::RefundInTransit),
            ["interest-expense"] => Ok(AccountKey::InterestExpense),
            ["interest-income"] => Ok(AccountKey::InterestIncome),
            ["forfeited", section] => Ok(AccountKey::Forfeited { section: (*section).into() }),
            _ => Err(error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_key_round_trips_through_its_text_form() {
        let keys = [
            AccountKey::Bank { bank: "ICBC".into(), account_number: "2402001".into() },
            AccountKey::Deposit { section: "S1".into(), bidder: "91520100MA6DJ0XX1X".into() },
            AccountKey::Suspense { bank: "ICBC".into(), account_number: "2402001".into() },
            AccountKey::RefundInTransit,
            AccountKey::InterestExpense,
            AccountKey::InterestIncome,
            AccountKey::Forfeited { section: "S1".into() },
        ];
        for key in keys {
            assert_eq!(key.to_string().parse::<AccountKey>().unwrap(), key);
        }
        assert!("deposit::x".parse::<AccountKey>().is_err());
        assert!("cash".parse::<AccountKey>().is_err());
    }
}
