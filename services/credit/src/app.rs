//! The running credit service: gRPC API, the contract.events and ledger.events consumers (facts
//! that become proposals) and the outbox relay, stopped together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{self, ConsumerSettings, Verified};
use jinfu_platform::signing::{EventVerifier, Signer};
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, outbox, readiness, topics};
use jinfu_proto::credit::v1::credit_service_server::CreditServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::CreditApi;
use crate::facts::FactEvents;
use crate::settings::Settings;
use crate::{MIGRATOR, SCHEMA};

/// The services whose events become proposals: (`trusted_publishers` name, topic).
pub const FACT_PUBLISHERS: [(&str, &str); 2] = [("contract", topics::CONTRACT_EVENTS), ("ledger", topics::LEDGER_EVENTS)];

/// How long tasks get to finish once stopping, within the pod's termination grace period.
const STOP_GRACE: Duration = Duration::from_secs(25);

pub struct Application {
    listener: TcpListener,
    pool: PgPool,
    settings: Settings,
    clock: SharedClock,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, jinfu_platform::clock::system()).await
    }

    /// As [`Application::build`], reading "now" from `clock` (tests move time).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        Signer::required(&settings.signing)?;
        TokenKeys::from_settings(&settings.auth)?;
        for (publisher, _) in FACT_PUBLISHERS {
            EventVerifier::for_publisher(&settings.trusted_publishers, publisher)?;
        }
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        settings.kafka.create_topics(&[topics::CREDIT_EVENTS, topics::CONTRACT_EVENTS, topics::LEDGER_EVENTS], settings.kafka.partitions).await?;
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
        let signer = Arc::new(Signer::required(&settings.signing)?);
        let events_topic = settings.kafka.topic(topics::CREDIT_EVENTS);
        let api = CreditApi { pool: pool.clone(), events_topic: events_topic.clone(), signer: signer.clone(), clock: clock.clone() };
        let service = CreditServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "credit gRPC listening");
        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        tasks.spawn_unit("outbox relay", outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.outbox_batch_max, stopping.clone()));
        let prefix = settings.consumer.group_id.clone().unwrap_or_else(|| "credit".into());
        for (publisher, topic) in FACT_PUBLISHERS {
            let verifier = EventVerifier::for_publisher(&settings.trusted_publishers, publisher)?;
            let handler = Verified::new(verifier, FactEvents { publisher, events_topic: events_topic.clone(), clock: clock.clone() });
            let consumer_settings = ConsumerSettings {
                kafka: settings.kafka.clone(),
                assignment: settings.consumer.assignment,
                instance_id: settings.consumer.instance_id.clone(),
            };
            let run = consumer::run(pool.clone(), consumer_settings, settings.kafka.topic(topic), format!("{prefix}-{publisher}"), handler, stopping.clone());
            tasks.spawn(&format!("{publisher}-fact consumer"), run);
        }
        let readiness = grpc::Readiness {
            services: vec![<CreditServiceServer<CreditApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the credit service");
            })
            .await?;
        Ok(())
    }
}
