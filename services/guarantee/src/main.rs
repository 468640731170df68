use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jinfu_guarantee_service::app::Application;
use jinfu_guarantee_service::settings::Settings;
use jinfu_guarantee_service::{MIGRATOR, SCHEMA};
use jinfu_platform::{config, db, grpc, metrics, shutdown, telemetry};

/// The Jinfu e-guarantee service.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; `JINFU_…` environment variables override it.
    #[arg(long, global = true, env = "JINFU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC API and the outbox relay.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask a running service's gRPC health service; exit 0 if it is SERVING.
    Health(grpc::HealthArgs),
}

#[derive(serde::Deserialize)]
struct MigrateSettings {
    database: jinfu_platform::db::DatabaseSettings,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("guarantee: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Command::Health(args) = &cli.command {
        return grpc::health_command(args).await;
    }
    if let Command::Migrate = cli.command {
        // Needs only the database: the migration Job gets no sealing key.
        let settings: MigrateSettings = config::load(cli.config.as_deref())?;
        db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
        println!("migrations applied");
        return Ok(ExitCode::SUCCESS);
    }
    let settings: Settings = config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let _telemetry = telemetry::init("guarantee", &settings.telemetry)?;
            metrics::install(&settings.metrics)?;
            Application::build(settings).await?.run_until_stopped(shutdown::signal()).await?;
        }
        Command::Migrate | Command::Health(_) => unreachable!("handled before the full configuration is loaded"),
    }
    Ok(ExitCode::SUCCESS)
}
