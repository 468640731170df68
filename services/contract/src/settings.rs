//! The contract service's configuration: defaults → `--config FILE` (TOML) → `JINFU_…`
//! environment variables (`JINFU_DATABASE__URL`, `JINFU_SIGNING__PRIVATE_KEY`, …).

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
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
    #[serde(default)]
    pub consumer: ConsumerConfig,
    /// Seconds between clock sweeps (breaches, deemed receipts, reminders, overdue warnings).
    #[serde(default = "default_sweep_interval_seconds")]
    pub sweep_interval_seconds: u64,
    /// The service's own key (`JINFU_SIGNING__KEY_REF`, `__SCHEME`, `__PRIVATE_KEY`): its
    /// outbox relay signs every `contract.events` record with it; the ledger and the guarantee
    /// service trust its public half under the publisher name `contract`. Required by `serve`.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    /// The ledger, which owns the working-day calendar: the years it loaded are fetched at start
    /// and every `calendar_refresh_seconds` (`JINFU_LEDGER__ENDPOINT`). Without it only the
    /// calendar shipped with Jinfu is used.
    #[serde(default)]
    pub ledger: Option<LedgerSettings>,
    /// Seconds between calendar refreshes from the ledger.
    #[serde(default = "default_calendar_refresh_seconds")]
    pub calendar_refresh_seconds: u64,
    /// Demos and rehearsals only: read "now" from this file (one RFC 3339 instant; see
    /// `jinfu_platform::clock::FileClock`) instead of the machine's clock, so a demo can walk
    /// contracts through weeks of deadlines in minutes. `serve` logs a warning when it is set.
    /// Never set it in production (`JINFU_CLOCK_FILE`).
    #[serde(default)]
    pub clock_file: Option<std::path::PathBuf>,
    /// Public keys of the Jinfu services whose events this service consumes. None today
    /// (`trading.events` is the e-trading system's and unsigned).
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
}

fn default_outbox_batch_max() -> i64 {
    500
}

fn default_sweep_interval_seconds() -> u64 {
    60
}

fn default_calendar_refresh_seconds() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
pub struct LedgerSettings {
    /// The ledger's gRPC endpoint, e.g. `http://jinfu-ledger:50051`.
    pub endpoint: String,
    /// The centre of the service's token for the ledger (role admin, party `jinfu-contract`):
    /// any centre the ledger knows; default the province, 520000.
    #[serde(default = "default_token_centre")]
    pub centre_id: String,
}

fn default_token_centre() -> String {
    "520000".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsumerConfig {
    /// `group` (default) or `manual` (one replica reads every partition from the offsets in
    /// PostgreSQL).
    #[serde(default)]
    pub assignment: jinfu_platform::consumer::Assignment,
    /// Static group membership id (the pod name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Consumer group of the trading.events consumer; default `contract`.
    #[serde(default)]
    pub group_id: Option<String>,
}
