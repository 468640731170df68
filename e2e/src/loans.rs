//! The loans service in-process beside a [`TestApp`], the contract service and the credit
//! service (same database, its own schema; same topics), its "now" a [`ManualClock`]; lenders,
//! products and a signed contract to finance.

use chrono::{DateTime, Utc};
use jinfu_loans_service::app::Application;
use jinfu_loans_service::settings::{ConsumerConfig, Endpoint, Settings};
use jinfu_loans_service::sweeper::Sweeper;
use jinfu_platform::auth::{AuthSettings, Role, TokenKeys};
use jinfu_platform::clock::ManualClock;
use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::signing::{Scheme, SigningKey, SigningSettings};
use jinfu_proto::loan::v1 as pb;
use jinfu_proto::loan::v1::loan_service_client::LoanServiceClient;
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::contracts::TestContracts;
use crate::credit::TestCredit;
use crate::{TestApp, CENTRE, TOKEN_SECRET};

/// The test centre's province.
pub const PROVINCE: &str = "520000";

/// The loans service running in-process; stops when dropped.
pub struct TestLoans {
    pub grpc: LoanServiceClient<Channel>,
    pub clock: ManualClock,
    pub pool: PgPool,
    pub events_topic: String,
    settings: Settings,
    keys: TokenKeys,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestLoans {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the loans service beside `app`, asking `contracts` and `credit`, its clock at `now`
/// (a sweep interval long enough that tests run rounds themselves).
pub async fn spawn_loans(app: &TestApp, contracts: &TestContracts, credit: &TestCredit, now: DateTime<Utc>) -> anyhow::Result<TestLoans> {
    let key = SigningKey::generate(Scheme::Ed25519);
    let settings = Settings {
        database: app.settings.database.clone(),
        kafka: app.settings.kafka.clone(),
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        telemetry: Default::default(),
        metrics: Default::default(),
        consumer: ConsumerConfig {
            assignment: jinfu_platform::consumer::Assignment::Manual,
            instance_id: None,
            group_id: Some(format!("loans-{}", uuid::Uuid::new_v4().simple())),
        },
        contract: Endpoint { endpoint: contracts.endpoint.clone() },
        credit: Endpoint { endpoint: credit.endpoint.clone() },
        confirmation_days: 30,
        sweep_interval_seconds: 3600,
        trusted_publishers: app.banks.trusted_publishers(),
        signing: Some(SigningSettings { key_ref: "loans_test".into(), scheme: Scheme::Ed25519, private_key: SecretString::from(key.private_key_hex()) }),
        outbox_batch_max: 100,
        clock_file: None,
    };
    let clock = ManualClock::new(now);
    let application = Application::build_with_clock(settings.clone(), clock.shared()).await?;
    let (port, pool) = (application.port(), application.pool());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let grpc = LoanServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let keys = TokenKeys::new(&SecretString::from(TOKEN_SECRET))?;
    let events_topic = settings.kafka.topic(jinfu_platform::topics::LOAN_EVENTS);
    Ok(TestLoans { grpc, clock, pool, events_topic, settings, keys, stop: Some(stop) })
}

impl TestLoans {
    /// `message` as `role` of the test centre acting as `party`.
    pub fn as_role<T>(&self, role: Role, party: &str, message: T) -> tonic::Request<T> {
        self.keys.request(role, CENTRE, party, 600, message).expect("a token")
    }

    /// `message` as `role` of `centre` acting as `party`.
    pub fn as_role_in<T>(&self, role: Role, centre: &str, party: &str, message: T) -> tonic::Request<T> {
        self.keys.request(role, centre, party, 600, message).expect("a token")
    }

    /// `message` as officer `officer` of lender `lender` (a token of the province centre).
    pub fn lender<T>(&self, lender: &str, officer: &str, message: T) -> tonic::Request<T> {
        self.keys.request(Role::Lender, PROVINCE, &format!("{lender}:{officer}"), 600, message).expect("a token")
    }

    /// One sweeper round on this service's database and clock.
    pub async fn sweep(&self) -> anyhow::Result<()> {
        let contracts = jinfu_loans_service::peers::Contracts::new(&self.settings.contract.endpoint, self.keys.clone())?;
        let credit = jinfu_loans_service::peers::Credit::new(&self.settings.credit.endpoint, self.keys.clone())?;
        let sweeper = Sweeper {
            pool: self.pool.clone(),
            clock: self.clock.shared(),
            events_topic: self.events_topic.clone(),
            contracts: Arc::new(contracts),
            credit: Arc::new(credit),
        };
        sweeper.round().await
    }

    /// Onboards `lender` (province admin) with one product: 80 % of the contract, 3.00-4.50 %,
    /// `term_days`, 5 grace days, SMEs.
    pub async fn onboard(&self, lender: &str, term_days: u32) -> anyhow::Result<pb::Lender> {
        let request = pb::Lender {
            lender_id: lender.into(),
            province_id: PROVINCE.into(),
            name: format!("{lender} 贵州分行"),
            kind: "bank".into(),
            bank_name: format!("{lender} 贵阳分行"),
            account_no: format!("{lender}-LOAN-0001"),
            account_name: format!("{lender} 政采贷回款专户"),
            ..Default::default()
        };
        let admin = self.keys.request(Role::Admin, PROVINCE, "province-admin", 600, request)?;
        let onboarded = self.grpc.clone().onboard_lender(admin).await?.into_inner();
        let product = pb::Product {
            lender_id: lender.into(),
            product_id: "ZCD".into(),
            name: "政采贷".into(),
            kind: "contract_financing".into(),
            rate_min_bp: 300,
            rate_max_bp: 450,
            max_ratio_bp: 8_000,
            term_days,
            grace_days: 5,
            sme_only: true,
            centres: vec![],
            regimes: vec![],
            contact: "0851-12345678".into(),
            province_id: String::new(),
        };
        self.grpc.clone().publish_product(self.lender(lender, "product-desk", product)).await?;
        Ok(onboarded)
    }

    /// `supplier` applies to `lender` for `requested_fen` against `contract_id`.
    pub async fn apply(&self, supplier: &str, loan_id: &str, lender: &str, contract_id: &str, requested_fen: i64) -> Result<pb::Loan, tonic::Status> {
        let request = pb::ApplyRequest {
            centre_id: CENTRE.into(),
            loan_id: loan_id.into(),
            lender_id: lender.into(),
            product_id: "ZCD".into(),
            contract_id: contract_id.into(),
            requested_fen,
        };
        Ok(self.grpc.clone().apply(self.as_role(Role::Supplier, supplier, request)).await?.into_inner())
    }

    /// Maker `wang` proposes `amount_fen` at `rate_bp`, checker `li` approves.
    pub async fn approve(&self, lender: &str, loan_id: &str, amount_fen: i64, rate_bp: u32) -> anyhow::Result<pb::Loan> {
        let terms = pb::ProposeTermsRequest { centre_id: CENTRE.into(), loan_id: loan_id.into(), amount_fen, rate_bp };
        self.grpc.clone().propose_terms(self.lender(lender, "wang", terms)).await?;
        let loan = pb::LoanRef { centre_id: CENTRE.into(), loan_id: loan_id.into() };
        Ok(self.grpc.clone().approve(self.lender(lender, "li", loan)).await?.into_inner())
    }

    pub async fn disburse(&self, lender: &str, loan_id: &str, on: &str) -> Result<pb::Loan, tonic::Status> {
        let request = pb::DisburseRequest { centre_id: CENTRE.into(), loan_id: loan_id.into(), disbursed_on: on.into(), reference: format!("PAY-{loan_id}") };
        Ok(self.grpc.clone().disburse(self.lender(lender, "li", request)).await?.into_inner())
    }

    /// The loan as the centre's operator sees it.
    pub async fn get(&self, loan_id: &str) -> anyhow::Result<pb::Loan> {
        let request = pb::LoanRef { centre_id: CENTRE.into(), loan_id: loan_id.into() };
        Ok(self.grpc.clone().get_loan(self.as_role(Role::Operator, "operator-1", request)).await?.into_inner())
    }

    /// The events of `event_type` written to `loan.events` so far (outbox, in order).
    pub async fn events(&self, event_type: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let payloads: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM loans.outbox WHERE topic = $1 ORDER BY id").bind(&self.events_topic).fetch_all(&self.pool).await?;
        let events: Vec<serde_json::Value> = payloads.iter().map(|payload| serde_json::from_slice(payload)).collect::<Result<_, _>>()?;
        Ok(events.into_iter().filter(|event| event["type"] == event_type).collect())
    }

    /// Every event written so far, checked against docs/schemas/loan.event.v1.json.
    pub async fn assert_events_match_schema(&self) -> anyhow::Result<usize> {
        crate::assert_outbox_matches(&self.pool, "loans", &self.events_topic, "loan.event.v1.json").await
    }
}
