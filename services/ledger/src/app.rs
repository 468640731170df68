//! The running ledger: gRPC API, its consumers (credit notices, statements, payment results,
//! tender, guarantee and contract events) and outbox relay, stopped together.

use std::future::Future;
use std::sync::Arc;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::consumer::Verified;
use jinfu_platform::signing::{EventVerifier, Signer};
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, readiness, topics};
use jinfu_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::LedgerApi;
use crate::contracts::ContractHandler;
use crate::domain::calendar::SharedCalendar;
use crate::guarantees::GuaranteeHandler;
use crate::refunds::ResultsHandler;
use crate::settings::Settings;
use crate::statements::StatementHandler;
use crate::trading::TradingHandler;
use crate::{consumer, ingest, observe, outbox, refunds, trading, MIGRATOR, SCHEMA};

/// The name `trusted_publishers` knows the e-guarantee service's keys by.
const GUARANTEE_PUBLISHER: &str = "guarantee";
/// The name `trusted_publishers` knows the contract service's keys by.
const CONTRACT_PUBLISHER: &str = "contract";

/// How long the ledger's tasks get to finish once stopping (the chart's termination grace period
/// for the ledger is 60 s; this leaves room for the process to exit).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(45);

pub struct Application {
    /// The bound gRPC listener (port 0 in tests resolves here).
    listener: TcpListener,
    /// The pool shared by the API, the consumer and the relay.
    pool: PgPool,
    settings: Settings,
}

impl Application {
    /// Connects to PostgreSQL (applying migrations), makes sure the ledger's topics exist, and
    /// binds the gRPC port. Nothing is consumed until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // Validate configured keys before anything starts.
        settings.bank_keys()?;
        Signer::required(&settings.signing)?;
        EventVerifier::for_publisher(&settings.trusted_publishers, GUARANTEE_PUBLISHER)?;
        EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?;
        TokenKeys::from_settings(&settings.auth)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings
            .kafka
            .create_topics(
                &[
                    topics::BANK_CREDIT_NOTICES,
                    topics::BANK_STATEMENTS,
                    topics::LEDGER_EVENTS,
                    topics::TRADING_EVENTS,
                    topics::BANK_PAYMENT_ORDERS,
                    topics::BANK_PAYMENT_RESULTS,
                    topics::GUARANTEE_EVENTS,
                    topics::CONTRACT_EVENTS,
                ],
                settings.kafka.partitions,
            )
            .await?;
        let listener = TcpListener::bind(&settings.grpc.listen).await?;
        Ok(Application { listener, pool, settings })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or(0)
    }

    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// Runs every task of the ledger under one supervisor until `shutdown` resolves or a task
    /// fails (then the error names the task; `main` exits non-zero and the pod restarts). On
    /// stop the consumers finish their batch, the relay drains and in-flight calls complete.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, pool, settings } = self;
        let keys = Arc::new(TokenKeys::from_settings(&settings.auth)?);
        let events_topic = settings.kafka.topic(topics::LEDGER_EVENTS);
        // The calendar in force: the seed with every year loaded so far; refreshed when a year is
        // loaded (here by the API, elsewhere seen by the refresher polling the version).
        let (national, version) = trading::load_calendar(&pool).await?;
        let calendar = SharedCalendar::new(national, version);
        let trading_handler = Arc::new(TradingHandler { calendar: calendar.clone(), events_topic: events_topic.clone() });
        let signer = match &settings.refunds.signing {
            Some(signing) => Some(Arc::new(refunds::OrderSigner::from_settings(signing)?)),
            None => None,
        };
        let api = LedgerApi {
            pool: pool.clone(),
            trading: trading_handler,
            known_key_refs: settings.banks.keys().map(|k| k.to_ascii_lowercase()).collect(),
            signer,
            events_topic: settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS),
            orders_topic: settings.kafka.topic(jinfu_platform::topics::BANK_PAYMENT_ORDERS),
            clock: jinfu_platform::clock::system(),
        };
        let service = LedgerServiceServer::with_interceptor(api, auth::interceptor(keys));
        info!(address = %listener.local_addr()?, "ledger gRPC listening");

        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        tasks.spawn("credit-notice consumer", ingest::run_consumer(pool.clone(), settings.clone(), stopping.clone()));
        let group = |suffix: &str| format!("{}-{suffix}", settings.ingest.group_id);
        let consume = |topic: &str| (pool.clone(), settings.clone(), settings.kafka.topic(topic));
        let (database, config, topic) = consume(topics::TRADING_EVENTS);
        let handler = TradingHandler { calendar: calendar.clone(), events_topic: events_topic.clone() };
        tasks.spawn("trading-event consumer", consumer::run(database, config, topic, group("trading"), handler, stopping.clone()));
        let (database, config, topic) = consume(topics::BANK_PAYMENT_RESULTS);
        let handler = ResultsHandler { keys: settings.bank_keys()?, events_topic: events_topic.clone() };
        tasks.spawn("payment-result consumer", consumer::run(database, config, topic, group("payment-results"), handler, stopping.clone()));
        let (database, config, topic) = consume(topics::GUARANTEE_EVENTS);
        let handler = Verified::new(EventVerifier::for_publisher(&settings.trusted_publishers, GUARANTEE_PUBLISHER)?, GuaranteeHandler);
        tasks.spawn("guarantee-event consumer", consumer::run(database, config, topic, group("guarantees"), handler, stopping.clone()));
        let (database, config, topic) = consume(topics::CONTRACT_EVENTS);
        let trading = TradingHandler { calendar: calendar.clone(), events_topic: events_topic.clone() };
        let handler = Verified::new(EventVerifier::for_publisher(&settings.trusted_publishers, CONTRACT_PUBLISHER)?, ContractHandler { trading });
        tasks.spawn("contract-event consumer", consumer::run(database, config, topic, group("contracts"), handler, stopping.clone()));
        let (database, config, topic) = consume(topics::BANK_STATEMENTS);
        let handler = StatementHandler { keys: settings.bank_keys()?, events_topic: events_topic.clone(), topic: topic.clone(), group_id: group("statements") };
        tasks.spawn("statement consumer", consumer::run(database, config, topic, group("statements"), handler, stopping.clone()));
        tasks.spawn("refund runner", refunds::run_refunds(pool.clone(), settings.clone(), stopping.clone()));
        let every = std::time::Duration::from_millis(settings.refunds.poll_ms);
        tasks.spawn_unit("calendar refresher", trading::run_calendar_refresh(pool.clone(), calendar, events_topic.clone(), every, stopping.clone()));
        let signer = Arc::new(Signer::required(&settings.signing)?);
        tasks.spawn_unit(
            "outbox relay",
            outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.ingest.outbox_batch_max, stopping.clone()),
        );
        tasks.spawn_unit("gauges", observe::run_gauges(pool.clone(), settings.kafka.clone(), stopping.clone()));
        let readiness = grpc::Readiness {
            services: vec![<LedgerServiceServer<LedgerApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: std::time::Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the ledger");
            })
            .await?;
        Ok(())
    }
}
