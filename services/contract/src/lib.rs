//! The Jinfu contract and invoice service: contracts drafted from the award and signed by both
//! parties, the legal clocks of signing, publication, filing and acceptance, invoices with the
//! purchaser's objection window, payments allocated to invoices, due dates and overdue interest
//! owed to SMEs (保障中小企业款项支付条例), and the annual overdue report. Events leave on
//! `contract.events` through the transactional outbox; the ledger and the guarantee service act
//! on `contract.signed`.

pub mod api;
pub mod app;
pub mod calendar;
pub mod domain;
pub mod events;
pub mod facts;
pub mod payment_records;
pub mod payments;
pub mod report;
pub mod settings;
pub mod store;
pub mod sweeper;
pub mod trading;

/// The service's PostgreSQL schema.
pub const SCHEMA: &str = "contract";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
