//! The notification service in-process beside a [`TestApp`] (same database, its own schema;
//! same topics), its "now" a [`ManualClock`], sending e-mail to the SMTP sink the scripts start
//! and SMS and webhooks to simulated gateways on loopback.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_bank_sim::gateways::Gateways;
use jinfu_notification_service::app::Application;
use jinfu_notification_service::settings::{DispatchSettings, QuietHoursSettings, Settings, SmsSettings, SmtpSettings, WebhookSettings};
use jinfu_platform::auth::{AuthSettings, Role, TokenKeys};
use jinfu_platform::clock::ManualClock;
use jinfu_platform::consumer::Assignment;
use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::signing::{Scheme, Signer, SigningKey, SigningSettings, TrustedKeySettings, TrustedKeys, TrustedPublishers};
use jinfu_proto::notification::v1::notification_service_client::NotificationServiceClient;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{BankRecord, TestApp, CONTRACT_KEY_REF, LEDGER_KEY_REF, TOKEN_SECRET};

/// The SMS gateway's access key secret in tests.
pub const SMS_SECRET: &str = "sms-test-access-key-secret";
/// The webhook receiver's secret in tests (24 bytes).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The SMTP sink's address (`JINFU_TEST_SMTP`, set by scripts/env.sh).
pub fn smtp_address() -> (String, u16) {
    let address = std::env::var("JINFU_TEST_SMTP").unwrap_or_else(|_| "127.0.0.1:2525".into());
    let (host, port) = address.rsplit_once(':').unwrap_or(("127.0.0.1", "2525"));
    (host.to_owned(), port.parse().unwrap_or(2525))
}

/// The messages the SMTP sink stored for `address` (raw RFC 5322 text), from its Maildir
/// (`JINFU_TEST_MAILDIR`).
pub fn mails_to(address: &str) -> Vec<String> {
    let maildir = std::env::var("JINFU_TEST_MAILDIR").unwrap_or_else(|_| ".stack/maildir".into());
    let mut found = Vec::new();
    for folder in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(&maildir).join(folder)) else { continue };
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                if text.lines().any(|line| line.eq_ignore_ascii_case(&format!("To: {address}")) || line.eq_ignore_ascii_case(&format!("X-RcptTo: {address}"))) {
                    found.push(text);
                }
            }
        }
    }
    found
}

