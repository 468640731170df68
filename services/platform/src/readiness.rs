//! Readiness checks of the dependencies every service has: PostgreSQL and Kafka.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;

use crate::grpc::ReadinessCheck;
use crate::kafka::KafkaSettings;

/// Ready while `SELECT 1` answers within 3 s and a Kafka broker returns cluster metadata within
/// 3 s.
pub fn postgres_and_kafka(pool: PgPool, kafka: KafkaSettings) -> ReadinessCheck {
    Box::new(move || {
        let pool = pool.clone();
        let kafka = kafka.clone();
        Box::pin(async move {
            tokio::time::timeout(Duration::from_secs(3), sqlx::query("SELECT 1").execute(&pool))
                .await
                .map_err(|_| "PostgreSQL did not answer within 3 s".to_owned())?
                .map_err(|error| format!("PostgreSQL: {error}"))?;
            let brokers = kafka.brokers.clone();
            tokio::task::spawn_blocking(move || {
                let consumer: BaseConsumer =
                    rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().map_err(|error| format!("Kafka client: {error}"))?;
                consumer.fetch_metadata(None, Duration::from_secs(3)).map(|_| ()).map_err(|error| format!("Kafka ({brokers}): {error}"))
            })
            .await
            .map_err(|error| format!("Kafka check: {error}"))?
        })
    })
}

/// Always ready: for a process whose only dependency is checked elsewhere.
pub fn always() -> ReadinessCheck {
    Box::new(|| Box::pin(async { Ok(()) }))
}
