//! The gRPC server bootstrap: `grpc.health.v1`, server reflection over every Jinfu API, request
//! metrics, and graceful shutdown (in-flight calls finish; new ones are refused).
//!
//! Health, as Kubernetes probes it:
//! - service `liveness` is SERVING while the process serves at all (liveness and startup probes);
//! - the overall service `""` and every API the process serves are SERVING only while the
//!   process's dependencies answer (readiness): PostgreSQL and Kafka for the ledger. Traffic then
//!   goes only to replicas that can do their work.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::metrics::{GRPC_REQUESTS, GRPC_REQUEST_DURATION};

/// The health service name that reports the process alive.
pub const LIVENESS: &str = "liveness";

/// Where a service serves gRPC (`JINFU_GRPC__LISTEN`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GrpcSettings {
    /// `host:port`; port 0 picks a free port (tests). Default `127.0.0.1:50051`; the chart sets
    /// `0.0.0.0:50051`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Calls served at once, over all connections (`JINFU_GRPC__CONCURRENCY_MAX`, default 256).
    /// A call beyond it is answered RESOURCE_EXHAUSTED at once, without queueing: memory stays
    /// bounded under a flood and the client retries with backoff. Health checks are exempt, so
    /// probes keep answering.
    #[serde(default = "default_concurrency_max")]
    pub concurrency_max: usize,
    /// Longest a call may run (`JINFU_GRPC__REQUEST_TIMEOUT_MS`, default 30,000): after it the
    /// call is answered DEADLINE_EXCEEDED and its handler dropped (a transaction it held is
    /// rolled back). A shorter `grpc-timeout` sent by the client applies as well.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings { listen: default_listen(), concurrency_max: default_concurrency_max(), request_timeout_ms: default_request_timeout_ms() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:50051".into()
}
fn default_concurrency_max() -> usize {
    256
}
fn default_request_timeout_ms() -> u64 {
    30_000
}

impl GrpcSettings {
    pub fn limits(&self) -> CallLimits {
        CallLimits { concurrency_max: self.concurrency_max.max(1), request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)) }
    }
}

/// Bounds on the calls a server runs: see [`GrpcSettings`].
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub concurrency_max: usize,
    pub request_timeout: Duration,
}

/// The `health` subcommand every binary has (probes, `helm test`): needs no configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// e.g. `http://jinfu-ledger:50051`.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub endpoint: String,
    /// `""` (overall readiness, the default) or `liveness`.
    #[arg(long, default_value = "")]
    pub service: String,
}

