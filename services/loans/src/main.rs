use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jinfu_loans_service::app::Application;
use jinfu_loans_service::settings::Settings;
use jinfu_loans_service::{MIGRATOR, SCHEMA};
use jinfu_platform::{cli, shutdown};

/// The Jinfu loans service.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; `JINFU_…` environment variables override it.
    #[arg(long, global = true, env = "JINFU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: cli::Common,
}

const SERVICE: cli::Service = cli::Service { name: "loans", schema: SCHEMA, migrator: &MIGRATOR };

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    let result = cli::run(&SERVICE, args.config.as_deref(), args.command, |settings: Settings| async move {
        Application::build(settings).await?.run_until_stopped(shutdown::signal()).await
    })
    .await;
    cli::exit(&SERVICE, result)
}
