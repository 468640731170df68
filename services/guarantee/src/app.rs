//! The running guarantee service: gRPC API, trading.events consumer, expiry sweeper and outbox
//! relay, stopped together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::consumer::{self, ConsumerSettings};
use jinfu_platform::{db, grpc, outbox, readiness};
use jinfu_proto::guarantee::v1::guarantee_service_server::GuaranteeServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tracing::info;

use crate::api::GuaranteeApi;
use crate::lifecycle::{self, TradingHandler};
use crate::seal::Sealer;
use crate::sections::Sections;
use crate::settings::Settings;
use crate::{MIGRATOR, SCHEMA};

pub struct Application {
    /// The bound gRPC listener (port 0 in tests resolves here).
    listener: TcpListener,
    /// The pool shared by the API and the relay.
    pool: PgPool,
    settings: Settings,
}

impl Application {
    /// Checks the keys, connects to PostgreSQL (applying migrations), makes sure
    /// `guarantee.events` exists, and binds the gRPC port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Sealer::from_hex(&settings.sealing.key)?;
        TokenKeys::new(&settings.auth.token_secret)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings.kafka.create_topics(&["guarantee.events", "trading.events"], settings.kafka.partitions).await?;
        let listener = TcpListener::bind(&settings.grpc.listen).await?;
        Ok(Application { listener, pool, settings })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// Runs until `shutdown` resolves; then the relay drains and in-flight calls complete.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, pool, settings } = self;
        let keys = TokenKeys::new(&settings.auth.token_secret)?;
        let api = GuaranteeApi {
            pool: pool.clone(),
            sealer: Sealer::from_hex(&settings.sealing.key)?,
            sections: Sections::new(&settings.ledger.endpoint, keys.clone())?,
            events_topic: settings.kafka.topic("guarantee.events"),
            fraud: settings.fraud.clone(),
        };
        let service = GuaranteeServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "guarantee gRPC listening");
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(outbox::run_relay(pool.clone(), settings.kafka.producer()?, settings.outbox_batch_max, stopped.clone()));
        let events_topic = settings.kafka.topic("guarantee.events");
        let consumer_settings = ConsumerSettings {
            kafka: settings.kafka.clone(),
            assignment: settings.consumer.assignment,
            instance_id: settings.consumer.instance_id.clone(),
        };
        let trading = tokio::spawn(consumer::run(
            pool.clone(),
            consumer_settings,
            settings.kafka.topic("trading.events"),
            settings.consumer.group_id.clone().unwrap_or_else(|| "guarantee".into()),
            TradingHandler {
                sealer: Sealer::from_hex(&settings.sealing.key)?,
                events_topic: events_topic.clone(),
                sections: Sections::new(&settings.ledger.endpoint, TokenKeys::new(&settings.auth.token_secret)?)?,
            },
            stopped.clone(),
        ));
        let expiry = tokio::spawn(lifecycle::run_expiry(pool.clone(), events_topic, Duration::from_secs(settings.expiry_interval_seconds), stopped.clone()));
        let readiness = grpc::Readiness {
            services: vec![<GuaranteeServiceServer<GuaranteeApi> as tonic::server::NamedService>::NAME],
            check: readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone()),
            interval: Duration::from_secs(5),
        };
        let mut grpc_stopped = stopped.clone();
        let server = tokio::spawn(grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, async move {
            let _ = grpc_stopped.changed().await;
        }));
        shutdown.await;
        info!("stopping the guarantee service");
        let _ = stop.send(true);
        trading.await??;
        expiry.await?;
        relay.await?;
        server.await??;
        Ok(())
    }
}
