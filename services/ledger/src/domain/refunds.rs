//! Corrections of failed refunds (second refund to corrected payee details): a bidder submits,
//! an operator verifies, a supervisor approves — and the approver is never the verifier (four
//! eyes). Only a failed refund can be corrected, and only while it is still failed.
//!
//! Also what a refund pays: each paying account gets back what it paid with the interest it
//! earned, unless an approved correction redirects everything to one account.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use jinfu_ledger::interest::{interest_exact_fen, round_half_up, InterestError};
use jinfu_ledger::Fen;
use rust_decimal::Decimal;

/// The refund status a correction may be submitted for.
pub const CORRECTABLE_REFUND_STATUS: &str = "failed";

/// A staff decision on a correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionStep {
    Verify,
    Approve,
}

impl CorrectionStep {
    /// The status the correction must be in for this step.
    pub fn requires(self) -> &'static str {
        match self {
            CorrectionStep::Verify => "submitted",
            CorrectionStep::Approve => "verified",
        }
    }

    /// The status the step moves the correction to.
    pub fn leads_to(self) -> &'static str {
        match self {
            CorrectionStep::Verify => "verified",
            CorrectionStep::Approve => "approved",
        }
    }

    /// Whether the step schedules the refund again (to the corrected account).
    pub fn reschedules_refund(self) -> bool {
        self == CorrectionStep::Approve
    }
}

/// A person (or organisation) acting, as the identity provider identifies them: the `party`
/// claim of a token, trimmed and ASCII case-folded. The identity provider treats `OP-A1` and
/// `op-a1` as one account, so the four-eyes rule must too. Only ASCII letters are folded (no
/// Unicode NFKC without a crate for it): staff ids are ASCII. This is the one place party ids
/// are normalised; compare parties only as `Party`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Party(String);

impl Party {
    pub fn new(text: &str) -> Party {
        Party(text.trim().to_ascii_lowercase())
    }

    /// The normalised id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A correction as it stands when a step is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionState {
    pub status: String,
    /// Who verified it, if anyone.
    pub verified_by: Option<Party>,
    pub refund_status: String,
}

/// Why a step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepRefused {
    #[error("the correction is {current}; it must be {required} first")]
    WrongStatus { current: String, required: &'static str },
    #[error("the approver must not be the verifier")]
    SamePerson,
    #[error("the refund is no longer failed")]
    RefundNotFailed,
}

/// Whether `party` may take `step` on a correction in `state`.
pub fn check_step(step: CorrectionStep, state: &CorrectionState, party: &Party) -> Result<(), StepRefused> {
    if state.status != step.requires() {
        return Err(StepRefused::WrongStatus { current: state.status.clone(), required: step.requires() });
    }
    if step == CorrectionStep::Approve && state.verified_by.as_ref() == Some(party) {
        return Err(StepRefused::SamePerson);
    }
    if step.reschedules_refund() && state.refund_status != CORRECTABLE_REFUND_STATUS {
        return Err(StepRefused::RefundNotFailed);
    }
    Ok(())
}

/// Whether a correction may be submitted for a refund in `refund_status`; the refusal is the
/// sentence the bidder reads.
pub fn may_submit(refund_status: &str) -> Result<(), String> {
    if refund_status == CORRECTABLE_REFUND_STATUS {
        Ok(())
    } else {
        Err(format!("the refund is {refund_status}, not failed"))
    }
}

/// One transfer into a deposit still to be refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub amount: Fen,
    pub payer_account: String,
    pub payer_name: String,
    /// The Beijing date the money was valued (interest runs from it).
    pub value_date: NaiveDate,
}

/// One payment order a refund sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payee_account: String,
    pub payee_name: String,
    pub principal: Fen,
    pub interest: Fen,
}

impl Payment {
    pub fn total(&self) -> Fen {
        self.principal + self.interest
    }
}

