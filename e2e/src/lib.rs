//! Test helpers: a fresh database per test, topics isolated by a random prefix, the real ledger
//! started in-process (or as a real process), and one method per operation.

pub mod contracts;
pub mod credit;
mod guarantees;
pub mod loans;
pub mod notifications;

pub use guarantees::{guarantee_settings, spawn_guarantees, spawn_guarantees_with, TestGuarantees};

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jinfu_bank_sim::{produce_all, signed_record, BankRecord, NoticeFields};
use jinfu_ledger::ids::Uscc;
use jinfu_ledger_service::app::Application;
use jinfu_ledger_service::settings::{
    AuthSettings, BankKeySettings, FaultSettings, GrpcSettings, IngestSettings, OrderSigningSettings, RefundSettings, Settings,
};
use jinfu_platform::auth::{Role, TokenKeys};
use jinfu_platform::db::DatabaseSettings;
use jinfu_platform::kafka::KafkaSettings;
use jinfu_platform::signing::{Scheme, SigningKey, SigningSettings, TrustedKeySettings, TrustedKeys, TrustedPublishers};
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_client::LedgerServiceClient;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use secrecy::SecretString;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const TOKEN_SECRET: &str = "jinfu-test-token-secret-0123456789abcdef";
pub const CENTRE: &str = "520100";
pub const ICBC_ACCOUNT: &str = "2402001029200012345";
pub const CCB_ACCOUNT: &str = "52050110360800000123";

