//! Prometheus metrics: every service serves `/metrics` over HTTP on its own port (default
//! `127.0.0.1:9090`; `0.0.0.0:9090` in Kubernetes). The names below are the platform's metric
//! vocabulary; alerts (charts/jinfu, PrometheusRule) and the runbook refer to them, so a name is
//! changed only together with both.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde::Deserialize;

/// Records behind the newest record of a partition, per consumer group (gauge; labels `group`,
/// `topic`, `partition`). For the ledger, measured against the offsets stored in PostgreSQL.
pub const CONSUMER_LAG: &str = "jinfu_kafka_consumer_lag";
/// Records sent to a dead-letter topic (counter; labels `topic` — the original topic —, `reason`).
pub const DLQ_MESSAGES: &str = "jinfu_dlq_messages_total";
/// Partitions a consumer found stalled (label `topic`): the broker's high watermark is ahead,
/// nothing is buffered, and the fetch position has not moved for `consumer::STALL_AFTER` — a
/// record the client cannot fetch. Each stalled record is then dead-lettered as `unfetchable`.
pub const CONSUMER_STALLS: &str = "jinfu_consumer_stalls_total";
/// Errors librdkafka reports on a consumer (label `code`), e.g. a response over
/// `receive.message.max.bytes`.
pub const CONSUMER_ERRORS: &str = "jinfu_consumer_errors_total";
/// Bank credit notices handled, by outcome (counter; label `outcome`: the matching outcome code
/// a notice was posted with — see docs/ledger.md —, or `duplicate`, `conflict`, `dead_letter`).
pub const NOTICES: &str = "jinfu_notices_total";
/// Records per applied credit-notice batch (histogram).
pub const INGEST_BATCH_SIZE: &str = "jinfu_ingest_batch_size";
/// Wall time of one credit-notice batch, from the first record to its commit (histogram, seconds).
pub const INGEST_BATCH_DURATION: &str = "jinfu_ingest_batch_duration_seconds";
/// Open suspense items (gauge; label `centre`).
pub const SUSPENSE_OPEN_ITEMS: &str = "jinfu_suspense_open_items";
/// Refunds whose due date has passed and that are not confirmed (gauge; label `centre`).
pub const REFUNDS_PAST_DUE: &str = "jinfu_refunds_past_due";
/// Discrepancies found by daily statement reconciliation (counter; labels `centre`, `kind`).
pub const STATEMENT_DISCREPANCIES: &str = "jinfu_statement_discrepancies_total";
/// gRPC calls served (counter; labels `service`, `method`, `code` — the gRPC status name).
pub const GRPC_REQUESTS: &str = "jinfu_grpc_requests_total";
/// gRPC call latency (histogram, seconds; labels `service`, `method`).
pub const GRPC_REQUEST_DURATION: &str = "jinfu_grpc_request_duration_seconds";
/// Outbox rows parked because they can never be published (counter; labels `topic`, `reason`:
/// the park code, e.g. `too_large`). Listed by `<service> outbox-parked`.
pub const OUTBOX_PARKED: &str = "jinfu_outbox_parked_total";
/// Supervised tasks that ended while they should have run (counter; label `task`, e.g.
/// `trading-event consumer`). Each failure also stops the process: see `supervisor`.
pub const TASK_FAILURES: &str = "jinfu_task_failures_total";
/// TradingCentre reconciliations by the operator (counter; label `result`: `ok` or an error kind).
pub const OPERATOR_RECONCILIATIONS: &str = "jinfu_operator_reconciliations_total";
/// Days from today (Beijing date) to the last day the ledger's working-day calendar covers
/// without a gap — the seed years plus the years loaded with `LoadCalendarYear` (gauge, no
/// labels; 0 on the last covered day, -1 when today's year has no data). Refund due dates past
/// that day cannot be computed: their refunds wait as `pending_calendar`. Alert
/// `JinfuCalendarRunningOut` fires under 60 (docs/runbook.md#calendar-running-out).
pub const CALENDAR_DAYS_LEFT: &str = "jinfu_calendar_days_left";
/// Counter, label `clock` (`signing`, `publication`, `filing`, `acceptance`): contract clocks
/// found breached (not done by their last day), each counted once when its event is published.
pub const CONTRACT_DEADLINE_BREACHES: &str = "jinfu_contract_deadline_breaches_total";
/// Gauge: invoices past their due date with an amount still payable, as of the last sweep.
pub const CONTRACT_OVERDUE_INVOICES: &str = "jinfu_contract_overdue_invoices";
/// Gauge: fen past due and unpaid on those invoices, as of the last sweep.
pub const CONTRACT_OVERDUE_FEN: &str = "jinfu_contract_overdue_fen";
/// Counter, label `type` (the `loan.events` type: `loan.applied`, `loan.disbursed`,
/// `loan.repaid`, `loan.defaulted`, ...): events the loans service wrote to its outbox.
pub const LOANS_EVENTS: &str = "jinfu_loans_events_total";
/// Gauge: proposals to the credit service (defaults, misconduct) not delivered yet; those that
/// failed every attempt stay counted until a human acts (runbook, "JinfuLoanProposalsStuck").
pub const LOANS_PROPOSALS_UNDELIVERED: &str = "jinfu_loans_proposals_undelivered";
/// Counter, label `reason`: sweeper rounds or calls to the contract or credit service that failed.
pub const LOANS_SWEEP_ERRORS: &str = "jinfu_loans_sweep_errors_total";
/// Counter, label `channel` (`email`, `sms`, `webhook`, `inbox`): notification deliveries the
/// channel accepted (an inbox message counts when recorded).
pub const NOTIFICATIONS_SENT: &str = "jinfu_notifications_sent_total";
/// Counter, labels `channel`, `reason` (the failure's code, e.g. `smtp_refused`,
/// `gateway_error`, `webhook_status`): deliveries that ended dead-lettered.
pub const NOTIFICATIONS_FAILED: &str = "jinfu_notifications_failed_total";
/// Counter, labels `channel`, `reason`: attempts that failed and will be retried.
pub const NOTIFICATIONS_RETRIED: &str = "jinfu_notifications_retried_total";
/// Counter: deliveries not recorded because the same (event, recipient, channel) was recorded
/// before (a redelivered event).
pub const NOTIFICATIONS_DUPLICATES: &str = "jinfu_notifications_duplicates_total";
/// Gauge, label `channel`: deliveries waiting to be sent (pending or sending), as of the last
/// dispatcher round.
pub const NOTIFICATION_BACKLOG: &str = "jinfu_notification_backlog";
/// Gauge: short deposits whose deadline reminder is not yet due or sent.
pub const NOTIFICATION_REMINDERS_WAITING: &str = "jinfu_notification_reminders_waiting";

#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// `host:port` of the `/metrics` HTTP listener; empty disables it.
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { listen: default_listen() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9090".into()
}

/// Installs the global recorder and starts the `/metrics` listener. Call once per process, from
/// inside the Tokio runtime; tests that build services in-process do not call it (recording then
/// goes nowhere, at no cost).
pub fn install(settings: &MetricsSettings) -> anyhow::Result<()> {
    if settings.listen.trim().is_empty() {
        return Ok(());
    }
    let address: SocketAddr = settings.listen.parse().map_err(|error| anyhow::anyhow!("metrics.listen {:?} is not host:port: {error}", settings.listen))?;
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])?
        .set_buckets_for_metric(Matcher::Full(INGEST_BATCH_SIZE.into()), &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0])?
        .install()
        .map_err(|error| anyhow::anyhow!("cannot serve metrics on {address}: {error}"))?;
    Ok(())
}
