//! The Jinfu credit and blacklist service: misconduct records with their legal basis, debarment
//! with due process (facts arrive as proposals; a supervisor who did not propose confirms or
//! dismisses), credit repair, and eligibility checks with signed receipts for every other service.
//! Events leave on `credit.events` through the transactional outbox.

pub mod api;
pub mod app;
pub mod domain;
pub mod events;
pub mod facts;
pub mod settings;
pub mod store;

/// The service's PostgreSQL schema.
pub const SCHEMA: &str = "credit";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
