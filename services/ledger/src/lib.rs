//! The Jinfu deposit ledger service. `main.rs` is thin; everything is here so tests can start
//! the real application in-process.

pub mod api;
pub mod app;
pub mod consumer;
pub mod contracts;
pub mod domain;
pub mod guarantees;
pub mod ingest;
pub mod journal;
pub mod notice;
pub mod observe;
pub mod outbox;
pub mod refunds;
pub mod settings;
pub mod statements;
pub mod store;
pub mod suspense;
pub mod trading;
pub mod verify;

/// The ledger's migrations, applied into schema `ledger`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL schema the ledger owns.
pub const SCHEMA: &str = "ledger";
