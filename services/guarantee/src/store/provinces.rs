//! Provinces: whether one has paused the onboarding of new issuers.

use sqlx::PgPool;

use super::Tx;

/// Whether the province paused onboarding, locked for the rest of the transaction (the
/// province's row is created when missing).
pub async fn lock_onboarding_paused(transaction: &mut Tx, province: &str) -> anyhow::Result<bool> {
    sqlx::query("INSERT INTO provinces (centre_id) VALUES ($1) ON CONFLICT DO NOTHING").bind(province).execute(&mut **transaction).await?;
    let paused =
        sqlx::query_scalar("SELECT onboarding_paused FROM provinces WHERE centre_id = $1 FOR UPDATE").bind(province).fetch_one(&mut **transaction).await?;
    Ok(paused)
}

pub async fn set_onboarding_paused(pool: &PgPool, province: &str, paused: bool, changed_by: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO provinces (centre_id, onboarding_paused, changed_by) VALUES ($1, $2, $3)
         ON CONFLICT (centre_id) DO UPDATE SET onboarding_paused = EXCLUDED.onboarding_paused, changed_by = EXCLUDED.changed_by, changed_at = now()",
    )
    .bind(province)
    .bind(paused)
    .bind(changed_by)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn onboarding_paused(pool: &PgPool, province: &str) -> anyhow::Result<bool> {
    let paused: Option<bool> = sqlx::query_scalar("SELECT onboarding_paused FROM provinces WHERE centre_id = $1").bind(province).fetch_optional(pool).await?;
    Ok(paused.unwrap_or(false))
}