/// The administrative database URL: env `JINFU_TEST_DATABASE_URL`, default local trust auth.
pub fn admin_database_url() -> String {
    std::env::var("JINFU_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The broker: env `JINFU_TEST_BROKERS`, default the local tansu.
pub fn brokers() -> String {
    std::env::var("JINFU_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Creates an empty database with a random name and returns its URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    let admin = admin_database_url();
    let name = format!("jinfu_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await?;
    let base = admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin);
    Ok(format!("{base}/{name}"))
}

/// The two banks of the test centre: ICBC signs with SM2/SM3, CCB with Ed25519.
pub struct Banks {
    pub icbc: SigningKey,
    pub ccb: SigningKey,
    /// The platform's payment-order signing key.
    pub platform: SigningKey,
    /// The ledger's own key: its outbox relay signs what it publishes (`ledger_test`).
    pub ledger: SigningKey,
    /// The guarantee service's own key (`guarantee_test`), which the ledger trusts for
    /// `guarantee.events`.
    pub guarantee: SigningKey,
    /// The contract service's own key (`contract_test`), which the ledger and the guarantee
    /// service trust for `contract.events`.
    pub contract: SigningKey,
}

/// Key references of the services' own keys in tests.
pub const LEDGER_KEY_REF: &str = "ledger_test";
pub const GUARANTEE_KEY_REF: &str = "guarantee_test";
pub const CONTRACT_KEY_REF: &str = "contract_test";

impl Banks {
    pub fn generate() -> Banks {
        Banks {
            icbc: SigningKey::generate(Scheme::Sm2Sm3),
            ccb: SigningKey::generate(Scheme::Ed25519),
            platform: SigningKey::generate(Scheme::Ed25519),
            ledger: SigningKey::generate(Scheme::Ed25519),
            guarantee: SigningKey::generate(Scheme::Ed25519),
            contract: SigningKey::generate(Scheme::Ed25519),
        }
    }

    /// The guarantee service's signing settings (`guarantee_test`).
    pub fn guarantee_signing(&self) -> SigningSettings {
        SigningSettings { key_ref: GUARANTEE_KEY_REF.into(), scheme: Scheme::Ed25519, private_key: SecretString::from(self.guarantee.private_key_hex()) }
    }

    /// The contract service's signing settings (`contract_test`).
    pub fn contract_signing(&self) -> SigningSettings {
        SigningSettings { key_ref: CONTRACT_KEY_REF.into(), scheme: Scheme::Ed25519, private_key: SecretString::from(self.contract.private_key_hex()) }
    }

    /// What the ledger and the guarantee service trust: the guarantee service's and the contract
    /// service's public keys.
    pub fn trusted_publishers(&self) -> TrustedPublishers {
        let guarantee = TrustedKeySettings { key_ref: GUARANTEE_KEY_REF.into(), scheme: Scheme::Ed25519, public_key: self.guarantee.public_key_hex() };
        let contract = TrustedKeySettings { key_ref: CONTRACT_KEY_REF.into(), scheme: Scheme::Ed25519, public_key: self.contract.public_key_hex() };
        TrustedPublishers::from([("guarantee".to_owned(), TrustedKeys(vec![guarantee])), ("contract".to_owned(), TrustedKeys(vec![contract]))])
    }

    pub fn key_settings(&self) -> BTreeMap<String, BankKeySettings> {
        BTreeMap::from([
            ("icbc_test".to_owned(), BankKeySettings { scheme: Scheme::Sm2Sm3, public_key: self.icbc.public_key_hex() }),
            ("ccb_test".to_owned(), BankKeySettings { scheme: Scheme::Ed25519, public_key: self.ccb.public_key_hex() }),
        ])
    }
}

/// Settings for a ledger on a fresh database and freshly prefixed topics.
pub async fn test_settings(banks: &Banks) -> anyhow::Result<Settings> {
    Ok(Settings {
        database: DatabaseSettings { url: SecretString::from(fresh_database().await?), max_connections: 8, acquire_timeout_ms: 10_000 },
        kafka: KafkaSettings {
            brokers: brokers(),
            topic_prefix: format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..10]),
            partitions: 3,
            ..KafkaSettings::default()
        },
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        telemetry: Default::default(),
        metrics: Default::default(),
        banks: banks.key_settings(),
        // One in-process ledger per test: it reads every partition from the offsets in
        // PostgreSQL (manual assignment), so a test never waits on the broker's group
        // coordinator (tansu 0.6.0's sometimes leaves a member unassigned under load; see the
        // runbook). Group membership and rebalances are tested with real processes in
        // tests/scaleout.rs.
        ingest: IngestSettings {
            group_id: format!("ledger-{}", uuid::Uuid::new_v4().simple()),
            instance_id: None,
            assignment: jinfu_ledger_service::settings::Assignment::Manual,
            batch_size_max: 500,
            batch_wait_ms: 20,
            outbox_batch_max: 500,
        },
        fault: FaultSettings::default(),
        refunds: RefundSettings {
            poll_ms: 100,
            signing: Some(OrderSigningSettings {
                scheme: Scheme::Ed25519,
                private_key: SecretString::from(banks.platform.private_key_hex()),
                key_ref: "jinfu_test".into(),
            }),
        },
        signing: Some(SigningSettings {
            key_ref: LEDGER_KEY_REF.into(),
            scheme: Scheme::Ed25519,
            private_key: SecretString::from(banks.ledger.private_key_hex()),
        }),
        trusted_publishers: banks.trusted_publishers(),
    })
}

/// A ledger running in-process.
pub struct TestApp {
    pub settings: Settings,
    pub banks: Banks,
    pub pool: PgPool,
    pub client: LedgerClient,
    /// The in-process ledger's gRPC address, `127.0.0.1:<port>`.
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> anyhow::Result<TestApp> {
        let banks = Banks::generate();
        let settings = test_settings(&banks).await?;
        TestApp::spawn_with(banks, settings).await
    }

    /// A ledger with settings the test changed (made by [`test_settings`] from `banks`).
    pub async fn spawn_with(banks: Banks, settings: Settings) -> anyhow::Result<TestApp> {
        let application = Application::build(settings.clone()).await?;
        let port = application.port();
        let pool = application.pool();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(application.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let client = LedgerClient::connect(&format!("http://127.0.0.1:{port}")).await?;
        Ok(TestApp { settings, banks, pool, client, address: format!("127.0.0.1:{port}"), stop: Some(stop), handle: Some(handle) })
    }

    /// Stops the ledger and starts a new one on the same database, topics and consumer groups,
    /// as a redeployment would.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let application = Application::build(self.settings.clone()).await?;
        let port = application.port();
        let (stop, stopped) = oneshot::channel::<()>();
        self.handle = Some(tokio::spawn(application.run_until_stopped(async move {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
        self.address = format!("127.0.0.1:{port}");
        self.client = LedgerClient::connect(&format!("http://127.0.0.1:{port}")).await?;
        Ok(())
    }

    /// Stops the ledger gracefully and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await??;
        }
        Ok(())
    }

    pub async fn send(&self, records: &[BankRecord]) -> anyhow::Result<()> {
        send(&self.settings.kafka, records).await
    }

    /// Waits, without asking it to stop, until the ledger stops by itself (a supervised task
    /// failed), and returns why; an error if it still runs after `timeout`.
    pub async fn stopped_by_itself(&mut self, timeout: Duration) -> anyhow::Result<anyhow::Error> {
        let handle = self.handle.as_mut().ok_or_else(|| anyhow::anyhow!("the ledger is not running"))?;
        let outcome = tokio::time::timeout(timeout, handle).await.map_err(|_| anyhow::anyhow!("the ledger still runs after {timeout:?}"))?;
        self.handle = None;
        self.stop = None;
        match outcome? {
            Ok(()) => anyhow::bail!("the ledger stopped without an error"),
            Err(error) => Ok(error),
        }
    }

    /// Waits until `count` records have been dealt with (applied, conflicting or dead-lettered).
    pub async fn wait_for_records(&self, count: i64) -> anyhow::Result<()> {
        wait_for_records(&self.pool, count, Duration::from_secs(60)).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn send(kafka: &KafkaSettings, records: &[BankRecord]) -> anyhow::Result<()> {
    send_to(kafka, jinfu_platform::topics::BANK_CREDIT_NOTICES, records).await
}

/// Produces `records` in order to platform topic `topic` (the prefix is added).
pub async fn send_to(kafka: &KafkaSettings, topic: &str, records: &[BankRecord]) -> anyhow::Result<()> {
    let producer = kafka.producer()?;
    produce_all(&producer, &kafka.topic(topic), records).await
}

/// Records the ledger has finished with: consumed offsets summed over partitions.
pub async fn records_done(pool: &PgPool) -> anyhow::Result<i64> {
    let done: Option<i64> =
        sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM ledger.consumer_offsets WHERE topic LIKE '%bank.credit-notices' AND next_offset > 0")
            .fetch_one(pool)
            .await?;
    Ok(done.unwrap_or(0))
}

/// Records of platform topic `topic` (the prefix is added) that the consumer in `schema`
/// (`ledger`, `guarantee`) has finished with, applied or dead-lettered: its stored offsets
/// summed over partitions.
pub async fn topic_records_done(app: &TestApp, schema: &str, topic: &str) -> anyhow::Result<i64> {
    anyhow::ensure!(["ledger", "guarantee", "credit", "loans", "notification", "contract"].contains(&schema), "unknown schema {schema}");
    let done: Option<i64> = sqlx::query_scalar(&format!("SELECT sum(next_offset)::int8 FROM {schema}.consumer_offsets WHERE topic = $1 AND next_offset > 0"))
        .bind(app.settings.kafka.topic(topic))
        .fetch_one(&app.pool)
        .await?;
    Ok(done.unwrap_or(0))
}

pub async fn wait_for_records(pool: &PgPool, count: i64, timeout: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let done = records_done(pool).await.unwrap_or(0);
        if done >= count {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < timeout, "only {done} of {count} records were consumed within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gRPC client that mints its own tokens.
#[derive(Clone)]
pub struct LedgerClient {
    pub grpc: LedgerServiceClient<Channel>,
    pub tokens: TokenKeys,
}

impl LedgerClient {
    pub async fn connect(url: &str) -> anyhow::Result<LedgerClient> {
        let started = std::time::Instant::now();
        loop {
            match LedgerServiceClient::connect(url.to_owned()).await {
                Ok(grpc) => {
                    let tokens = TokenKeys::new(&SecretString::from(TOKEN_SECRET))?;
                    return Ok(LedgerClient { grpc, tokens });
                }
                Err(error) if started.elapsed() > Duration::from_secs(60) => return Err(error.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub fn as_role<T>(&self, role: Role, centre: &str, party: &str, message: T) -> tonic::Request<T> {
        self.tokens.request(role, centre, party, 600, message).expect("test centres are valid")
    }

    pub fn admin<T>(&self, message: T) -> tonic::Request<T> {
        self.as_role(Role::Admin, CENTRE, "admin", message)
    }

    pub fn operator<T>(&self, message: T) -> tonic::Request<T> {
        self.as_role(Role::Operator, CENTRE, "operator-1", message)
    }

    /// Registers centre 520100 (under province 520000) with its ICBC (SM2) and CCB (Ed25519)
    /// collection accounts.
    pub async fn register_test_centre(&self) -> anyhow::Result<()> {
        let mut grpc = self.grpc.clone();
        for (code, name, parent) in [("520000", "贵州省公共资源交易中心", ""), (CENTRE, "贵阳市公共资源交易中心", "520000")] {
            let request = pb::RegisterCentreRequest { centre_id: code.into(), name: name.into(), parent_centre_id: parent.into(), ..Default::default() };
            grpc.register_centre(self.as_role(Role::Admin, code, "admin", request)).await?;
        }
        for (bank, account, key) in [("ICBC", ICBC_ACCOUNT, "icbc_test"), ("CCB", CCB_ACCOUNT, "ccb_test")] {
            let request = pb::RegisterBankAccountRequest {
                centre_id: CENTRE.into(),
                bank: bank.into(),
                account_number: account.into(),
                signing_key_ref: key.into(),
                demand_deposit_rate: "0.0010".into(),
            };
            grpc.register_bank_account(self.admin(request)).await?;
        }
        Ok(())
    }

    /// Creates a section at ICBC requiring `required_fen`, with the given deadline and opening.
    pub async fn create_section(
        &self,
        section: &str,
        required_fen: i64,
        deadline: DateTime<Utc>,
        opening: DateTime<Utc>,
        basic_account_required: bool,
    ) -> anyhow::Result<()> {
        let request = pb::CreateSectionRequest {
            centre_id: CENTRE.into(),
            section_id: section.into(),
            name: format!("测试标段 {section}"),
            regime: pb::Regime::Procurement as i32,
            required_deposit_fen: required_fen,
            deposit_deadline: Some(prost_types::Timestamp { seconds: deadline.timestamp(), nanos: 0 }),
            bid_opening_time: Some(prost_types::Timestamp { seconds: opening.timestamp(), nanos: 0 }),
            bank: "ICBC".into(),
            account_number: ICBC_ACCOUNT.into(),
            basic_account_required,
        };
        self.grpc.clone().create_section(self.operator(request)).await?;
        Ok(())
    }

    /// Opens a sub-account as the bidder itself.
    pub async fn open_sub_account(&self, section: &str, bidder: &TestBidder) -> anyhow::Result<String> {
        let request = pb::OpenSubAccountRequest {
            centre_id: CENTRE.into(),
            section_id: section.into(),
            bidder_uscc: bidder.uscc.clone(),
            bidder_name: bidder.name.clone(),
            basic_account: bidder.basic_account.clone(),
        };
        let response = self.grpc.clone().open_sub_account(self.as_role(Role::Bidder, CENTRE, &bidder.uscc, request)).await?;
        Ok(response.into_inner().sub_account_number)
    }

    pub async fn deposit_status(&self, section: &str, bidder: &TestBidder) -> anyhow::Result<pb::DepositStatus> {
        let request = pb::GetDepositStatusRequest { centre_id: CENTRE.into(), section_id: section.into(), bidder_uscc: bidder.uscc.clone() };
        Ok(self.grpc.clone().get_deposit_status(self.as_role(Role::Bidder, CENTRE, &bidder.uscc, request)).await?.into_inner())
    }

    pub async fn balances(&self, prefix: &str) -> anyhow::Result<HashMap<String, i64>> {
        let request = pb::GetAccountBalancesRequest { centre_id: CENTRE.into(), key_prefix: prefix.into() };
        let response = self.grpc.clone().get_account_balances(self.operator(request)).await?.into_inner();
        Ok(response.balances.into_iter().map(|b| (b.account, b.balance_fen)).collect())
    }

    pub async fn summary(&self) -> anyhow::Result<pb::IngestSummary> {
        let request = pb::GetIngestSummaryRequest { centre_id: CENTRE.into() };
        Ok(self.grpc.clone().get_ingest_summary(self.operator(request)).await?.into_inner())
    }
}

/// A bidder with a valid unified social credit code.
#[derive(Debug, Clone)]
pub struct TestBidder {
    pub uscc: String,
    pub name: String,
    pub basic_account: String,
}

impl TestBidder {
    pub fn new(number: u32) -> TestBidder {
        let uscc = Uscc::with_check_character(&format!("91520100{number:09}")).expect("valid uscc body");
        TestBidder { uscc: uscc.to_string(), name: format!("贵州测试{number}(集团)有限公司"), basic_account: format!("6222{number:012}") }
    }
}

/// A notice from ICBC to `sub_account`, paid by `bidder`, for `amount` yuan, signed.
pub fn icbc_notice(banks: &Banks, serial: &str, sub_account: &str, bidder: &TestBidder, amount: &str) -> NoticeFields {
    let _ = banks;
    NoticeFields {
        event_id: uuid::Uuid::new_v4().to_string(),
        centre_id: CENTRE.into(),
        bank: "ICBC".into(),
        bank_serial: serial.into(),
        account_number: ICBC_ACCOUNT.into(),
        sub_account_number: sub_account.into(),
        amount: amount.into(),
        payer_name: bidder.name.replace('(', "（").replace(')', "）"),
        payer_account: bidder.basic_account.clone(),
        value_time: Utc::now().with_timezone(&jinfu_ledger::beijing::offset()),
    }
}

pub fn sign_icbc(banks: &Banks, fields: &NoticeFields) -> BankRecord {
    signed_record(&fields.sub_account_number, fields.to_json(), "icbc_test", &banks.icbc)
}

/// Reads `count` records from a topic (from the beginning), with their headers' raw bytes.
pub async fn read_topic(kafka: &KafkaSettings, topic: &str, count: usize, timeout: Duration) -> anyhow::Result<Vec<(Vec<u8>, HashMap<String, Vec<u8>>)>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&kafka.topic(topic)])?;
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while records.len() < count {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => message?,
            Err(_) => anyhow::bail!("read {} of {count} records from {topic} before the timeout", records.len()),
        };
        let headers = jinfu_platform::kafka::header_pairs(message.headers()).into_iter().collect();
        records.push((message.payload().unwrap_or_default().to_vec(), headers));
    }
    Ok(records)
}

/// Polls `check` every 200 ms until it holds; fails after 60 s naming `what`.
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = std::time::Instant::now();
    while !check().await? {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// `time` as RFC 3339 in China time, as banks and the trading system write it.
pub fn china(time: chrono::DateTime<Utc>) -> String {
    time.with_timezone(&jinfu_ledger::beijing::offset()).to_rfc3339()
}

/// A signed payment result from ICBC for `order_id`: `succeeded` or `failed`.
pub async fn bank_result(app: &TestApp, order_id: &str, serial: &str, status: &str) -> anyhow::Result<()> {
    let value = serde_json::to_vec(&json!({
        "schema_version": 1,
        "order_id": order_id,
        "bank": "ICBC",
        "bank_serial": serial,
        "status": status,
        "failure_reason": if status == "failed" { Some("收款账户已销户") } else { None },
        "settled_at": china(Utc::now()),
    }))?;
    let record = signed_record(order_id, value, "icbc_test", &app.banks.icbc);
    produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::BANK_PAYMENT_RESULTS), &[record]).await
}

/// The balance of `account` (0 if it was never posted to).
pub async fn balance(app: &TestApp, account: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(balance_fen), 0) FROM ledger.accounts WHERE account = $1").bind(account).fetch_one(&app.pool).await?)
}

/// A published JSON Schema from docs/schemas, compiled.
pub fn schema(file: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas").join(file);
    let text = std::fs::read_to_string(&path).expect("the schema file exists");
    jsonschema::validator_for(&serde_json::from_str(&text).expect("the schema is JSON")).expect("the schema compiles")
}

/// Every ledger event in the outbox so far, checked against docs/schemas/ledger.event.v1.json.
pub async fn assert_events_match_schema(pool: &PgPool) -> anyhow::Result<usize> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM ledger.outbox WHERE topic LIKE '%ledger.events' ORDER BY id").fetch_all(pool).await?;
    assert_match_schema(&payloads, "ledger.event.v1.json")
}

/// Every row written so far to `topic` (prefixed) in the outbox of database schema `owner`,
/// checked against `docs/schemas/<file>`; returns how many.
pub async fn assert_outbox_matches(pool: &PgPool, owner: &str, topic: &str, file: &str) -> anyhow::Result<usize> {
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar(&format!("SELECT payload FROM {owner}.outbox WHERE topic = $1 ORDER BY id")).bind(topic).fetch_all(pool).await?;
    assert_match_schema(&payloads, file)
}

fn assert_match_schema(payloads: &[Vec<u8>], file: &str) -> anyhow::Result<usize> {
    let validator = schema(file);
    for payload in payloads {
        let event: serde_json::Value = serde_json::from_slice(payload)?;
        let first_error = validator.iter_errors(&event).next().map(|error| error.to_string());
        if let Some(error) = first_error {
            anyhow::bail!("event does not match {file}: {error}: {event}");
        }
    }
    Ok(payloads.len())
}

/// The `ledger` binary: env `JINFU_LEDGER_BIN`, else next to the test binary's directory.
pub fn ledger_binary() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("JINFU_LEDGER_BIN") {
        return std::path::PathBuf::from(path);
    }
    // target/debug/deps/<test>-… → target/debug/ledger
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(|deps| deps.parent()).expect("target directory").join("ledger")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts `ledger serve` as a real process on `settings`' database and topics, logging to
/// `log`, with `extra` environment on top (assignment, instance id, faults…).
pub fn start_ledger_process(settings: &Settings, banks: &Banks, port: u16, log: &str, extra: &[(&str, String)]) -> anyhow::Result<tokio::process::Child> {
    use secrecy::ExposeSecret;
    let binary = ledger_binary();
    anyhow::ensure!(binary.exists(), "{} is missing: build it with `cargo build --bins`", binary.display());
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("JINFU_DATABASE__URL", settings.database.url.expose_secret())
        .env("JINFU_KAFKA__BROKERS", &settings.kafka.brokers)
        .env("JINFU_KAFKA__TOPIC_PREFIX", &settings.kafka.topic_prefix)
        .env("JINFU_GRPC__LISTEN", format!("127.0.0.1:{port}"))
        // Each process its own metrics port: several ledgers run side by side here.
        .env("JINFU_METRICS__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("JINFU_AUTH__TOKEN_SECRET", TOKEN_SECRET)
        .env("JINFU_INGEST__GROUP_ID", &settings.ingest.group_id)
        .env("JINFU_BANKS__ICBC_TEST__SCHEME", "sm2-sm3")
        .env("JINFU_BANKS__ICBC_TEST__PUBLIC_KEY", banks.icbc.public_key_hex())
        .env("JINFU_BANKS__CCB_TEST__SCHEME", "ed25519")
        .env("JINFU_BANKS__CCB_TEST__PUBLIC_KEY", banks.ccb.public_key_hex())
        .env("JINFU_SIGNING__KEY_REF", LEDGER_KEY_REF)
        .env("JINFU_SIGNING__SCHEME", "ed25519")
        .env("JINFU_SIGNING__PRIVATE_KEY", banks.ledger.private_key_hex())
        .env(format!("JINFU_TRUSTED_PUBLISHERS__GUARANTEE__{}__PUBLIC_KEY", GUARANTEE_KEY_REF.to_ascii_uppercase()), banks.guarantee.public_key_hex())
        .env(format!("JINFU_TRUSTED_PUBLISHERS__CONTRACT__{}__PUBLIC_KEY", CONTRACT_KEY_REF.to_ascii_uppercase()), banks.contract.public_key_hex())
        .stdout(std::process::Stdio::from(log_file.try_clone()?))
        .stderr(std::process::Stdio::from(log_file))
        .kill_on_drop(true);
    for (key, value) in extra {
        command.env(key, value);
    }
    Ok(command.spawn()?)
}

/// Produces one tender event (trading.events v1) for `section` of the test centre; returns its id.
pub async fn trading_event(app: &TestApp, section: &str, event_type: &str, data: serde_json::Value) -> anyhow::Result<String> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let value = serde_json::to_vec(&serde_json::json!({
        "schema_version": 1,
        "event_id": event_id,
        "centre_id": CENTRE,
        "section_id": section,
        "type": event_type,
        "occurred_at": china(Utc::now()),
        "data": data,
    }))?;
    let record = BankRecord { key: section.into(), value, headers: vec![] };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await?;
    Ok(event_id)
}

/// Publishes one event of the contract service on contract.events (prefixed), as its outbox
/// relay would: the platform envelope with a fresh event id, signed with `banks.contract`.
/// Returns the event id.
pub async fn publish_contract_event(app: &TestApp, event_type: &str, centre: &str, data: serde_json::Value) -> anyhow::Result<String> {
    let value = jinfu_platform::outbox::event_envelope(event_type, centre, data);
    let event: serde_json::Value = serde_json::from_slice(&value)?;
    let event_id = event["event_id"].as_str().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    jinfu_platform::signing::Signer::from_settings(&app.banks.contract_signing())?.sign_record(&value, &mut headers);
    publish_contract_record(app, centre, value, headers).await?;
    Ok(event_id)
}

/// Produces `value` with `headers` to contract.events (prefixed) as it is, keyed by `key`: what
/// anyone with produce rights on the topic could write.
pub async fn publish_contract_record(app: &TestApp, key: &str, value: Vec<u8>, headers: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let record = BankRecord { key: key.into(), value, headers };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::CONTRACT_EVENTS), &[record]).await
}

/// `count` bidders of `section` (numbered from `first_bidder`) who each paid 50,000.00 yuan at
/// ICBC thirty days ago; returns when the ledger has taken every notice. The count of records
/// done is read before sending: read after, a fast ledger may already have taken some, and the
/// wait would be for records that never come.
pub async fn pay_bidders(app: &TestApp, section: &str, count: u32, first_bidder: u32) -> anyhow::Result<Vec<TestBidder>> {
    let paid_at = (Utc::now() - chrono::Duration::days(30)).with_timezone(&jinfu_ledger::beijing::offset());
    let mut bidders = Vec::new();
    let mut records = Vec::new();
    for number in first_bidder..first_bidder + count {
        let bidder = TestBidder::new(number);
        let account = app.client.open_sub_account(section, &bidder).await?;
        let mut notice = icbc_notice(&app.banks, &format!("{section}-{number}"), &account, &bidder, "50000.00");
        notice.value_time = paid_at;
        records.push(sign_icbc(&app.banks, &notice));
        bidders.push(bidder);
    }
    let before = records_done(&app.pool).await?;
    app.send(&records).await?;
    wait_for_records(&app.pool, before + i64::from(count), Duration::from_secs(60)).await?;
    Ok(bidders)
}

/// Submits `bids.opened` for `section` of the test centre, as having happened at `at`.
pub async fn open_bids(app: &TestApp, section: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
    let opened = pb::SubmitTenderEventRequest {
        event_id: format!("bids-opened-{section}"),
        centre_id: CENTRE.into(),
        section_id: section.into(),
        r#type: "bids.opened".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        data_json: String::new(),
    };
    app.client.grpc.clone().submit_tender_event(app.client.operator(opened)).await?;
    Ok(())
}

/// A section (deadline 20 days ago, opening 19 days ago) whose bids are opened, with `count`
/// bidders who each paid 50,000.00 yuan before the deadline.
pub async fn paid_section(app: &TestApp, section: &str, count: u32, first_bidder: u32) -> anyhow::Result<Vec<TestBidder>> {
    let now = Utc::now();
    app.client.create_section(section, 5_000_000, now - chrono::Duration::days(20), now - chrono::Duration::days(19), true).await?;
    let bidders = pay_bidders(app, section, count, first_bidder).await?;
    open_bids(app, section, now - chrono::Duration::days(19)).await?;
    Ok(bidders)
}

/// An engineering section whose bids are opened, with `count` bidders who each paid 50,000.00
/// yuan thirty days ago, before the deadline.
pub async fn paid_engineering_section(app: &TestApp, section: &str, count: u32, first_bidder: u32) -> anyhow::Result<Vec<TestBidder>> {
    let now = Utc::now();
    let at = |days: i64| Some(prost_types::Timestamp { seconds: (now - chrono::Duration::days(days)).timestamp(), nanos: 0 });
    let request = pb::CreateSectionRequest {
        centre_id: CENTRE.into(),
        section_id: section.into(),
        name: format!("工程测试标段 {section}"),
        regime: pb::Regime::Engineering as i32,
        required_deposit_fen: 5_000_000,
        deposit_deadline: at(20),
        bid_opening_time: at(19),
        bank: "ICBC".into(),
        account_number: ICBC_ACCOUNT.into(),
        basic_account_required: true,
    };
    app.client.grpc.clone().create_section(app.client.operator(request)).await?;
    let bidders = pay_bidders(app, section, count, first_bidder).await?;
    open_bids(app, section, now - chrono::Duration::days(19)).await?;
    Ok(bidders)
}
