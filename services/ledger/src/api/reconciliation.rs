//! Reconciliation reports and the ingest summary.

use jinfu_platform::auth::Caller;
use jinfu_platform::fields::{printable, timestamp};
use jinfu_proto::ledger::v1 as pb;
use tonic::{Request, Response, Status};

use super::{database, date_or, page, LedgerApi, Reply, STAFF};
use crate::store::reconciliation::{self as store, Report, ReportLine};

/// Days a report list covers when the caller gives no start date.
const REPORT_WINDOW_DAYS: i64 = 31;

pub(super) async fn list_reconciliation_reports(
    api: &LedgerApi,
    request: Request<pb::ListReconciliationReportsRequest>,
) -> Reply<pb::ListReconciliationReportsResponse> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    let today = jinfu_ledger::beijing::date(api.clock.now());
    let to = date_or("to_date", &body.to_date, today)?;
    let from = date_or("from_date", &body.from_date, to - chrono::Duration::days(REPORT_WINDOW_DAYS))?;
    let reports = store::list_reports(&api.pool, &body.centre_id, from, to).await.map_err(database)?;
    Ok(Response::new(pb::ListReconciliationReportsResponse { reports: reports.into_iter().map(|report| report_message(report, Vec::new())).collect() }))
}

pub(super) async fn get_reconciliation_report(api: &LedgerApi, request: Request<pb::GetReconciliationReportRequest>) -> Reply<pb::ReconciliationReport> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    let limit = page(body.limit, 1000, 100_000);
    printable("statement_id", &body.statement_id)?;
    match store::get_report(&api.pool, &body.statement_id, limit).await.map_err(database)? {
        Some((report, lines)) if report.centre_id == body.centre_id => Ok(Response::new(report_message(report, lines))),
        _ => Err(Status::not_found(format!("centre {} has no reconciliation report for statement {:?}", body.centre_id, body.statement_id))),
    }
}

pub(super) async fn get_ingest_summary(api: &LedgerApi, request: Request<pb::GetIngestSummaryRequest>) -> Reply<pb::IngestSummary> {
    let caller = Caller::of(&request)?;
    let body = request.into_inner();
    caller.authorize(STAFF, &body.centre_id)?;
    let summary = store::ingest_summary(&api.pool, &body.centre_id).await.map_err(database)?;
    let count = |(outcome, notices, amount_fen): (String, i64, i64)| pb::OutcomeCount { outcome, notices, amount_fen };
    Ok(Response::new(pb::IngestSummary {
        outcomes: summary.outcomes.into_iter().map(count).collect(),
        collusion_leads: summary
            .collusion_leads
            .into_iter()
            .map(|(section_id, payer_account, bidder_usccs)| pb::CollusionLead { section_id, payer_account, bidder_usccs })
            .collect(),
        conflicts: summary.conflicts,
        refunds: summary.refunds.into_iter().map(count).collect(),
    }))
}

fn report_message(report: Report, lines: Vec<ReportLine>) -> pb::ReconciliationReport {
    pb::ReconciliationReport {
        statement_id: report.statement_id,
        bank: report.bank,
        account_number: report.account_number,
        centre_id: report.centre_id,
        statement_date: report.statement_date.to_string(),
        status: report.status,
        line_count: report.line_count,
        credits_fen: report.credits_fen,
        debits_fen: report.debits_fen,
        bank_opening_fen: report.bank_opening_fen,
        bank_closing_fen: report.bank_closing_fen,
        ledger_opening_fen: report.ledger_opening_fen,
        ledger_closing_fen: report.ledger_closing_fen,
        late_notified: report.late_notified,
        discrepancy_count: report.discrepancies,
        first_part_at: Some(timestamp(report.first_part_at)),
        reconciled_at: Some(timestamp(report.reconciled_at)),
        reconcile_ms: report.reconcile_ms,
        discrepancies: lines
            .into_iter()
            .map(|(kind, serial, amount, detail)| pb::Discrepancy { kind, bank_serial: serial.unwrap_or_default(), amount_fen: amount.unwrap_or(0), detail })
            .collect(),
    }
}
