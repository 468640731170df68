//! The ledger's low-volume consumers (tender events, bank payment results, statements,
//! guarantee events) use the platform's exactly-once consumer (`jinfu_platform::consumer`).

use sqlx::PgPool;
use tokio::sync::watch;

pub use jinfu_platform::consumer::{refused, subscribe_or_assign, Handled, RecordHandler, Refused};

use crate::settings::Settings;

/// Consumes `topic` with `group_id` under the ledger's assignment mode and instance id.
pub async fn run(
    pool: PgPool,
    settings: Settings,
    topic: String,
    group_id: String,
    handler: impl RecordHandler,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = jinfu_platform::consumer::ConsumerSettings {
        kafka: settings.kafka.clone(),
        assignment: settings.ingest.assignment,
        instance_id: settings.ingest.instance_id.clone(),
    };
    jinfu_platform::consumer::run(pool, consumer, topic, group_id, handler, shutdown).await
}
