//! SQL, one file per aggregate.

pub mod proposals;
pub mod records;

/// The transaction every write runs in.
pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
