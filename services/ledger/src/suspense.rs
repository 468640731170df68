//! Suspense resolution. A credit the matching rules could not bind sits in the collection
//! account's suspense account until an operator decides, with a reason:
//!
//! - bind: the money moves from suspense to the deposit of the sub-account it was meant for
//!   (entry `suspense_bound`), and counts for refunds like any deposit transfer;
//! - return: the money goes back to the paying account (原路退回) by a signed payment order
//!   (entry `suspense_return_ordered`, suspense to refund-in-transit); the bank's result confirms
//!   it (`refund_confirmed`) or, on failure, puts it back in suspense (`suspense_return_failed`),
//!   open for a new decision.
//!
//! The notice and its suspense entry are never changed; each decision is a row of its own in
//! `suspense_resolutions` (who, when, why), kept even when a return fails.

use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, Utc};
use jinfu_ledger::{AccountKey, EntryKind, Fen, JournalEntry, SuspenseReason};
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::journal::{lock_chain_heads, store_chain_heads, JournalWriter};
use crate::notice::{SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::{trace_headers, OutboxRows};
use crate::refunds::OrderSigner;
use crate::trading::china_date;

/// What the operator decided.
pub enum Decision<'a> {
    Bind { sub_account_number: &'a str },
    Return,
}

/// Why a decision was refused; each maps to one gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ResolveError {
    fn from(error: sqlx::Error) -> Self {
        ResolveError::Internal(error.into())
    }
}

/// One decision on a suspense item, as stored.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub resolution_id: Uuid,
    pub bank: String,
    pub bank_serial: String,
    pub action: String,
    pub status: String,
    pub amount_fen: i64,
    pub sub_account_number: Option<String>,
    pub section_id: Option<String>,
    pub bidder_uscc: Option<String>,
    pub order_id: Option<Uuid>,
    pub entry_sequence: i64,
    pub decided_by: String,
    pub reason: String,
    pub decided_at: DateTime<Utc>,
}

/// Topics a decision writes to.
pub struct Topics<'a> {
    pub events: &'a str,
    pub orders: &'a str,
}

