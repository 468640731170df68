//! The Jinfu loans service: contract financing (政采贷, 合同融资贷, 履约贷 and their kin) from the
//! award to the last repayment. Lenders onboarded by the province publish products; a supplier
//! consents to show its awards and applies; the credit service's check runs and its receipt is
//! kept; a lender's maker proposes terms and a checker approves; at disbursement the contract's
//! collection account is locked to the lender through the contract service; the purchaser's
//! payments into it repay the loan; delinquency, default and misconduct become proposals to the
//! credit service. Events leave on `loan.events` through the transactional outbox.

pub mod api;
pub mod app;
pub mod consume;
pub mod domain;
pub mod events;
pub mod peers;
pub mod settings;
pub mod store;
pub mod sweeper;

/// The service's PostgreSQL schema.
pub const SCHEMA: &str = "loans";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
