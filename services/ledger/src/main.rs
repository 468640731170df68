use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jinfu_ledger::ids::CentreCode;
use jinfu_ledger_service::app::Application;
use jinfu_ledger_service::settings::Settings;
use jinfu_ledger_service::{statements, verify, MIGRATOR, SCHEMA};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::{config, db, grpc, kafka, metrics, shutdown, telemetry};

/// The Jinfu deposit ledger.
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
    /// Run the gRPC API, the credit-notice consumer and the outbox relay.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create every platform topic and its dead-letter twin (idempotent).
    CreateTopics,
    /// Recompute balances and check every ledger invariant; exit 1 on any violation.
    Verify,
    /// List a centre's stale deposits (held after their refund due date), one per line.
    Stale {
        #[arg(long)]
        centre: String,
    },
    /// Print reconciliation reports: a centre's, by statement date (default: the last 31 days),
    /// or with --statement one report and its discrepancies. Exit 1 if any listed report has
    /// discrepancies.
    Reconciliation {
        #[arg(long)]
        centre: String,
        #[arg(long)]
        statement: Option<String>,
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
    },
    /// Ask a running service's gRPC health service; exit 0 if it is SERVING (probes, `helm test`).
    Health(grpc::HealthArgs),
    /// Issue a bearer token (for operators' tools and the demo).
    Token {
        #[arg(long)]
        role: Role,
        #[arg(long)]
        centre: String,
        #[arg(long, default_value = "")]
        party: String,
        #[arg(long, default_value_t = 3600)]
        valid_seconds: i64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ledger: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Command::Health(args) = &cli.command {
        // Needs no configuration: it runs in probe and test pods with nothing but the address.
        return grpc::health_command(args).await;
    }
    let settings: Settings = config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let _telemetry = telemetry::init("ledger", &settings.telemetry)?;
            metrics::install(&settings.metrics)?;
            let application = Application::build(settings).await?;
            application.run_until_stopped(shutdown::signal()).await?;
        }
        Command::Migrate => {
            db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            println!("migrations applied");
        }
        Command::CreateTopics => {
            settings.kafka.create_topics(&kafka::TOPICS, settings.kafka.partitions).await?;
            println!("topics ready: {} and their .dlq twins", kafka::TOPICS.join(", "));
        }
        Command::Verify => {
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            let result = verify::verify(&pool).await?;
            println!("checked {} entries, {} accounts, {} notices", result.entries, result.accounts, result.notices);
            for violation in &result.violations {
                println!("VIOLATION {violation}");
            }
            if !result.ok() {
                println!("verify: FAILED ({} violations)", result.violations.len());
                return Ok(ExitCode::FAILURE);
            }
            println!("verify: ok");
        }
        Command::Stale { centre } => {
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            let today = jinfu_ledger_service::trading::china_date(chrono::Utc::now());
            let stale = jinfu_ledger_service::api::stale_deposits(&pool, &centre, today).await?;
            println!("section\tbidder\theld_yuan\tdue_on\trefund_status");
            for (section, bidder, held, due_on, status) in &stale {
                println!("{section}\t{bidder}\t{}\t{due_on}\t{status}", jinfu_ledger::Fen::from_fen(*held));
            }
            println!("{} stale deposits in centre {centre} on {today}", stale.len());
        }
        Command::Reconciliation { centre, statement, from, to } => {
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            let reports = match &statement {
                Some(id) => match statements::get_report(&pool, id, 100_000).await? {
                    Some((report, lines)) if report.centre_id == centre => vec![(report, lines)],
                    _ => anyhow::bail!("centre {centre} has no reconciliation report for statement {id:?}"),
                },
                None => {
                    let to = to.unwrap_or_else(|| jinfu_ledger_service::trading::china_date(chrono::Utc::now()));
                    let from = from.unwrap_or(to - chrono::Duration::days(31));
                    statements::list_reports(&pool, &centre, from, to).await?.into_iter().map(|report| (report, Vec::new())).collect()
                }
            };
            println!("statement_id\tdate\tbank\taccount\tstatus\tlines\tbank_closing_yuan\tledger_closing_yuan\tlate_notified\tdiscrepancies\treconcile_ms");
            for (report, lines) in &reports {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    report.statement_id,
                    report.statement_date,
                    report.bank,
                    report.account_number,
                    report.status,
                    report.line_count,
                    jinfu_ledger::Fen::from_fen(report.bank_closing_fen),
                    jinfu_ledger::Fen::from_fen(report.ledger_closing_fen),
                    report.late_notified,
                    report.discrepancies,
                    report.reconcile_ms
                );
                for (kind, serial, amount, detail) in lines {
                    println!("  {kind}\t{}\t{}\t{detail}", serial.as_deref().unwrap_or("-"), amount.map(|fen| jinfu_ledger::Fen::from_fen(fen).to_string()).unwrap_or_else(|| "-".into()));
                }
            }
            if reports.iter().any(|(report, _)| report.status != "balanced") {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Health(_) => unreachable!("handled before the configuration is loaded"),
        Command::Token { role, centre, party, valid_seconds } => {
            let keys = TokenKeys::new(&settings.auth.token_secret)?;
            let centre = CentreCode::parse(&centre)?;
            println!("{}", keys.issue(role, &centre, &party, valid_seconds)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
