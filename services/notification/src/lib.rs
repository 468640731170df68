//! The Jinfu notification service: consumes the events of every service, tells each party
//! concerned once per (event, recipient, channel) — e-mail, SMS, signed webhooks, an in-app
//! inbox — in Chinese from template files, honouring preferences, legal notices and quiet
//! hours, and reminds bidders of deposit deadlines.

pub mod api;
pub mod app;
pub mod channels;
pub mod compose;
pub mod consume;
pub mod dispatch;
pub mod domain;
pub mod reminders;
pub mod settings;
pub mod store;

/// The service's PostgreSQL schema.
pub const SCHEMA: &str = "notification";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
