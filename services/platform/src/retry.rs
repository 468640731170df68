//! Retrying work that must not be skipped (a batch, a record, reference data it needs), and only
//! that work which can succeed by waiting.
//!
//! Every error is classified once, here ([`classify`]):
//!
//! - **Transient**: the world is temporarily in the way, and the same operation can succeed
//!   later. A broken, refused or timed-out connection (`sqlx::Error::Io`, `Tls`, `PoolTimedOut`,
//!   `WorkerCrashed`, a `std::io::Error`, an elapsed Tokio timeout), and the database errors of
//!   SQLSTATE class 08 (connection exception), 53 (insufficient resources, e.g. too many
//!   connections), 57P01/57P02/57P03 (administrator or crash shutdown, cannot connect now),
//!   57014 (statement cancelled, e.g. by a timeout), 58 (system error), 40001 (serialization
//!   failure), 40P01 (deadlock) and 55P03 (lock not available).
//! - **Permanent**: anything else. Above all an invariant violation — an unbalanced entry, a
//!   CHECK constraint refusing a negative balance (SQLSTATE 23514), any other integrity error
//!   (class 23) — and every bug (a decoding error, a missing row, a syntax error, an error
//!   raised by the code itself). Retrying it would apply the same input to the same state and
//!   fail the same way, forever, while saying nothing useful.
//!
//! The policy of [`until_ok`]: a permanent error is returned to the caller at once, never
//! retried; the caller stops (its task returns the error with the record's coordinates, and
//! the service's supervisor takes it out of service). A transient error is retried with capped
//! exponential backoff (100 ms, 200 ms, 400 ms, … up to 5 s between attempts), for as long as
//! it lasts: the number of attempts is deliberately unbounded, because giving up on a database
//! outage would only turn it into a crash loop that restarting cannot fix, while waiting loses
//! nothing (the work is applied when the database returns, and consumer-lag alerts fire
//! meanwhile). What bounds the wait is the shutdown signal: when it fires, [`until_ok`] stops
//! waiting and returns the last transient error, so a service stops promptly even while its
//! database is down. Every retry is logged and counted in [`RETRIES`].

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

/// Transient failures retried (counter; label `what`: the operation retried).
pub const RETRIES: &str = "jinfu_retries_total";

/// The first wait after a transient failure.
const BACKOFF_INITIAL_MS: u64 = 100;
/// The longest wait between two attempts.
const BACKOFF_MAX_MS: u64 = 5_000;

/// An error, classified: whether waiting can make the same operation succeed.
#[derive(Debug)]
pub enum Failure {
    /// The database or the network is temporarily unavailable; the same operation may succeed
    /// later. From [`until_ok`]: the shutdown signal fired while waiting for it to pass.
    Transient(anyhow::Error),
    /// An invariant violation or a bug: the same operation fails the same way every time.
    Permanent(anyhow::Error),
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Transient(_))
    }

    /// The error, whichever its class.
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Transient(error) | Failure::Permanent(error) => error,
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Transient(error) | Failure::Permanent(error) => error,
        }
    }
}

/// Classifies `error`; see the module documentation.
pub fn classify(error: anyhow::Error) -> Failure {
    if is_transient(&error) {
        Failure::Transient(error)
    } else {
        Failure::Permanent(error)
    }
}

/// Whether `error` (anywhere in its chain of causes) is a transient failure; see the module
/// documentation. An error that names no known transient cause is permanent.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(database) = cause.downcast_ref::<sqlx::Error>() {
            return is_transient_sqlx(database);
        }
        cause.is::<std::io::Error>() || cause.is::<tokio::time::error::Elapsed>()
    })
}

fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| is_transient_sqlstate(&code)),
        _ => false,
    }
}

/// Whether a SQLSTATE names a condition that passes by itself.
pub fn is_transient_sqlstate(code: &str) -> bool {
    let class = code.get(..2).unwrap_or_default();
    matches!(class, "08" | "53" | "58") || matches!(code, "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03")
}

