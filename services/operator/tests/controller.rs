//! The controller against kube's mocked API: each test scripts the requests the reconciler must
//! make (method, path, and what it sends) and the API server's answers, and records the calls
//! the reconciler makes of the platform. Scenarios: create, update, error requeue, refused and
//! then allowed deletion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use jinfu_operator::controller::{error_policy, reconcile, Context, Error, DELETION_RETRY, RESYNC};
use jinfu_operator::crd::{BankAccount, CalendarOverride, DayKind, RateChange, RefundRules, TradingCentre, TradingCentreSpec, FINALIZER};
use jinfu_operator::platform::{Holdings, Platform, PlatformError};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The platform as the reconciler sees it: records every call; answers as scripted.
#[derive(Default)]
struct RecordingPlatform {
    calls: Mutex<Vec<String>>,
    /// Fails every registration with this error, when set.
    fail_with: Mutex<Option<fn() -> PlatformError>>,
    held_fen: Mutex<Option<i64>>,
}

impl RecordingPlatform {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
    fn record(&self, call: String) -> Result<(), PlatformError> {
        self.calls.lock().expect("lock").push(call);
        match *self.fail_with.lock().expect("lock") {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }
}

impl Platform for RecordingPlatform {
    async fn register_centre(&self, centre_id: &str, name: &str, parent: Option<&str>, refunds: Option<&RefundRules>) -> Result<(), PlatformError> {
        let period = refunds.and_then(|rules| rules.period_days);
        self.record(format!("register_centre {centre_id} {name} parent={parent:?} period={period:?}"))
    }
    async fn register_bank_account(&self, centre_id: &str, account: &BankAccount) -> Result<(), PlatformError> {
        let rates: Vec<String> = account.rate_changes.iter().map(|change| format!("{}@{}", change.annual_rate, change.effective_from)).collect();
        self.record(format!(
            "register_bank_account {centre_id} {}:{} rate={} changes={rates:?}",
            account.bank, account.account_number, account.demand_deposit_rate
        ))
    }
    async fn set_calendar_overrides(&self, centre_id: &str, overrides: &[CalendarOverride]) -> Result<(), PlatformError> {
        let days: Vec<String> = overrides.iter().map(|day| format!("{}={:?}", day.date, day.kind)).collect();
        self.record(format!("set_calendar_overrides {centre_id} {days:?}"))
    }
    async fn holdings(&self, centre_id: &str) -> Result<Option<Holdings>, PlatformError> {
        self.calls.lock().expect("lock").push(format!("holdings {centre_id}"));
        Ok(self.held_fen.lock().expect("lock").map(|held| Holdings { deposits_fen: held, total_fen: held, ..Holdings::default() }))
    }
}

fn spec() -> TradingCentreSpec {
    TradingCentreSpec {
        centre_id: "520100".into(),
        name: "贵阳市公共资源交易中心".into(),
        parent_centre_id: Some("520000".into()),
        refunds: Some(RefundRules { period_days: Some(5), hold_working_days: Some(1) }),
        bank_accounts: vec![BankAccount {
            bank: "ICBC".into(),
            account_number: "2402000000000001".into(),
            signing_key_ref: "icbc_2026".into(),
            demand_deposit_rate: "0.0035".into(),
            rate_changes: vec![RateChange { effective_from: "2026-07-01".into(), annual_rate: "0.0030".into() }],
        }],
        calendar_overrides: vec![CalendarOverride { date: "2026-12-31".into(), kind: DayKind::Holiday, reason: "local notice".into() }],
    }
}

fn centre(generation: i64, finalizer: bool, deleting: bool) -> TradingCentre {
    let mut centre = TradingCentre::new("guiyang", spec());
    centre.metadata.namespace = Some("jinfu".into());
    centre.metadata.uid = Some("4a1c-guiyang".into());
    centre.metadata.resource_version = Some("7".into());
    centre.metadata.generation = Some(generation);
    if finalizer {
        centre.metadata.finalizers = Some(vec![FINALIZER.into()]);
    }
    if deleting {
        centre.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
    }
    centre
}

fn context(platform: Arc<RecordingPlatform>) -> (Arc<Context<Arc<RecordingPlatform>>>, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "jinfu");
    let recorder = Recorder::new(client.clone(), Reporter { controller: "jinfu-operator".into(), instance: Some("test".into()) });
    (Arc::new(Context { client, platform, recorder }), handle)
}

/// One scripted exchange: the request must have `method` and `path`; the API server answers
/// `answer`. Returns the request's JSON body.
async fn expect(handle: &mut ApiHandle, method: Method, path: &str, answer: Value) -> Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
        .expect("the client is gone");
    assert_eq!(request.method(), method, "method of the request to {}", request.uri());
    assert_eq!(request.uri().path(), path);
    let bytes = request.into_body().collect_bytes().await.expect("request body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("request body is JSON") };
    send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&answer).expect("json"))).expect("response"));
    body
}