/// Applies `decision` to the suspense item (bank, serial) of `centre_id` in one transaction.
pub async fn resolve(
    pool: &PgPool,
    centre_id: &str,
    bank: &str,
    bank_serial: &str,
    decision: Decision<'_>,
    decided_by: &str,
    reason: &str,
    signer: Option<&OrderSigner>,
    topics: &Topics<'_>,
) -> Result<Resolution, ResolveError> {
    if matches!(decision, Decision::Return) && signer.is_none() {
        return Err(ResolveError::FailedPrecondition(
            "no payment-order signing key is configured (refunds.signing): a return cannot be ordered".into(),
        ));
    }
    let mut transaction = pool.begin().await?;
    // The centre's chain head first, as every writer of the journal does.
    let mut heads = lock_chain_heads(&mut transaction, &BTreeSet::from([centre_id])).await?;
    let head = heads.get_mut(centre_id).ok_or_else(|| ResolveError::NotFound(format!("centre {centre_id} is not registered")))?;
    let notice = sqlx::query(
        "SELECT amount_fen, outcome, account_number, payer_account, payer_name FROM credit_notices
         WHERE centre_id = $1 AND bank = $2 AND bank_serial = $3",
    )
    .bind(centre_id)
    .bind(bank)
    .bind(bank_serial)
    .fetch_optional(&mut *transaction)
    .await?
    .ok_or_else(|| ResolveError::NotFound(format!("centre {centre_id} has no credit notice {bank}/{bank_serial}")))?;
    let (amount_fen, outcome, account_number, payer_account, payer_name): (i64, String, String, String, String) =
        (notice.get(0), notice.get(1), notice.get(2), notice.get(3), notice.get(4));
    if SuspenseReason::parse(&outcome).is_none() {
        return Err(ResolveError::FailedPrecondition(format!("{bank}/{bank_serial} is not in suspense: it was posted as a {outcome} deposit")));
    }
    let live: Option<String> = sqlx::query_scalar(
        "SELECT status FROM suspense_resolutions WHERE bank = $1 AND bank_serial = $2 AND status <> 'return_failed' FOR UPDATE",
    )
    .bind(bank)
    .bind(bank_serial)
    .fetch_optional(&mut *transaction)
    .await?;
    if let Some(status) = live {
        return Err(ResolveError::FailedPrecondition(format!("{bank}/{bank_serial} is already resolved ({status})")));
    }

    let amount = Fen::from_fen(amount_fen);
    let suspense = AccountKey::Suspense { bank: bank.to_owned(), account_number: account_number.clone() };
    let resolution_id = Uuid::now_v7();
    let reference = format!("suspense:{bank}/{bank_serial}");
    let mut journal = JournalWriter::default();
    let mut outbox = OutboxRows::default();
    let mut resolution = Resolution {
        resolution_id,
        bank: bank.to_owned(),
        bank_serial: bank_serial.to_owned(),
        action: String::new(),
        status: String::new(),
        amount_fen,
        sub_account_number: None,
        section_id: None,
        bidder_uscc: None,
        order_id: None,
        entry_sequence: 0,
        decided_by: decided_by.to_owned(),
        reason: reason.to_owned(),
        decided_at: Utc::now(),
    };
    match decision {
        Decision::Bind { sub_account_number } => {
            let target = sqlx::query(
                "SELECT s.centre_id, s.section_id, s.bidder_uscc, sec.bank, sec.account_number, sec.open, sec.required_deposit_fen
                 FROM sub_accounts s JOIN sections sec USING (centre_id, section_id) WHERE s.sub_account_number = $1",
            )
            .bind(sub_account_number)
            .fetch_optional(&mut *transaction)
            .await?
            .filter(|row| row.get::<String, _>(0) == centre_id)
            .ok_or_else(|| ResolveError::NotFound(format!("centre {centre_id} has no sub-account {sub_account_number}")))?;
            let (section_id, bidder_uscc, section_bank, section_account, open, required_fen): (String, String, String, String, bool, i64) =
                (target.get(1), target.get(2), target.get(3), target.get(4), target.get(5), target.get(6));
            if !open {
                return Err(ResolveError::FailedPrecondition(format!("section {section_id} is closed: return the money instead")));
            }
            if section_bank != bank || section_account != account_number {
                return Err(ResolveError::FailedPrecondition(format!(
                    "section {section_id} collects at {section_bank}/{section_account}, but this money is at {bank}/{account_number}: return it instead"
                )));
            }
            let deposit = AccountKey::Deposit { section: section_id.clone(), bidder: bidder_uscc.clone() };
            let held_before: i64 = sqlx::query_scalar("SELECT balance_fen FROM accounts WHERE centre_id = $1 AND account = $2")
                .bind(centre_id)
                .bind(deposit.to_string())
                .fetch_optional(&mut *transaction)
                .await?
                .unwrap_or(0);
            let entry = JournalEntry::transfer(EntryKind::SuspenseBound, suspense, deposit, amount).map_err(anyhow::Error::from)?;
            resolution.entry_sequence = journal.append(head, centre_id, EntryKind::SuspenseBound, &reference, &entry);
            resolution.action = "bind".into();
            resolution.status = "bound".into();
            resolution.sub_account_number = Some(sub_account_number.to_owned());
            resolution.section_id = Some(section_id.clone());
            resolution.bidder_uscc = Some(bidder_uscc.clone());
            let held = held_before + amount_fen;
            outbox.push_event(topics.events, sub_account_number, "suspense.bound", centre_id, json!({
                "bank": bank, "bank_serial": bank_serial, "amount_fen": amount_fen, "sub_account_number": sub_account_number,
                "section_id": section_id, "bidder_uscc": bidder_uscc, "held_fen": held, "required_fen": required_fen,
                "satisfied": held >= required_fen, "decided_by": decided_by, "reason": reason, "entry_sequence": resolution.entry_sequence,
            }));
        }
        Decision::Return => {
            let signer = signer.ok_or_else(|| ResolveError::FailedPrecondition("no payment-order signing key".into()))?;
            let order_id = Uuid::now_v7();
            let entry = JournalEntry::transfer(EntryKind::SuspenseReturnOrdered, suspense, AccountKey::RefundInTransit, amount).map_err(anyhow::Error::from)?;
            resolution.entry_sequence = journal.append(head, centre_id, EntryKind::SuspenseReturnOrdered, &format!("order:{order_id}"), &entry);
            resolution.action = "return".into();
            resolution.status = "return_ordered".into();
            resolution.order_id = Some(order_id);
            let now = Utc::now();
            sqlx::query(
                "INSERT INTO payment_orders (order_id, refund_id, purpose, centre_id, bank, account_number, payee_account, payee_name,
                     principal_fen, interest_fen, refund_date, status, order_sequence)
                 VALUES ($1, NULL, 'suspense_return', $2, $3, $4, $5, $6, $7, 0, $8, 'ordered', $9)",
            )
            .bind(order_id)
            .bind(centre_id)
            .bind(bank)
            .bind(&account_number)
            .bind(&payer_account)
            .bind(&payer_name)
            .bind(amount_fen)
            .bind(china_date(now))
            .bind(resolution.entry_sequence)
            .execute(&mut *transaction)
            .await?;
            let order = serde_json::to_vec(&json!({
                "schema_version": 1,
                "order_id": order_id,
                "centre_id": centre_id,
                "bank": bank,
                "account_number": account_number,
                "payee_account": payer_account,
                "payee_name": payer_name,
                "amount": amount.to_yuan_string(),
                "currency": "CNY",
                "principal": amount.to_yuan_string(),
                "interest": "0.00",
                "purpose": "suspense_return",
                "remark": format!("退回无法入账款项 {bank_serial}"),
                "ordered_at": now.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8")).to_rfc3339(),
            }))
            .map_err(anyhow::Error::from)?;
            let mut headers = trace_headers();
            headers.push((SIGNATURE_HEADER.into(), signer.sign(&order).into_bytes()));
            headers.push((SIGNING_KEY_HEADER.into(), signer.key_ref().as_bytes().to_vec()));
            outbox.push(topics.orders, &order_id.to_string(), order, &headers);
            outbox.push_event(topics.events, &payer_account, "suspense.return_ordered", centre_id, json!({
                "bank": bank, "bank_serial": bank_serial, "amount_fen": amount_fen, "order_id": order_id,
                "payee_account": payer_account, "decided_by": decided_by, "reason": reason, "entry_sequence": resolution.entry_sequence,
            }));
        }
    }
    // The entry first: the decision row refers to it.
    journal.flush(&mut transaction).await?;
    sqlx::query(
        "INSERT INTO suspense_resolutions (resolution_id, bank, bank_serial, centre_id, action, status, sub_account_number,
             section_id, bidder_uscc, order_id, entry_sequence, decided_by, reason, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(resolution.resolution_id)
    .bind(bank)
    .bind(bank_serial)
    .bind(centre_id)
    .bind(&resolution.action)
    .bind(&resolution.status)
    .bind(&resolution.sub_account_number)
    .bind(&resolution.section_id)
    .bind(&resolution.bidder_uscc)
    .bind(resolution.order_id)
    .bind(resolution.entry_sequence)
    .bind(decided_by)
    .bind(reason)
    .bind(resolution.decided_at)
    .execute(&mut *transaction)
    .await?;
    store_chain_heads(&mut transaction, &heads).await?;
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    tracing::info!(centre = centre_id, bank, serial = bank_serial, action = %resolution.action, by = decided_by, "suspense item resolved");
    Ok(resolution)
}

