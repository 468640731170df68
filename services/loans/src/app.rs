//! The running loans service: the contract.events consumer, the sweeper, the outbox relay and
//! the gRPC API, stopped together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{self, ConsumerSettings, Verified};
use jinfu_platform::signing::{EventVerifier, Signer};
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, outbox, readiness, topics};
use jinfu_proto::loan::v1::loan_service_server::LoanServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::LoanApi;
use crate::consume::ContractEvents;
use crate::peers::{Contracts, Credit};
use crate::settings::Settings;
use crate::sweeper::Sweeper;
use crate::{MIGRATOR, SCHEMA};

/// How long tasks get to finish once stopping, within the pod's termination grace period.
const STOP_GRACE: Duration = Duration::from_secs(25);

/// The name `trusted_publishers` knows the contract service's keys by.
pub const CONTRACT_PUBLISHER: &str = "contract";

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    settings: Settings,
    clock: SharedClock,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let clock = match &settings.clock_file {
            Some(path) => {
                tracing::warn!(path = %path.display(), "reading now from a clock file (demos and rehearsals only)");
                jinfu_platform::clock::FileClock::new(path).shared()
            }
            None => jinfu_platform::clock::system(),
        };
        Application::build_with_clock(settings, clock).await
    }

    /// As [`Application::build`], reading "now" from `clock` (tests move time).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        Signer::required(&settings.signing)?;
        let keys = TokenKeys::from_settings(&settings.auth)?;
        EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?;
        Contracts::new(&settings.contract.endpoint, keys.clone())?;
        Credit::new(&settings.credit.endpoint, keys)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings.kafka.create_topics(&[topics::LOAN_EVENTS, topics::CONTRACT_EVENTS], settings.kafka.partitions).await?;
        let listener = TcpListener::bind(&settings.grpc.listen).await?;
        Ok(Application { listener, pool, settings, clock })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, pool, settings, clock } = self;
        let keys = TokenKeys::from_settings(&settings.auth)?;
        let contracts = Arc::new(Contracts::new(&settings.contract.endpoint, keys.clone())?);
        let credit = Arc::new(Credit::new(&settings.credit.endpoint, keys.clone())?);
        let events_topic = settings.kafka.topic(topics::LOAN_EVENTS);
        let api = LoanApi {
            pool: pool.clone(),
            events_topic: events_topic.clone(),
            clock: clock.clone(),
            contracts: contracts.clone(),
            credit: credit.clone(),
            confirmation_days: settings.confirmation_days.clamp(1, 365),
        };
        let service = LoanServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "loans gRPC listening");
        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        let signer = Arc::new(Signer::required(&settings.signing)?);
        tasks.spawn_unit("outbox relay", outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.outbox_batch_max, stopping.clone()));
        let verifier = EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?;
        let handler = Verified::new(verifier, ContractEvents { events_topic: events_topic.clone(), clock: clock.clone() });
        let consumer_settings =
            ConsumerSettings { kafka: settings.kafka.clone(), assignment: settings.consumer.assignment, instance_id: settings.consumer.instance_id.clone() };
        let group = settings.consumer.group_id.clone().unwrap_or_else(|| "loans".into());
        let run = consumer::run(pool.clone(), consumer_settings, settings.kafka.topic(topics::CONTRACT_EVENTS), group, handler, stopping.clone());
        tasks.spawn("contract-event consumer", run);
        let sweeper = Sweeper { pool: pool.clone(), clock, events_topic, contracts, credit };
        tasks.spawn_unit("loan sweeper", sweeper.run(Duration::from_secs(settings.sweep_interval_seconds.max(1)), stopping.clone()));
        let readiness = grpc::Readiness {
            services: vec![<LoanServiceServer<LoanApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the loans service");
            })
            .await?;
        Ok(())
    }
}
