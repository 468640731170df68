use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use jinfu_ledger_service::app::Application;
use jinfu_ledger_service::settings::Settings;
use jinfu_ledger_service::{store, trading, verify, MIGRATOR, SCHEMA};
use jinfu_platform::{cli, config, db, kafka, shutdown};

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
    #[command(flatten)]
    Common(cli::Common),
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
        from: Option<NaiveDate>,
        #[arg(long)]
        to: Option<NaiveDate>,
    },
    /// The national working-day calendar (State Council holidays): load a year, list the years.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Load one year from FILE, in the format of ledger/data/cn-holidays.txt: a
    /// `year <year> <source>` line naming the State Council's notice, then `holiday` and
    /// `workday` lines. Refused when inconsistent, or when it changes a year that scheduled
    /// refunds depend on. Refunds waiting for the year are scheduled by the load.
    Load {
        #[arg(long)]
        year: i32,
        #[arg(long)]
        file: PathBuf,
    },
    /// List the calendar's years (seed and loaded), the days it has left and the refunds
    /// waiting for a year.
    List,
}

const SERVICE: cli::Service = cli::Service { name: "ledger", schema: SCHEMA, migrator: &MIGRATOR };

#[tokio::main]
async fn main() -> ExitCode {
    cli::exit(&SERVICE, run().await)
}

async fn run() -> anyhow::Result<ExitCode> {
    let args = Cli::parse();
    let command = match args.command {
        Command::Common(common) => {
            return cli::run(&SERVICE, args.config.as_deref(), common, |settings: Settings| async move {
                Application::build(settings).await?.run_until_stopped(shutdown::signal()).await
            })
            .await;
        }
        own => own,
    };
    let settings: Settings = config::load(args.config.as_deref())?;
    match command {
        Command::Common(_) => unreachable!("the shared commands returned above"),
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
            let today = jinfu_ledger::beijing::date(chrono::Utc::now());
            let stale = store::deposits::stale_deposits(&pool, &centre, today).await?;
            println!("section\tbidder\theld_yuan\tdue_on\trefund_status");
            for (section, bidder, held, due_on, status) in &stale {
                println!("{section}\t{bidder}\t{}\t{due_on}\t{status}", jinfu_ledger::Fen::from_fen(*held));
            }
            println!("{} stale deposits in centre {centre} on {today}", stale.len());
        }
        Command::Reconciliation { centre, statement, from, to } => {
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            return reconciliation(&pool, &centre, statement.as_deref(), from, to).await;
        }
        Command::Calendar { command } => {
            let pool = db::connect_and_migrate(&settings.database, SCHEMA, &MIGRATOR).await?;
            return calendar(&pool, &settings, command).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger calendar load|list`.
async fn calendar(pool: &sqlx::PgPool, settings: &Settings, command: CalendarCommand) -> anyhow::Result<ExitCode> {
    match command {
        CalendarCommand::Load { year, file } => {
            let text = std::fs::read_to_string(&file).map_err(|error| anyhow::anyhow!("reading {}: {error}", file.display()))?;
            let (data, source) = jinfu_ledger::calendar::YearData::parse(year, &text)?;
            let source = jinfu_ledger_service::domain::calendar::source(&source).map_err(|problem| anyhow::anyhow!(problem))?;
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let events_topic = settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS);
            let loaded = trading::load_calendar_year(pool, None, &data, source, &format!("cli:{user}"), chrono::Utc::now(), &events_topic).await?;
            println!(
                "calendar {year}: {} (load {}; {} holidays, {} make-up workdays; {} waiting refunds scheduled); source: {source}",
                loaded.outcome.code(),
                loaded.load_id,
                data.holidays().count(),
                data.make_up_workdays().count(),
                loaded.refunds_scheduled
            );
        }
        CalendarCommand::List => {
            let loaded = store::calendar::loaded_years(pool).await?;
            let (calendar, version) = trading::load_calendar(pool).await?;
            println!("year\torigin\tloaded_at\tloaded_by\tsource");
            let seed: Vec<i32> = jinfu_ledger::calendar::Calendar::china().years().collect();
            for year in calendar.years() {
                match loaded.iter().find(|entry| entry.data.year() == year) {
                    Some(entry) => println!("{year}\tloaded\t{}\t{}\t{}", entry.loaded_at.to_rfc3339(), entry.loaded_by, entry.source),
                    None if seed.contains(&year) => println!("{year}\tseed\t-\t-\tcompiled-in data"),
                    None => {}
                }
            }
            let today = jinfu_ledger::beijing::date(chrono::Utc::now());
            let until = calendar.covered_until(today).map(|day| day.to_string()).unwrap_or_else(|| "-".into());
            let pending = store::calendar::pending_count(pool).await?;
            println!("version {version}; covered until {until} ({} days left); {pending} refunds pending the calendar", calendar.days_left(today));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ledger reconciliation`: prints the reports (and, for one statement, its discrepancies); exit 1
/// if any listed report is not balanced.
async fn reconciliation(
    pool: &sqlx::PgPool,
    centre: &str,
    statement: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let reports = match statement {
        Some(id) => match store::reconciliation::get_report(pool, id, 100_000).await? {
            Some((report, lines)) if report.centre_id == centre => vec![(report, lines)],
            _ => anyhow::bail!("centre {centre} has no reconciliation report for statement {id:?}"),
        },
        None => {
            let to = to.unwrap_or_else(|| jinfu_ledger::beijing::date(chrono::Utc::now()));
            let from = from.unwrap_or(to - chrono::Duration::days(31));
            store::reconciliation::list_reports(pool, centre, from, to).await?.into_iter().map(|report| (report, Vec::new())).collect()
        }
    };
    let yuan = |fen: i64| jinfu_ledger::Fen::from_fen(fen).to_string();
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
            yuan(report.bank_closing_fen),
            yuan(report.ledger_closing_fen),
            report.late_notified,
            report.discrepancies,
            report.reconcile_ms
        );
        for (kind, serial, amount, detail) in lines {
            println!("  {kind}\t{}\t{}\t{detail}", serial.as_deref().unwrap_or("-"), amount.map(yuan).unwrap_or_else(|| "-".into()));
        }
    }
    Ok(if reports.iter().any(|(report, _)| report.status != "balanced") { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