/// The payments refunding `transfers` on `refund_date` at the collection account's `rates`
/// (effective-from date, annual rate): one per payee account, in account order, the interest
/// summed exactly and rounded once. `redirect` (payee account, name) replaces every payer.
pub fn plan_payments(
    transfers: &[Transfer],
    rates: &[(NaiveDate, Decimal)],
    refund_date: NaiveDate,
    redirect: Option<&(String, String)>,
) -> Result<Vec<Payment>, InterestError> {
    let mut shares: BTreeMap<String, (String, Fen, Decimal)> = BTreeMap::new();
    for transfer in transfers {
        let exact = interest_exact_fen(transfer.amount, rates, transfer.value_date, refund_date.max(transfer.value_date))?;
        let (payee_account, payee_name) = redirect.cloned().unwrap_or_else(|| (transfer.payer_account.clone(), transfer.payer_name.clone()));
        let share = shares.entry(payee_account).or_insert_with(|| (payee_name, Fen::ZERO, Decimal::ZERO));
        share.1 = share.1 + transfer.amount;
        share.2 += exact;
    }
    shares
        .into_iter()
        .map(|(payee_account, (payee_name, principal, exact))| Ok(Payment { payee_account, payee_name, principal, interest: round_half_up(exact)? }))
        .collect()
}

/// Whether the transfers still to refund account for exactly what the deposit holds; when
/// they do not, the refund waits for an operator.
pub fn transfers_match_deposit(transfers: &[Transfer], held_fen: i64) -> bool {
    let paid: i64 = transfers.iter().map(|transfer| transfer.amount.fen()).sum();
    !transfers.is_empty() && paid == held_fen
}

