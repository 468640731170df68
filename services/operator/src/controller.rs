//! The TradingCentre controller: registers each centre with the platform, keeps it in step with
//! its spec, reports what it did in the status and as events, and refuses to let a centre that
//! still holds money be deleted (the finalizer stays until the ledger holds nothing for it).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::crd::{Condition, TradingCentre, TradingCentreStatus, FINALIZER};
use crate::platform::{Holdings, Platform, PlatformError};

/// How often a reconciled centre is looked at again (its `heldFen` refreshed) without a change.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How soon a centre that may not yet be deleted is checked again.
pub const DELETION_RETRY: Duration = Duration::from_secs(60);

/// Why a reconciliation did not finish. [`error_policy`] maps each to a requeue delay and
/// [`Error::metric_label`] to the `result` label of `jinfu_operator_reconciliations_total`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("centre {centre_id} still holds {} yuan ({held_fen} fen); deletion refused until it holds nothing", yuan(*held_fen))]
    HoldsMoney { centre_id: String, held_fen: i64 },
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("the resource has no namespace")]
    NoNamespace,
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_error",
            Error::Platform(PlatformError::Refused(_)) => "refused",
            Error::Platform(PlatformError::NotYet(_)) => "not_yet",
            Error::Platform(PlatformError::Unavailable(_)) => "platform_unavailable",
            Error::HoldsMoney { .. } => "holds_money",
            Error::Finalizer(_) => "finalizer_error",
            Error::NoNamespace => "invalid_resource",
        }
    }

    /// When to look again after this error.
    pub fn requeue_after(&self) -> Duration {
        match self {
            Error::HoldsMoney { .. } => DELETION_RETRY,
            // Only an edit of the resource fixes these; look again rarely in case the platform
            // changed (e.g. a conflicting centre was renamed).
            Error::Platform(PlatformError::Refused(_)) | Error::NoNamespace => Duration::from_secs(600),
            Error::Platform(PlatformError::NotYet(_)) => Duration::from_secs(15),
            Error::Kube(_) | Error::Platform(PlatformError::Unavailable(_)) | Error::Finalizer(_) => Duration::from_secs(30),
        }
    }
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100)
}

/// What every reconciliation shares.
pub struct Context<P: Platform> {
    /// The Kubernetes client (a mocked one in tests).
    pub client: Client,
    /// The platform's admin API.
    pub platform: P,
    /// Publishes Kubernetes events about the resources (and folds repeats into series).
    pub recorder: Recorder,
}

/// Reconciles one TradingCentre: through the finalizer helper, so a resource being deleted goes
/// to [`cleanup`] and every other to [`apply`].
pub async fn reconcile<P: Platform>(centre: Arc<TradingCentre>, context: Arc<Context<P>>) -> Result<Action, Error> {
    let namespace = centre.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<TradingCentre> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, centre, |event| async {
        match event {
            Finalizer::Apply(centre) => apply(&api, &centre, &context).await,
            Finalizer::Cleanup(centre) => cleanup(&api, &centre, &context).await,
        }
    })
    .await;
    let result = result.map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error) | kube::runtime::finalizer::Error::CleanupFailed(error) => error,
        kube::runtime::finalizer::Error::AddFinalizer(error) | kube::runtime::finalizer::Error::RemoveFinalizer(error) => Error::Kube(error),
        other => Error::Finalizer(other.to_string()),
    });
    let label = match &result {
        Ok(_) => "ok",
        Err(error) => error.metric_label(),
    };
    metrics::counter!(jinfu_platform::metrics::OPERATOR_RECONCILIATIONS, "result" => label).increment(1);
    result
}

/// Requeue policy, in one place: see [`Error::requeue_after`].
pub fn error_policy<P: Platform>(centre: Arc<TradingCentre>, error: &Error, _context: Arc<Context<P>>) -> Action {
    warn!(centre = %centre.name_any(), error = %error, "reconciliation failed");
    Action::requeue(error.requeue_after())
}