/// Runs the `health` subcommand: prints the status, exits 0 when SERVING.
pub async fn health_command(args: &HealthArgs) -> anyhow::Result<std::process::ExitCode> {
    let serving = probe(&args.endpoint, &args.service, Duration::from_secs(5)).await?;
    println!("{} {:?}: {}", args.endpoint, args.service, if serving { "SERVING" } else { "NOT_SERVING" });
    Ok(if serving { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}

/// A readiness check: `Ok` while the process can do its work, `Err(why)` otherwise.
pub type ReadinessCheck = Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What the health service reports ready, and how to tell.
pub struct Readiness {
    /// Fully qualified gRPC service names reported with the overall service `""`.
    pub services: Vec<&'static str>,
    /// Run every `interval`; its result sets the readiness of `services` and `""`.
    pub check: ReadinessCheck,
    pub interval: Duration,
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    file_descriptor_set: &'static [u8],
    readiness: Readiness,
    limits: CallLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter.set_service_status(LIVENESS, ServingStatus::Serving).await;
    // Not ready until the first check passes.
    reporter.set_service_status("", ServingStatus::NotServing).await;
    for service in &readiness.services {
        reporter.set_service_status(*service, ServingStatus::NotServing).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(file_descriptor_set)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let known = Arc::new(KnownMethods::of_served(file_descriptor_set, &readiness.services)?);
    let permits = Arc::new(Semaphore::new(limits.concurrency_max));
    let server = tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(move |inner| Metered { inner, known: Arc::clone(&known) }))
        .layer(tower::layer::layer_fn(move |inner| Limited::new(inner, limits, Arc::clone(&permits))))
        .add_routes(routes)
        // TCP_NODELAY: without it small responses wait for the peer's delayed ACK (Nagle),
        // about 40 ms a call (scripts/bench-credit.sh measured it).
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown);
    tokio::select! {
        result = server => result?,
        () = track_readiness(reporter, readiness) => {},
    }
    Ok(())
}

/// Runs the readiness check forever, logging each change.
async fn track_readiness(reporter: HealthReporter, readiness: Readiness) {
    let mut ready: Option<bool> = None;
    loop {
        let result = (readiness.check)().await;
        let now = result.is_ok();
        if ready != Some(now) {
            match &result {
                Ok(()) => info!("ready: dependencies reachable"),
                Err(why) => warn!(reason = %why, "not ready"),
            }
            let status = if now { ServingStatus::Serving } else { ServingStatus::NotServing };
            reporter.set_service_status("", status).await;
            for service in &readiness.services {
                reporter.set_service_status(*service, status).await;
            }
            ready = Some(now);
        }
        tokio::time::sleep(readiness.interval).await;
    }
}

/// Asks the health service at `endpoint` (e.g. `http://ledger:50051`) about `service` (`""`:
/// overall readiness; `liveness`). Used by every binary's `health` subcommand and `helm test`.
pub async fn probe(endpoint: &str, service: &str, timeout: Duration) -> anyhow::Result<bool> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{health_check_response::ServingStatus as Status, HealthCheckRequest};
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(timeout).timeout(timeout).connect().await?;
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(response.into_inner().status == Status::Serving as i32)
}

/// The label every call to a method the server does not serve gets, as service and method.
pub const UNKNOWN_METHOD: &str = "unknown";

/// The methods a server serves, as `(service, method)` (`("jinfu.ledger.v1.LedgerService",
/// "GetSection")`): the only values [`Metered`] puts in its labels. A path is chosen by the
/// client, authenticated or not, so labelling by it would let anyone grow `/metrics` without
/// bound; every other path is counted as [`UNKNOWN_METHOD`].
#[derive(Debug, Clone, Default)]
struct KnownMethods {
    methods: HashSet<(String, String)>,
}

impl KnownMethods {
    /// The methods of `services` (fully qualified names) described in the encoded
    /// `file_descriptor_set`, plus those of the health and reflection services every server adds.
    fn of_served(file_descriptor_set: &[u8], services: &[&str]) -> anyhow::Result<KnownMethods> {
        let mut known = KnownMethods::default();
        known.add(file_descriptor_set, |service| services.contains(&service))?;
        known.add(tonic_health::pb::FILE_DESCRIPTOR_SET, |_| true)?;
        known.add(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET, |_| true)?;
        Ok(known)
    }

    /// Adds every method of the services in `encoded` for which `wanted` holds.
    fn add(&mut self, encoded: &[u8], wanted: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(encoded).map_err(|error| anyhow::anyhow!("decoding a file descriptor set: {error}"))?;
        for file in &set.file {
            for service in &file.service {
                let name = match file.package() {
                    "" => service.name().to_owned(),
                    package => format!("{package}.{}", service.name()),
                };
                if wanted(&name) {
                    self.methods.extend(service.method.iter().map(|method| (name.clone(), method.name().to_owned())));
                }
            }
        }
        Ok(())
    }

    /// The `(service, method)` labels of a request path `/service/method`: the path's own when
    /// the server serves that method, [`UNKNOWN_METHOD`] twice otherwise.
    fn labels(&self, path: &str) -> (String, String) {
        let path = path.strip_prefix('/').unwrap_or(path);
        if let Some((service, method)) = path.split_once('/') {
            if self.methods.contains(&(service.to_owned(), method.to_owned())) {
                return (service.to_owned(), method.to_owned());
            }
        }
        (UNKNOWN_METHOD.to_owned(), UNKNOWN_METHOD.to_owned())
    }
}

