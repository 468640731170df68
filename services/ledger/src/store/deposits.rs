//! Deposits: what each bidder holds for a section, account balances, and deposits held past
//! their refund due date.

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::domain::deposits::STALE_REFUND_STATUSES;

/// One bidder's deposit facts for a section, as stored.
#[derive(Debug, Clone)]
pub struct DepositRow {
    pub bidder_uscc: String,
    /// Empty for a bidder who secured the section by guarantee alone.
    pub sub_account_number: String,
    pub required_fen: i64,
    pub held_fen: i64,
    /// The largest guarantee in force on `today`, and its amount.
    pub cover: Option<(String, i64)>,
}

/// Bidders of a section (all, or one) with a sub-account or a guarantee cover, in bidder order.
/// A cover counts while it has not ended and is valid on the Beijing date `today`.
pub async fn deposits(pool: &PgPool, centre_id: &str, section_id: &str, bidder: Option<&str>, today: NaiveDate) -> Result<Vec<DepositRow>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH bidders AS (
             SELECT bidder_uscc, sub_account_number FROM sub_accounts
             WHERE centre_id = $1 AND section_id = $2 AND ($3::text IS NULL OR bidder_uscc = $3)
             UNION
             SELECT g.bidder_uscc, '' FROM guarantee_covers g
             WHERE g.centre_id = $1 AND g.section_id = $2 AND ($3::text IS NULL OR g.bidder_uscc = $3)
               AND NOT EXISTS (SELECT 1 FROM sub_accounts s WHERE s.centre_id = g.centre_id AND s.section_id = g.section_id AND s.bidder_uscc = g.bidder_uscc))
         SELECT b.bidder_uscc, b.sub_account_number, sec.required_deposit_fen, coalesce(a.balance_fen, 0), cover.guarantee_no, coalesce(cover.amount_fen, 0)
         FROM bidders b
         JOIN sections sec ON sec.centre_id = $1 AND sec.section_id = $2
         LEFT JOIN accounts a ON a.centre_id = $1 AND a.account = deposit_account_key($2, b.bidder_uscc)
         LEFT JOIN LATERAL (
             SELECT g.guarantee_no, g.amount_fen FROM guarantee_covers g
             WHERE g.centre_id = $1 AND g.section_id = $2 AND g.bidder_uscc = b.bidder_uscc AND g.ended_at IS NULL
               AND g.valid_to >= $4
             ORDER BY g.amount_fen DESC, g.guarantee_no LIMIT 1) cover ON true
         ORDER BY b.bidder_uscc",
    )
    .bind(centre_id)
    .bind(section_id)
    .bind(bidder)
    .bind(today)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| DepositRow {
            bidder_uscc: row.get(0),
            sub_account_number: row.get(1),
            required_fen: row.get(2),
            held_fen: row.get(3),
            cover: row.get::<Option<String>, _>(4).map(|number| (number, row.get(5))),
        })
        .collect())
}

/// A centre's accounts whose key starts with `prefix` (at most 10,000), leaving out the
/// deposits of sections still sealed (no `bids.opened` applied): (account, kind, balance).
pub async fn balances(pool: &PgPool, centre_id: &str, prefix: &str) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.account, a.kind, a.balance_fen FROM accounts a
         WHERE a.centre_id = $1 AND starts_with(a.account, $2)
           AND NOT EXISTS (SELECT 1 FROM sections s
                           WHERE s.centre_id = a.centre_id AND s.bids_opened_at IS NULL
                             AND starts_with(a.account, deposit_account_prefix(s.section_id)))
         ORDER BY a.account LIMIT 10000",
    )
    .bind(centre_id)
    .bind(prefix)
    .fetch_all(pool)
    .await
}

/// Deposits still held after their refund due date: (section, bidder, held, due on, status),
/// leaving out sections still sealed (no `bids.opened` applied): the list names bidders.
/// The rule is `crate::domain::deposits::is_stale`.
pub async fn stale_deposits(pool: &PgPool, centre_id: &str, today: NaiveDate) -> Result<Vec<(String, String, i64, NaiveDate, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.section_id, r.bidder_uscc, a.balance_fen, r.due_on, r.status FROM refunds r
         JOIN accounts a ON a.centre_id = r.centre_id AND a.account = deposit_account_key(r.section_id, r.bidder_uscc)
         JOIN sections s ON s.centre_id = r.centre_id AND s.section_id = r.section_id
         WHERE r.centre_id = $1 AND r.due_on < $2 AND r.status = ANY($3) AND a.balance_fen > 0 AND s.bids_opened_at IS NOT NULL
         ORDER BY r.due_on, r.section_id, r.bidder_uscc",
    )
    .bind(centre_id)
    .bind(today)
    .bind(&STALE_REFUND_STATUSES[..])
    .fetch_all(pool)
    .await
}

/// An account's balance (zero when it has never been posted to).
pub async fn balance(transaction: &mut Transaction<'_, Postgres>, centre_id: &str, account: &str) -> Result<i64, sqlx::Error> {
    let balance: Option<i64> = sqlx::query_scalar("SELECT balance_fen FROM accounts WHERE centre_id = $1 AND account = $2")
        .bind(centre_id)
        .bind(account)
        .fetch_optional(&mut **transaction)
        .await?;
    Ok(balance.unwrap_or(0))
}
