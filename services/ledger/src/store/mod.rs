//! The ledger's SQL, one module per aggregate. Functions take a pool, a transaction or a
//! connection and return plain Rust types or `sqlx::Error`; writes that belong together run
//! in one transaction inside one function. No function here decides a business rule: the
//! facts it reads go to `crate::domain`, the decisions come back as parameters.

pub mod calendar;
pub mod centres;
pub mod deposits;
pub mod guarantee_covers;
pub mod ingest_offsets;
pub mod ingest_reads;
pub mod ingest_writes;
pub mod reconciliation;
pub mod refunds;
pub mod sections;
pub mod statements;
pub mod sub_accounts;
pub mod suspense;
pub mod tender_sections;
pub mod trading_events;
