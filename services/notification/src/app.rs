//! The running notification service: one verified consumer per service's events topic, the
//! trading.events consumer, the dispatcher, the reminder sweeper and the gRPC API, stopped
//! together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jinfu_platform::auth::{self, TokenKeys};
use jinfu_platform::clock::SharedClock;
use jinfu_platform::consumer::{self, ConsumerSettings, Verified};
use jinfu_platform::signing::{EventVerifier, Signer};
use jinfu_platform::supervisor::Supervisor;
use jinfu_platform::{db, grpc, outbox, readiness, topics};
use jinfu_proto::notification::v1::notification_service_server::NotificationServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tracing::info;

use crate::api::NotificationApi;
use crate::channels::{email::EmailSender, sms::SmsSender, webhook::WebhookSender, Senders};
use crate::compose::{Composer, Enabled};
use crate::consume::{ServiceEvents, TradingEvents};
use crate::dispatch::Dispatcher;
use crate::domain::templates::Templates;
use crate::reminders::Sweeper;
use crate::settings::Settings;
use crate::{MIGRATOR, SCHEMA};

/// How long tasks get to finish once stopping, within the pod's termination grace period.
const STOP_GRACE: Duration = Duration::from_secs(25);

/// The services whose events are consumed: (publisher name in `trusted_publishers`, topic).
pub const PUBLISHERS: [(&str, &str); 5] = [
    ("ledger", topics::LEDGER_EVENTS),
    ("guarantee", topics::GUARANTEE_EVENTS),
    ("contract", topics::CONTRACT_EVENTS),
    ("credit", topics::CREDIT_EVENTS),
    ("loans", topics::LOAN_EVENTS),
];

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
        TokenKeys::from_settings(&settings.auth)?;
        Templates::load()?;
        settings.quiet_hours.parse()?;
        for (publisher, _) in PUBLISHERS {
            EventVerifier::for_publisher(&settings.trusted_publishers, publisher)?;
        }
        senders(&settings)?;
        let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        let mut names: Vec<&str> = PUBLISHERS.iter().map(|(_, topic)| *topic).collect();
        names.push(topics::TRADING_EVENTS);
        settings.kafka.create_topics(&names, settings.kafka.partitions).await?;
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
        let enabled = Enabled { email: settings.smtp.is_some(), sms: settings.sms.is_some(), webhook: true };
        let composer = Arc::new(Composer { templates: Arc::new(Templates::load()?), quiet: settings.quiet_hours.parse()?, enabled });
        let api = NotificationApi { pool: pool.clone(), clock: clock.clone() };
        let service = NotificationServiceServer::with_interceptor(api, auth::interceptor(Arc::new(keys)));
        info!(address = %listener.local_addr()?, "notification gRPC listening");
        let mut tasks = Supervisor::new(STOP_GRACE);
        let stopping = tasks.stopping();
        // The consumers' dead letters go out through the outbox, like every service's events.
        let signer = Arc::new(Signer::required(&settings.signing)?);
        tasks.spawn_unit("outbox relay", outbox::run_relay(pool.clone(), settings.kafka.producer()?, signer, settings.outbox_batch_max, stopping.clone()));
        let calendar = Arc::new(jinfu_ledger::calendar::Calendar::china());
        let prefix = settings.consumer.group_id.clone().unwrap_or_else(|| "notification".into());
        let consumer_settings =
            || ConsumerSettings { kafka: settings.kafka.clone(), assignment: settings.consumer.assignment, instance_id: settings.consumer.instance_id.clone() };
        for (publisher, topic) in PUBLISHERS {
            let verifier = EventVerifier::for_publisher(&settings.trusted_publishers, publisher)?;
            let handler =
                Verified::new(verifier, ServiceEvents { source: publisher, composer: composer.clone(), clock: clock.clone(), calendar: calendar.clone() });
            let run = consumer::run(pool.clone(), consumer_settings(), settings.kafka.topic(topic), format!("{prefix}-{publisher}"), handler, stopping.clone());
            tasks.spawn(&format!("{publisher}-event consumer"), run);
        }
        let handler = TradingEvents { composer: composer.clone(), clock: clock.clone() };
        let run = consumer::run(
            pool.clone(),
            consumer_settings(),
            settings.kafka.topic(topics::TRADING_EVENTS),
            format!("{prefix}-trading"),
            handler,
            stopping.clone(),
        );
        tasks.spawn("trading-event consumer", run);
        let dispatcher = Dispatcher { pool: pool.clone(), senders: Arc::new(senders(&settings)?), clock: clock.clone(), settings: settings.dispatch.clone() };
        tasks.spawn_unit("dispatcher", dispatcher.run(stopping.clone()));
        let sweeper = Sweeper { pool: pool.clone(), composer, clock, lead: chrono::Duration::hours(settings.deposit_reminder_hours.max(1)) };
        tasks.spawn_unit("reminder sweeper", sweeper.run(Duration::from_secs(settings.sweep_interval_seconds.max(1)), stopping.clone()));
        let readiness = grpc::Readiness {
            services: vec![<NotificationServiceServer<NotificationApi> as tonic::server::NamedService>::NAME],
            check: tasks.health().readiness(readiness::postgres_and_kafka(pool.clone(), settings.kafka.clone())),
            interval: Duration::from_secs(5),
        };
        let server = grpc::serve(listener, Routes::new(service), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), tasks.stopped());
        tasks.spawn("gRPC server", server);
        tasks
            .run(async move {
                shutdown.await;
                info!("stopping the notification service");
            })
            .await?;
        Ok(())
    }
}

fn senders(settings: &Settings) -> anyhow::Result<Senders> {
    Ok(Senders {
        email: settings.smtp.as_ref().map(EmailSender::new).transpose()?,
        sms: settings.sms.as_ref().map(SmsSender::new).transpose()?,
        webhook: WebhookSender::new(Duration::from_secs(settings.webhook.timeout_seconds.max(1)))?,
    })
}
