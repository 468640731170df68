//! Retrying work that must not be skipped (a batch, a record, reference data it needs): while
//! the database is unavailable the caller waits, and lag alerts say so.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

/// Runs `operation` until it succeeds, waiting 100 ms after the first failure, 200 ms after the
/// second, and so on up to 5 s, logging each failure as "`what` failed; retrying".
pub async fn until_ok<T, F, Fut>(what: &str, mut operation: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut attempt: u32 = 0;
    loop {
        match operation().await {
            Ok(value) => return value,
            Err(error) => {
                attempt += 1;
                let backoff_ms = 100u64 * u64::from(attempt.min(50));
                warn!(error = %error, attempt, backoff_ms, "{what} failed; retrying");
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            }
        }
    }
}
