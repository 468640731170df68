use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jinfu_contract_service::app::Application;
use jinfu_contract_service::calendar::LedgerCalendar;
use jinfu_contract_service::report::overdue_report;
use jinfu_contract_service::settings::{AuthSettings, LedgerSettings, Settings};
use jinfu_contract_service::{MIGRATOR, SCHEMA};
use jinfu_platform::auth::TokenKeys;
use jinfu_platform::db::DatabaseSettings;
use jinfu_platform::{cli, config, db, shutdown};
use serde::Deserialize;

/// The Jinfu contract and invoice service.
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
    #[command(flatten)]
    Common(cli::Common),
    /// Print the annual report of overdue payments to SMEs (保障中小企业款项支付条例 art. 18) of a
    /// centre for a year, one purchaser per line (tab-separated: purchaser USCC, name, contracts,
    /// invoices, overdue unpaid yuan, overdue interest yuan). Exit 1 if any purchaser has overdue
    /// payments.
    OverdueReport {
        #[arg(long)]
        centre: String,
        #[arg(long)]
        year: i32,
    },
}

/// What the report needs: the database, and the ledger (with the token secret) for its calendar.
#[derive(Deserialize)]
struct ReportSettings {
    database: DatabaseSettings,
    #[serde(default)]
    ledger: Option<LedgerSettings>,
    #[serde(default)]
    auth: Option<AuthSettings>,
}

const SERVICE: cli::Service = cli::Service { name: "contract", schema: SCHEMA, migrator: &MIGRATOR };

#[tokio::main]
async fn main() -> ExitCode {
    cli::exit(&SERVICE, run().await)
}

async fn run() -> anyhow::Result<ExitCode> {
    let args = Cli::parse();
    match args.command {
        Command::Common(common) => {
            cli::run(&SERVICE, args.config.as_deref(), common, |settings: Settings| async move {
                Application::build(settings).await?.run_until_stopped(shutdown::signal()).await
            })
            .await
        }
        Command::OverdueReport { centre, year } => {
            let settings: ReportSettings = config::load(args.config.as_deref())?;
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            let calendar = match (&settings.ledger, &settings.auth) {
                (Some(ledger), Some(auth)) => LedgerCalendar::new(&ledger.endpoint, TokenKeys::from_settings(auth)?, &ledger.centre_id)?.fetch().await?,
                _ => jinfu_ledger::calendar::Calendar::china(),
            };
            let today = jinfu_ledger::beijing::date(chrono::Utc::now());
            let rows = overdue_report(&pool, &calendar, &centre, year, None, today).await?;
            println!("purchaser_uscc\tpurchaser_name\tcontracts\tinvoices\toverdue_unpaid_yuan\toverdue_interest_yuan");
            for row in &rows {
                let yuan = |fen: i64| jinfu_ledger::Fen::from_fen(fen).to_yuan_string();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    row.purchaser_uscc,
                    row.purchaser_name,
                    row.contracts,
                    row.invoices,
                    yuan(row.overdue_unpaid_fen),
                    yuan(row.overdue_interest_fen)
                );
            }
            println!("{} purchasers of centre {centre} with payments to SMEs overdue and unpaid at the end of {year}", rows.len());
            Ok(if rows.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
