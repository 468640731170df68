//! SQL, one file per aggregate. Functions take a transaction (a use case that writes is one
//! transaction, with its outbox rows) or the pool (reads), and return domain types or rows.

pub mod facts;
pub mod figures;
pub mod lenders;
pub mod loans;
pub mod proposals;

/// The transaction every write runs in.
pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