const RESOURCE: &str = "/apis/jinfu.io/v1/namespaces/jinfu/tradingcentres/guiyang";
const STATUS: &str = "/apis/jinfu.io/v1/namespaces/jinfu/tradingcentres/guiyang/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/jinfu/events";

fn echo(centre: &TradingCentre) -> Value {
    serde_json::to_value(centre).expect("json")
}

async fn no_more_requests(server: JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("API script finished").expect("API script passed")
}

#[tokio::test]
async fn a_new_centre_gets_the_finalizer_then_is_registered_with_status_and_an_event() {
    let platform = Arc::new(RecordingPlatform::default());
    *platform.held_fen.lock().expect("lock") = Some(0);
    let (context, mut handle) = context(platform.clone());

    // First pass: only the finalizer is added; the patch must test that there were none.
    let fresh = centre(1, false, false);
    let answer = echo(&centre(1, true, false));
    let server = tokio::spawn(async move {
        let patch = expect(&mut handle, Method::PATCH, RESOURCE, answer).await;
        assert_eq!(
            patch,
            json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
        );
        drop(handle);
    });
    let action = reconcile(Arc::new(fresh), context.clone()).await.expect("reconciled");
    assert_eq!(action, Action::await_change());
    no_more_requests(server).await;
    assert!(platform.calls().is_empty(), "nothing is registered before the finalizer is in place");

    // Second pass (the watch sees the finalizer): register, status, event.
    let (context, mut handle) = self::context(platform.clone());
    let with_finalizer = centre(1, true, false);
    let answer = echo(&with_finalizer);
    let server = tokio::spawn(async move {
        let status = expect(&mut handle, Method::PATCH, STATUS, answer).await;
        assert_eq!(status["status"]["observedGeneration"], 1);
        assert_eq!(status["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(status["status"]["conditions"][0]["status"], "True");
        assert_eq!(status["status"]["conditions"][0]["reason"], "Reconciled");
        assert_eq!(status["status"]["heldFen"], 0);
        assert_eq!(status["status"]["bankAccounts"], 1);
        let event = expect(&mut handle, Method::POST, EVENTS, json!({"metadata": {"name": "e"}})).await;
        assert_eq!(event["type"], "Normal");
        assert_eq!(event["reason"], "Reconciled");
        assert_eq!(event["regarding"]["name"], "guiyang");
        drop(handle);
    });
    let action = reconcile(Arc::new(with_finalizer), context).await.expect("reconciled");
    assert_eq!(action, Action::requeue(RESYNC));
    no_more_requests(server).await;
    assert_eq!(
        platform.calls(),
        vec![
            "register_centre 520100 贵阳市公共资源交易中心 parent=Some(\"520000\") period=Some(5)",
            "register_bank_account 520100 ICBC:2402000000000001 rate=0.0035 changes=[\"0.0030@2026-07-01\"]",
            "set_calendar_overrides 520100 [\"2026-12-31=Holiday\"]",
            "holdings 520100",
        ]
    );
}

#[tokio::test]
async fn an_edited_centre_is_registered_again_with_its_new_generation() {
    let platform = Arc::new(RecordingPlatform::default());
    *platform.held_fen.lock().expect("lock") = Some(125_000);
    let (context, mut handle) = context(platform.clone());
    let mut edited = centre(2, true, false);
    edited.spec.bank_accounts.push(BankAccount {
        bank: "CCB".into(),
        account_number: "5200000000000002".into(),
        signing_key_ref: "ccb_2026".into(),
        demand_deposit_rate: "0.0025".into(),
        rate_changes: Vec::new(),
    });
    edited.spec.calendar_overrides.clear();
    // Reconciled before at generation 1.
    edited.status = Some(jinfu_operator::crd::TradingCentreStatus { observed_generation: Some(1), ..Default::default() });
    let answer = echo(&edited);
    let server = tokio::spawn(async move {
        let status = expect(&mut handle, Method::PATCH, STATUS, answer).await;
        assert_eq!(status["status"]["observedGeneration"], 2);
        assert_eq!(status["status"]["heldFen"], 125_000);
        assert_eq!(status["status"]["bankAccounts"], 2);
        let event = expect(&mut handle, Method::POST, EVENTS, json!({})).await;
        assert_eq!(event["reason"], "Reconciled");
        drop(handle);
    });
    reconcile(Arc::new(edited), context).await.expect("reconciled");
    no_more_requests(server).await;
    let calls = platform.calls();
    assert!(calls.iter().any(|call| call.starts_with("register_bank_account 520100 CCB:5200000000000002")), "{calls:?}");
    assert!(calls.contains(&"set_calendar_overrides 520100 []".to_owned()), "removed overrides are cleared: {calls:?}");
}

#[tokio::test]
async fn a_platform_failure_is_reported_and_requeued_by_kind() {
    let platform = Arc::new(RecordingPlatform::default());
    *platform.fail_with.lock().expect("lock") = Some(|| PlatformError::Unavailable("Unavailable: connection refused".into()));
    let (context, mut handle) = context(platform.clone());
    let with_finalizer = centre(1, true, false);
    let answer = echo(&with_finalizer);
    let server = tokio::spawn(async move {
        let status = expect(&mut handle, Method::PATCH, STATUS, answer).await;
        assert_eq!(status["status"]["conditions"][0]["status"], "False");
        assert_eq!(status["status"]["conditions"][0]["reason"], "PlatformUnavailable");
        assert!(status["status"]["conditions"][0]["message"].as_str().expect("message").contains("connection refused"));
        let event = expect(&mut handle, Method::POST, EVENTS, json!({})).await;
        assert_eq!(event["type"], "Warning");
        drop(handle);
    });
    let resource = Arc::new(with_finalizer);
    let error = reconcile(resource.clone(), context.clone()).await.expect_err("the platform is down");
    no_more_requests(server).await;
    assert!(matches!(error, Error::Platform(PlatformError::Unavailable(_))), "{error:?}");
    assert_eq!(error.metric_label(), "platform_unavailable");
    assert_eq!(error_policy(resource.clone(), &error, context.clone()), Action::requeue(Duration::from_secs(30)));
    // A parent centre not registered yet is retried sooner; a refused spec rarely.
    let not_yet = Error::Platform(PlatformError::NotYet("FailedPrecondition: parent centre 520000 is not registered".into()));
    assert_eq!(error_policy(resource.clone(), &not_yet, context.clone()), Action::requeue(Duration::from_secs(15)));
    let refused = Error::Platform(PlatformError::Refused("AlreadyExists: another name".into()));
    assert_eq!(error_policy(resource, &refused, context), Action::requeue(Duration::from_secs(600)));
}

#[tokio::test]
async fn deleting_a_centre_that_holds_money_is_refused_until_it_holds_nothing() {
    let platform = Arc::new(RecordingPlatform::default());
    *platform.held_fen.lock().expect("lock") = Some(5_000_000);
    let (context, mut handle) = context(platform.clone());
    let deleting = centre(1, true, true);
    let answer = echo(&deleting);
    let server = tokio::spawn(async move {
        let status = expect(&mut handle, Method::PATCH, STATUS, answer).await;
        let blocked = &status["status"]["conditions"][0];
        assert_eq!(blocked["type"], "DeletionBlocked");
        assert_eq!(blocked["reason"], "HoldsMoney");
        assert!(blocked["message"].as_str().expect("message").contains("50000.00 yuan"), "{blocked}");
        assert_eq!(status["status"]["heldFen"], 5_000_000);
        let event = expect(&mut handle, Method::POST, EVENTS, json!({})).await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "DeletionRefused");
        // No finalizer removal follows: the script ends here.
        drop(handle);
    });
    let resource = Arc::new(deleting);
    let error = reconcile(resource.clone(), context.clone()).await.expect_err("deletion refused");
    no_more_requests(server).await;
    assert!(matches!(error, Error::HoldsMoney { held_fen: 5_000_000, .. }), "{error:?}");
    assert_eq!(error_policy(resource.clone(), &error, context), Action::requeue(DELETION_RETRY));

    // The deposits are refunded: the finalizer goes.
    *platform.held_fen.lock().expect("lock") = Some(0);
    let (context, mut handle) = self::context(platform.clone());
    let answer = echo(&centre(1, false, true));
    let server = tokio::spawn(async move {
        let event = expect(&mut handle, Method::POST, EVENTS, json!({})).await;
        assert_eq!(event["reason"], "Released");
        let patch = expect(&mut handle, Method::PATCH, RESOURCE, answer).await;
        assert_eq!(patch, json!([{"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER}, {"op": "remove", "path": "/metadata/finalizers/0"}]));
        drop(handle);
    });
    let action = reconcile(resource, context).await.expect("released");
    assert_eq!(action, Action::await_change());
    no_more_requests(server).await;
}

#[test]
fn the_committed_crd_is_the_generated_one() {
    let generated = jinfu_operator::crd_yaml().expect("crd");
    for path in ["../../k8s/crds/tradingcentres.jinfu.io.yaml", "../../charts/jinfu/crds/tradingcentres.jinfu.io.yaml"] {
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(committed == generated, "{path} differs from the generated CRD: run `cargo run -q -p jinfu-operator --bin crdgen > {path}`");
    }
}
