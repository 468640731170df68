//! The command line every service binary shares: `serve`, `migrate`, `health`, `token`,
//! `outbox-parked` and `outbox-unpark`, each
//! loading only the settings it needs (the migration Job has no signing keys; a probe has nothing
//! but an address). A service adds its own subcommands beside these by flattening [`Common`]
//! into its `Command` enum (see `docs/new-service.md`).

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use jinfu_ledger::ids::CentreCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sqlx::migrate::Migrator;

use crate::auth::{AuthSettings, Role, TokenKeys};
use crate::db::DatabaseSettings;
use crate::grpc::HealthArgs;
use crate::metrics::MetricsSettings;
use crate::telemetry::TelemetrySettings;
use crate::{config, db, grpc, metrics, outbox, telemetry};

/// What the shared commands need to know of a service.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The service's name in traces, logs and error lines, e.g. `ledger`.
    pub name: &'static str,
    /// Its PostgreSQL schema.
    pub schema: &'static str,
    /// Its own migrations (the platform's run first).
    pub migrator: &'static Migrator,
}

/// The subcommands every service has.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Common {
    /// Run the service: its gRPC API and every background task, until SIGTERM or a task fails.
    Serve,
    /// Apply database migrations (the platform's tables, then the service's) and exit.
    Migrate,
    /// Ask a running service's gRPC health service; exit 0 if it is SERVING (probes, `helm test`).
    Health(HealthArgs),
    /// Issue a bearer token signed with the configured token secret (operators' tools, the demo).
    Token(TokenArgs),
    /// List outbox rows parked because they cannot be published (oldest first; tab-separated:
    /// id, topic, key, bytes, created, parked, reason). Exit 1 if there are any.
    OutboxParked {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Give a parked outbox row back to the relay, once what stopped it is fixed.
    OutboxUnpark {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub role: Role,
    /// The caller's centre (six-digit code).
    #[arg(long)]
    pub centre: String,
    /// The party the caller acts for (a bidder's or issuer's code); empty for staff.
    #[arg(long, default_value = "")]
    pub party: String,
    /// Lifetime in seconds; default the longest the role may have (`auth.service_token_max_seconds`
    /// for admin, bank and issuer, `auth.person_token_max_seconds` for people). More is refused.
    #[arg(long)]
    pub valid_seconds: Option<i64>,
}

#[derive(Deserialize)]
struct DatabaseOnly {
    database: DatabaseSettings,
}

#[derive(Deserialize)]
struct AuthOnly {
    auth: AuthSettings,
}

#[derive(Deserialize)]
struct Observability {
    #[serde(default)]
    telemetry: TelemetrySettings,
    #[serde(default)]
    metrics: MetricsSettings,
}

/// Runs one of the shared commands. `serve` receives the service's full settings (type `S`,
/// from the file `config` and `JINFU_…` variables) once telemetry and metrics are installed, and
/// runs until the service stops.
pub async fn run<S, F, Fut>(service: &Service, config: Option<&Path>, command: Common, serve: F) -> anyhow::Result<ExitCode>
where
    S: DeserializeOwned,
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    match command {
        Common::Health(args) => grpc::health_command(&args).await,
        Common::Migrate => {
            let settings: DatabaseOnly = config::load(config)?;
            db::connect_and_migrate(&settings.database, service.schema, service.migrator).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Common::Token(args) => {
            let settings: AuthOnly = config::load(config)?;
            let keys = TokenKeys::from_settings(&settings.auth)?;
            let centre = CentreCode::parse(&args.centre)?;
            let valid_seconds = args.valid_seconds.unwrap_or_else(|| keys.lifetimes().max_seconds(args.role));
            println!("{}", keys.issue(args.role, &centre, &args.party, valid_seconds)?);
            Ok(ExitCode::SUCCESS)
        }
        Common::OutboxParked { limit } => {
            let settings: DatabaseOnly = config::load(config)?;
            let pool = db::connect_and_migrate(&settings.database, service.schema, service.migrator).await?;
            let rows = outbox::parked(&pool, limit.clamp(1, 10_000)).await?;
            println!("id\ttopic\tkey\tbytes\tcreated_at\tparked_at\treason");
            for row in &rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    row.id,
                    row.topic,
                    row.key,
                    row.payload_bytes,
                    row.created_at.to_rfc3339(),
                    row.parked_at.to_rfc3339(),
                    row.reason
                );
            }
            println!("{} parked outbox rows in schema {}", rows.len(), service.schema);
            Ok(if rows.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Common::OutboxUnpark { id } => {
            let settings: DatabaseOnly = config::load(config)?;
            let pool = db::connect_and_migrate(&settings.database, service.schema, service.migrator).await?;
            anyhow::ensure!(outbox::unpark(&pool, id).await?, "no parked outbox row has id {id}");
            println!("outbox row {id} handed back to the relay");
            Ok(ExitCode::SUCCESS)
        }
        Common::Serve => {
            let observability: Observability = config::load(config)?;
            let settings: S = config::load(config)?;
            let _telemetry = telemetry::init(service.name, &observability.telemetry)?;
            metrics::install(&observability.metrics)?;
            serve(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The end of every service's `main`: the exit code, or the error chain on stderr and exit 1.
pub fn exit(service: &Service, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}: {error:#}", service.name);
            ExitCode::FAILURE
        }
    }
}
