//! Invoices from receipt to payment: the objection window (the undisputed part stays payable,
//! 条例 art. 15), the payment due date — the earliest of the contract's term, the law's (SMEs:
//! 条例 art. 9 and 10) and the centre's rule, never before the invoice was received — and the
//! overdue interest accrued (条例 art. 17, `jinfu_ledger::overdue`).

use chrono::NaiveDate;
use jinfu_ledger::calendar::{Calendar, CalendarError};
use jinfu_ledger::overdue::{overdue_interest, LprHistory, OverdueError, OverdueInterest, OverdueRate};
use jinfu_ledger::Fen;

use super::contracts::MilestoneTerm;
use super::{InvoiceStatus, MilestoneKind, Refusal};

/// What a milestone's payment clock runs from, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    /// The day the contract was signed (both signatures), if it was.
    pub signed_on: Option<NaiveDate>,
    /// The supplier's request for acceptance of the milestone, if made.
    pub requested_on: Option<NaiveDate>,
    /// The last day the purchaser had to record the acceptance.
    pub organise_by: Option<NaiveDate>,
    /// The day a passing acceptance (or confirmed settlement) was recorded.
    pub passed_on: Option<NaiveDate>,
    /// The acceptance was recorded as failed.
    pub failed: bool,
}

impl Trigger {
    /// The day the payment clock runs from, on `today`; `None` while it has not started.
    /// Acceptance and settlement: the day it passed, or — when the purchaser did not record it
    /// within its period — the end of that period (条例 art. 10: "拖延检验或者验收的，付款期限自
    /// 约定的检验或者验收期限届满之日起算").
    pub fn clock_from(&self, kind: MilestoneKind, today: NaiveDate) -> Option<NaiveDate> {
        match kind {
            MilestoneKind::Prepayment => self.signed_on,
            MilestoneKind::Delivery => self.requested_on,
            MilestoneKind::Acceptance | MilestoneKind::Settlement => {
                let organise_by = self.organise_by?;
                match self.passed_on {
                    Some(passed) => Some(passed.min(organise_by)),
                    None if self.failed => None,
                    None => (today > organise_by).then_some(organise_by),
                }
            }
        }
    }
}

/// Which rule set a due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueBy {
    Contract,
    Law,
    Centre,
}

impl DueBy {
    pub fn code(self) -> &'static str {
        match self {
            DueBy::Contract => "contract",
            DueBy::Law => "law",
            DueBy::Centre => "centre",
        }
    }
}

/// The facts a due date is computed from.
#[derive(Debug, Clone, Copy)]
pub struct DueFacts {
    pub term: MilestoneTerm,
    pub trigger: Trigger,
    /// The supplier is an SME (条例 art. 3, at signing).
    pub sme: bool,
    /// The contract's payment term from delivery or acceptance, in days.
    pub payment_days: u32,
    pub received_on: NaiveDate,
    /// The centre's rule, working days from receipt; 0: none.
    pub centre_working_days: u32,
}

/// The invoice's due date on `today` and the rule that set it; `None` while its milestone's
/// clock has not started. The earliest of: the contract's term from the trigger; for an SME and
/// a milestone after delivery, the law's `payment_days` calendar days from the trigger; the
/// centre's working days from receipt. Never before the day the invoice was received.
pub fn due_date(facts: &DueFacts, calendar: &Calendar, today: NaiveDate) -> Result<Option<(NaiveDate, DueBy)>, CalendarError> {
    let Some(from) = facts.trigger.clock_from(facts.term.kind, today) else { return Ok(None) };
    let contract = if facts.term.working_days {
        calendar.add_working_days(from, facts.term.period_days)?
    } else {
        calendar.add_calendar_days(from, facts.term.period_days)?
    };
    let mut due = (contract, DueBy::Contract);
    if facts.sme && facts.term.kind != MilestoneKind::Prepayment {
        let law = calendar.add_calendar_days(from, facts.payment_days)?;
        if law < due.0 {
            due = (law, DueBy::Law);
        }
    }
    if facts.centre_working_days > 0 {
        let centre = calendar.add_working_days(facts.received_on, facts.centre_working_days)?;
        if centre < due.0 {
            due = (centre, DueBy::Centre);
        }
    }
    Ok(Some((due.0.max(facts.received_on), due.1)))
}

