//! The e-guarantee service in-process beside a [`TestApp`].

use jinfu_platform::auth::AuthSettings;
use jinfu_platform::grpc::GrpcSettings;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{TestApp, TOKEN_SECRET};

/// The e-guarantee service running in-process beside a [`TestApp`] (same database, its own
/// schema; same topics), signing its events with the key the ledger under test trusts. Stops
/// when dropped.
pub struct TestGuarantees {
    pub grpc: jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestGuarantees {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings for the guarantee service beside `app`.
pub fn guarantee_settings(app: &TestApp) -> jinfu_guarantee_service::settings::Settings {
    use jinfu_guarantee_service::settings::{ConsumerConfig, LedgerSettings, SealingSettings, Settings};
    Settings {
        database: app.settings.database.clone(),
        kafka: app.settings.kafka.clone(),
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        sealing: SealingSettings { key: SecretString::from(hex::encode(rand::random::<[u8; 32]>())), answer_floor_ms: 50 },
        ledger: LedgerSettings { endpoint: format!("http://{}", app.address) },
        telemetry: Default::default(),
        metrics: Default::default(),
        outbox_batch_max: 100,
        fraud: Default::default(),
        // One in-process service per test: it reads trading.events itself (no group coordinator).
        consumer: ConsumerConfig {
            assignment: jinfu_platform::consumer::Assignment::Manual,
            instance_id: None,
            group_id: Some(format!("guarantee-{}", uuid::Uuid::new_v4().simple())),
        },
        expiry_interval_seconds: 3600,
        // The key the ledger under test trusts for guarantee.events.
        signing: Some(app.banks.guarantee_signing()),
        // The contract service's key, for contract.events.
        credit: None,
        trusted_publishers: app.banks.trusted_publishers(),
    }
}

/// Starts the guarantee service beside `app` with `settings` (from [`guarantee_settings`]).
pub async fn spawn_guarantees_with(settings: jinfu_guarantee_service::settings::Settings) -> anyhow::Result<TestGuarantees> {
    let application = jinfu_guarantee_service::app::Application::build(settings).await?;
    let port = application.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let grpc = jinfu_proto::guarantee::v1::guarantee_service_client::GuaranteeServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    Ok(TestGuarantees { grpc, stop: Some(stop) })
}

/// Starts the guarantee service beside `app`.
pub async fn spawn_guarantees(app: &TestApp) -> anyhow::Result<TestGuarantees> {
    spawn_guarantees_with(guarantee_settings(app)).await
}
