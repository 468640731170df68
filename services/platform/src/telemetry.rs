//! Tracing: logs to stdout (text or JSON) and, when an OTLP endpoint is configured, spans to an
//! OpenTelemetry collector. The W3C trace-context propagator is installed globally so Kafka
//! headers and gRPC metadata carry `traceparent`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TelemetrySettings {
    /// e.g. `http://otel-collector:4317`. Unset: no spans are exported.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub log_format: Option<String>,
}

/// Flushes exported spans when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`).
pub fn init(service_name: &'static str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = settings.log_format.as_deref() == Some("json");
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
            let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name).build();
            Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
        }
        None => None,
    };
    let otel_layer = provider.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    if json {
        registry.with(tracing_subscriber::fmt::layer().json()).try_init()?;
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false)).try_init()?;
    }
    Ok(TelemetryGuard { provider })
}