/// Counts and times every call: `jinfu_grpc_requests_total{service,method,code}` and
/// `jinfu_grpc_request_duration_seconds{service,method}`, with `service` and `method` only of
/// the methods the server serves ([`KnownMethods`]). The code is read from the response
/// headers (tonic sends an error as a trailers-only response); a unary success carries its
/// status in the trailers and is counted as `OK`.
#[derive(Clone)]
struct Metered<S> {
    inner: S,
    known: Arc<KnownMethods>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Metered<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = self.known.labels(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if service != "grpc.health.v1.Health" {
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .map(|code| format!("{:?}", tonic::Code::from_i32(code)))
                        .unwrap_or_else(|| "Ok".into()),
                    Err(_) => "Unavailable".into(),
                };
                metrics::counter!(GRPC_REQUESTS, "service" => service.clone(), "method" => method.clone(), "code" => code).increment(1);
                metrics::histogram!(GRPC_REQUEST_DURATION, "service" => service, "method" => method).record(started.elapsed().as_secs_f64());
            }
            result
        })
    }
}

/// Bounds every call but health checks: at most `concurrency_max` at once (RESOURCE_EXHAUSTED
/// beyond, counted as such by [`Metered`]), each within `request_timeout` (DEADLINE_EXCEEDED).
#[derive(Clone)]
struct Limited<S> {
    inner: S,
    limits: CallLimits,
    permits: Arc<Semaphore>,
}

