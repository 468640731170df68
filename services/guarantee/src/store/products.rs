//! Products of issuers.

use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{parsed, Tx};
use crate::domain::products::{Limits, Product};
use crate::domain::{GuaranteeType, IssuerKind};

/// Selected with `premium_rate::text AS rate` so the rate is read exactly.
fn product(row: &PgRow) -> anyhow::Result<Product> {
    Ok(Product {
        centre_id: row.try_get("centre_id")?,
        issuer_code: row.try_get("issuer_code")?,
        product_id: row.try_get("product_id")?,
        name: row.try_get("name")?,
        kind: parsed("product kind", row.try_get("kind")?, GuaranteeType::parse)?,
        premium_rate: row.try_get::<&str, _>("rate")?.parse()?,
        limits: Limits {
            minimum_premium_fen: row.try_get("minimum_premium_fen")?,
            minimum_amount_fen: row.try_get("minimum_amount_fen")?,
            maximum_amount_fen: row.try_get("maximum_amount_fen")?,
        },
        centres: row.try_get("centres")?,
        regimes: row.try_get("regimes")?,
    })
}

/// The product's current premium rate, locked for the rest of the transaction; `None` for a
/// new product.
pub async fn lock_rate(transaction: &mut Tx, province: &str, issuer_code: &str, product_id: &str) -> anyhow::Result<Option<Decimal>> {
    let rate: Option<String> =
        sqlx::query_scalar("SELECT premium_rate::text FROM products WHERE centre_id = $1 AND issuer_code = $2 AND product_id = $3 FOR UPDATE")
            .bind(province)
            .bind(issuer_code)
            .bind(product_id)
            .fetch_optional(&mut **transaction)
            .await?;
    Ok(rate.and_then(|text| text.parse().ok()))
}

/// Inserts the product or replaces its terms; `rate_changed_at` moves only with the rate.
pub async fn upsert(transaction: &mut Tx, product: &Product) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO products (centre_id, issuer_code, product_id, name, kind, premium_rate, minimum_premium_fen, minimum_amount_fen, maximum_amount_fen, centres, regimes)
         VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11)
         ON CONFLICT (centre_id, issuer_code, product_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            premium_rate = EXCLUDED.premium_rate, minimum_premium_fen = EXCLUDED.minimum_premium_fen,
            minimum_amount_fen = EXCLUDED.minimum_amount_fen, maximum_amount_fen = EXCLUDED.maximum_amount_fen,
            centres = EXCLUDED.centres, regimes = EXCLUDED.regimes,
            rate_changed_at = CASE WHEN products.premium_rate = EXCLUDED.premium_rate THEN products.rate_changed_at ELSE now() END",
    )
    .bind(&product.centre_id)
    .bind(&product.issuer_code)
    .bind(&product.product_id)
    .bind(&product.name)
    .bind(product.kind.code())
    .bind(product.premium_rate.to_string())
    .bind(product.limits.minimum_premium_fen)
    .bind(product.limits.minimum_amount_fen)
    .bind(product.limits.maximum_amount_fen)
    .bind(&product.centres)
    .bind(&product.regimes)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

pub async fn get(transaction: &mut Tx, province: &str, issuer_code: &str, product_id: &str) -> anyhow::Result<Option<Product>> {
    let row = sqlx::query("SELECT *, premium_rate::text AS rate FROM products WHERE centre_id = $1 AND issuer_code = $2 AND product_id = $3")
        .bind(province)
        .bind(issuer_code)
        .bind(product_id)
        .fetch_optional(&mut **transaction)
        .await?;
    row.as_ref().map(product).transpose()
}

/// What a section needs: the products of active issuers of the province of `kind` that serve
/// `centre`, `regime` and `amount_fen`; with each issuer's name and kind.
pub async fn eligible(
    pool: &PgPool,
    province: &str,
    kind: GuaranteeType,
    centre: &str,
    regime: &str,
    amount_fen: i64,
) -> anyhow::Result<Vec<(Product, String, IssuerKind)>> {
    let rows = sqlx::query(
        "SELECT p.*, p.premium_rate::text AS rate, i.name AS issuer_name, i.kind AS issuer_kind
         FROM products p JOIN issuers i USING (centre_id, issuer_code)
         WHERE p.centre_id = $1 AND i.state = 'active' AND p.kind = $2
           AND (cardinality(p.centres) = 0 OR $3 = ANY (p.centres))
           AND (cardinality(p.regimes) = 0 OR $4 = ANY (p.regimes))
           AND p.minimum_amount_fen <= $5 AND $5 <= p.maximum_amount_fen",
    )
    .bind(province)
    .bind(kind.code())
    .bind(centre)
    .bind(regime)
    .bind(amount_fen)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| Ok((product(row)?, row.try_get("issuer_name")?, parsed("issuer kind", row.try_get("issuer_kind")?, IssuerKind::parse)?))).collect()
}
