//! The annual report of overdue payments to SMEs (条例 art. 18: by 31 March, the number and
//! amount of the previous year's contracts with payments overdue and unpaid): per purchaser of a
//! centre, the SME contracts with an invoice past its due date and not fully paid at the end of
//! the year, what was unpaid then and the interest accrued by then. Shared by the gRPC API and
//! the `overdue-report` command.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use jinfu_ledger::calendar::Calendar;
use sqlx::PgPool;

use crate::domain::Scale;
use crate::facts::{invoice_facts, FactsCache};
use crate::store::{invoices, rules};

/// One purchaser's line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverdueRow {
    pub purchaser_uscc: String,
    pub purchaser_name: String,
    pub contracts: u32,
    pub invoices: u32,
    pub overdue_unpaid_fen: i64,
    pub overdue_interest_fen: i64,
}

/// The report for `year` of `centre_id` as of its last day, or of `today` while the year runs (one
/// purchaser's line only, when `purchaser` is set).
pub async fn overdue_report(
    pool: &PgPool,
    calendar: &Calendar,
    centre_id: &str,
    year: i32,
    purchaser: Option<&str>,
    today: NaiveDate,
) -> anyhow::Result<Vec<OverdueRow>> {
    // The end of the year, or today for the year still running.
    let last_day = NaiveDate::from_ymd_opt(year, 12, 31).ok_or_else(|| anyhow::anyhow!("no such year {year}"))?.min(today);
    let year_end = jinfu_ledger::beijing::start_of(last_day + chrono::Duration::days(1));
    let lpr = rules::lpr_history(pool).await?;
    let mut rows: BTreeMap<String, (OverdueRow, BTreeSet<String>)> = BTreeMap::new();
    let mut cache = FactsCache::default();
    for invoice in invoices::of_centre_before(pool, centre_id, year_end).await? {
        let Some(facts) = cache.contract(pool, centre_id, &invoice.contract_id).await? else { continue };
        let contract = &facts.contract;
        if purchaser.is_some_and(|purchaser| purchaser != contract.purchaser_uscc) || !Scale::parse(&contract.supplier_scale).is_some_and(Scale::is_sme) {
            continue;
        }
        let invoice_facts = invoice_facts(pool, facts, invoice, calendar, &lpr, last_day).await?;
        let unpaid = invoice_facts.invoice.amounts().payable().fen() - invoice_facts.paid_by_then.fen();
        let Some((due_on, _)) = invoice_facts.due else { continue };
        if due_on >= last_day || unpaid <= 0 {
            continue;
        }
        let (row, contracts) = rows.entry(contract.purchaser_uscc.clone()).or_insert_with(|| {
            (
                OverdueRow { purchaser_uscc: contract.purchaser_uscc.clone(), purchaser_name: contract.purchaser_name.clone(), ..OverdueRow::default() },
                BTreeSet::new(),
            )
        });
        contracts.insert(contract.contract_id.clone());
        row.invoices += 1;
        row.overdue_unpaid_fen += unpaid;
        row.overdue_interest_fen += invoice_facts.interest.map_or(0, |interest| interest.fen.fen());
    }
    Ok(rows
        .into_values()
        .map(|(mut row, contracts)| {
            row.contracts = u32::try_from(contracts.len()).unwrap_or(u32::MAX);
            row
        })
        .collect())
}