impl<S> Limited<S> {
    fn new(inner: S, limits: CallLimits, permits: Arc<Semaphore>) -> Self {
        Limited { inner, limits, permits }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Limited<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            let limit = self.limits.concurrency_max;
            return Box::pin(async move {
                Ok(tonic::Status::resource_exhausted(format!("the server is serving its limit of {limit} calls; retry with backoff")).into_http())
            });
        };
        let timeout = self.limits.request_timeout;
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = tokio::time::timeout(timeout, future).await;
            drop(permit);
            match result {
                Ok(result) => result,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!("the call ran past the server's limit of {} ms", timeout.as_millis())).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Service, ServiceExt};

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder().uri(format!("http://localhost{path}")).body(()).expect("a valid request")
    }

    fn grpc_status(response: &http::Response<String>) -> Option<i32> {
        response.headers().get("grpc-status").and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok())
    }

    /// A handler that answers only once its test opens the gate.
    fn held_handler(
        gate: tokio::sync::watch::Receiver<bool>,
    ) -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<String>,
        Error = std::convert::Infallible,
        Future = BoxFuture<'static, Result<http::Response<String>, std::convert::Infallible>>,
    > + Clone
           + Send {
        tower::service_fn(move |_request: http::Request<()>| {
            let mut gate = gate.clone();
            Box::pin(async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok(http::Response::new("done".to_owned()))
            }) as BoxFuture<'static, _>
        })
    }

    #[tokio::test]
    async fn a_call_beyond_the_concurrency_bound_is_refused_at_once_and_health_checks_still_pass() {
        let (open, gate) = tokio::sync::watch::channel(false);
        let limits = CallLimits { concurrency_max: 1, request_timeout: Duration::from_secs(30) };
        let mut limited = Limited::new(held_handler(gate), limits, Arc::new(Semaphore::new(1)));
        let first = limited.ready().await.expect("ready").call(request("/jinfu.ledger.v1.LedgerService/GetSection"));
        let second = limited.ready().await.expect("ready").call(request("/jinfu.ledger.v1.LedgerService/GetSection")).await.expect("an answer");
        assert_eq!(grpc_status(&second), Some(tonic::Code::ResourceExhausted as i32));
        let health = limited.ready().await.expect("ready").call(request("/grpc.health.v1.Health/Check"));
        let _ = open.send(true);
        let (first, health) = tokio::join!(first, health);
        assert_eq!(first.expect("an answer").body(), "done");
        assert_eq!(health.expect("an answer").body(), "done", "health checks are exempt from the bound");
        let third = limited.ready().await.expect("ready").call(request("/jinfu.ledger.v1.LedgerService/GetSection"));
        assert_eq!(third.await.expect("an answer").body(), "done", "the permit came back when the first call ended");
    }

    #[tokio::test]
    async fn a_call_past_the_request_timeout_is_answered_deadline_exceeded() {
        let limits = CallLimits { concurrency_max: 4, request_timeout: Duration::from_millis(50) };
        let permits = Arc::new(Semaphore::new(4));
        let (_never_opened, gate) = tokio::sync::watch::channel(false);
        let mut limited = Limited::new(held_handler(gate), limits, Arc::clone(&permits));
        let answer = limited.ready().await.expect("ready").call(request("/jinfu.ledger.v1.LedgerService/ListRefunds")).await.expect("an answer");
        assert_eq!(grpc_status(&answer), Some(tonic::Code::DeadlineExceeded as i32));
        assert_eq!(permits.available_permits(), 4, "the timed-out call gave its permit back");
    }

    fn ledger_methods() -> KnownMethods {
        KnownMethods::of_served(jinfu_proto::FILE_DESCRIPTOR_SET, &["jinfu.ledger.v1.LedgerService"]).expect("the descriptor set decodes")
    }

    #[test]
    fn only_methods_the_server_serves_keep_their_names_in_the_labels() {
        let known = ledger_methods();
        let labels = |path: &str| known.labels(path);
        let named = |service: &str, method: &str| (service.to_owned(), method.to_owned());
        let unknown = named(UNKNOWN_METHOD, UNKNOWN_METHOD);
        assert_eq!(labels("/jinfu.ledger.v1.LedgerService/GetSection"), named("jinfu.ledger.v1.LedgerService", "GetSection"));
        assert_eq!(labels("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), named("grpc.reflection.v1.ServerReflection", "ServerReflectionInfo"));
        assert_eq!(labels("/jinfu.ledger.v1.LedgerService/NoSuchMethod"), unknown);
        assert_eq!(labels("/made.up.Service/GetSection"), unknown);
        assert_eq!(labels("/jinfu.guarantee.v1.GuaranteeService/Apply"), unknown, "described, but another process serves it");
        assert_eq!(labels("/jinfu.ledger.v1.LedgerService"), unknown);
        assert_eq!(labels("/"), unknown);
        assert_eq!(labels("/jinfu.ledger.v1.LedgerService/GetSection/extra"), unknown);
    }

    #[test]
    fn calls_to_made_up_methods_add_no_series_to_the_metrics() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let handler = tower::service_fn(|_request: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) });
        let mut metered = Metered { inner: handler, known: Arc::new(ledger_methods()) };
        metrics::with_local_recorder(&recorder, || {
            futures::executor::block_on(async {
                for n in 0..500 {
                    let _ = metered.ready().await.expect("ready").call(request(&format!("/made.up.Service{n}/Method{n}"))).await;
                }
                let _ = metered.ready().await.expect("ready").call(request("/jinfu.ledger.v1.LedgerService/GetSection")).await;
            });
        });
        let rendered = handle.render();
        let series: Vec<&str> = rendered.lines().filter(|line| line.starts_with(GRPC_REQUESTS)).collect();
        assert_eq!(series.len(), 2, "{series:?}");
        assert!(rendered.contains(r#"service="unknown",method="unknown",code="Ok"} 500"#), "{rendered}");
        assert!(rendered.contains(r#"service="jinfu.ledger.v1.LedgerService",method="GetSection""#), "{rendered}");
        assert!(!rendered.contains("made.up"), "{rendered}");
    }
}
