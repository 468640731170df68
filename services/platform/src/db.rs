//! PostgreSQL: one pool per service, each service in its own schema with its own migrations.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`; a secret because it may carry a password.
    pub url: SecretString,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
}

fn default_max_connections() -> u32 {
    8
}
fn default_acquire_timeout_ms() -> u64 {
    10_000
}

/// The migrations of the tables the platform writes in every service's schema (outbox, consumer
/// offsets, dead letters), applied before the service's own. Platform versions start at
/// 9,000,000,000 and a service's at 1, so neither can take the other's number.
pub static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The platform's migrations followed by the service's, as one migrator recorded in the
/// schema's `_sqlx_migrations` table.
pub fn with_platform_tables(service: &Migrator) -> Migrator {
    let mut migrations: Vec<Migration> = PLATFORM_MIGRATOR.migrations.iter().cloned().collect();
    for migration in service.migrations.iter() {
        assert!(
            migrations.iter().all(|platform| platform.version != migration.version),
            "service migration {} reuses a platform migration's version",
            migration.version
        );
        migrations.push(migration.clone());
    }
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// Connects with the service's schema first on the search path, creates the schema if needed,
/// and applies the platform's migrations, then the service's.
pub async fn connect_and_migrate(settings: &DatabaseSettings, schema: &str, migrator: &Migrator) -> anyhow::Result<PgPool> {
    anyhow::ensure!(
        !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    let options = PgConnectOptions::from_str(settings.url.expose_secret())?.options([("search_path", schema)]).log_statements(tracing::log::LevelFilter::Trace);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(options)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&pool).await?;
    with_platform_tables(migrator).run(&pool).await?;
    Ok(pool)
}
