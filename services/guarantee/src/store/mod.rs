//! The service's SQL, one module per aggregate. Functions take a pool or the use case's
//! transaction and return plain types; a stored code that no longer parses is an error.

pub mod applications;
pub mod claims;
pub mod figures;
pub mod fraud_warnings;
pub mod guarantees;
pub mod issuers;
pub mod products;
pub mod provinces;
pub mod trading_events;

use sqlx::{Postgres, Transaction};

/// The transaction of one use case.
pub type Tx = Transaction<'static, Postgres>;

/// A stored code parsed into its domain type; an error naming the column otherwise.
fn parsed<T>(column: &str, code: &str, parse: impl FnOnce(&str) -> Option<T>) -> anyhow::Result<T> {
    parse(code).ok_or_else(|| anyhow::anyhow!("stored {column} {code:?} is unknown"))
}
