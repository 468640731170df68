//! The contract service in-process beside a [`TestApp`]: same database (its own schema), same
//! topics, its "now" a [`ManualClock`] the test moves; parties with registered signing keys; and
//! one helper per step of a contract's life.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_contract_service::app::Application;
use jinfu_contract_service::calendar::SharedCalendar;
use jinfu_contract_service::settings::{ConsumerConfig, LedgerSettings, Settings};
use jinfu_contract_service::sweeper::{Round, Sweeper};
use jinfu_platform::auth::{AuthSettings, Role, TokenKeys};
use jinfu_platform::clock::ManualClock;
use jinfu_platform::grpc::GrpcSettings;
use jinfu_platform::signing::{Scheme, SigningKey};
use jinfu_proto::contract::v1 as pb;
use jinfu_proto::contract::v1::contract_service_client::ContractServiceClient;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{china, TestApp, TestBidder, CENTRE, TOKEN_SECRET};

/// A Beijing instant written `YYYY-MM-DDTHH:MM`.
pub fn beijing(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{text}:00+08:00")).expect("a Beijing time").with_timezone(&Utc)
}

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

/// Settings for the contract service beside `app` (manual assignment: it reads trading.events
/// itself, no group coordinator; a sweep interval long enough that tests run rounds themselves).
pub fn contract_settings(app: &TestApp) -> Settings {
    Settings {
        database: app.settings.database.clone(),
        kafka: app.settings.kafka.clone(),
        grpc: GrpcSettings { listen: "127.0.0.1:0".into(), ..GrpcSettings::default() },
        auth: AuthSettings::new(SecretString::from(TOKEN_SECRET)),
        telemetry: Default::default(),
        metrics: Default::default(),
        outbox_batch_max: 100,
        consumer: ConsumerConfig {
            assignment: jinfu_platform::consumer::Assignment::Manual,
            instance_id: None,
            group_id: Some(format!("contract-{}", uuid::Uuid::new_v4().simple())),
        },
        sweep_interval_seconds: 3600,
        // The key the ledger and the guarantee service under test trust for contract.events.
        signing: Some(app.banks.contract_signing()),
        trusted_publishers: Default::default(),
        clock_file: None,
        ledger: Some(LedgerSettings { endpoint: format!("http://{}", app.address), centre_id: "520000".into() }),
        calendar_refresh_seconds: 3600,
    }
}

/// The contract service running in-process; stops when dropped.
pub struct TestContracts {
    pub grpc: ContractServiceClient<Channel>,
    pub clock: ManualClock,
    pub pool: PgPool,
    pub events_topic: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    keys: TokenKeys,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestContracts {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the contract service beside `app`, its clock at `now`.
pub async fn spawn_contracts(app: &TestApp, now: DateTime<Utc>) -> anyhow::Result<TestContracts> {
    let settings = contract_settings(app);
    let clock = ManualClock::new(now);
    let application = Application::build_with_clock(settings.clone(), clock.shared()).await?;
    let (port, pool) = (application.port(), application.pool());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let grpc = ContractServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let keys = TokenKeys::new(&SecretString::from(TOKEN_SECRET))?;
    let events_topic = settings.kafka.topic(jinfu_platform::topics::CONTRACT_EVENTS);
    Ok(TestContracts { grpc, clock, pool, events_topic, endpoint: format!("http://127.0.0.1:{port}"), keys, stop: Some(stop) })
}

/// A purchaser and a supplier with their contract-signing keys (SM2/SM3 and Ed25519).
pub struct Parties {
    pub purchaser: TestBidder,
    pub purchaser_key: SigningKey,
    pub supplier: TestBidder,
    pub supplier_key: SigningKey,
}

impl Parties {
    pub fn new(purchaser: u32, supplier: u32) -> Parties {
        Parties {
            purchaser: TestBidder::new(purchaser),
            purchaser_key: SigningKey::generate(Scheme::Sm2Sm3),
            supplier: TestBidder::new(supplier),
            supplier_key: SigningKey::generate(Scheme::Ed25519),
        }
    }
}

impl TestContracts {
    /// `message` as `role` of the test centre acting as `party`.
    pub fn as_role<T>(&self, role: Role, party: &str, message: T) -> tonic::Request<T> {
        self.keys.request(role, CENTRE, party, 600, message).expect("a token")
    }

    pub fn operator<T>(&self, message: T) -> tonic::Request<T> {
        self.as_role(Role::Operator, "operator-1", message)
    }

    /// A sweeper on this service's database and clock: tests run its rounds themselves.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            pool: self.pool.clone(),
            events_topic: self.events_topic.clone(),
            calendar: SharedCalendar::new(jinfu_ledger::calendar::Calendar::china()),
            clock: self.clock.shared(),
        }
    }

