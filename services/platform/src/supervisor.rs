//! One supervisor for every long-running task of a service (the gRPC server, each consumer, the
//! outbox relay, runners and sweepers), so that no task can die quietly while the service goes
//! on reporting ready.
//!
//! Policy, the same for every task and every service: each task runs until the service is asked
//! to stop. A task that ends before that — with an error, by panicking, or by returning as if its
//! work were done — is a failure: the supervisor logs which task and why, counts it in
//! `jinfu_task_failures_total{task}`, turns readiness off, asks every other task to stop, waits
//! for them up to the grace period, and returns [`TaskFailed`]. `main` then exits non-zero and
//! Kubernetes restarts the pod; the work a dead task left is redone from stored offsets and the
//! outbox, never lost. A task that fails while the service is stopping is reported the same way.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::grpc::ReadinessCheck;

pub use crate::metrics::TASK_FAILURES;

/// A supervised task ended while it should have been running, or failed while stopping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task:?} {reason}")]
pub struct TaskFailed {
    /// The name the task was spawned with, e.g. `credit-notice consumer`.
    pub task: String,
    /// What happened: `failed: <error chain>`, `panicked: <message>` or `ended unexpectedly`.
    pub reason: String,
}

/// Whether every supervised task is alive; shared with the readiness check.
#[derive(Debug, Clone, Default)]
pub struct TaskHealth {
    failure: Arc<Mutex<Option<TaskFailed>>>,
}

impl TaskHealth {
    /// The first failure, if any task has failed.
    pub fn failure(&self) -> Option<TaskFailed> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn record(&self, failure: &TaskFailed) {
        let mut first = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(failure.clone());
        }
    }

    /// `check`, and not ready once any task has failed (the failure is the reason given).
    pub fn readiness(&self, check: ReadinessCheck) -> ReadinessCheck {
        let health = self.clone();
        Box::new(move || {
            let failure = health.failure();
            let check = check();
            Box::pin(async move {
                if let Some(failure) = failure {
                    return Err(failure.to_string());
                }
                check.await
            })
        })
    }
}

/// Starts named tasks, hands them the stop signal, and watches them all.
pub struct Supervisor {
    tasks: JoinSet<(String, anyhow::Result<()>)>,
    /// Names by tokio task id, to name a task that panicked.
    names: Vec<(tokio::task::Id, String)>,
    stop: watch::Sender<bool>,
    health: TaskHealth,
    /// How long tasks get to finish once asked to stop.
    grace: Duration,
}

impl Supervisor {
    /// `grace`: how long the other tasks get to finish after a stop is asked; keep it below the
    /// pod's termination grace period.
    pub fn new(grace: Duration) -> Self {
        let (stop, _) = watch::channel(false);
        Supervisor { tasks: JoinSet::new(), names: Vec::new(), stop, health: TaskHealth::default(), grace }
    }

    /// The stop signal to give a task: it becomes `true` when the service stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// A future that resolves when the service stops (for servers that take a shutdown future).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }

    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Runs `task` under supervision; it must run until [`Supervisor::stopping`] turns `true`.
    pub fn spawn(&mut self, name: &str, task: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let owned = name.to_owned();
        let handle = self.tasks.spawn(async move { (owned, task.await) });
        self.names.push((handle.id(), name.to_owned()));
    }

    /// Like [`Supervisor::spawn`] for a task that returns nothing: its return is a failure unless
    /// the service is stopping.
    pub fn spawn_unit(&mut self, name: &str, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn(name, async move {
            task.await;
            Ok(())
        });
    }