/// An invoice's amounts and state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub with_tax: Fen,
    pub disputed: Fen,
    pub paid: Fen,
}

impl Amounts {
    /// What the purchaser must pay: everything not disputed.
    pub fn payable(&self) -> Fen {
        Fen::from_fen(self.with_tax.fen() - self.disputed.fen())
    }

    /// What is payable and not paid yet.
    pub fn outstanding(&self) -> Fen {
        Fen::from_fen((self.payable().fen() - self.paid.fen()).max(0))
    }
}

/// An objection of `disputed` fen on `today` to an invoice in `status` whose window ends on
/// `object_by` (`None`: not dated yet, the window is open): the new state (the whole invoice:
/// under query; a part: conditionally accepted).
pub fn object(status: InvoiceStatus, amounts: Amounts, disputed: Fen, object_by: Option<NaiveDate>, today: NaiveDate) -> Result<InvoiceStatus, Refusal> {
    if status != InvoiceStatus::Received {
        return Err(Refusal::InvoiceNotOpen { status: status.code(), what: "an objection" });
    }
    if let Some(object_by) = object_by.filter(|object_by| today > *object_by) {
        return Err(Refusal::ObjectionWindowClosed { object_by });
    }
    if !disputed.is_positive() || disputed > amounts.with_tax || disputed.fen() > amounts.with_tax.fen() - amounts.paid.fen() {
        return Err(Refusal::Overpaid { invoice_no: String::new(), payable_fen: amounts.with_tax.fen() - amounts.paid.fen(), amount_fen: disputed.fen() });
    }
    Ok(if disputed == amounts.with_tax { InvoiceStatus::UnderQuery } else { InvoiceStatus::ConditionallyAccepted })
}

/// Whether a still-`received` invoice is deemed received (accepted) on `today`: its window
/// closed without an objection.
pub fn deemed_accepted(status: InvoiceStatus, object_by: Option<NaiveDate>, today: NaiveDate) -> bool {
    status == InvoiceStatus::Received && object_by.is_some_and(|object_by| today > object_by)
}

/// The state after `amounts` changed by a payment: paid once nothing payable is outstanding.
pub fn after_payment(status: InvoiceStatus, amounts: Amounts) -> InvoiceStatus {
    if amounts.outstanding() == Fen::ZERO && amounts.payable().is_positive() {
        InvoiceStatus::Paid
    } else {
        status
    }
}

/// Checks an allocation of `amount` to an invoice: positive and at most what is outstanding.
pub fn may_allocate(invoice_no: &str, amounts: Amounts, amount: Fen) -> Result<(), Refusal> {
    if !amount.is_positive() || amount > amounts.outstanding() {
        return Err(Refusal::Overpaid { invoice_no: invoice_no.to_owned(), payable_fen: amounts.outstanding().fen(), amount_fen: amount.fen() });
    }
    Ok(())
}

