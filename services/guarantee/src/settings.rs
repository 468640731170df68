//! The guarantee service's configuration: defaults → `--config FILE` (TOML) → `JINFU_…`
//! environment variables (`JINFU_SEALING__KEY`, `JINFU_LEDGER__ENDPOINT`, …).

use jinfu_platform::db::DatabaseSettings;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::metrics::MetricsSettings;
pub use jinfu_platform::signing::{SigningSettings, TrustedKeySettings, TrustedKeys, TrustedPublishers};
use jinfu_platform::telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    #[serde(default)]
    pub grpc: GrpcSettings,
    pub auth: AuthSettings,
    pub sealing: SealingSettings,
    pub ledger: LedgerSettings,
    /// The credit service (`JINFU_CREDIT__ENDPOINT`): when set, an application from a debarred
    /// bidder is refused (`barred`), and refused UNAVAILABLE while it cannot answer.
    #[serde(default)]
    pub credit: Option<CreditSettings>,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
    #[serde(default)]
    pub fraud: crate::fraud::FraudSettings,
    #[serde(default)]
    pub consumer: ConsumerConfig,
    /// Seconds between expiry rounds.
    #[serde(default = "default_expiry_interval_seconds")]
    pub expiry_interval_seconds: u64,
    /// The service's own key (`JINFU_SIGNING__KEY_REF`, `__SCHEME`, `__PRIVATE_KEY`): its
    /// outbox relay signs every `guarantee.events` record with it; the ledger trusts its public
    /// half (DESIGN.md §7).
    /// Required by `serve` (the service refuses to start without it); other commands
    /// (migrate, create-topics, verify) do not need it.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    /// Public keys of the Jinfu services whose events this service consumes, by service:
    /// `contract` for `contract.events` (`trading.events` is the e-trading system's and unsigned).
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
}

fn default_expiry_interval_seconds() -> u64 {
    60
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsumerConfig {
    /// `group` (default) or `manual` (one replica reads every partition of trading.events and
    /// contract.events from the offsets in PostgreSQL).
    #[serde(default)]
    pub assignment: jinfu_platform::consumer::Assignment,
    /// Static group membership id (the pod name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Consumer group of the trading.events consumer; default `guarantee`. The contract.events
    /// consumer's is this one with `-contracts` appended.
    #[serde(default)]
    pub group_id: Option<String>,
}

fn default_outbox_batch_max() -> i64 {
    500
}

pub use jinfu_platform::auth::AuthSettings;
pub use jinfu_platform::grpc::GrpcSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct SealingSettings {
    /// 64 hex digits (AES-256 key) that seal bidders' guarantee data until bid opening. Losing it
    /// loses the sealed data; rotating it needs a re-encryption (not offered yet).
    pub key: SecretString,
    /// Answers that could reveal a sealed guarantee (`VerifyGuarantee`, `SubmitClaim`) are sent
    /// at the first multiple of this many milliseconds after the call arrived, whatever the
    /// answer: a sealed number and an unknown one take the same time (issue 13). 0: off.
    #[serde(default = "default_answer_floor_ms")]
    pub answer_floor_ms: u64,
}

fn default_answer_floor_ms() -> u64 {
    50
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreditSettings {
    /// The credit service's gRPC endpoint, e.g. `http://jinfu-credit:50051`.
    pub endpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LedgerSettings {
    /// The ledger's gRPC endpoint, e.g. `http://jinfu-ledger:50051` (sections and their state).
    pub endpoint: String,
}
