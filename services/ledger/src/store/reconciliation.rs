//! Reconciliation reports as stored, and the ingest summary operators watch.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Row};

/// A stored report, for the API and the command line.
#[derive(Debug, Clone)]
pub struct Report {
    pub statement_id: String,
    pub bank: String,
    pub account_number: String,
    pub centre_id: String,
    pub statement_date: NaiveDate,
    pub status: String,
    pub line_count: i32,
    pub credits_fen: i64,
    pub debits_fen: i64,
    pub bank_opening_fen: i64,
    pub bank_closing_fen: i64,
    pub ledger_opening_fen: i64,
    pub ledger_closing_fen: i64,
    pub late_notified: i32,
    pub discrepancies: i32,
    pub first_part_at: DateTime<Utc>,
    pub reconciled_at: DateTime<Utc>,
    pub reconcile_ms: i64,
}

/// One discrepancy of a report: (kind, serial, amount, detail).
pub type ReportLine = (String, Option<String>, Option<i64>, String);

const REPORT_COLUMNS: &str = "statement_id, bank, account_number, centre_id, statement_date, status, line_count, credits_fen, debits_fen,
     bank_opening_fen, bank_closing_fen, ledger_opening_fen, ledger_closing_fen, late_notified, discrepancies, first_part_at,
     reconciled_at, reconcile_ms";

fn report_of(row: &sqlx::postgres::PgRow) -> Report {
    Report {
        statement_id: row.get(0),
        bank: row.get(1),
        account_number: row.get(2),
        centre_id: row.get(3),
        statement_date: row.get(4),
        status: row.get(5),
        line_count: row.get(6),
        credits_fen: row.get(7),
        debits_fen: row.get(8),
        bank_opening_fen: row.get(9),
        bank_closing_fen: row.get(10),
        ledger_opening_fen: row.get(11),
        ledger_closing_fen: row.get(12),
        late_notified: row.get(13),
        discrepancies: row.get(14),
        first_part_at: row.get(15),
        reconciled_at: row.get(16),
        reconcile_ms: row.get(17),
    }
}

/// A centre's reports for statement dates in `[from, to]`, newest first.
pub async fn list_reports(pool: &PgPool, centre_id: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Report>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {REPORT_COLUMNS} FROM reconciliation_reports WHERE centre_id = $1 AND statement_date BETWEEN $2 AND $3
         ORDER BY statement_date DESC, bank, account_number LIMIT 1000"
    ))
    .bind(centre_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(report_of).collect())
}

/// One report with up to `limit` of its discrepancies, in the order they were found.
pub async fn get_report(pool: &PgPool, statement_id: &str, limit: i64) -> Result<Option<(Report, Vec<ReportLine>)>, sqlx::Error> {
    let Some(row) =
        sqlx::query(&format!("SELECT {REPORT_COLUMNS} FROM reconciliation_reports WHERE statement_id = $1")).bind(statement_id).fetch_optional(pool).await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query("SELECT kind, bank_serial, amount_fen, detail FROM reconciliation_discrepancies WHERE statement_id = $1 ORDER BY number LIMIT $2")
        .bind(statement_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|line| (line.get(0), line.get(1), line.get(2), line.get(3)))
        .collect();
    Ok(Some((report_of(&row), lines)))
}

/// What a centre's ingestion produced.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    /// Per notice outcome: (outcome, notices, amount).
    pub outcomes: Vec<(String, i64, i64)>,
    /// (section, payer account, bidders paid for from it), of sections no longer sealed.
    pub collusion_leads: Vec<(String, String, Vec<String>)>,
    pub conflicts: i64,
    /// Per refund status: (status, refunds, amount ordered).
    pub refunds: Vec<(String, i64, i64)>,
}

/// The centre's ingest summary; collusion leads of sections still sealed (no `bids.opened`
/// applied, whatever the schedule says) are left out.
pub async fn ingest_summary(pool: &PgPool, centre_id: &str) -> Result<IngestSummary, sqlx::Error> {
    let outcomes = sqlx::query_as(
        "SELECT outcome, count(*), coalesce(sum(amount_fen), 0)::int8 FROM credit_notices WHERE centre_id = $1 GROUP BY outcome ORDER BY outcome",
    )
    .bind(centre_id)
    .fetch_all(pool)
    .await?;
    let collusion_leads = sqlx::query_as(
        "SELECT c.section_id, c.payer_account, array_agg(l.bidder_uscc ORDER BY l.bidder_uscc)
         FROM collusion_leads c JOIN payer_links l USING (centre_id, section_id, payer_account)
         WHERE c.centre_id = $1
           AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.centre_id = c.centre_id AND s.section_id = c.section_id
                                                     AND s.bids_opened_at IS NULL)
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(centre_id)
    .fetch_all(pool)
    .await?;
    let conflicts = sqlx::query_scalar("SELECT count(*) FROM notice_conflicts WHERE centre_id = $1").bind(centre_id).fetch_one(pool).await?;
    let refunds = sqlx::query_as(
        "SELECT r.status, count(DISTINCT r.refund_id), coalesce(sum(o.principal_fen + o.interest_fen), 0)::int8
         FROM refunds r LEFT JOIN payment_orders o ON o.refund_id = r.refund_id
         WHERE r.centre_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(centre_id)
    .fetch_all(pool)
    .await?;
    Ok(IngestSummary { outcomes, collusion_leads, conflicts, refunds })
}