/// The wait after the `attempt`-th consecutive transient failure (1-based).
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    Duration::from_millis((BACKOFF_INITIAL_MS << doublings).min(BACKOFF_MAX_MS))
}

/// Runs `operation` until it succeeds, retrying transient failures with capped exponential
/// backoff and logging each as "`what` failed; retrying". Returns at once
/// [`Failure::Permanent`] for a permanent failure, and [`Failure::Transient`] with the last
/// error if `shutdown` turns true (or its sender is dropped) while a transient failure lasts.
/// A first attempt is always made, even after shutdown: work in hand is finished if it can be.
pub async fn until_ok<T, F, Fut>(what: &str, shutdown: &mut watch::Receiver<bool>, mut operation: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut attempt: u32 = 0;
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_transient(&error) {
            return Err(Failure::Permanent(error));
        }
        attempt += 1;
        let wait = backoff(attempt);
        if *shutdown.borrow_and_update() {
            warn!(error = %error, attempt, "{what} failed; not retrying: shutting down");
            return Err(Failure::Transient(error));
        }
        warn!(error = %error, attempt, backoff_ms = wait.as_millis(), "{what} failed; retrying");
        metrics::counter!(RETRIES, "what" => what.to_owned()).increment(1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {
                warn!(error = %error, attempt, "{what} failed; not retrying: shutting down");
                return Err(Failure::Transient(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn the_backoff_doubles_from_100_ms_and_stops_growing_at_5_s() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(6), Duration::from_millis(3_200));
        assert_eq!(backoff(7), Duration::from_millis(5_000));
        assert_eq!(backoff(u32::MAX), Duration::from_millis(5_000));
    }

    #[test]
    fn serialization_failures_deadlocks_and_shutdowns_are_transient() {
        for code in ["40001", "40P01", "57P01", "08006", "08001", "53300", "55P03"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn integrity_violations_and_bugs_are_permanent() {
        for code in ["23514", "23505", "23503", "23502", "22003", "42601", "P0001", "XX000"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn connection_failures_are_transient_wherever_they_sit_in_the_chain() {
        assert!(is_transient(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_transient(&anyhow::Error::new(sqlx::Error::Io(refused)).context("applying the batch")));
        assert!(!is_transient(&anyhow::Error::new(sqlx::Error::RowNotFound)));
        assert!(!is_transient(&anyhow::anyhow!("entry does not balance")));
    }

    #[tokio::test]
    async fn a_permanent_failure_is_returned_after_one_attempt() {
        let (_stop, mut shutdown) = watch::channel(false);
        let attempts = AtomicU32::new(0);
        let result: Result<(), Failure> = until_ok("test", &mut shutdown, || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err(anyhow::anyhow!("entry does not balance")) }
        })
        .await;
        assert!(matches!(result, Err(Failure::Permanent(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_until_it_passes() {
        let (_stop, mut shutdown) = watch::channel(false);
        let attempts = AtomicU32::new(0);
        let result = until_ok("test", &mut shutdown, || {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if attempt < 3 {
                    Err(anyhow::Error::new(sqlx::Error::PoolTimedOut))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert!(matches!(result, Ok(3)));
    }

    #[tokio::test]
    async fn the_shutdown_signal_ends_the_wait_for_a_transient_failure() {
        let (stop, mut shutdown) = watch::channel(false);
        let attempts = AtomicU32::new(0);
        let retrying = until_ok("test", &mut shutdown, || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(anyhow::Error::new(sqlx::Error::PoolTimedOut)) }
        });
        let stopping = async {
            while attempts.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stop.send(true).expect("the retry loop holds a receiver");
        };
        let (result, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(retrying, stopping) }).await.expect("the wait ends on shutdown");
        assert!(matches!(result, Err(Failure::Transient(_))));
    }
}