/// The overdue interest on an invoice through `until` (inclusive): on the payable amount, from the
/// day after `due_on`, less what was paid on each day (`payments`: value date and amount).
pub fn interest(
    amounts: Amounts,
    due_on: NaiveDate,
    payments: &[(NaiveDate, Fen)],
    until: NaiveDate,
    rate: &OverdueRate,
    lpr: &LprHistory,
) -> Result<OverdueInterest, OverdueError> {
    overdue_interest(amounts.payable(), due_on, payments, until, rate, lpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn facts(kind: MilestoneKind, trigger: Trigger) -> DueFacts {
        DueFacts {
            term: MilestoneTerm { kind, percent_bp: 10_000, period_days: 45, working_days: false },
            trigger,
            sme: true,
            payment_days: 30,
            received_on: day("2026-03-02"),
            centre_working_days: 0,
        }
    }

    const NONE: Trigger = Trigger { signed_on: None, requested_on: None, organise_by: None, passed_on: None, failed: false };

    #[test]
    fn the_earliest_rule_wins_and_never_before_receipt() {
        let calendar = Calendar::china();
        let today = day("2026-03-20");
        // Delivery on Monday 2 March: the contract's 45 days is 16 April, the law's 30 is 1 April.
        let delivered = Trigger { requested_on: Some(day("2026-03-02")), ..NONE };
        assert_eq!(due_date(&facts(MilestoneKind::Delivery, delivered), &calendar, today), Ok(Some((day("2026-04-01"), DueBy::Law))));
        // Chongqing's 10 working days from receipt on 2 March: 16 March.
        let centre = DueFacts { centre_working_days: 10, ..facts(MilestoneKind::Delivery, delivered) };
        assert_eq!(due_date(&centre, &calendar, today), Ok(Some((day("2026-03-16"), DueBy::Centre))));
        // A large supplier: only the contract.
        let large = DueFacts { sme: false, ..facts(MilestoneKind::Delivery, delivered) };
        assert_eq!(due_date(&large, &calendar, today), Ok(Some((day("2026-04-16"), DueBy::Contract))));
        // Prepayment: the law's delivery term does not apply; received after the term ends: due on receipt.
        let prepay = DueFacts { received_on: day("2026-05-06"), ..facts(MilestoneKind::Prepayment, Trigger { signed_on: Some(day("2026-03-02")), ..NONE }) };
        assert_eq!(due_date(&prepay, &calendar, today), Ok(Some((day("2026-05-06"), DueBy::Contract))));
    }

    #[test]
    fn a_late_acceptance_starts_the_clock_at_the_end_of_its_period() {
        let calendar = Calendar::china();
        let asked = Trigger { requested_on: Some(day("2026-03-02")), organise_by: Some(day("2026-03-03")), ..NONE };
        let kind = MilestoneKind::Acceptance;
        // Before the period ends and nothing recorded: not started.
        assert_eq!(asked.clock_from(kind, day("2026-03-03")), None);
        // The period passed without a result: from its end (条例 art. 10).
        assert_eq!(asked.clock_from(kind, day("2026-03-04")), Some(day("2026-03-03")));
        // Recorded late, on 10 March: still from 3 March.
        assert_eq!(Trigger { passed_on: Some(day("2026-03-10")), ..asked }.clock_from(kind, day("2026-03-20")), Some(day("2026-03-03")));
        // Recorded in time: from the result.
        assert_eq!(Trigger { passed_on: Some(day("2026-03-02")), ..asked }.clock_from(kind, day("2026-03-20")), Some(day("2026-03-02")));
        // Failed: no clock.
        assert_eq!(Trigger { failed: true, ..asked }.clock_from(kind, day("2026-03-20")), None);
        let due = due_date(&facts(kind, asked), &calendar, day("2026-03-20"));
        // 30 days from 3 March: 2 April.
        assert_eq!(due, Ok(Some((day("2026-04-02"), DueBy::Law))));
    }

    #[test]
    fn objections_partial_or_whole_within_the_window() {
        let amounts = Amounts { with_tax: Fen::from_fen(10_000), disputed: Fen::ZERO, paid: Fen::ZERO };
        let window = Some(day("2026-03-09"));
        assert_eq!(object(InvoiceStatus::Received, amounts, Fen::from_fen(2_500), window, day("2026-03-09")), Ok(InvoiceStatus::ConditionallyAccepted));
        assert_eq!(object(InvoiceStatus::Received, amounts, Fen::from_fen(10_000), window, day("2026-03-09")), Ok(InvoiceStatus::UnderQuery));
        assert_eq!(object(InvoiceStatus::Received, amounts, Fen::from_fen(1), window, day("2026-03-10")).unwrap_err().code(), "objection_window_closed");
        assert_eq!(object(InvoiceStatus::Accepted, amounts, Fen::from_fen(1), window, day("2026-03-09")).unwrap_err().code(), "invoice_not_open");
        assert!(
            deemed_accepted(InvoiceStatus::Received, window, day("2026-03-10"))
                && !deemed_accepted(InvoiceStatus::Received, window, day("2026-03-09"))
                && !deemed_accepted(InvoiceStatus::Received, None, day("2027-03-10"))
        );
        let disputed = Amounts { disputed: Fen::from_fen(2_500), ..amounts };
        assert_eq!(disputed.payable(), Fen::from_fen(7_500));
        assert_eq!(may_allocate("1", disputed, Fen::from_fen(7_501)).unwrap_err().code(), "overpaid");
        let paid = Amounts { paid: Fen::from_fen(7_500), ..disputed };
        assert_eq!(after_payment(InvoiceStatus::ConditionallyAccepted, paid), InvoiceStatus::Paid);
    }
}
