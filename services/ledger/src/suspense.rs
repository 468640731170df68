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
//!
//! Binding to a sub-account of a sealed section (no `bids.opened` applied) is allowed — money
//! meant for a deposit must reach it before the deadline — but reveals nothing: a refusal about
//! such a sub-account (its section closed, or collecting at another account) is the answer for
//! a sub-account that does not exist, and the decision returned names neither its section nor
//! its bidder (the stored decision does, for the audit trail listed after opening).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use jinfu_ledger::{beijing, AccountKey, EntryKind, Fen, JournalEntry, SuspenseReason};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::sealing::is_sealed;
use crate::journal::{lock_chain_heads, store_chain_heads, ChainHead, JournalWriter};
use crate::notice::{SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::{trace_headers, OutboxRows};
use crate::refunds::OrderSigner;
use crate::store::suspense as store;

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

/// The suspense item a decision is about, who decides and why.
pub struct Item<'a> {
    pub centre_id: &'a str,
    pub bank: &'a str,
    pub bank_serial: &'a str,
    pub decided_by: &'a str,
    pub reason: &'a str,
}

/// What one decision writes, in the order it is written.
struct Writes<'a> {
    item: &'a Item<'a>,
    notice: store::Notice,
    head: &'a mut ChainHead,
    journal: JournalWriter,
    outbox: OutboxRows,
    resolution: Resolution,
}

/// Applies `decision` to the suspense item at `now`, in one transaction.
pub async fn resolve(
    pool: &PgPool,
    item: &Item<'_>,
    decision: Decision<'_>,
    signer: Option<&OrderSigner>,
    topics: &Topics<'_>,
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    if matches!(decision, Decision::Return) && signer.is_none() {
        return Err(ResolveError::FailedPrecondition("no payment-order signing key is configured (refunds.signing): a return cannot be ordered".into()));
    }
    let Item { centre_id, bank, bank_serial, .. } = *item;
    let mut transaction = pool.begin().await?;
    // The centre's chain head first, as every writer of the journal does.
    let mut heads = lock_chain_heads(&mut transaction, &BTreeSet::from([centre_id])).await?;
    let head = heads.get_mut(centre_id).ok_or_else(|| ResolveError::NotFound(format!("centre {centre_id} is not registered")))?;
    let notice = open_item(&mut transaction, item).await?;
    let resolution = Resolution {
        resolution_id: Uuid::now_v7(),
        bank: bank.to_owned(),
        bank_serial: bank_serial.to_owned(),
        action: String::new(),
        status: String::new(),
        amount_fen: notice.amount_fen,
        sub_account_number: None,
        section_id: None,
        bidder_uscc: None,
        order_id: None,
        entry_sequence: 0,
        decided_by: item.decided_by.to_owned(),
        reason: item.reason.to_owned(),
        decided_at: now,
    };
    let mut writes = Writes { item, notice, head, journal: JournalWriter::default(), outbox: OutboxRows::default(), resolution };
    let mut sealed = false;
    match decision {
        Decision::Bind { sub_account_number } => sealed = bind(&mut transaction, &mut writes, sub_account_number, topics).await?,
        Decision::Return => {
            let signer = signer.ok_or_else(|| ResolveError::FailedPrecondition("no payment-order signing key".into()))?;
            order_return(&mut transaction, &mut writes, signer, topics, now).await?;
        }
    }
    let Writes { journal, outbox, mut resolution, .. } = writes;
    // The entry first: the decision row refers to it.
    journal.flush(&mut transaction).await?;
    store::insert_resolution(&mut transaction, centre_id, &resolution).await?;
    store_chain_heads(&mut transaction, &heads).await?;
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    tracing::info!(centre = centre_id, bank, serial = bank_serial, action = %resolution.action, by = item.decided_by, "suspense item resolved");
    if sealed {
        resolution.section_id = None;
        resolution.bidder_uscc = None;
    }
    Ok(resolution)
}

/// The item's notice, if it is in suspense with no decision in force (locked).
async fn open_item(transaction: &mut Transaction<'_, Postgres>, item: &Item<'_>) -> Result<store::Notice, ResolveError> {
    let Item { centre_id, bank, bank_serial, .. } = *item;
    let notice = store::notice(transaction, centre_id, bank, bank_serial)
        .await?
        .ok_or_else(|| ResolveError::NotFound(format!("centre {centre_id} has no credit notice {bank}/{bank_serial}")))?;
    if SuspenseReason::parse(&notice.outcome).is_none() {
        return Err(ResolveError::FailedPrecondition(format!("{bank}/{bank_serial} is not in suspense: it was posted as a {} deposit", notice.outcome)));
    }
    if let Some(status) = store::live_resolution(transaction, bank, bank_serial).await? {
        return Err(ResolveError::FailedPrecondition(format!("{bank}/{bank_serial} is already resolved ({status})")));
    }
    Ok(notice)
}

