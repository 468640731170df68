//! The running ledger: gRPC API, credit-notice consumer and outbox relay, stopped together.

use std::future::Future;
use std::sync::Arc;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::{db, grpc, readiness};
use jinfu_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tracing::info;

use crate::api::LedgerApi;
use crate::settings::Settings;
use crate::guarantees::GuaranteeHandler;
use crate::refunds::ResultsHandler;
use crate::statements::StatementHandler;
use crate::trading::TradingHandler;
use crate::{consumer, ingest, observe, outbox, refunds, MIGRATOR, SCHEMA};
use jinfu_ledger::calendar::Calendar;

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
        TokenKeys::new(&settings.auth.token_secret)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings
            .kafka
            .create_topics(
                &["bank.credit-notices", "bank.statements", "ledger.events", "trading.events", "bank.payment-orders", "bank.payment-results", "guarantee.events"],
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

    /// Runs until `shutdown` resolves; then the consumer finishes its batch, the relay drains,
    /// and in-flight gRPC calls complete.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, pool, settings } = self;
        let (stop, stopped) = watch::channel(false);
        let keys = Arc::new(TokenKeys::new(&settings.auth.token_secret)?);
        let trading_handler = std::sync::Arc::new(TradingHandler { calendar: Calendar::china(), events_topic: settings.kafka.topic("ledger.events") });
        let signer = match &settings.refunds.signing {
            Some(signing) => Some(Arc::new(refunds::OrderSigner::from_settings(signing)?)),
            None => None,
        };
        let api = LedgerApi {
            pool: pool.clone(),
            trading: trading_handler,
            known_key_refs: settings.banks.keys().map(|k| k.to_ascii_lowercase()).collect(),
            signer,
            events_topic: settings.kafka.topic("ledger.events"),
            orders_topic: settings.kafka.topic("bank.payment-orders"),
        };
        let service = LedgerServiceServer::with_interceptor(api, auth::interceptor(keys));
        let routes = Routes::new(service);
        info!(address = %listener.local_addr()?, "ledger gRPC listening");

        let consumer = tokio::spawn(ingest::run_consumer(pool.clone(), settings.clone(), stopped.clone()));
        let events_topic = settings.kafka.topic("ledger.events");
        let trading = tokio::spawn(consumer::run(
            pool.clone(),
            settings.clone(),
            settings.kafka.topic("trading.events"),
            format!("{}-trading", settings.ingest.group_id),
            TradingHandler { calendar: Calendar::china(), events_topic: events_topic.clone() },
            stopped.clone(),
        ));
        let results = tokio::spawn(consumer::run(
            pool.clone(),
            settings.clone(),
            settings.kafka.topic("bank.payment-results"),
            format!("{}-payment-results", settings.ingest.group_id),
            ResultsHandler { keys: settings.bank_keys()?, events_topic },
            stopped.clone(),
        ));
        let guarantees = tokio::spawn(consumer::run(
            pool.clone(),
            settings.clone(),
            settings.kafka.topic("guarantee.events"),
            format!("{}-guarantees", settings.ingest.group_id),
            GuaranteeHandler,
            stopped.clone(),
        ));
        let statements_topic = settings.kafka.topic("bank.statements");
        let statements_group = format!("{}-statements", settings.ingest.group_id);
        let statements = tokio::spawn(consumer::run(
            pool.clone(),
            settings.clone(),
            statements_topic.clone(),
            statements_group.clone(),
            StatementHandler { keys: settings.bank_keys()?, events_topic: settings.kafka.topic("ledger.events"), topic: statements_topic, group_id: statements_group },
            stopped.clone(),
        ));
        let refund_runner = tokio::spawn(refunds::run_refunds(pool.clone(), settings.clone(), stopped.clone()));
        let producer = settings.kafka.producer()?;
        let relay = tokio::spawn(outbox::run_relay(pool.clone(), producer, settings.ingest.outbox_batch_max, stopped.clone()));
        let gauges = tokio::spawn(observe::run_gauges(pool.clone(), settings.kafka.clone(), stopped.clone()));
        let mut grpc_stopped = stopped.clone();
        let readiness = grpc::Readiness {
            services: vec![<LedgerServiceServer<LedgerApi> as tonic::server::NamedService>::NAME],
            check: readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone()),
            interval: std::time::Duration::from_secs(5),
        };
        let server = tokio::spawn(grpc::serve(listener, routes, jinfu_proto::FILE_DESCRIPTOR_SET, readiness, async move {
            let _ = grpc_stopped.changed().await;
        }));

        let mut consumer = consumer;
        tokio::select! {
            () = shutdown => info!("stopping the ledger"),
            result = &mut consumer => {
                // The consumer never ends on its own; if it does, stop everything so the
                // orchestrator restarts the process.
                let _ = stop.send(true);
                let _ = relay.await;
                let _ = server.await;
                return match result {
                    Ok(Ok(())) => Err(anyhow::anyhow!("credit-notice consumer stopped unexpectedly")),
                    Ok(Err(error)) => Err(error),
                    Err(error) => Err(error.into()),
                };
            }
        }
        let _ = stop.send(true);
        consumer.await??;
        trading.await??;
        results.await??;
        statements.await??;
        guarantees.await??;
        refund_runner.await??;
        relay.await?;
        gauges.await?;
        server.await??;
        Ok(())
    }
}