    /// A sweeper computing on `calendar` (e.g. with a year the shipped one lacks).
    pub fn sweeper_with(&self, calendar: jinfu_ledger::calendar::Calendar) -> Sweeper {
        Sweeper { calendar: SharedCalendar::new(calendar), ..self.sweeper() }
    }

    pub async fn sweep(&self) -> anyhow::Result<Round> {
        self.sweeper().round().await
    }

    /// Registers both parties' keys with the operator.
    pub async fn register(&self, parties: &Parties) -> anyhow::Result<()> {
        for (party, key, scheme) in [
            (&parties.purchaser, &parties.purchaser_key, pb::SignatureScheme::Sm2Sm3),
            (&parties.supplier, &parties.supplier_key, pb::SignatureScheme::Ed25519),
        ] {
            let request = pb::PartyKey {
                centre_id: CENTRE.into(),
                party_uscc: party.uscc.clone(),
                key_ref: "contract_key_1".into(),
                scheme: scheme as i32,
                public_key: key.public_key_hex(),
            };
            self.grpc.clone().register_party_key(self.operator(request)).await?;
        }
        Ok(())
    }

    /// Sets the test centre's clocks.
    pub async fn set_rules(&self, rules: pb::CentreRules) -> anyhow::Result<pb::CentreRules> {
        Ok(self.grpc.clone().set_centre_rules(self.operator(pb::CentreRules { centre_id: CENTRE.into(), ..rules })).await?.into_inner())
    }

    /// Drafts `draft` as its purchaser.
    pub async fn draft(&self, draft: pb::DraftContractRequest) -> Result<pb::Contract, tonic::Status> {
        let purchaser = draft.purchaser_uscc.clone();
        Ok(self.grpc.clone().draft_contract(self.as_role(Role::Purchaser, &purchaser, draft)).await?.into_inner())
    }

    /// Signs `contract` as `party` with `key` (the canonical text as the service shows it).
    pub async fn sign(&self, contract: &pb::Contract, role: Role, party: &str, key: &SigningKey) -> Result<pb::Contract, tonic::Status> {
        let request = pb::SignContractRequest {
            centre_id: CENTRE.into(),
            contract_id: contract.contract_id.clone(),
            key_ref: "contract_key_1".into(),
            signature: key.sign(contract.canonical_text.as_bytes()),
        };
        Ok(self.grpc.clone().sign_contract(self.as_role(role, party, request)).await?.into_inner())
    }

    /// Both parties sign, the purchaser first; the clock moves by `between` in between.
    pub async fn sign_both(&self, contract: &pb::Contract, parties: &Parties, between: chrono::Duration) -> anyhow::Result<pb::Contract> {
        self.sign(contract, Role::Purchaser, &parties.purchaser.uscc, &parties.purchaser_key).await?;
        self.clock.advance(between);
        Ok(self.sign(contract, Role::Supplier, &parties.supplier.uscc, &parties.supplier_key).await?)
    }

    /// Submits an invoice of `amount_fen` (tax included, 13 % VAT split) for `milestone`.
    pub async fn invoice(&self, contract: &pb::Contract, invoice_no: &str, milestone: u32, amount_fen: i64) -> Result<pb::Invoice, tonic::Status> {
        let without_tax = amount_fen * 100 / 113;
        let request = pb::SubmitInvoiceRequest {
            centre_id: CENTRE.into(),
            contract_id: contract.contract_id.clone(),
            milestone,
            invoice_no: invoice_no.into(),
            r#type: pb::InvoiceType::SpecialVat as i32,
            issue_date: jinfu_ledger::beijing::date(jinfu_platform::clock::Clock::now(&self.clock)).to_string(),
            amount_without_tax_fen: without_tax,
            tax_fen: amount_fen - without_tax,
            amount_with_tax_fen: amount_fen,
            buyer_uscc: contract.purchaser_uscc.clone(),
            seller_uscc: contract.supplier_uscc.clone(),
        };
        Ok(self.grpc.clone().submit_invoice(self.as_role(Role::Supplier, &contract.supplier_uscc, request)).await?.into_inner())
    }

    pub async fn get_invoice(&self, invoice_no: &str, party: &str) -> anyhow::Result<pb::Invoice> {
        let request = pb::InvoiceRef { centre_id: CENTRE.into(), invoice_no: invoice_no.into() };
        Ok(self.grpc.clone().get_invoice(self.as_role(Role::Supplier, party, request)).await?.into_inner())
    }

