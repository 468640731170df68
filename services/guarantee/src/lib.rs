//! The Jinfu e-guarantee (电子保函) service: issuers and products, bidders' applications, signed
//! issuance verified against each issuer's key, sealing until bid opening, and verification
//! (验真). Events leave on `guarantee.events` through the transactional outbox; the ledger
//! consumes them so a bid guarantee satisfies a bidder's deposit. Tender events
//! (`trading.events`) and contracts signed (`contract.events`) release and surrender guarantees.

pub mod api;
pub mod app;
pub mod contracts;
pub mod credit;
pub mod domain;
pub mod fraud;
pub mod lifecycle;
pub mod seal;
pub mod sections;
pub mod settings;
pub mod store;

/// The service's PostgreSQL schema.
pub const SCHEMA: &str = "guarantee";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
