//! The credit service's configuration: defaults → `--config FILE` (TOML) → `JINFU_…`
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
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
    /// The service's own key (`JINFU_SIGNING__KEY_REF`, `__SCHEME`, `__PRIVATE_KEY`): its relay
    /// signs every `credit.events` record and the API signs eligibility receipts with it; other
    /// services trust its public half under the publisher name `credit`. Required by `serve`.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    /// Public keys of the services whose facts become proposals: `contract` (contract.events:
    /// a supplier that did not sign, a purchaser that paid late) and `ledger` (ledger.events:
    /// collusion leads, published after bid opening). Without a key every record of that topic
    /// is dead-lettered (`unknown_signing_key`) and nothing is proposed from it.
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
    #[serde(default)]
    pub consumer: ConsumerConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsumerConfig {
    /// `group` (default) or `manual`.
    #[serde(default)]
    pub assignment: jinfu_platform::consumer::Assignment,
    /// Static group membership id (the pod name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Prefix of the consumer groups (`<prefix>-contract`, `<prefix>-ledger`); default `credit`.
    #[serde(default)]
    pub group_id: Option<String>,
}

fn default_outbox_batch_max() -> i64 {
    500
}
