//! The credit service in-process beside a [`TestApp`] (same database, its own schema; same
//! topics), its "now" a [`ManualClock`].

use chrono::{DateTime, Utc};
use jinfu_credit_service::app::Application;
use jinfu_credit_service::settings::{ConsumerConfig, Settings};
use jinfu_platform::auth::{AuthSettings, Role, TokenKeys};
use jinfu_platform::clock::ManualClock;
use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::signing::{Scheme, SigningKey, SigningSettings, TrustedKeySettings, TrustedKeys};
use jinfu_proto::credit::v1::credit_service_client::CreditServiceClient;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{TestApp, TOKEN_SECRET};

/// Key reference of the credit service's key in tests.
pub const CREDIT_KEY_REF: &str = "credit_test";

/// The credit service running in-process; stops when dropped.
pub struct TestCredit {
    pub grpc: CreditServiceClient<Channel>,
    pub clock: ManualClock,
    pub pool: PgPool,
    /// The service's signing key (receipts, credit.events).
    pub key: SigningKey,
    pub events_topic: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    keys: TokenKeys,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestCredit {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the credit service beside `app`, its clock at `now`.
pub async fn spawn_credit(app: &TestApp, now: DateTime<Utc>) -> anyhow::Result<TestCredit> {
    let key = SigningKey::generate(Scheme::Ed25519);
    let settings = Settings {
        database: app.settings.database.clone(),
        kafka: app.settings.kafka.clone(),
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        telemetry: Default::default(),
        metrics: Default::default(),
        outbox_batch_max: 100,
        signing: Some(SigningSettings { key_ref: CREDIT_KEY_REF.into(), scheme: Scheme::Ed25519, private_key: SecretString::from(key.private_key_hex()) }),
        // The contract service's and the ledger's keys under test: their facts become proposals.
        trusted_publishers: {
            let mut trusted = app.banks.trusted_publishers();
            let ledger = TrustedKeySettings { key_ref: crate::LEDGER_KEY_REF.into(), scheme: Scheme::Ed25519, public_key: app.banks.ledger.public_key_hex() };
            trusted.insert("ledger".into(), TrustedKeys(vec![ledger]));
            trusted
        },
        consumer: ConsumerConfig {
            assignment: jinfu_platform::consumer::Assignment::Manual,
            instance_id: None,
            group_id: Some(format!("credit-{}", uuid::Uuid::new_v4().simple())),
        },
    };
    let clock = ManualClock::new(now);
    let application = Application::build_with_clock(settings.clone(), clock.shared()).await?;
    let (port, pool) = (application.port(), application.pool());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let grpc = CreditServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let keys = TokenKeys::new(&SecretString::from(TOKEN_SECRET))?;
    let events_topic = settings.kafka.topic(jinfu_platform::topics::CREDIT_EVENTS);
    Ok(TestCredit { grpc, clock, pool, key, events_topic, endpoint: format!("http://127.0.0.1:{port}"), keys, stop: Some(stop) })
}

impl TestCredit {
    /// `message` as `role` of `centre` acting as `party`.
    pub fn as_role<T>(&self, role: Role, centre: &str, party: &str, message: T) -> tonic::Request<T> {
        self.keys.request(role, centre, party, 600, message).expect("a token")
    }

    /// Every event written to `credit.events` so far, checked against docs/schemas/credit.event.v1.json.
    pub async fn assert_events_match_schema(&self) -> anyhow::Result<usize> {
        crate::assert_outbox_matches(&self.pool, "credit", &self.events_topic, "credit.event.v1.json").await
    }
}
