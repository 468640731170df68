//! Tender events applied, recorded once each.

use super::Tx;

/// Records the event; `false` when it was recorded before.
pub async fn record(transaction: &mut Tx, event_id: &str, centre_id: &str, section_id: &str, event_type: &str) -> anyhow::Result<bool> {
    let first = sqlx::query("INSERT INTO trading_events (event_id, centre_id, section_id, event_type) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(event_id)
        .bind(centre_id)
        .bind(section_id)
        .bind(event_type)
        .execute(&mut **transaction)
        .await?
        .rows_affected()
        > 0;
    Ok(first)
}
