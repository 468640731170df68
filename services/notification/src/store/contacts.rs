//! Contacts, preferences and interest tags of parties.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};

use super::Tx;
use crate::domain::policy::{Contacts, Switches};
use crate::domain::{Category, Channel};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactsRow {
    pub party: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl ContactsRow {
    pub fn contacts(&self) -> Contacts {
        Contacts { email: self.email.clone(), phone: self.phone.clone(), webhook_url: self.webhook_url.clone(), webhook_secret: self.webhook_secret.clone() }
    }
}

pub async fn get<'e>(executor: impl sqlx::Executor<'e, Database = Postgres>, party: &str) -> sqlx::Result<Option<ContactsRow>> {
    sqlx::query_as("SELECT party, email, phone, webhook_url, webhook_secret, updated_at FROM contacts WHERE party = $1")
        .bind(party)
        .fetch_optional(executor)
        .await
}

pub async fn set(pool: &PgPool, party: &str, contacts: &Contacts, by: &str, now: DateTime<Utc>) -> sqlx::Result<ContactsRow> {
    sqlx::query_as(
        "INSERT INTO contacts (party, email, phone, webhook_url, webhook_secret, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (party) DO UPDATE SET email = $2, phone = $3, webhook_url = $4, webhook_secret = $5, updated_at = $6, updated_by = $7
         RETURNING party, email, phone, webhook_url, webhook_secret, updated_at",
    )
    .bind(party)
    .bind(&contacts.email)
    .bind(&contacts.phone)
    .bind(&contacts.webhook_url)
    .bind(&contacts.webhook_secret)
    .bind(now)
    .bind(by)
    .fetch_one(pool)
    .await
}

/// A recipient's contacts, then its switches as three parallel arrays (category, channel, enabled).
#[derive(sqlx::FromRow)]
struct RecipientRow {
    email: Option<String>,
    phone: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    categories: Vec<String>,
    channels: Vec<String>,
    enabled: Vec<bool>,
}

/// A recipient's contacts and explicit switches, in one query.
pub async fn for_recipient(transaction: &mut Tx, party: &str) -> sqlx::Result<(Contacts, Switches)> {
    let row: RecipientRow = sqlx::query_as(
        "SELECT c.email, c.phone, c.webhook_url, c.webhook_secret,
                COALESCE((SELECT array_agg(category ORDER BY category, channel) FROM preferences WHERE party = $1), '{}') AS categories,
                COALESCE((SELECT array_agg(channel ORDER BY category, channel) FROM preferences WHERE party = $1), '{}') AS channels,
                COALESCE((SELECT array_agg(enabled ORDER BY category, channel) FROM preferences WHERE party = $1), '{}') AS enabled
         FROM (SELECT $1::text AS party) q LEFT JOIN contacts c ON c.party = q.party",
    )
    .bind(party)
    .fetch_one(&mut **transaction)
    .await?;
    let RecipientRow { email, phone, webhook_url, webhook_secret, categories, channels, enabled } = row;
    let switches = categories
        .iter()
        .zip(&channels)
        .zip(&enabled)
        .filter_map(|((category, channel), enabled)| Some(((Category::parse(category)?, Channel::parse(channel)?), *enabled)))
        .collect();
    Ok((Contacts { email, phone, webhook_url, webhook_secret }, switches))
}

pub async fn preferences(pool: &PgPool, party: &str) -> sqlx::Result<(Vec<(Category, Channel, bool)>, Vec<String>)> {
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT category, channel, enabled FROM preferences WHERE party = $1 ORDER BY category, channel").bind(party).fetch_all(pool).await?;
    let tags: Vec<(String,)> = sqlx::query_as("SELECT tag FROM interest_tags WHERE party = $1 ORDER BY tag").bind(party).fetch_all(pool).await?;
    let switches =
        rows.into_iter().filter_map(|(category, channel, enabled)| Some((Category::parse(&category)?, Channel::parse(&channel)?, enabled))).collect();
    Ok((switches, tags.into_iter().map(|(tag,)| tag).collect()))
}

/// The webhook secrets of `parties` that have one.
pub async fn webhook_secrets(pool: &PgPool, parties: &[String]) -> sqlx::Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT party, webhook_secret FROM contacts WHERE party = ANY($1) AND webhook_secret IS NOT NULL").bind(parties).fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

/// Replaces a party's switches and tags in one transaction.
pub async fn set_preferences(pool: &PgPool, party: &str, switches: &[(Category, Channel, bool)], tags: &[String]) -> sqlx::Result<()> {
    let mut transaction = pool.begin().await?;
    sqlx::query("DELETE FROM preferences WHERE party = $1").bind(party).execute(&mut *transaction).await?;
    sqlx::query("DELETE FROM interest_tags WHERE party = $1").bind(party).execute(&mut *transaction).await?;
    for (category, channel, enabled) in switches {
        sqlx::query("INSERT INTO preferences (party, category, channel, enabled) VALUES ($1, $2, $3, $4) ON CONFLICT (party, category, channel) DO UPDATE SET enabled = $4")
            .bind(party)
            .bind(category.code())
            .bind(channel.code())
            .bind(enabled)
            .execute(&mut *transaction)
            .await?;
    }
    for tag in tags {
        sqlx::query("INSERT INTO interest_tags (party, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING").bind(party).bind(tag).execute(&mut *transaction).await?;
    }
    transaction.commit().await
}

/// Parties with any of `tags`, at most `limit`.
pub async fn parties_tagged(transaction: &mut Tx, tags: &[String], limit: i64) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT party FROM interest_tags WHERE tag = ANY($1) ORDER BY party LIMIT $2")
        .bind(tags)
        .bind(limit)
        .fetch_all(&mut **transaction)
        .await?;
    Ok(rows.into_iter().map(|(party,)| party).collect())
}
