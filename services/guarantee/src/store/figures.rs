//! What the live figures count.

use sqlx::{PgPool, Row};

use super::parsed;
use crate::domain::GuaranteeType;

/// A counted guarantee, its premium still sealed.
#[derive(Debug, Clone)]
pub struct CountedRow {
    pub centre_id: String,
    pub bidder_tag: Vec<u8>,
    pub kind: GuaranteeType,
    pub amount_fen: i64,
    pub guarantee_no: String,
    pub sealed: Vec<u8>,
}

/// The guarantees of the centres whose code starts with `prefix`; a bid guarantee only once its
/// section's bids are opened: live figures must not tell that someone just secured a sealed
/// section.
pub async fn counted(pool: &PgPool, prefix: &str) -> anyhow::Result<Vec<CountedRow>> {
    let rows = sqlx::query(
        "SELECT g.centre_id, a.bidder_tag, g.kind, g.amount_fen, g.guarantee_no, g.sealed
         FROM guarantees g JOIN applications a USING (application_id)
         WHERE starts_with(g.centre_id, $1)
           AND (g.kind <> 'bid' OR EXISTS (SELECT 1 FROM trading_events t
                WHERE t.centre_id = g.centre_id AND t.section_id = g.section_id AND t.event_type = 'bids.opened'))",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CountedRow {
                centre_id: row.try_get(0)?,
                bidder_tag: row.try_get(1)?,
                kind: parsed("guarantee kind", row.try_get(2)?, GuaranteeType::parse)?,
                amount_fen: row.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
                guarantee_no: row.try_get(4)?,
                sealed: row.try_get(5)?,
            })
        })
        .collect()
}
