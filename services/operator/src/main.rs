use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jinfu_operator::controller::{self, Context};
use jinfu_operator::platform::LedgerPlatform;
use jinfu_platform::auth::{AuthSettings, TokenKeys};
use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::metrics::MetricsSettings;
use jinfu_platform::telemetry::TelemetrySettings;
use jinfu_platform::{config, grpc, metrics, readiness, shutdown, telemetry};
use kube::runtime::events::{Recorder, Reporter};
use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::service::Routes;

/// The Jinfu Kubernetes operator: reconciles TradingCentre resources into the platform.
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
    /// Watch TradingCentre resources and reconcile them until SIGTERM.
    Run,
    /// Ask a running service's gRPC health service; exit 0 if it is SERVING.
    Health(grpc::HealthArgs),
}

#[derive(Debug, Deserialize)]
struct Settings {
    operator: OperatorSettings,
    auth: AuthSettings,
    #[serde(default)]
    grpc: GrpcSettings,
    #[serde(default)]
    telemetry: TelemetrySettings,
    #[serde(default)]
    metrics: MetricsSettings,
}

#[derive(Debug, Deserialize)]
struct OperatorSettings {
    /// The ledger's gRPC endpoint, e.g. `http://jinfu-ledger:50051`.
    ledger_endpoint: String,
    /// Namespace whose TradingCentres are watched; unset: every namespace (needs a ClusterRole).
    #[serde(default)]
    namespace: Option<String>,
    /// This replica's name in the events it publishes (the pod name).
    #[serde(default)]
    instance: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("operator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Health(args) => grpc::health_command(&args).await,
        Command::Run => {
            let settings: Settings = config::load(cli.config.as_deref())?;
            let _telemetry = telemetry::init("operator", &settings.telemetry)?;
            metrics::install(&settings.metrics)?;
            let keys = TokenKeys::from_settings(&settings.auth)?;
            let platform = LedgerPlatform::new(&settings.operator.ledger_endpoint, keys)?;
            let client = kube::Client::try_default().await?;
            let reporter = Reporter { controller: "jinfu-operator".into(), instance: settings.operator.instance.clone() };
            let recorder = Recorder::new(client.clone(), reporter);
            let context = Arc::new(Context { client, platform, recorder });
            let listener = TcpListener::bind(&settings.grpc.listen).await?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut grpc_stopped = stopped.clone();
            // The operator serves only health: the controller itself needs no inbound traffic.
            let readiness = grpc::Readiness { services: Vec::new(), check: readiness::always(), interval: Duration::from_secs(30) };
            let server =
                tokio::spawn(grpc::serve(listener, Routes::default(), jinfu_proto::FILE_DESCRIPTOR_SET, readiness, settings.grpc.limits(), async move {
                    let _ = grpc_stopped.changed().await;
                }));
            controller::run(context, settings.operator.namespace.as_deref(), shutdown::signal()).await;
            let _ = stop.send(true);
            server.await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}