/// Binds the money to a sub-account's deposit: suspense to deposit. Returns whether the
/// sub-account's section is sealed.
async fn bind(
    transaction: &mut Transaction<'_, Postgres>,
    writes: &mut Writes<'_>,
    sub_account_number: &str,
    topics: &Topics<'_>,
) -> Result<bool, ResolveError> {
    let Item { centre_id, bank, bank_serial, decided_by, reason } = *writes.item;
    let account_number = writes.notice.account_number.clone();
    // One answer, same code and text, for a sub-account that does not exist, is another
    // centre's, or belongs to a sealed section that cannot take this money: otherwise trying
    // numbers would map them to sections and count a sealed section's bidders.
    let unknown = || ResolveError::NotFound(format!("centre {centre_id} has no sub-account by that number that can take this money"));
    let target = store::bind_target(transaction, sub_account_number).await?.filter(|target| target.centre_id == centre_id).ok_or_else(unknown)?;
    let sealed = is_sealed(target.bids_opened_at);
    let fits = target.open && target.bank == bank && target.account_number == account_number;
    if sealed && !fits {
        return Err(unknown());
    }
    let section_id = target.section_id.clone();
    if !target.open {
        return Err(ResolveError::FailedPrecondition(format!("section {section_id} is closed: return the money instead")));
    }
    if target.bank != bank || target.account_number != account_number {
        return Err(ResolveError::FailedPrecondition(format!(
            "section {section_id} collects at {}/{}, but this money is at {bank}/{account_number}: return it instead",
            target.bank, target.account_number
        )));
    }
    let deposit = AccountKey::Deposit { section: section_id.clone(), bidder: target.bidder_uscc.clone() };
    let held_before = crate::store::deposits::balance(transaction, centre_id, &deposit.to_string()).await?;
    let amount_fen = writes.notice.amount_fen;
    let suspense = AccountKey::Suspense { bank: bank.to_owned(), account_number };
    let entry = JournalEntry::transfer(EntryKind::SuspenseBound, suspense, deposit, Fen::from_fen(amount_fen)).map_err(anyhow::Error::from)?;
    let reference = format!("suspense:{bank}/{bank_serial}");
    let sequence = writes.journal.append(writes.head, centre_id, EntryKind::SuspenseBound, &reference, &entry);
    let resolution = &mut writes.resolution;
    resolution.entry_sequence = sequence;
    resolution.action = "bind".into();
    resolution.status = "bound".into();
    resolution.sub_account_number = Some(sub_account_number.to_owned());
    resolution.section_id = Some(section_id.clone());
    resolution.bidder_uscc = Some(target.bidder_uscc.clone());
    let held = held_before + amount_fen;
    writes.outbox.push_event(
        topics.events,
        sub_account_number,
        "suspense.bound",
        centre_id,
        json!({
            "bank": bank, "bank_serial": bank_serial, "amount_fen": amount_fen, "sub_account_number": sub_account_number,
            "section_id": section_id, "bidder_uscc": target.bidder_uscc, "held_fen": held, "required_fen": target.required_fen,
            "satisfied": held >= target.required_fen, "decided_by": decided_by, "reason": reason, "entry_sequence": sequence,
        }),
    );
    Ok(sealed)
}

/// Orders the money back to the paying account (原路退回): suspense to refund-in-transit, and a
/// signed payment order.
async fn order_return(
    transaction: &mut Transaction<'_, Postgres>,
    writes: &mut Writes<'_>,
    signer: &OrderSigner,
    topics: &Topics<'_>,
    now: DateTime<Utc>,
) -> Result<(), ResolveError> {
    let Item { centre_id, bank, bank_serial, decided_by, reason } = *writes.item;
    let store::Notice { amount_fen, account_number, payer_account, payer_name, .. } = writes.notice.clone();
    let amount = Fen::from_fen(amount_fen);
    let order_id = Uuid::now_v7();
    let suspense = AccountKey::Suspense { bank: bank.to_owned(), account_number: account_number.clone() };
    let entry = JournalEntry::transfer(EntryKind::SuspenseReturnOrdered, suspense, AccountKey::RefundInTransit, amount).map_err(anyhow::Error::from)?;
    let sequence = writes.journal.append(writes.head, centre_id, EntryKind::SuspenseReturnOrdered, &format!("order:{order_id}"), &entry);
    let resolution = &mut writes.resolution;
    resolution.entry_sequence = sequence;
    resolution.action = "return".into();
    resolution.status = "return_ordered".into();
    resolution.order_id = Some(order_id);
    let row = store::ReturnOrderRow {
        order_id,
        centre_id,
        bank,
        account_number: &account_number,
        payee_account: &payer_account,
        payee_name: &payer_name,
        amount_fen,
        refund_date: beijing::date(now),
        order_sequence: sequence,
    };
    store::insert_return_order(transaction, &row).await?;
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
        "ordered_at": beijing::rfc3339(now),
    }))
    .map_err(anyhow::Error::from)?;
    let mut headers = trace_headers();
    headers.push((SIGNATURE_HEADER.into(), signer.sign(&order).into_bytes()));
    headers.push((SIGNING_KEY_HEADER.into(), signer.key_ref().as_bytes().to_vec()));
    writes.outbox.push(topics.orders, &order_id.to_string(), order, &headers);
    writes.outbox.push_event(
        topics.events,
        &payer_account,
        "suspense.return_ordered",
        centre_id,
        json!({
            "bank": bank, "bank_serial": bank_serial, "amount_fen": amount_fen, "order_id": order_id,
            "payee_account": payer_account, "decided_by": decided_by, "reason": reason, "entry_sequence": sequence,
        }),
    );
    Ok(())
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
        (
            EntryKind::SuspenseReturnFailed,
            JournalEntry::transfer(EntryKind::SuspenseReturnFailed, AccountKey::RefundInTransit, suspense, amount)?,
            "return_failed",
        )
    };
    let sequence = journal.append(head, &order.centre_id, kind, reference, &entry);
    store::set_status_of_order(transaction, order.order_id, status).await?;
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
