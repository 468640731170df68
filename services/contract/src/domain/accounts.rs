//! Who may change a contract's collection account (回款账户), and when: a supplementary agreement
//! (合同账户变更补充协议) changes it; a lender financing the contract locks it to its own account,
//! and while the loan is open nobody else changes it (吉财采购〔2023〕721号; DOMAIN.md, "Loans").

use super::{ContractStatus, Refusal};

/// What is asked of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked<'a> {
    /// Another account, by the supplier or an operator.
    Change,
    /// The lender's account, locked to the loan `lock_ref`.
    Lock { lock_ref: &'a str, same_account: bool },
    /// The loan `lock_ref` is closed.
    Unlock { lock_ref: &'a str },
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    /// Asked again with the same content: nothing changes, the contract is answered as it is.
    AlreadyDone,
}

/// Decides `asked` on a contract of `status` whose account is locked by `locked_by`.
pub fn decide(status: ContractStatus, locked_by: Option<&str>, asked: Asked<'_>) -> Result<Decision, Refusal> {
    match (asked, locked_by) {
        (Asked::Unlock { lock_ref }, Some(holder)) if holder == lock_ref => Ok(Decision::Apply),
        (Asked::Unlock { .. }, None) => Ok(Decision::AlreadyDone),
        (Asked::Unlock { .. }, Some(holder)) => Err(Refusal::NotTheLockHolder { holder: holder.to_owned() }),
        (Asked::Lock { lock_ref, same_account: true }, Some(holder)) if holder == lock_ref => Ok(Decision::AlreadyDone),
        (_, Some(holder)) => Err(Refusal::CollectionAccountLocked { holder: holder.to_owned() }),
        (_, None) if status == ContractStatus::Terminated => Err(Refusal::WrongStatus { status: status.code(), what: "a change of the collection account" }),
        (_, None) => Ok(Decision::Apply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOAN: &str = "loan:L-1";

    #[test]
    fn a_locked_account_is_changed_by_nobody_but_the_holder_who_unlocks_it() {
        let locked = Some(LOAN);
        assert_eq!(decide(ContractStatus::Active, locked, Asked::Change).unwrap_err().code(), "collection_account_locked");
        let other_lender = Asked::Lock { lock_ref: "loan:L-2", same_account: false };
        assert_eq!(decide(ContractStatus::Active, locked, other_lender).unwrap_err().code(), "collection_account_locked");
        assert_eq!(decide(ContractStatus::Active, locked, Asked::Unlock { lock_ref: "loan:L-2" }).unwrap_err().code(), "not_the_lock_holder");
        assert_eq!(decide(ContractStatus::Active, locked, Asked::Unlock { lock_ref: LOAN }), Ok(Decision::Apply));
        assert_eq!(decide(ContractStatus::Active, None, Asked::Change), Ok(Decision::Apply));
    }

    #[test]
    fn repeats_change_nothing_and_a_lock_holder_cannot_move_the_account_under_its_lock() {
        assert_eq!(decide(ContractStatus::Active, Some(LOAN), Asked::Lock { lock_ref: LOAN, same_account: true }), Ok(Decision::AlreadyDone));
        let moved = Asked::Lock { lock_ref: LOAN, same_account: false };
        assert_eq!(decide(ContractStatus::Active, Some(LOAN), moved).unwrap_err().code(), "collection_account_locked");
        assert_eq!(decide(ContractStatus::Active, None, Asked::Unlock { lock_ref: LOAN }), Ok(Decision::AlreadyDone));
    }

    #[test]
    fn a_pending_contract_may_be_locked_a_terminated_one_not() {
        let lock = Asked::Lock { lock_ref: LOAN, same_account: false };
        assert_eq!(decide(ContractStatus::Pending, None, lock), Ok(Decision::Apply));
        assert_eq!(decide(ContractStatus::Terminated, None, lock).unwrap_err().code(), "wrong_status");
    }
}
