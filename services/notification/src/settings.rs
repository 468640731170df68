//! The notification service's configuration: defaults → `--config FILE` (TOML) → `JINFU_…`
//! environment variables (`JINFU_SMTP__HOST`, `JINFU_SMS__ACCESS_KEY_SECRET`, …).

use chrono::NaiveTime;
pub use jinfu_platform::auth::AuthSettings;
use jinfu_platform::db::DatabaseSettings;
pub use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::metrics::MetricsSettings;
pub use jinfu_platform::signing::{SigningSettings, TrustedPublishers};
use jinfu_platform::telemetry::TelemetrySettings;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::policy::QuietHours;

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
    /// E-mail over SMTP; without it no e-mail is sent (nor recorded).
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// The SMS gateway; without it no SMS is sent (nor recorded).
    #[serde(default)]
    pub sms: Option<SmsSettings>,
    /// Webhook calls.
    #[serde(default)]
    pub webhook: WebhookSettings,
    #[serde(default)]
    pub dispatch: DispatchSettings,
    /// No SMS between `start` and `end` (Beijing time, `HH:MM`), except about a deadline that
    /// falls before `end`; default 22:00-08:00. Equal times: no quiet hours.
    #[serde(default)]
    pub quiet_hours: QuietHoursSettings,
    /// Hours before a deposit deadline at which a bidder whose deposit is still short is reminded.
    #[serde(default = "default_deposit_reminder_hours")]
    pub deposit_reminder_hours: i64,
    /// Seconds between reminder sweeps.
    #[serde(default = "default_sweep_interval_seconds")]
    pub sweep_interval_seconds: u64,
    /// Public keys of the services whose events are consumed: `ledger`, `guarantee`,
    /// `contract`, `credit` (docs/kubernetes.md, Event signing). A publisher without a key has
    /// every record dead-lettered (`unknown_signing_key`).
    #[serde(default)]
    pub trusted_publishers: TrustedPublishers,
    /// The service's own key (`JINFU_SIGNING__KEY_REF`, `__SCHEME`, `__PRIVATE_KEY`): it
    /// publishes no events of its own, but its outbox relay signs the dead letters the
    /// consumers write (`<topic>.dlq`), as every relay signs what it publishes. Required by
    /// `serve`.
    #[serde(default)]
    pub signing: Option<SigningSettings>,
    /// Rows the outbox relay publishes per round.
    #[serde(default = "default_outbox_batch_max")]
    pub outbox_batch_max: i64,
    /// Demos and rehearsals only: read "now" from this file (`jinfu_platform::clock::FileClock`).
    #[serde(default)]
    pub clock_file: Option<std::path::PathBuf>,
}

fn default_outbox_batch_max() -> i64 {
    500
}

fn default_deposit_reminder_hours() -> i64 {
    24
}

fn default_sweep_interval_seconds() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The sender, e.g. `金服平台 <notice@jinfu.example.cn>`; its domain ends every Message-ID.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// From a Secret (`JINFU_SMTP__PASSWORD`).
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_smtp_port() -> u16 {
    25
}

fn default_timeout_seconds() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmsSettings {
    /// The gateway's SendSms URL, e.g. `https://sms.example.cn/v1/send`.
    pub endpoint: String,
    /// The approved signature shown in front of every SMS, e.g. `金服`.
    pub sign_name: String,
    pub access_key_id: String,
    /// From a Secret (`JINFU_SMS__ACCESS_KEY_SECRET`): signs each request body.
    pub access_key_secret: SecretString,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings { timeout_seconds: default_timeout_seconds() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DispatchSettings {
    /// Deliveries claimed per round.
    pub batch_max: i64,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Attempts before a delivery that keeps failing transiently is dead-lettered.
    pub max_attempts: i32,
    /// Longest wait between attempts (the backoff starts at 5 s and doubles).
    pub backoff_cap_seconds: u64,
    /// How long a claimed delivery is owned by its sender; after it, a delivery left `sending`
    /// (its sender died) is sent again with the same idempotency key. Longer than the slowest
    /// channel's timeout.
    pub lease_seconds: u64,
    /// Wait after a round that found nothing due.
    pub poll_millis: u64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings { batch_max: 200, concurrency: 32, max_attempts: 8, backoff_cap_seconds: 600, lease_seconds: 60, poll_millis: 200 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QuietHoursSettings {
    pub start: String,
    pub end: String,
}

impl Default for QuietHoursSettings {
    fn default() -> Self {
        QuietHoursSettings { start: "22:00".into(), end: "08:00".into() }
    }
}

impl QuietHoursSettings {
    pub fn parse(&self) -> anyhow::Result<QuietHours> {
        let time = |text: &str, name: &str| NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| anyhow::anyhow!("quiet_hours.{name} {text:?} is not HH:MM"));
        Ok(QuietHours { start: time(&self.start, "start")?, end: time(&self.end, "end")? })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsumerConfig {
    /// `group` (default) or `manual`.
    #[serde(default)]
    pub assignment: jinfu_platform::consumer::Assignment,
    /// Static group membership id (the pod name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Prefix of the consumer groups (one per topic: `<prefix>-ledger`, …); default `notification`.
    #[serde(default)]
    pub group_id: Option<String>,
}
