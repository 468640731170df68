//! The running guarantee service: gRPC API, trading.events and contract.events consumers,
//! expiry sweeper and outbox relay, stopped together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::consumer::{self, ConsumerSettings, Verified};
use jinfu_platform::signing::{EventVerifier, Signer};
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, outbox, readiness, topics};
use jinfu_proto::guarantee::v1::guarantee_service_server::GuaranteeServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::GuaranteeApi;
use crate::contracts::ContractHandler;
use crate::lifecycle::{self, TradingHandler};
use crate::seal::Sealer;
use crate::sections::Sections;
use crate::settings::Settings;
use crate::{MIGRATOR, SCHEMA};

/// How long tasks get to finish once stopping, within the pod's termination grace period.
const STOP_GRACE: Duration = Duration::from_secs(25);
/// The name `trusted_publishers` knows the contract service's keys by.
const CONTRACT_PUBLISHER: &str = "contract";

pub struct Application {
    /// The bound gRPC listener (port 0 in tests resolves here).
    listener: TcpListener,
    /// The pool shared by the API and the relay.
    pool: PgPool,
    settings: Settings,
}

impl Application {
    /// Checks the keys, connects to PostgreSQL (applying migrations), makes sure the topics it
    /// writes and reads exist, and binds the gRPC port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Sealer::from_hex(&settings.sealing.key)?;
        Signer::required(&settings.signing)?;
        EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?;
        TokenKeys::from_settings(&settings.auth)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        let topics = [topics::GUARANTEE_EVENTS, topics::TRADING_EVENTS, topics::CONTRACT_EVENTS];
        settings.kafka.create_topics(&topics, settings.kafka.partitions).await?;
        let listener = TcpListener::bind(&settings.grpc.listen).await?;
        Ok(Application { listener, pool, settings })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// Runs every task under one supervisor until `shutdown` resolves or a task fails (the error
    /// names the task); then the relay drains and in-flight calls complete.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, pool, settings } = self;
        let keys = TokenKeys::from_settings(&settings.auth)?;
        let api = GuaranteeApi {
            pool: pool.clone(),
            sealer: Sealer::from_hex(&settings.sealing.key)?,
            sections: Sections::new(&settings.ledger.endpoint, keys.clone())?,
            events_topic: settings.kafka.topic(jinfu_platform::topics::GUARANTEE_EVENTS),
            fraud: settings.fraud.clone(),
            clock: jinfu_platform::clock::system(),
            credit: settings.credit.as_ref().map(|credit| crate::credit::Credit::new(&credit.endpoint, keys.clone())).transpose()?,
            answer_floor: std::time::Duration::from_millis(settings.sealing.answer_floor_ms),
        };
        let service = GuaranteeServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "guarantee gRPC listening");
        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        let signer = Arc::new(Signer::required(&settings.signing)?);
        tasks.spawn_unit("outbox relay", outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.outbox_batch_max, stopping.clone()));
        let events_topic = settings.kafka.topic(topics::GUARANTEE_EVENTS);
        let consumer_settings =
            ConsumerSettings { kafka: settings.kafka.clone(), assignment: settings.consumer.assignment, instance_id: settings.consumer.instance_id.clone() };
        let trading_handler = || -> anyhow::Result<TradingHandler> {
            Ok(TradingHandler {
                sealer: Sealer::from_hex(&settings.sealing.key)?,
                events_topic: events_topic.clone(),
                sections: Sections::new(&settings.ledger.endpoint, TokenKeys::from_settings(&settings.auth)?)?,
            })
        };
        let group = settings.consumer.group_id.clone().unwrap_or_else(|| "guarantee".into());
        let topic = settings.kafka.topic(topics::TRADING_EVENTS);
        let handler = trading_handler()?;
        tasks.spawn("trading-event consumer", consumer::run(pool.clone(), consumer_settings.clone(), topic, group.clone(), handler, stopping.clone()));
        let topic = settings.kafka.topic(topics::CONTRACT_EVENTS);
        let verifier = EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?;
        let handler = Verified::new(verifier, ContractHandler { trading: trading_handler()? });
        let group = format!("{group}-contracts");
        tasks.spawn("contract-event consumer", consumer::run(pool.clone(), consumer_settings, topic, group, handler, stopping.clone()));
        let interval = Duration::from_secs(settings.expiry_interval_seconds);
        tasks.spawn_unit("expiry sweeper", lifecycle::run_expiry(pool.clone(), events_topic, interval, stopping.clone()));
        let readiness = grpc::Readiness {
            services: vec![<GuaranteeServiceServer<GuaranteeApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the guarantee service");
            })
            .await?;
        Ok(())
    }
}
