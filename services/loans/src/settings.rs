//! The loans service's configuration: defaults → `--config FILE` (TOML) → `JINFU_…`
//! environment variables.

pub use jinfu_platform::auth::AuthSettings;
use jinfu_platform::db::DatabaseSettings;
pub use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::metrics::MetricsSettings;
pub use jinfu_platform::signing::{SigningSettings, TrustedPublishers};
use jinfu_platform::telemetry::TelemetrySettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    #[serde(default)]
    pub grpc: GrpcSettings,
    pub auth: AuthSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub consumer: ConsumerConfig,
    /// The contract service (`JINFU_CONTRACT__ENDPOINT`): the facts of an application, and the
    /// lock on the collection account. Required.
    pub contract: Endpoint,
    /// The credit service (`JINFU_CREDIT__ENDPOINT`): eligibility with receipts, and proposals.
    /// Required: a loan is never applied for without the check.
    pub credit: Endpoint,
    /// Days the purchaser has to confirm a receivable (保障中小企业款项支付条例 art. 16: 30).
    #[serde(default = "default_confirmation_days")]
    pub confirmation_days: i64,
    /// How often the sweeper looks for delinquency, default, overdue confirmations, locks to
    /// lift and proposals to deliver.
    #[serde(default = "default_sweep_interval_seconds")]
    pub sweep_interval_seconds: u64,
    /// Public keys of the services whose events are consumed: `contract` (contract.events).
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
    /// The service's own key: its relay signs every `loan.events` record. Required by `serve`.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
    /// Demos and rehearsals only: read "now" from this file (RFC 3339) instead of the clock.
    #[serde(default)]
    pub clock_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Endpoint {
    /// The gRPC endpoint, e.g. `http://jinfu-contract:50051`.
    pub endpoint: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsumerConfig {
    /// `group` (default) or `manual`.
    #[serde(default)]
    pub assignment: jinfu_platform::consumer::Assignment,
    /// Static group membership id (the pod name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Consumer group of the contract.events consumer; default `loans`.
    #[serde(default)]
    pub group_id: Option<String>,
}

fn default_confirmation_days() -> i64 {
    30
}

fn default_sweep_interval_seconds() -> u64 {
    30
}

fn default_outbox_batch_max() -> i64 {
    500
}
