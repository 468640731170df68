//! SQL, one file per aggregate. Functions take a transaction (a use case that writes is one
//! transaction, with its outbox rows) or the pool (reads), and return domain types or rows.

pub mod accounts;
pub mod awards;
pub mod contracts;
pub mod invoices;
pub mod notices;
pub mod pending;
pub mod rules;

/// The transaction every write runs in.
pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