/// Whether a collection account holding `balance_fen`, of which `reserved_fen` is promised to
/// orders not yet settled, can pay `needed_fen` more.
pub fn can_cover(balance_fen: i64, reserved_fen: i64, needed_fen: i64) -> bool {
    balance_fen - reserved_fen >= needed_fen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: &str, verified_by: Option<&str>, refund_status: &str) -> CorrectionState {
        CorrectionState { status: status.into(), verified_by: verified_by.map(Party::new), refund_status: refund_status.into() }
    }

    fn check_step(step: CorrectionStep, state: &CorrectionState, party: &str) -> Result<(), StepRefused> {
        super::check_step(step, state, &Party::new(party))
    }

    #[test]
    fn a_correction_is_verified_then_approved() {
        assert_eq!(check_step(CorrectionStep::Verify, &state("submitted", None, "failed"), "op-1"), Ok(()));
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("op-1"), "failed"), "sup-1"), Ok(()));
        assert_eq!(CorrectionStep::Verify.leads_to(), CorrectionStep::Approve.requires());
        assert_eq!(CorrectionStep::Approve.leads_to(), "approved");
    }

    #[test]
    fn approval_needs_verification_first() {
        let refused = check_step(CorrectionStep::Approve, &state("submitted", None, "failed"), "sup-1");
        assert_eq!(refused, Err(StepRefused::WrongStatus { current: "submitted".into(), required: "verified" }));
        assert_eq!(refused.map_err(|error| error.to_string()), Err("the correction is submitted; it must be verified first".to_owned()));
        assert!(check_step(CorrectionStep::Verify, &state("verified", Some("op-1"), "failed"), "op-2").is_err(), "verified once");
    }

    #[test]
    fn the_approver_must_not_be_the_verifier() {
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("same"), "failed"), "same"), Err(StepRefused::SamePerson));
    }

    #[test]
    fn the_same_person_in_another_case_or_with_spaces_is_still_the_verifier() {
        assert_eq!(Party::new(" OP-A1 "), Party::new("op-a1"));
        assert_eq!(Party::new("OP-A1").as_str(), "op-a1");
        assert_ne!(Party::new("op-a1"), Party::new("op-a2"));
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("OP-A1"), "failed"), "op-a1"), Err(StepRefused::SamePerson));
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("op-a1"), "failed"), " Op-A1"), Err(StepRefused::SamePerson));
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("op-a1"), "failed"), "sup-1"), Ok(()));
    }

    #[test]
    fn approval_needs_the_refund_still_failed_but_verification_does_not() {
        assert_eq!(check_step(CorrectionStep::Approve, &state("verified", Some("op"), "scheduled"), "sup"), Err(StepRefused::RefundNotFailed));
        assert_eq!(check_step(CorrectionStep::Verify, &state("submitted", None, "scheduled"), "op"), Ok(()));
    }

    #[test]
    fn only_a_failed_refund_takes_a_correction() {
        assert_eq!(may_submit("failed"), Ok(()));
        assert_eq!(may_submit("ordered"), Err("the refund is ordered, not failed".to_owned()));
    }

    fn transfer(fen: i64, account: &str, day: u32) -> Transfer {
        Transfer {
            amount: Fen::from_fen(fen),
            payer_account: account.into(),
            payer_name: format!("name of {account}"),
            value_date: NaiveDate::from_ymd_opt(2026, 1, day).expect("valid"),
        }
    }

    fn yearly(rate: &str) -> Vec<(NaiveDate, Decimal)> {
        vec![(NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid"), rate.parse().expect("valid"))]
    }

    #[test]
    fn each_paying_account_gets_back_what_it_paid() {
        let transfers = [transfer(100_000, "B", 1), transfer(50_000, "A", 1), transfer(25_000, "B", 1)];
        let payments = plan_payments(&transfers, &yearly("0"), NaiveDate::from_ymd_opt(2026, 1, 31).expect("valid"), None).expect("plans");
        let summary: Vec<(&str, i64, i64)> = payments.iter().map(|p| (p.payee_account.as_str(), p.principal.fen(), p.interest.fen())).collect();
        assert_eq!(summary, vec![("A", 50_000, 0), ("B", 125_000, 0)]);
        assert_eq!(payments[1].payee_name, "name of B", "the first transfer names the payee");
    }

    #[test]
    fn interest_accrues_from_the_value_date_and_is_rounded_once_per_payee() {
        let refund_date = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid") + chrono::Duration::days(360);
        let transfers = [transfer(1_000_000, "A", 1)];
        let with_rate = plan_payments(&transfers, &yearly("0.0036"), refund_date, None).expect("plans");
        assert!(with_rate[0].interest.is_positive(), "{:?}", with_rate);
        assert_eq!(with_rate[0].total(), with_rate[0].principal + with_rate[0].interest);
        let without = plan_payments(&transfers, &yearly("0"), refund_date, None).expect("plans");
        assert_eq!(without[0].interest, Fen::ZERO);
    }

    #[test]
    fn a_refund_dated_before_the_value_date_earns_nothing_rather_than_failing() {
        let transfers = [transfer(1_000, "A", 20)];
        let payments = plan_payments(&transfers, &yearly("0.5"), NaiveDate::from_ymd_opt(2026, 1, 10).expect("valid"), None).expect("plans");
        assert_eq!(payments[0].interest, Fen::ZERO);
    }

    #[test]
    fn an_approved_correction_redirects_everything_to_one_account() {
        let transfers = [transfer(100, "A", 1), transfer(200, "B", 1)];
        let redirect = ("C".to_owned(), "corrected".to_owned());
        let payments = plan_payments(&transfers, &yearly("0"), NaiveDate::from_ymd_opt(2026, 1, 2).expect("valid"), Some(&redirect)).expect("plans");
        assert_eq!(payments.len(), 1);
        assert_eq!((payments[0].payee_account.as_str(), payments[0].payee_name.as_str(), payments[0].principal.fen()), ("C", "corrected", 300));
    }

    #[test]
    fn transfers_must_account_for_the_deposit_exactly() {
        assert!(transfers_match_deposit(&[transfer(100, "A", 1), transfer(50, "B", 1)], 150));
        assert!(!transfers_match_deposit(&[transfer(100, "A", 1)], 150));
        assert!(!transfers_match_deposit(&[], 0), "nothing to refund from");
    }

    #[test]
    fn a_collection_account_covers_only_what_is_not_already_promised() {
        assert!(can_cover(1_000, 400, 600));
        assert!(!can_cover(1_000, 400, 601));
        assert!(!can_cover(0, 0, 1));
    }
}
