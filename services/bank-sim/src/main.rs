use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jinfu_bank_sim::bench;
use jinfu_bank_sim::demo::{self, DemoBank, DemoSettings};
use jinfu_bank_sim::guarantees::GuaranteeDemo;
use jinfu_platform::auth::TokenKeys;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::signing::{Scheme, SigningKey};
use secrecy::SecretString;

/// A simulated bank for demos and tests.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the simulated SMS gateway and webhook receiver (docs/notifications.md) until stopped;
    /// prints `gateways: listening on <address>`.
    Gateways {
        #[arg(long, default_value = "127.0.0.1:8025")]
        listen: String,
        /// The SMS access key secret the gateway checks each request's HMAC with.
        #[arg(long, env = "JINFU_SMS__ACCESS_KEY_SECRET", hide_env_values = true)]
        sms_secret: String,
        /// The webhook receiver's `whsec_` signing secret.
        #[arg(long, env = "JINFU_DEMO_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
    },
    /// The notification benchmark's driver (scripts/bench-notify.sh): runs the simulated
    /// gateways on `--gateways-listen`, registers contacts, produces `--events` signed
    /// `ledger.events`, and measures the deliveries; last line `deliveries_per_second=<integer>`.
    BenchNotify {
        #[arg(long, default_value = "http://127.0.0.1:50085")]
        url: String,
        #[arg(long, default_value = "http://127.0.0.1:9185/metrics")]
        metrics_url: String,
        #[arg(long, default_value = "127.0.0.1:18025")]
        gateways_listen: String,
        #[arg(long, env = "JINFU_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "JINFU_KAFKA__TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
        #[arg(long, env = "JINFU_AUTH__TOKEN_SECRET", hide_env_values = true)]
        token_secret: String,
        /// The key the events are signed with (the service trusts it as publisher `ledger`).
        #[arg(long, env = "BENCH_LEDGER_PRIVATE_KEY", hide_env_values = true)]
        ledger_private_key: String,
        #[arg(long, env = "JINFU_SMS__ACCESS_KEY_SECRET", hide_env_values = true)]
        sms_secret: String,
        #[arg(long, env = "BENCH_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 10_000)]
        bidders: usize,
        #[arg(long, default_value_t = 10)]
        email_every: usize,
        /// Events per second; 0 produces them all at once (the drain).
        #[arg(long, default_value_t = 0)]
        rate: usize,
        #[arg(long, default_value_t = 900)]
        wait_seconds: u64,
    },
    /// Generate a signing key pair; prints `<scheme> <private hex> <public hex>`.
    Keygen {
        #[arg(long, default_value = "sm2-sm3")]
        scheme: String,
    },
    /// Set up the demo province over gRPC, stream signed notices, print the ledger's summary.
    Demo {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        ledger_url: String,
        #[arg(long, env = "JINFU_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "JINFU_KAFKA__TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
        /// The platform's token secret (the demo mints its own admin, operator and bidder tokens).
        #[arg(long, env = "JINFU_AUTH__TOKEN_SECRET", hide_env_values = true)]
        token_secret: String,
        /// `<bank code>:<account number>:<centre>:<key ref>:<scheme>:<private key hex>`, repeated.
        #[arg(long = "bank", required = true)]
        banks: Vec<String>,
        #[arg(long, default_value_t = 3000)]
        count: usize,
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        #[arg(long, default_value_t = 20261122)]
        seed: u64,
        #[arg(long, default_value_t = 180)]
        wait_seconds: u64,
        /// Payment orders per thousand the simulated banks refuse (payee account closed).
        #[arg(long, default_value_t = 50)]
        refund_failures_per_thousand: u32,
        /// How long a simulated bank takes to execute a payment order.
        #[arg(long, default_value_t = 20)]
        refund_delay_ms: u64,
        /// The e-guarantee service's gRPC endpoint; given, a share of the bidders buy a bid
        /// guarantee instead of paying cash.
        #[arg(long)]
        guarantee_url: Option<String>,
        /// `<issuer code>:<scheme>:<private key hex>` for CCBG, PICC, GZDB, repeated; an issuer
        /// not named gets a fresh key.
        #[arg(long = "issuer")]
        issuers: Vec<String>,
        /// Bidders per hundred, in each open section, who buy a bid guarantee.
        #[arg(long, default_value_t = 30)]
        guarantee_percent: u32,
        /// The contract service's gRPC endpoint; given, the awarded sections' contracts are
        /// signed, invoiced and paid there after the refunds (needs --contract-clock-file).
        #[arg(long, requires = "contract_clock_file")]
        contract_url: Option<String>,
        /// The file the contract service reads "now" from (its `JINFU_CLOCK_FILE`); the demo
        /// moves it day by day.
        #[arg(long)]
        contract_clock_file: Option<std::path::PathBuf>,
        /// The loans service's gRPC endpoint (with --contract-url, reading the same clock file);
        /// given, lenders finance some contracts, the purchasers' payments repay them and one
        /// defaults.
        #[arg(long, requires = "contract_url")]
        loans_url: Option<String>,
        /// The credit service's gRPC endpoint; given, the ledger's collusion leads become
        /// proposals, a supervisor decides them and a debarred bidder is refused a guarantee.
        #[arg(long)]
        credit_url: Option<String>,
        /// The notification service's gRPC endpoint; given, bidders register contacts and the
        /// demo ends with the notification summary.
        #[arg(long)]
        notification_url: Option<String>,
        /// The notification service's metrics URL (`http://…/metrics`).
        #[arg(long, default_value = "http://127.0.0.1:9193/metrics")]
        notification_metrics_url: String,
        /// The simulated gateways' base URL.
        #[arg(long, default_value = "http://127.0.0.1:8025")]
        gateways_url: String,
        /// The webhook receiver's secret.
        #[arg(long, env = "JINFU_DEMO_WEBHOOK_SECRET", hide_env_values = true, default_value = "")]
        webhook_secret: String,
        /// The SMTP sink's Maildir, to show one e-mail as stored.
        #[arg(long)]
        maildir: Option<std::path::PathBuf>,
    },
    /// Credit benchmark: print the loaded subjects (`--write-subjects`), or run CheckEligibility
    /// at `--rate` calls a second for `--seconds` from `--clients` connections; last line
    /// `credit_checks_p99_ms=<number>`.
    BenchCredit {
        #[arg(long, default_value = "http://127.0.0.1:50081")]
        url: String,
        #[arg(long, env = "JINFU_AUTH__TOKEN_SECRET", hide_env_values = true)]
        token_secret: String,
        #[arg(long, default_value = "520100")]
        centre: String,
        /// Subjects with records (as many again without any are asked about too).
        #[arg(long, default_value_t = 200_000)]
        subjects: u64,
        /// Print the subjects, `<index>,<uscc>` per line, and exit.
        #[arg(long)]
        write_subjects: bool,
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        clients: u64,
    },
    /// Benchmark: set up the province with one sub-account per notice to come; write the plan.
    BenchSetup {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        ledger_url: String,
        #[arg(long, env = "JINFU_AUTH__TOKEN_SECRET", hide_env_values = true)]
        token_secret: String,
        #[arg(long = "bank", required = true)]
        banks: Vec<String>,
        #[arg(long)]
        sub_accounts: usize,
        #[arg(long)]
        plan: std::path::PathBuf,
    },
    /// Benchmark: produce `count` signed notices of the plan's stream (`--rate 0`: as fast as
    /// the broker takes them).
    BenchProduce {
        #[arg(long, env = "JINFU_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "JINFU_KAFKA__TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
        #[arg(long = "bank", required = true)]
        banks: Vec<String>,
        #[arg(long)]
        plan: std::path::PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        rate: usize,
        /// First open bidder of the plan this stream pays for (streams must not overlap).
        #[arg(long, default_value_t = 0)]
        bidder_offset: usize,
        /// Part of every bank serial, unique per stream.
        #[arg(long)]
        tag: String,
        #[arg(long, default_value_t = 20261122)]
        seed: u64,
    },
    /// Benchmark: rebuild each bank's end-of-day statement from the streams produced
    /// (`--stream <tag>:<bidder offset>:<count>:<seed>`, repeated) and produce it to
    /// bank.statements. Prints `statement=<id>` per statement.
    BenchStatement {
        #[arg(long, env = "JINFU_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "JINFU_KAFKA__TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
        #[arg(long = "bank", required = true)]
        banks: Vec<String>,
        #[arg(long)]
        plan: std::path::PathBuf,
        #[arg(long = "stream", required = true)]
        streams: Vec<String>,
    },
    /// Benchmark: microseconds per signature and verification, per scheme, on one core.
    BenchSignatures {
        #[arg(long, default_value_t = 2000)]
        samples: u32,
    },
    /// Benchmark: the broker's own limit, reading every record of bank.credit-notices.
    BenchConsume {
        #[arg(long, env = "JINFU_KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, env = "JINFU_KAFKA__TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bank-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Gateways { listen, sms_secret, webhook_secret } => {
            let gateways = jinfu_bank_sim::gateways::Gateways::start(&listen, &sms_secret, &webhook_secret).await?;
            println!("gateways: listening on {}", gateways.address);
            jinfu_platform::shutdown::signal().await;
        }
        Command::BenchNotify {
            url,
            metrics_url,
            gateways_listen,
            brokers,
            topic_prefix,
            token_secret,
            ledger_private_key,
            sms_secret,
            webhook_secret,
            events,
            bidders,
            email_every,
            rate,
            wait_seconds,
        } => {
            let gateways = jinfu_bank_sim::gateways::Gateways::start(&gateways_listen, &sms_secret, &webhook_secret).await?;
            let bench = jinfu_bank_sim::bench_notify::BenchNotify {
                url,
                metrics_url,
                gateways,
                webhook_secret,
                kafka: KafkaSettings { brokers, topic_prefix, partitions: 3, ..KafkaSettings::default() },
                signing: jinfu_platform::signing::SigningSettings {
                    key_ref: "ledger_bench".into(),
                    scheme: Scheme::Ed25519,
                    private_key: SecretString::from(ledger_private_key),
                },
                events,
                bidders: bidders.max(1),
                email_every,
                rate,
                wait: Duration::from_secs(wait_seconds),
            };
            let figures = jinfu_bank_sim::bench_notify::run(&bench, &TokenKeys::new(&SecretString::from(token_secret))?).await?;
            println!("[bench] {}", figures.detail);
            println!(
                "[bench] {} deliveries in {:.1} s from the first event produced: {:.0} deliveries/s",
                figures.deliveries, figures.seconds, figures.per_second
            );
            println!("[bench] event produced → SMS at the gateway: p50 {:.0} ms, p99 {:.0} ms", figures.p50_ms, figures.p99_ms);
            println!("[bench] exactly once: {}", if figures.exactly_once { "yes" } else { "NO" });
            println!("deliveries_per_second={}", figures.per_second.round() as u64);
            if !figures.exactly_once {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Keygen { scheme } => {
            let scheme: Scheme = scheme.parse()?;
            let key = SigningKey::generate(scheme);
            println!("{} {} {}", scheme, key.private_key_hex(), key.public_key_hex());
        }
        Command::Demo {
            ledger_url,
            brokers,
            topic_prefix,
            token_secret,
            banks,
            count,
            rate,
            seed,
            wait_seconds,
            refund_failures_per_thousand,
            refund_delay_ms,
            guarantee_url,
            issuers,
            guarantee_percent,
            contract_url,
            contract_clock_file,
            loans_url,
            credit_url,
            notification_url,
            notification_metrics_url,
            gateways_url,
            webhook_secret,
            maildir,
        } => {
            let failures_per_thousand = refund_failures_per_thousand.min(1000);
            let banks = banks.iter().map(|text| parse_bank(text)).collect::<anyhow::Result<Vec<_>>>()?;
            let settings = DemoSettings {
                ledger_url,
                tokens: TokenKeys::new(&SecretString::from(token_secret))?,
                kafka: KafkaSettings { brokers, topic_prefix, partitions: 3, ..KafkaSettings::default() },
                banks,
                count,
                rate,
                seed,
                guarantees: guarantee_url.map(|url| GuaranteeDemo::new(url, &issuers, guarantee_percent)).transpose()?,
                notifications: notification_url.map(|url| jinfu_bank_sim::notifications::NotificationDemo {
                    url,
                    metrics_url: notification_metrics_url,
                    gateways_url,
                    webhook_secret,
                    maildir,
                }),
            };
            let mix = demo::run(&settings).await?;
            if !demo::wait_and_summarise(&settings, &mix, Duration::from_secs(wait_seconds)).await? {
                return Ok(ExitCode::FAILURE);
            }
            if let Some(guarantees) = &settings.guarantees {
                if !jinfu_bank_sim::guarantees::show_sealed(guarantees, &settings.tokens, &mix.guarantees).await? {
                    return Ok(ExitCode::FAILURE);
                }
            }
            let opened = demo::open_bids(&settings, &mix).await?;
            if let Some(guarantees) = &settings.guarantees {
                let summarised = jinfu_bank_sim::guarantees::summarise_after_opening(
                    guarantees,
                    &settings.ledger_url,
                    &settings.tokens,
                    &opened,
                    &mix.guarantees,
                    Duration::from_secs(wait_seconds),
                )
                .await?;
                if !summarised {
                    return Ok(ExitCode::FAILURE);
                }
            }
            let settings = std::sync::Arc::new(settings);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let answering = {
                let settings = settings.clone();
                tokio::spawn(
                    async move { demo::answer_payment_orders(&settings, failures_per_thousand, Duration::from_millis(refund_delay_ms), stopped).await },
                )
            };
            let finished = demo::refund_cycle(&settings, &mix, Duration::from_secs(wait_seconds)).await?;
            let _ = stop.send(true);
            let answered = answering.await??;
            println!("the simulated banks answered {answered} payment orders");
            if !finished {
                return Ok(ExitCode::FAILURE);
            }
            if let (Some(url), Some(clock_file)) = (contract_url, contract_clock_file) {
                let contracts = jinfu_bank_sim::contracts::ContractDemo { url, clock_file };
                let loans = loans_url.map(|url| jinfu_bank_sim::loans::LoanDemo { url });
                let (figures, loans) = jinfu_bank_sim::contracts::run(&contracts, &settings.tokens, &mix.sections, settings.seed, loans.as_ref()).await?;
                println!();
                println!("{figures}");
                if let Some(loans) = loans {
                    println!();
                    println!("{loans}");
                }
            }
            if let Some(credit_url) = credit_url {
                let mut centres: Vec<String> = settings.banks.iter().map(|bank| bank.centre.clone()).collect();
                centres.sort();
                centres.dedup();
                let demo = jinfu_bank_sim::credit::CreditDemo {
                    credit_url: &credit_url,
                    ledger_url: &settings.ledger_url,
                    guarantee_url: settings.guarantees.as_ref().map(|guarantees| guarantees.url.as_str()),
                    centres: &centres,
                };
                let figures = jinfu_bank_sim::credit::run(&demo, &settings.tokens).await?;
                println!();
                println!("{figures}");
            }
            if let Some(notifications) = &settings.notifications {
                println!();
                let counters = jinfu_bank_sim::notifications::summarise(notifications, Duration::from_secs(wait_seconds)).await?;
                if counters.sent.values().sum::<u64>() == 0 {
                    println!("the notification service sent nothing");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::BenchCredit { url, token_secret, centre, subjects, write_subjects, rate, seconds, clients } => {
            if write_subjects {
                use std::io::Write;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for index in 0..subjects {
                    writeln!(out, "{index},{}", jinfu_bank_sim::bench_credit::subject(index)?)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let tokens = TokenKeys::new(&SecretString::from(token_secret))?;
            let figures = jinfu_bank_sim::bench_credit::run(&url, &tokens, &centre, subjects, rate, seconds, clients).await?;
            println!(
                "[bench] {} checks ({} barred answers), {} errors, {:.0} checks/s from {clients} clients",
                figures.calls, figures.barred, figures.errors, figures.per_second
            );
            println!("[bench] p50 {:.2} ms, p99 {:.2} ms", figures.p50_ms, figures.p99_ms);
            println!("credit_checks_p99_ms={:.2}", figures.p99_ms);
        }
        Command::BenchSetup { ledger_url, token_secret, banks, sub_accounts, plan } => {
            let banks = banks.iter().map(|text| parse_bank(text)).collect::<anyhow::Result<Vec<_>>>()?;
            let tokens = TokenKeys::new(&SecretString::from(token_secret))?;
            let mut client = demo::Client::connect(&ledger_url, &tokens).await?;
            let made = bench::setup(&mut client, &banks, sub_accounts).await?;
            std::fs::write(&plan, serde_json::to_vec(&made)?)?;
        }
        Command::BenchProduce { brokers, topic_prefix, banks, plan, count, rate, bidder_offset, tag, seed } => {
            let banks = banks.iter().map(|text| parse_bank(text)).collect::<anyhow::Result<Vec<_>>>()?;
            let plan: bench::Plan = serde_json::from_slice(&std::fs::read(&plan)?)?;
            let kafka = KafkaSettings { brokers, topic_prefix, partitions: 3, ..KafkaSettings::default() };
            let mut generator = bench::Generator::new(&plan, &banks, &tag, bidder_offset, seed);
            let produced = bench::produce(&kafka, &mut generator, count, rate).await?;
            for (case, count) in &generator.cases {
                println!("[bench]   {case:<32} {count:>9}");
            }
            println!("produced={produced}");
        }
        Command::BenchStatement { brokers, topic_prefix, banks, plan, streams } => {
            let banks = banks.iter().map(|text| parse_bank(text)).collect::<anyhow::Result<Vec<_>>>()?;
            let plan: bench::Plan = serde_json::from_slice(&std::fs::read(&plan)?)?;
            let streams = streams
                .iter()
                .map(|text| {
                    let parts: Vec<&str> = text.split(':').collect();
                    let [tag, offset, count, seed] = parts.as_slice() else {
                        anyhow::bail!("--stream must be <tag>:<bidder offset>:<count>:<seed>");
                    };
                    Ok(((*tag).to_owned(), offset.parse()?, count.parse()?, seed.parse()?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let statements = bench::statements(&plan, &banks, &streams)?;
            let kafka = KafkaSettings { brokers, topic_prefix, partitions: 3, ..KafkaSettings::default() };
            bench::produce_statements(&kafka, &statements).await?;
            for (id, _) in &statements {
                println!("statement={id}");
            }
        }
        Command::BenchSignatures { samples } => {
            for (scheme, sign_us, verify_us) in bench::signature_costs(samples.max(1))? {
                println!("{scheme:<8} sign {sign_us:>8.1} µs  verify {verify_us:>8.1} µs  (one core)");
            }
        }
        Command::BenchConsume { brokers, topic_prefix } => {
            let kafka = KafkaSettings { brokers, topic_prefix, partitions: 3, ..KafkaSettings::default() };
            let (records, seconds) = bench::consume(&kafka).await?;
            println!("broker_records_per_second={:.0}", bench::per_second(records, seconds));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_bank(text: &str) -> anyhow::Result<DemoBank> {
    let parts: Vec<&str> = text.split(':').collect();
    let [code, account_number, centre, key_ref, scheme, private_key] = parts.as_slice() else {
        anyhow::bail!("--bank must be <code>:<account>:<centre>:<key ref>:<scheme>:<private key hex>");
    };
    let scheme: Scheme = scheme.parse()?;
    Ok(DemoBank {
        code: (*code).into(),
        account_number: (*account_number).into(),
        key_ref: (*key_ref).into(),
        signing_key: SigningKey::from_hex(scheme, private_key)?,
        centre: (*centre).into(),
    })
}