/// A centre's resolutions, newest first. Like the suspense list, it leaves out decisions that
/// name a section whose bids are not yet opened (they would name its bidders).
pub async fn list(pool: &PgPool, centre_id: &str, limit: i64) -> Result<Vec<Resolution>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.resolution_id, r.bank, r.bank_serial, r.action, r.status, n.amount_fen, r.sub_account_number, r.section_id,
                r.bidder_uscc, r.order_id, r.entry_sequence, r.decided_by, r.reason, r.decided_at
         FROM suspense_resolutions r JOIN credit_notices n USING (bank, bank_serial)
         WHERE r.centre_id = $1
           AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.centre_id = r.centre_id
                             AND s.section_id IN (r.section_id, n.section_id) AND s.bid_opening_time > now())
         ORDER BY r.decided_at DESC, r.resolution_id DESC LIMIT $2",
    )
    .bind(centre_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Resolution {
            resolution_id: row.get(0),
            bank: row.get(1),
            bank_serial: row.get(2),
            action: row.get(3),
            status: row.get(4),
            amount_fen: row.get(5),
            sub_account_number: row.get(6),
            section_id: row.get(7),
            bidder_uscc: row.get(8),
            order_id: row.get(9),
            entry_sequence: row.get(10),
            decided_by: row.get(11),
            reason: row.get(12),
            decided_at: row.get(13),
        })
        .collect())
}

/// Settles a suspense return from the bank's result, inside the result's transaction: on
/// success refund-in-transit to the collection account; on failure back to suspense, and the
/// item is open again. Returns the entry kind written.
pub async fn settle_return(
    transaction: &mut Transaction<'static, Postgres>,
    journal: &mut JournalWriter,
    head: &mut crate::journal::ChainHead,
    order: &ReturnOrder,
    succeeded: bool,
    reference: &str,
) -> anyhow::Result<(EntryKind, i64)> {
    let amount = Fen::from_fen(order.amount_fen);
    let (kind, entry, status) = if succeeded {
        let bank_account = AccountKey::Bank { bank: order.bank.clone(), account_number: order.account_number.clone() };
        (EntryKind::RefundConfirmed, JournalEntry::transfer(EntryKind::RefundConfirmed, AccountKey::RefundInTransit, bank_account, amount)?, "returned")
    } else {
        let suspense = AccountKey::Suspense { bank: order.bank.clone(), account_number: order.account_number.clone() };
        (EntryKind::SuspenseReturnFailed, JournalEntry::transfer(EntryKind::SuspenseReturnFailed, AccountKey::RefundInTransit, suspense, amount)?, "return_failed")
    };
    let sequence = journal.append(head, &order.centre_id, kind, reference, &entry);
    sqlx::query("UPDATE suspense_resolutions SET status = $2 WHERE order_id = $1")
        .bind(order.order_id)
        .bind(status)
        .execute(&mut **transaction)
        .await?;
    Ok((kind, sequence))
}

/// The facts of a suspense-return payment order a result settles.
pub struct ReturnOrder {
    pub order_id: Uuid,
    pub centre_id: String,
    pub bank: String,
    pub account_number: String,
    pub amount_fen: i64,
}
