//! Observability of the ledger running in-process against a real PostgreSQL and a real
//! Kafka-protocol broker: one bank notice is one trace, from the bank's span through the
//! ledger's consumer, posting and outbox relay to a consumer of `ledger.events`, and on into the
//! notification service's consumer and dispatcher and the SMS gateway's HTTP request
//! (`traceparent`); and the credit-notice batch is counted in the ledger's metrics.
//!
//! The tracing subscriber and the metrics recorder are process-wide and can be installed once
//! per test binary (the ledger's tasks run on the runtime's worker threads, so a thread-local
//! default would not see them): this binary holds one test.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use jinfu_e2e::*;
use jinfu_platform::kafka;
use jinfu_platform::metrics::{CONSUMER_LAG, INGEST_BATCH_DURATION, INGEST_BATCH_SIZE, NOTICES, SUSPENSE_OPEN_ITEMS};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Installs, for the whole process, the W3C propagator, a tracing subscriber that exports every
/// closed span (INFO and above) to memory, and a recorder that keeps every metric.
fn install_telemetry() -> (SdkTracerProvider, InMemorySpanExporter, Snapshotter) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jinfu-e2e")));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only metrics recorder of this test binary");
    (provider, exporter, snapshotter)
}

/// Metrics seen so far. A snapshot resets counters (and zeroes gauges), so counters are summed
/// over snapshots and the last value of each gauge is kept.
#[derive(Default)]
struct Seen {
    counters: HashMap<(String, Vec<(String, String)>), u64>,
    gauges: HashMap<(String, Vec<(String, String)>), f64>,
    histograms: HashMap<String, usize>,
}

impl Seen {
    fn take(&mut self, snapshotter: &Snapshotter) {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let name = key.name().to_owned();
            let mut labels: Vec<(String, String)> = key.labels().map(|label| (label.key().to_owned(), label.value().to_owned())).collect();
            labels.sort();
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(count)) => *self.counters.entry((name, labels)).or_default() += count,
                (MetricKind::Gauge, DebugValue::Gauge(value)) => {
                    self.gauges.insert((name, labels), value.into_inner());
                }
                (MetricKind::Histogram, DebugValue::Histogram(values)) => *self.histograms.entry(name).or_default() += values.len(),
                _ => {}
            }
        }
    }

    /// The sum of a counter over every label set, and the label sets seen.
    fn counter(&self, name: &str) -> (u64, Vec<Vec<(String, String)>>) {
        let matching: Vec<_> = self.counters.iter().filter(|((metric, _), _)| metric == name).collect();
        (matching.iter().map(|(_, count)| **count).sum(), matching.iter().map(|((_, labels), _)| labels.clone()).collect())
    }

    fn gauge(&self, name: &str, label: (&str, &str)) -> Option<f64> {
        self.gauges
            .iter()
            .find(|((metric, labels), _)| metric == name && labels.iter().any(|(key, value)| key == label.0 && value == label.1))
            .map(|(_, value)| *value)
    }
}

fn short(id: SpanId) -> String {
    if id == SpanId::INVALID {
        "-".repeat(16)
    } else {
        id.to_string()
    }
}

/// The one finished span named `name` whose parent is `parent` (any parent if `None`).
fn one<'a>(spans: &'a [SpanData], name: &str, parent: Option<SpanId>) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|span| span.name == name && parent.is_none_or(|parent| span.parent_span_id == parent)).collect();
    assert_eq!(found.len(), 1, "expected one span {name} with parent {parent:?}, found {}", found.len());
    found[0]
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|attribute| attribute.key.as_str() == key).map(|attribute| attribute.value.to_string())
}

