//! The running contract service: gRPC API, trading.events consumer, clock sweeper and outbox
//! relay, stopped together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_ledger::calendar::Calendar;
use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{self, ConsumerSettings};
use jinfu_platform::signing::Signer;
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, outbox, readiness, topics};
use jinfu_proto::contract::v1::contract_service_server::ContractServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::ContractApi;
use crate::calendar::{LedgerCalendar, SharedCalendar};
use crate::payment_records::PaymentRecordHandler;
use crate::settings::Settings;
use crate::sweeper::Sweeper;
use crate::trading::TradingHandler;
use crate::{MIGRATOR, SCHEMA};

/// How long tasks get to finish once stopping, within the pod's termination grace period.
const STOP_GRACE: Duration = Duration::from_secs(25);

pub struct Application {
    /// The bound gRPC listener (port 0 in tests resolves here).
    listener: TcpListener,
    pool: PgPool,
    settings: Settings,
    clock: SharedClock,
}

impl Application {
    /// Checks the keys, connects to PostgreSQL (applying migrations), makes sure the topics
    /// exist, and binds the gRPC port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let clock = match &settings.clock_file {
            Some(path) => {
                tracing::warn!(path = %path.display(), "reading now from a clock file (demos and rehearsals only): every deadline follows it");
                jinfu_platform::clock::FileClock::new(path).shared()
            }
            None => jinfu_platform::clock::system(),
        };
        Application::build_with_clock(settings, clock).await
    }

    /// As [`Application::build`], reading "now" from `clock` (tests move time).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        Signer::required(&settings.signing)?;
        TokenKeys::from_settings(&settings.auth)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings.kafka.create_topics(&[topics::CONTRACT_EVENTS, topics::CONTRACT_PAYMENTS, topics::TRADING_EVENTS], settings.kafka.partitions).await?;
        let listener = TcpListener::bind(&settings.grpc.listen).await?;
        Ok(Application { listener, pool, settings, clock })
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
        let Application { listener, pool, settings, clock } = self;
        let keys = TokenKeys::from_settings(&settings.auth)?;
        let events_topic = settings.kafka.topic(topics::CONTRACT_EVENTS);
        // The national calendar shipped with Jinfu, then the ledger's (with the years it loaded).
        let calendar = SharedCalendar::new(Calendar::china());
        let api = ContractApi { pool: pool.clone(), events_topic: events_topic.clone(), calendar: calendar.clone(), clock: clock.clone() };
        let service = ContractServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "contract gRPC listening");
        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        let signer = Arc::new(Signer::required(&settings.signing)?);
        tasks.spawn_unit("outbox relay", outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.outbox_batch_max, stopping.clone()));
        let consumer_settings =
            ConsumerSettings { kafka: settings.kafka.clone(), assignment: settings.consumer.assignment, instance_id: settings.consumer.instance_id.clone() };
        let handler = TradingHandler { events_topic: events_topic.clone(), calendar: calendar.clone() };
        let group = settings.consumer.group_id.clone().unwrap_or_else(|| "contract".into());
        tasks.spawn(
            "trading-event consumer",
            consumer::run(pool.clone(), consumer_settings, settings.kafka.topic(topics::TRADING_EVENTS), group, handler, stopping.clone()),
        );
        if let Some(ledger) = &settings.ledger {
            let source = LedgerCalendar::new(&ledger.endpoint, TokenKeys::from_settings(&settings.auth)?, &ledger.centre_id)?;
            let every = Duration::from_secs(settings.calendar_refresh_seconds.max(1));
            tasks.spawn_unit("calendar refresher", crate::calendar::run_refresh(calendar.clone(), source, every, stopping.clone()));
        }
        let consumer_settings =
            ConsumerSettings { kafka: settings.kafka.clone(), assignment: settings.consumer.assignment, instance_id: settings.consumer.instance_id.clone() };
        let handler = PaymentRecordHandler { events_topic: events_topic.clone(), clock: clock.clone() };
        let group = format!("{}-payments", settings.consumer.group_id.clone().unwrap_or_else(|| "contract".into()));
        tasks.spawn(
            "payment-record consumer",
            consumer::run(pool.clone(), consumer_settings, settings.kafka.topic(topics::CONTRACT_PAYMENTS), group, handler, stopping.clone()),
        );
        let sweeper = Sweeper { pool: pool.clone(), events_topic, calendar, clock };
        tasks.spawn_unit("clock sweeper", sweeper.run(Duration::from_secs(settings.sweep_interval_seconds.max(1)), stopping.clone()));
        let readiness = grpc::Readiness {
            services: vec![<ContractServiceServer<ContractApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the contract service");
            })
            .await?;
        Ok(())
    }
}
