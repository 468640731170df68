//! The ledger's configuration. Load order: defaults → `--config FILE` (TOML) → `JINFU_…`
//! environment variables (`JINFU_DATABASE__URL`, `JINFU_BANKS__ICBC_2026__PUBLIC_KEY`, …).

use std::collections::{BTreeMap, HashMap};

use jinfu_platform::db::DatabaseSettings;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::metrics::MetricsSettings;
use jinfu_platform::signing::{Scheme, VerifyingKey};
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
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Bank notice-signing public keys, by key reference (lower-case).
    #[serde(default)]
    pub banks: BTreeMap<String, BankKeySettings>,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub fault: FaultSettings,
    #[serde(default)]
    pub refunds: RefundSettings,
    /// The ledger's own key (`JINFU_SIGNING__KEY_REF`, `__SCHEME`, `__PRIVATE_KEY`): its outbox
    /// relay signs every record it publishes with it (DESIGN.md §7).
    /// Required by `serve` (the service refuses to start without it); other commands
    /// (migrate, create-topics, verify) do not need it.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    /// Public keys of the services whose events the ledger consumes (`guarantee`, `contract`), by service;
    /// several per service while a key is rotated.
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundSettings {
    /// How often the refund runner looks for refunds due to be ordered.
    #[serde(default = "default_refund_poll_ms")]
    pub poll_ms: u64,
    /// The platform's key for signing payment orders. Without it no refund is ordered (and the
    /// ledger says so at start).
    #[serde(default)]
    pub signing: Option<OrderSigningSettings>,
}

impl Default for RefundSettings {
    fn default() -> Self {
        RefundSettings { poll_ms: default_refund_poll_ms(), signing: None }
    }
}

fn default_refund_poll_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderSigningSettings {
    pub scheme: Scheme,
    /// Hex private key (32 bytes): SM2 scalar or Ed25519 seed.
    pub private_key: SecretString,
    /// The reference banks know the platform's public key by; sent in `jinfu-signing-key`.
    pub key_ref: String,
}

pub use jinfu_platform::auth::AuthSettings;
pub use jinfu_platform::grpc::GrpcSettings;

#[derive(Debug, Clone, Deserialize)]
pub struct BankKeySettings {
    pub scheme: Scheme,
    /// Hex public key: SEC1 point for sm2-sm3, 32 bytes for ed25519.
    pub public_key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Static group membership id; set it to the pod name in a StatefulSet.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `group` (default): partitions shared by the replicas of a consumer group. `manual`: this
    /// one process reads every partition itself, resuming from the offsets stored in the
    /// database, with no group coordinator involved (one replica only).
    #[serde(default)]
    pub assignment: Assignment,
    /// Most records applied in one database transaction.
    #[serde(default = "default_batch_size_max")]
    pub batch_size_max: usize,
    /// Shortest time a batch stays open after its first record; it stays open longer, up to
    /// `batch_size_max` records, while the batch before it is still being applied.
    #[serde(default = "default_batch_wait_ms")]
    pub batch_wait_ms: u64,
    /// Most outbox rows published per relay round.
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            group_id: default_group_id(),
            instance_id: None,
            assignment: Assignment::Group,
            batch_size_max: default_batch_size_max(),
            batch_wait_ms: default_batch_wait_ms(),
            outbox_batch_max: default_outbox_batch_max(),
        }
    }
}

pub use jinfu_platform::consumer::Assignment;

fn default_group_id() -> String {
    "ledger".into()
}
fn default_batch_size_max() -> usize {
    2000
}
fn default_batch_wait_ms() -> u64 {
    5
}
fn default_outbox_batch_max() -> i64 {
    1000
}

/// Fault injection for crash tests. Never set in production.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct FaultSettings {
    /// `after_validation`, `before_commit` or `after_commit`: the process aborts there.
    #[serde(default)]
    pub crash_point: Option<String>,
    /// Which batch (1-based) reaches the crash point.
    #[serde(default)]
    pub crash_on_batch: u64,
}

impl Settings {
    pub fn bank_keys(&self) -> anyhow::Result<HashMap<String, VerifyingKey>> {
        self.banks
            .iter()
            .map(|(reference, key)| {
                let verifying = VerifyingKey::from_hex(key.scheme, &key.public_key).map_err(|error| anyhow::anyhow!("bank key {reference}: {error}"))?;
                Ok((reference.to_ascii_lowercase(), verifying))
            })
            .collect()
    }
}