/// Prints `root`'s trace as a tree, parents before children, each with its ids.
fn print_trace(spans: &[SpanData], trace_id: TraceId) {
    let in_trace: Vec<&SpanData> = spans.iter().filter(|span| span.span_context.trace_id() == trace_id).collect();
    println!("trace {trace_id}: {} spans", in_trace.len());
    println!("  {:<32} {:<16} {:<16}  name", "trace id", "span id", "parent");
    fn walk(spans: &[&SpanData], parent: SpanId, depth: usize) {
        let mut children: Vec<&&SpanData> = spans.iter().filter(|span| span.parent_span_id == parent).collect();
        children.sort_by_key(|span| span.start_time);
        for span in children {
            let id = span.span_context.span_id();
            let links: Vec<String> = span.links.iter().map(|link| format!("{}/{}", link.span_context.trace_id(), link.span_context.span_id())).collect();
            println!(
                "  {} {} {}  {}{}{}",
                span.span_context.trace_id(),
                short(id),
                short(span.parent_span_id),
                "  ".repeat(depth),
                span.name,
                if links.is_empty() { String::new() } else { format!("  (link: {})", links.join(", ")) }
            );
            walk(spans, id, depth + 1);
        }
    }
    walk(&in_trace, SpanId::INVALID, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bank_notice_is_one_trace_from_the_bank_to_a_ledger_events_consumer_and_is_counted() -> anyhow::Result<()> {
    let (provider, exporter, snapshotter) = install_telemetry();
    let mut seen = Seen::default();

    let mut app = TestApp::spawn().await?;
    app.client.register_test_centre().await?;
    let later = Utc::now() + chrono::Duration::hours(48);
    app.client.create_section("S-TRACE", 5_000_000, later, later, true).await?;
    let bidder = TestBidder::new(1);
    let sub_account = app.client.open_sub_account("S-TRACE", &bidder).await?;
    // The notification service beside the ledger, the bidder's phone registered: the SMS the
    // deposit event causes carries the trace to the gateway.
    let gateways = notifications::gateways().await?;
    let notification = notifications::spawn_notification(notifications::notification_settings(&app, &gateways), Utc::now()).await?;
    let contacts = jinfu_proto::notification::v1::SetContactsRequest { party: bidder.uscc.clone(), phone: "13800138009".into(), ..Default::default() };
    notification.grpc.clone().set_contacts(notification.as_role(jinfu_platform::auth::Role::Bidder, CENTRE, &bidder.uscc, contacts)).await?;

    // The bank: one signed notice, produced inside the bank's own root span, whose context
    // `produce_all` puts in the record's headers (kafka::with_trace_context).
    let serial = "ICBC-TRACE-0001";
    let record = sign_icbc(&app.banks, &icbc_notice(&app.banks, serial, &sub_account, &bidder, "50000.00"));
    let bank_span = tracing::info_span!(parent: None, "bank.send_credit_notice", bank = "ICBC", bank_serial = serial);
    app.send(&[record]).instrument(bank_span).await?;
    app.wait_for_records(1).await?;

    // A consumer of ledger.events: it adopts the record's trace context, as every Jinfu
    // consumer does, and handles the event inside that span.
    let events: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &app.settings.kafka.brokers)
        .set("group.id", format!("trace-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    events.subscribe(&[&app.settings.kafka.topic(jinfu_platform::topics::LEDGER_EVENTS)])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let event_type = loop {
        let message = tokio::time::timeout_at(deadline, events.recv()).await.map_err(|_| anyhow::anyhow!("no ledger event for {serial} within 60 s"))??;
        let event: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
        if event["data"]["bank_serial"] != serial {
            continue;
        }
        let span = tracing::info_span!(parent: None, "ledger_events.consume", event_type = %event["type"]);
        kafka::adopt_trace_context(&span, message.headers());
        let event_type = span.in_scope(|| event["type"].as_str().unwrap_or_default().to_owned());
        drop(span);
        break event_type;
    };
    drop(events);

    // Metrics: the batch was counted once, by outcome, with its size and duration.
    let stored_outcome: String =
        sqlx::query_scalar("SELECT outcome FROM ledger.credit_notices WHERE bank_serial = $1").bind(serial).fetch_one(&app.pool).await?;
    seen.take(&snapshotter);
    let (notices, label_sets) = seen.counter(NOTICES);
    println!(
        "metrics: {NOTICES} = {notices} {label_sets:?}; {INGEST_BATCH_SIZE}: {:?} values; {INGEST_BATCH_DURATION}: {:?} values",
        seen.histograms.get(INGEST_BATCH_SIZE),
        seen.histograms.get(INGEST_BATCH_DURATION)
    );
    assert_eq!(notices, 1, "one notice counted");
    assert_eq!(label_sets, vec![vec![("outcome".to_owned(), stored_outcome.clone())]], "counted with the outcome it was posted with");
    assert!(seen.histograms.get(INGEST_BATCH_SIZE).copied().unwrap_or(0) >= 1, "batch size recorded");
    assert!(seen.histograms.get(INGEST_BATCH_DURATION).copied().unwrap_or(0) >= 1, "batch duration recorded");

    // Gauges: one measuring round against this ledger's database and topics.
    let (stop_gauges, gauges_stopped) = tokio::sync::watch::channel(false);
    let gauges = tokio::spawn(jinfu_ledger_service::observe::run_gauges(app.pool.clone(), app.settings.kafka.clone(), gauges_stopped));
    let notices_topic = app.settings.kafka.topic(jinfu_platform::topics::BANK_CREDIT_NOTICES);
    wait_until("the consumer-lag gauge of bank.credit-notices", || {
        seen.take(&snapshotter);
        let found = seen.gauge(CONSUMER_LAG, ("topic", &notices_topic)).is_some();
        async move { Ok(found) }
    })
    .await?;
    stop_gauges.send(true)?;
    gauges.await?;
    let lag = seen.gauge(CONSUMER_LAG, ("topic", &notices_topic));
    let suspense = seen.gauge(SUSPENSE_OPEN_ITEMS, ("centre", CENTRE));
    println!("metrics: {CONSUMER_LAG}{{topic={notices_topic}}} = {lag:?}; {SUSPENSE_OPEN_ITEMS}{{centre={CENTRE}}} = {suspense:?}");
    assert_eq!(lag, Some(0.0), "every produced notice was consumed");
    assert_eq!(suspense, Some(0.0), "the notice matched; nothing in suspense");

    // A notice without trace context (`traceparent` is optional for banks) starts a trace of
    // its own at the ledger, rather than joining its batch's.
    let untraced_serial = "ICBC-TRACE-0002";
    let untraced = sign_icbc(&app.banks, &icbc_notice(&app.banks, untraced_serial, &sub_account, &bidder, "1.00"));
    app.send(&[untraced]).await?;
    app.wait_for_records(2).await?;

    notifications::eventually("the deposit's SMS at the gateway", || gateways.sms().iter().any(|sms| sms.phone == "13800138009")).await?;
    let sms_traceparent = gateways.sms().into_iter().find(|sms| sms.phone == "13800138009").and_then(|sms| sms.traceparent);
    drop(notification);

    // Stopping the ledger closes its remaining spans; then everything is exported.
    app.stop().await?;
    provider.force_flush()?;
    let spans = exporter.get_finished_spans()?;

    let bank = one(&spans, "bank.send_credit_notice", None);
    let trace_id = bank.span_context.trace_id();
    let receive = one(&spans, "receive_credit_notice", Some(bank.span_context.span_id()));
    let post = one(&spans, "post_credit_notice", Some(receive.span_context.span_id()));
    let publish = one(&spans, "outbox.publish", Some(post.span_context.span_id()));
    let consume = one(&spans, "ledger_events.consume", Some(publish.span_context.span_id()));
    let batch = spans
        .iter()
        .find(|span| span.name == "apply_credit_notice_batch" && receive.links.iter().any(|link| link.span_context.span_id() == span.span_context.span_id()))
        .expect("the receive span links to its batch span");
    let untraced_receive = one(&spans, "receive_credit_notice", Some(SpanId::INVALID));
    let untraced_post = one(&spans, "post_credit_notice", Some(untraced_receive.span_context.span_id()));
    let untraced_publish = one(&spans, "outbox.publish", Some(untraced_post.span_context.span_id()));

    println!("event {event_type} for notice {serial}, posted with outcome {stored_outcome}");
    print_trace(&spans, trace_id);
    println!("batch span (a trace of its own):");
    print_trace(&spans, batch.span_context.trace_id());
    println!("notice {untraced_serial}, sent without trace context:");
    print_trace(&spans, untraced_receive.span_context.trace_id());

    let notified = spans
        .iter()
        .find(|span| span.name == "consume_record" && span.span_context.trace_id() == trace_id && span.parent_span_id == publish.span_context.span_id())
        .expect("the notification service's consumer continues the trace from the ledger's relay");
    let deliver = spans
        .iter()
        .find(|span| span.name == "deliver" && span.span_context.trace_id() == trace_id)
        .expect("the notification dispatcher's deliver span is in the bank's trace");
    assert_eq!(deliver.parent_span_id, notified.span_context.span_id(), "the delivery's parent is the consumption that recorded it");
    assert_eq!(attribute(deliver, "channel").as_deref(), Some("sms"));
    let traceparent = sms_traceparent.expect("the SMS gateway's request carried traceparent");
    assert_eq!(traceparent.split('-').nth(1), Some(trace_id.to_string().as_str()), "the gateway's request is in the bank's trace: {traceparent}");
    assert_eq!(traceparent.split('-').nth(2), Some(deliver.span_context.span_id().to_string().as_str()), "its parent is the deliver span");

    for (hop, span) in [
        ("ledger consumer", receive),
        ("posting", post),
        ("outbox relay", publish),
        ("ledger.events consumer", consume),
        ("notification consumer", notified),
        ("notification dispatcher", deliver),
    ] {
        assert_eq!(span.span_context.trace_id(), trace_id, "the {hop} span ({}) continues the bank's trace", span.name);
    }
    assert!(receive.parent_span_is_remote, "the receive span's parent came from the record's headers");
    assert!(consume.parent_span_is_remote, "the ledger.events consumer's parent came from the record's headers");
    assert_eq!(attribute(post, "outcome").as_deref(), Some(stored_outcome.as_str()));
    assert_eq!(attribute(post, "centre").as_deref(), Some(CENTRE));
    assert_eq!(attribute(post, "sub_account").as_deref(), Some(sub_account.as_str()));
    assert!(attribute(post, "entry_sequence").is_some(), "the posting span names its journal entry");
    assert_eq!(attribute(receive, "outcome").as_deref(), Some(stored_outcome.as_str()));
    assert_ne!(batch.span_context.trace_id(), trace_id, "the batch is a trace of its own");
    assert_eq!(attribute(untraced_post, "bank_serial").as_deref(), Some(untraced_serial));
    assert_ne!(untraced_receive.span_context.trace_id(), batch.span_context.trace_id(), "a notice without context is not part of its batch's trace");
    assert_ne!(untraced_receive.span_context.trace_id(), trace_id);
    assert_eq!(untraced_publish.span_context.trace_id(), untraced_receive.span_context.trace_id(), "its event continues its own trace");
    assert!(
        untraced_receive.links.iter().any(|link| link.span_context.span_id() != batch.span_context.span_id()
            && spans.iter().any(|span| span.name == "apply_credit_notice_batch" && span.span_context.span_id() == link.span_context.span_id())),
        "it links to its own batch"
    );
    Ok(())
}
