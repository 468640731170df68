//! SQL, one file per aggregate.

pub mod contacts;
pub mod deliveries;
pub mod reminders;

pub type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
