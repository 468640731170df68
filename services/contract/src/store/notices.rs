//! Clock events published once per subject and clock (`clock_notices`).

use chrono::{DateTime, Utc};

use super::Tx;

/// Claims the notice; `true` when it was not given before (then publish it in this transaction).
pub async fn claim(transaction: &mut Tx, centre_id: &str, subject: &str, clock: &str, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let done = sqlx::query("INSERT INTO clock_notices (centre_id, subject, clock, noticed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(centre_id)
        .bind(subject)
        .bind(clock)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    Ok(done.rows_affected() == 1)
}
