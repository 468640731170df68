//! Facts gathered from the store for the domain's decisions that span aggregates: an invoice's
//! due date and overdue interest need its contract, milestone, acceptance and centre's rules.
//! Used by the API, the clock sweeper and the annual report alike, so they agree.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use jinfu_ledger::calendar::{Calendar, CalendarError};
use jinfu_ledger::overdue::{LprHistory, OverdueInterest};
use sqlx::PgPool;

use crate::domain::clocks::ClockFacts;
use crate::domain::contracts::Milestone;
use crate::domain::invoices::{self, DueBy, DueFacts, Trigger};
use crate::domain::rules::CentreRules;
use crate::domain::Scale;
use crate::store::contracts::{self as contract_store, AcceptanceRow, ContractRow};
use crate::store::invoices::{self as invoice_store, InvoiceRow};
use crate::store::rules;

/// A contract with what its invoices' clocks need.
pub struct ContractFacts {
    pub contract: ContractRow,
    pub milestones: Vec<Milestone>,
    pub acceptances: Vec<AcceptanceRow>,
    pub rules: CentreRules,
}

impl ContractFacts {
    pub async fn load(pool: &PgPool, contract: ContractRow) -> anyhow::Result<ContractFacts> {
        let milestones = contract_store::milestones(pool, &contract.centre_id, &contract.contract_id).await?;
        let acceptances = contract_store::acceptances(pool, &contract.centre_id, &contract.contract_id).await?;
        let rules = rules::centre_rules(pool, &contract.centre_id).await?;
        Ok(ContractFacts { contract, milestones, acceptances, rules })
    }

    /// What starts milestone `sequence`'s payment clock.
    pub fn trigger(&self, sequence: u32) -> Trigger {
        let acceptance = self.acceptances.iter().find(|row| u32::try_from(row.milestone).ok() == Some(sequence));
        let passed = acceptance.and_then(|row| if row.passed == Some(true) { row.recorded_at } else { None });
        Trigger {
            signed_on: self.contract.signed_at.map(jinfu_ledger::beijing::date),
            requested_on: acceptance.map(|row| jinfu_ledger::beijing::date(row.requested_at)),
            organise_by: acceptance.and_then(|row| row.organise_by),
            passed_on: passed.map(jinfu_ledger::beijing::date),
            failed: acceptance.is_some_and(|row| row.passed == Some(false)),
        }
    }

    /// The invoice's due date on `today`.
    pub fn due(&self, invoice: &InvoiceRow, calendar: &Calendar, today: NaiveDate) -> Result<Option<(NaiveDate, DueBy)>, CalendarError> {
        let sequence = u32::try_from(invoice.milestone).unwrap_or(0);
        let Some(milestone) = self.milestones.iter().find(|milestone| milestone.sequence == sequence) else { return Ok(None) };
        let facts = DueFacts {
            term: milestone.term,
            trigger: self.trigger(sequence),
            sme: Scale::parse(&self.contract.supplier_scale).is_some_and(Scale::is_sme),
            payment_days: u32::try_from(self.contract.payment_days).unwrap_or(0),
            received_on: jinfu_ledger::beijing::date(invoice.received_at),
            centre_working_days: self.rules.invoice_payment_working_days,
        };
        invoices::due_date(&facts, calendar, today)
    }
}

/// Contracts' facts and centres' rules read once per pass over many rows (a sweep round, a
/// report), instead of once per row.
#[derive(Default)]
pub struct FactsCache {
    contracts: BTreeMap<(String, String), Option<ContractFacts>>,
    rules: BTreeMap<String, CentreRules>,
}

impl FactsCache {
    /// The contract's facts, `None` when there is no such contract.
    pub async fn contract(&mut self, pool: &PgPool, centre_id: &str, contract_id: &str) -> anyhow::Result<Option<&ContractFacts>> {
        let key = (centre_id.to_owned(), contract_id.to_owned());
        if !self.contracts.contains_key(&key) {
            let facts = match contract_store::get(pool, centre_id, contract_id).await? {
                Some(contract) => Some(ContractFacts::load(pool, contract).await?),
                None => None,
            };
            self.contracts.insert(key.clone(), facts);
        }
        Ok(self.contracts.get(&key).and_then(Option::as_ref))
    }

    /// The centre's clocks.
    pub async fn rules(&mut self, pool: &PgPool, centre_id: &str) -> anyhow::Result<CentreRules> {
        if let Some(rules) = self.rules.get(centre_id) {
            return Ok(*rules);
        }
        let rules = rules::centre_rules(pool, centre_id).await?;
        self.rules.insert(centre_id.to_owned(), rules);
        Ok(rules)
    }
}

/// An invoice with its due date and the interest accrued through `until`.
pub struct InvoiceFacts {
    pub invoice: InvoiceRow,
    pub due: Option<(NaiveDate, DueBy)>,
    pub interest: Option<OverdueInterest>,
    /// The due date needs a year the calendar has no data for yet (it is then unknown).
    pub calendar_missing: Option<i32>,
    /// What was paid on it with a value date through `until`.
    pub paid_by_then: jinfu_ledger::Fen,
}

/// The invoice's due date and its overdue interest through `until` (inclusive).
pub async fn invoice_facts(
    pool: &PgPool,
    contract: &ContractFacts,
    invoice: InvoiceRow,
    calendar: &Calendar,
    lpr: &LprHistory,
    until: NaiveDate,
) -> anyhow::Result<InvoiceFacts> {
    let (due, calendar_missing) = match contract.due(&invoice, calendar, until) {
        Ok(due) => (due, None),
        Err(CalendarError::NoDataForYear(year)) => (None, Some(year)),
        Err(other) => return Err(other.into()),
    };
    let sme = Scale::parse(&contract.contract.supplier_scale).is_some_and(Scale::is_sme);
    let agreed = contract.contract.rate_in_force().kind != crate::domain::RateKind::Statutory;
    let payments: Vec<_> =
        invoice_store::payments_of(pool, &invoice.centre_id, &invoice.invoice_no).await?.into_iter().filter(|(day, _)| *day <= until).collect();
    let paid_by_then = jinfu_ledger::Fen::from_fen(payments.iter().map(|(_, fen)| fen.fen()).sum());
    let interest = match due {
        // 条例 art. 17 protects SMEs; a large supplier is owed interest only at a rate it agreed.
        Some(_) if !sme && !agreed => None,
        Some((due_on, _)) => {
            let rate = contract.contract.rate_in_force().overdue_rate();
            Some(invoices::interest(invoice.amounts(), due_on, &payments, until, &rate, lpr)?)
        }
        None => None,
    };
    Ok(InvoiceFacts { invoice, due, interest, calendar_missing, paid_by_then })
}

/// The facts of a contract's clocks.
pub fn clock_facts(contract: &ContractRow, acceptances: &[AcceptanceRow]) -> ClockFacts {
    ClockFacts {
        sign_by: contract.sign_by,
        purchaser_signed_at: contract.purchaser_signed_at,
        supplier_signed_at: contract.supplier_signed_at,
        signed_at: contract.signed_at,
        publish_by: contract.publish_by,
        published_at: contract.published_at,
        file_by: contract.file_by,
        filed_at: contract.filed_at,
        acceptances: acceptances.iter().map(|row| (u32::try_from(row.milestone).unwrap_or(0), row.organise_by, row.recorded_at)).collect(),
    }
}