/// The notification service running in-process; stopped (or killed) by the test.
pub struct TestNotification {
    pub grpc: NotificationServiceClient<Channel>,
    pub clock: ManualClock,
    pub pool: PgPool,
    pub settings: Settings,
    keys: TokenKeys,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestNotification {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What the ledger and contract service sign with: the notification service trusts both.
fn trusted(app: &TestApp) -> TrustedPublishers {
    let key = |key_ref: &str, key: &SigningKey| {
        TrustedKeys(vec![TrustedKeySettings { key_ref: key_ref.into(), scheme: Scheme::Ed25519, public_key: key.public_key_hex() }])
    };
    TrustedPublishers::from([
        ("ledger".to_owned(), key(LEDGER_KEY_REF, &app.banks.ledger)),
        ("contract".to_owned(), key(CONTRACT_KEY_REF, &app.banks.contract)),
    ])
}

/// Settings beside `app`, sending to `gateways` and the SMTP sink; no quiet hours unless the
/// test sets them.
pub fn notification_settings(app: &TestApp, gateways: &Gateways) -> Settings {
    let (smtp_host, smtp_port) = smtp_address();
    Settings {
        database: app.settings.database.clone(),
        kafka: app.settings.kafka.clone(),
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        telemetry: Default::default(),
        metrics: Default::default(),
        consumer: jinfu_notification_service::settings::ConsumerConfig {
            assignment: Assignment::Manual,
            instance_id: None,
            group_id: Some(format!("notification-{}", uuid::Uuid::new_v4().simple())),
        },
        smtp: Some(SmtpSettings {
            host: smtp_host,
            port: smtp_port,
            from: "金服平台 <notice@jinfu.example.cn>".into(),
            username: None,
            password: None,
            timeout_seconds: 5,
        }),
        sms: Some(SmsSettings {
            endpoint: gateways.sms_url(),
            sign_name: "金服".into(),
            access_key_id: "test".into(),
            access_key_secret: SecretString::from(SMS_SECRET),
            timeout_seconds: 5,
        }),
        webhook: WebhookSettings { timeout_seconds: 5 },
        dispatch: DispatchSettings { poll_millis: 50, lease_seconds: 3, ..DispatchSettings::default() },
        quiet_hours: QuietHoursSettings { start: "00:00".into(), end: "00:00".into() },
        deposit_reminder_hours: 24,
        sweep_interval_seconds: 1,
        trusted_publishers: trusted(app),
        signing: Some(SigningSettings {
            key_ref: "notification_test".into(),
            scheme: Scheme::Ed25519,
            private_key: SecretString::from(SigningKey::generate(Scheme::Ed25519).private_key_hex()),
        }),
        outbox_batch_max: 100,
        clock_file: None,
    }
}

/// Starts the notification service with `settings`, its clock at `now`.
pub async fn spawn_notification(settings: Settings, now: DateTime<Utc>) -> anyhow::Result<TestNotification> {
    start(settings, ManualClock::new(now)).await
}

async fn start(settings: Settings, clock: ManualClock) -> anyhow::Result<TestNotification> {
    let application = Application::build_with_clock(settings.clone(), clock.shared()).await?;
    let (port, pool) = (application.port(), application.pool());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let grpc = NotificationServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let keys = TokenKeys::new(&SecretString::from(TOKEN_SECRET))?;
    Ok(TestNotification { grpc, clock, pool, settings, keys, stop: Some(stop), handle: Some(handle) })
}

impl TestNotification {
    /// `message` as `role` of `centre` acting as `party`.
    pub fn as_role<T>(&self, role: Role, centre: &str, party: &str, message: T) -> tonic::Request<T> {
        self.keys.request(role, centre, party, 600, message).expect("a token")
    }

    /// Kills the service as a crash would (its tasks dropped wherever they are, nothing
    /// finished) and starts a new one on the same database, topics, groups and clock.
    pub async fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        self.stop.take();
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
        let restarted = start(self.settings.clone(), self.clock.clone()).await?;
        *self = restarted;
        Ok(())
    }

    /// Waits until the service has consumed `count` records of `topic` (prefixed name).
    pub async fn wait_consumed(&self, topic: &str, count: i64) -> anyhow::Result<()> {
        crate::wait_until(&format!("{count} records of {topic} consumed"), || async {
            let done: i64 = sqlx::query_scalar("SELECT COALESCE(sum(next_offset), 0)::bigint FROM notification.consumer_offsets WHERE topic = $1")
                .bind(topic)
                .fetch_one(&self.pool)
                .await?;
            Ok(done >= count)
        })
        .await
    }

    /// (channel, state, template) of every delivery to `recipient`.
    pub async fn deliveries_of(&self, recipient: &str) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as("SELECT channel, state, template FROM notification.deliveries WHERE recipient = $1 ORDER BY created_at, channel")
            .bind(recipient)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// Publishes one event on a Jinfu service's topic (prefixed) as its outbox relay would: the
/// platform envelope, signed with `key` under `key_ref`. Returns the record's value.
pub async fn publish_signed(app: &TestApp, topic: &str, key: &SigningKey, key_ref: &str, event_type: &str, data: serde_json::Value) -> anyhow::Result<Vec<u8>> {
    let value = jinfu_platform::outbox::event_envelope(event_type, crate::CENTRE, data);
    let mut headers = Vec::new();
    Signer::from_settings(&SigningSettings { key_ref: key_ref.into(), scheme: Scheme::Ed25519, private_key: SecretString::from(key.private_key_hex()) })?
        .sign_record(&value, &mut headers);
    let record = BankRecord { key: crate::CENTRE.into(), value: value.clone(), headers };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(topic), &[record]).await?;
    Ok(value)
}

/// Produces `value` with `headers` as they are on `topic` (prefixed).
pub async fn publish_raw(app: &TestApp, topic: &str, value: Vec<u8>, headers: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let record = BankRecord { key: crate::CENTRE.into(), value, headers };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(topic), &[record]).await
}

/// Starts the simulated gateways on a free loopback port.
pub async fn gateways() -> anyhow::Result<Gateways> {
    Gateways::start("127.0.0.1:0", SMS_SECRET, WEBHOOK_SECRET).await
}

/// Waits up to a minute for `check`, polling every 100 ms.
pub async fn eventually(what: &str, check: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if check() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}