async fn apply<P: Platform>(api: &Api<TradingCentre>, centre: &TradingCentre, context: &Context<P>) -> Result<Action, Error> {
    let spec = &centre.spec;
    let generation = centre.metadata.generation;
    let outcome = register(spec, &context.platform).await;
    match outcome {
        Ok(holdings) => {
            let changed = centre.status.as_ref().and_then(|status| status.observed_generation) != generation;
            let status = TradingCentreStatus {
                observed_generation: generation,
                conditions: vec![condition(centre, "Ready", "True", "Reconciled", "registered with the ledger and in step with the spec")],
                held_fen: holdings.map(|held| held.total_fen),
                bank_accounts: i32::try_from(spec.bank_accounts.len()).ok(),
            };
            patch_status(api, centre, &status).await?;
            if changed {
                let note = format!("centre {} registered with {} collection account(s)", spec.centre_id, spec.bank_accounts.len());
                publish(context, centre, EventType::Normal, "Reconciled", "Register", note).await;
                info!(centre = %spec.centre_id, name = %centre.name_any(), "trading centre reconciled");
            }
            Ok(Action::requeue(RESYNC))
        }
        Err(error) => {
            let (reason, event_type) = match &error {
                PlatformError::Refused(_) => ("Refused", EventType::Warning),
                PlatformError::NotYet(_) => ("Waiting", EventType::Normal),
                PlatformError::Unavailable(_) => ("PlatformUnavailable", EventType::Warning),
            };
            let mut status = centre.status.clone().unwrap_or_default();
            status.observed_generation = generation;
            status.conditions = vec![condition(centre, "Ready", "False", reason, &error.to_string())];
            patch_status(api, centre, &status).await?;
            publish(context, centre, event_type, reason, "Register", error.to_string()).await;
            Err(error.into())
        }
    }
}

/// Registers the centre, its accounts and its calendar; returns what it holds.
async fn register<P: Platform>(spec: &crate::crd::TradingCentreSpec, platform: &P) -> Result<Option<Holdings>, PlatformError> {
    platform.register_centre(&spec.centre_id, &spec.name, spec.parent_centre_id.as_deref(), spec.refunds.as_ref()).await?;
    for account in &spec.bank_accounts {
        platform.register_bank_account(&spec.centre_id, account).await?;
    }
    platform.set_calendar_overrides(&spec.centre_id, &spec.calendar_overrides).await?;
    platform.holdings(&spec.centre_id).await
}

/// A centre may go only when the ledger holds nothing for it. Its books stay in the ledger: the
/// law keeps them, and re-creating the resource picks them up again.
async fn cleanup<P: Platform>(api: &Api<TradingCentre>, centre: &TradingCentre, context: &Context<P>) -> Result<Action, Error> {
    let centre_id = &centre.spec.centre_id;
    let held = context.platform.holdings(centre_id).await?;
    match held {
        Some(held) if held.total_fen != 0 => {
            let error = Error::HoldsMoney { centre_id: centre_id.clone(), held_fen: held.total_fen };
            let message = format!(
                "{error} (deposits {}, suspense {}, refunds in transit {}, forfeited {} yuan)",
                yuan(held.deposits_fen),
                yuan(held.suspense_fen),
                yuan(held.refund_in_transit_fen),
                yuan(held.forfeited_fen)
            );
            let mut status = centre.status.clone().unwrap_or_default();
            status.held_fen = Some(held.total_fen);
            status.conditions.retain(|condition| condition.type_ != "DeletionBlocked");
            status.conditions.push(condition(centre, "DeletionBlocked", "True", "HoldsMoney", &message));
            patch_status(api, centre, &status).await?;
            publish(context, centre, EventType::Warning, "DeletionRefused", "Delete", message).await;
            Err(error)
        }
        _ => {
            publish(context, centre, EventType::Normal, "Released", "Delete", format!("centre {centre_id} holds nothing; finalizer removed")).await;
            Ok(Action::await_change())
        }
    }
}

/// A condition, keeping the last transition time when the status did not change.
fn condition(centre: &TradingCentre, type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    let previous = centre.status.as_ref().and_then(|current| current.conditions.iter().find(|condition| condition.type_ == type_));
    let last_transition_time = match previous {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.chars().take(1000).collect(),
        last_transition_time,
        observed_generation: centre.metadata.generation,
    }
}

async fn patch_status(api: &Api<TradingCentre>, centre: &TradingCentre, status: &TradingCentreStatus) -> Result<(), Error> {
    let patch = json!({ "apiVersion": "jinfu.io/v1", "kind": "TradingCentre", "status": status });
    api.patch_status(&centre.name_any(), &PatchParams::apply("jinfu-operator").force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Publishes an event; a failure to publish is logged, never fails the reconciliation.
async fn publish<P: Platform>(context: &Context<P>, centre: &TradingCentre, type_: EventType, reason: &str, action: &str, note: String) {
    let event = Event { type_, reason: reason.to_owned(), note: Some(note), action: action.to_owned(), secondary: None };
    if let Err(error) = context.recorder.publish(&event, &centre.object_ref(&())).await {
        warn!(error = %error, "publishing a Kubernetes event failed");
    }
}

/// Runs the controller over the TradingCentres of `namespace` (all namespaces when `None`) until
/// `shutdown` resolves; reconciliations in flight finish first.
pub async fn run<P: Platform>(context: Arc<Context<P>>, namespace: Option<&str>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<TradingCentre> = match namespace {
        Some(namespace) => Api::namespaced(context.client.clone(), namespace),
        None => Api::all(context.client.clone()),
    };
    Controller::new(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(error = %error, "controller");
            }
        })
        .await;
}