    pub async fn get_contract(&self, contract_id: &str) -> anyhow::Result<pb::Contract> {
        let request = pb::ContractRef { centre_id: CENTRE.into(), contract_id: contract_id.into() };
        Ok(self.grpc.clone().get_contract(self.operator(request)).await?.into_inner())
    }

    /// The purchaser pays `allocations` (invoice, fen) on `paid_on`.
    pub async fn pay(&self, contract: &pb::Contract, payment_id: &str, paid_on: &str, allocations: &[(&str, i64)]) -> Result<pb::Payment, tonic::Status> {
        let request = pb::RecordPaymentRequest {
            centre_id: CENTRE.into(),
            payment_id: payment_id.into(),
            contract_id: contract.contract_id.clone(),
            paid_on: paid_on.into(),
            allocations: allocations
                .iter()
                .map(|(invoice_no, amount_fen)| pb::Allocation { invoice_no: (*invoice_no).into(), amount_fen: *amount_fen })
                .collect(),
        };
        Ok(self.grpc.clone().record_payment(self.as_role(Role::Purchaser, &contract.purchaser_uscc, request)).await?.into_inner())
    }

    /// The events of `event_type` written to `contract.events` so far (outbox, in order), as JSON.
    pub async fn events(&self, event_type: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let payloads: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM contract.outbox WHERE topic = $1 ORDER BY id").bind(&self.events_topic).fetch_all(&self.pool).await?;
        let mut events = Vec::new();
        for payload in payloads {
            let event: serde_json::Value = serde_json::from_slice(&payload)?;
            if event["type"] == event_type {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Every event written so far, checked against docs/schemas/contract.event.v1.json.
    pub async fn assert_events_match_schema(&self) -> anyhow::Result<usize> {
        crate::assert_outbox_matches(&self.pool, "contract", &self.events_topic, "contract.event.v1.json").await
    }
}

/// A procurement draft for `section`: 100,000.00 yuan, 30 % prepayment 10 working days after
/// signing and 70 % 30 calendar days after acceptance; a small supplier; statutory overdue rate.
pub fn draft_request(section: &str, contract_id: &str, parties: &Parties, awarded_at: Option<DateTime<Utc>>) -> pb::DraftContractRequest {
    pb::DraftContractRequest {
        centre_id: CENTRE.into(),
        contract_id: contract_id.into(),
        section_id: section.into(),
        regime: pb::Regime::Procurement as i32,
        purchaser_uscc: parties.purchaser.uscc.clone(),
        purchaser_name: "贵阳市第一中学".into(),
        supplier_uscc: parties.supplier.uscc.clone(),
        supplier_name: parties.supplier.name.clone(),
        supplier_scale: pb::Scale::Small as i32,
        amount_fen: 10_000_000,
        awarded_at: awarded_at.map(|at| prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        milestones: vec![
            pb::Milestone { kind: pb::MilestoneKind::Prepayment as i32, percent_bp: 3_000, period_days: 10, working_days: true, ..Default::default() },
            pb::Milestone { kind: pb::MilestoneKind::Acceptance as i32, percent_bp: 7_000, period_days: 30, working_days: false, ..Default::default() },
        ],
        payment_days: 30,
        collection_account: Some(pb::CollectionAccount {
            bank_name: "中国工商银行贵阳分行".into(),
            account_no: "2402000001".into(),
            account_name: parties.supplier.name.clone(),
        }),
        performance_security: Some(pb::Security { form: pb::SecurityForm::Guarantee as i32, amount_fen: 500_000 }),
        quality_retention: None,
        overdue_rate: None,
    }
}

/// Produces an award (`award.announced`) for `section` naming `winner`, as of `at`; returns its id.
pub async fn award(app: &TestApp, section: &str, winner: &str, at: DateTime<Utc>) -> anyhow::Result<String> {
    tender_event_at(app, section, "award.announced", serde_json::json!({ "winner_uscc": winner }), at).await
}

/// Produces a tender event for `section` of the test centre as of `at`; returns its id.
pub async fn tender_event_at(app: &TestApp, section: &str, event_type: &str, data: serde_json::Value, at: DateTime<Utc>) -> anyhow::Result<String> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let value = serde_json::to_vec(&serde_json::json!({
        "schema_version": 1, "event_id": event_id, "centre_id": CENTRE, "section_id": section, "type": event_type, "occurred_at": china(at), "data": data,
    }))?;
    let record = jinfu_bank_sim::BankRecord { key: section.into(), value, headers: vec![] };
    jinfu_bank_sim::produce_all(&app.settings.kafka.producer()?, &app.settings.kafka.topic(jinfu_platform::topics::TRADING_EVENTS), &[record]).await?;
    Ok(event_id)
}