    /// Waits until `shutdown` resolves or a task ends; stops every task; returns the first
    /// failure, if any task failed.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), TaskFailed> {
        let mut first: Option<TaskFailed> = None;
        tokio::select! {
            () = shutdown => info!("stop requested; stopping {} tasks", self.tasks.len()),
            Some(joined) = self.tasks.join_next_with_id() => {
                let failure = self.failure_of(joined, false).unwrap_or_else(|| TaskFailed { task: "?".into(), reason: "ended unexpectedly".into() });
                first = Some(failure);
            }
        }
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    if let Some(failure) = self.failure_of(joined, true) {
                        first.get_or_insert(failure);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    let left: Vec<String> = self.names.iter().map(|(_, name)| name.clone()).collect();
                    warn!(tasks = ?left, grace_ms = self.grace.as_millis(), "tasks did not stop within the grace period; aborting them");
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        match first {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// The failure a joined task represents, if it is one. `stopping`: whether a stop had been
    /// asked when it ended (then returning is its job, not a failure).
    fn failure_of(&mut self, joined: Result<(tokio::task::Id, (String, anyhow::Result<()>)), tokio::task::JoinError>, stopping: bool) -> Option<TaskFailed> {
        let (id, outcome) = match joined {
            Ok((id, (_, result))) => (id, result.map_err(|error| format!("failed: {error:#}"))),
            Err(join_error) => {
                let id = join_error.id();
                let reason = if join_error.is_panic() {
                    let payload = join_error.into_panic();
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    format!("panicked: {message}")
                } else {
                    "was cancelled".into()
                };
                (id, Err(reason))
            }
        };
        let name = self.take_name(id);
        let failure = match outcome {
            Ok(()) if stopping => {
                info!(task = %name, "task stopped");
                return None;
            }
            Ok(()) => TaskFailed { task: name, reason: "ended unexpectedly".into() },
            Err(reason) => TaskFailed { task: name, reason },
        };
        self.health.record(&failure);
        metrics::counter!(TASK_FAILURES, "task" => failure.task.clone()).increment(1);
        error!(task = %failure.task, reason = %failure.reason, "supervised task failed; the service stops");
        Some(failure)
    }

    fn take_name(&mut self, id: tokio::task::Id) -> String {
        match self.names.iter().position(|(known, _)| *known == id) {
            Some(index) => self.names.remove(index).1,
            None => "unknown task".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that runs until it is told to stop, and reports that it stopped.
    fn well_behaved(supervisor: &Supervisor, stopped: tokio::sync::mpsc::Sender<&'static str>, name: &'static str) -> impl Future<Output = anyhow::Result<()>> {
        let mut stopping = supervisor.stopping();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            let _ = stopped.send(name).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_task_that_fails_stops_the_others_turns_readiness_off_and_is_named() {
        let mut supervisor = Supervisor::new(Duration::from_secs(5));
        let (told, mut stopped) = tokio::sync::mpsc::channel(4);
        let relay = well_behaved(&supervisor, told.clone(), "relay");
        supervisor.spawn("outbox relay", relay);
        let (fail, failing) = tokio::sync::oneshot::channel::<()>();
        supervisor.spawn("trading consumer", async move {
            let _ = failing.await;
            Err(anyhow::anyhow!("connection refused").context("reading trading.events"))
        });
        let health = supervisor.health();
        let readiness = health.readiness(Box::new(|| Box::pin(async { Ok(()) })));
        assert_eq!(readiness().await, Ok(()), "ready while every task runs");

        let run = tokio::spawn(supervisor.run(std::future::pending()));
        let _ = fail.send(());
        let failure = run.await.expect("the supervisor does not panic").expect_err("a failed task is reported");
        assert_eq!(failure.task, "trading consumer");
        assert_eq!(failure.reason, "failed: reading trading.events: connection refused");
        assert_eq!(stopped.recv().await, Some("relay"), "the other task was asked to stop and did");
        assert_eq!(health.failure(), Some(failure.clone()));
        assert_eq!(readiness().await, Err("task \"trading consumer\" failed: reading trading.events: connection refused".to_owned()));
    }

    #[tokio::test]
    async fn a_panic_and_an_early_return_are_failures_too() {
        let mut supervisor = Supervisor::new(Duration::from_secs(5));
        supervisor.spawn_unit("expiry sweeper", async { panic!("index out of range") });
        let failure = supervisor.run(std::future::pending()).await.expect_err("a panic is reported");
        assert_eq!((failure.task.as_str(), failure.reason.as_str()), ("expiry sweeper", "panicked: index out of range"));

        let mut supervisor = Supervisor::new(Duration::from_secs(5));
        supervisor.spawn_unit("refund runner", async {});
        let failure = supervisor.run(std::future::pending()).await.expect_err("an early return is reported");
        assert_eq!((failure.task.as_str(), failure.reason.as_str()), ("refund runner", "ended unexpectedly"));
    }

    #[tokio::test]
    async fn a_requested_stop_ends_every_task_without_a_failure() {
        let mut supervisor = Supervisor::new(Duration::from_secs(5));
        let (told, mut stopped) = tokio::sync::mpsc::channel(4);
        for name in ["relay", "consumer"] {
            let task = well_behaved(&supervisor, told.clone(), name);
            supervisor.spawn(name, task);
        }
        let health = supervisor.health();
        assert_eq!(supervisor.run(async {}).await, Ok(()));
        let mut names = vec![stopped.recv().await, stopped.recv().await];
        names.sort();
        assert_eq!(names, vec![Some("consumer"), Some("relay")]);
        assert_eq!(health.failure(), None);
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_stop_is_aborted_after_the_grace_period() {
        let mut supervisor = Supervisor::new(Duration::from_millis(50));
        supervisor.spawn_unit("stuck", std::future::pending());
        assert_eq!(supervisor.run(async {}).await, Ok(()));
    }
}
