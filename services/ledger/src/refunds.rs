//! Refunds (免申即退): the runner orders scheduled refunds that are due, with interest, as signed
//! payment orders on `bank.payment-orders`; the results handler settles them from
//! `bank.payment-results`. Two phases, every step a balanced, chained entry:
//!
//! - ordered: debit the deposit (principal) and interest expense, credit refund-in-transit;
//! - confirmed: debit refund-in-transit, credit the collection account (money left the bank);
//! - failed: the order entry reversed — refund-in-transit back to the deposit and interest
//!   expense — and the refund marked failed for a second attempt with corrected details.
//!
//! A deposit marked for forfeiture before its refund is ordered moves to `forfeited:<section>`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::{beijing, AccountKey, EntryKind, Fen, JournalEntry, Posting, Side};
use jinfu_platform::signing::{SigningKey, VerifyingKey};
use jinfu_platform::topics;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::watch;
use tracing::{info, warn};
use uuid::Uuid;

use crate::consumer::{refused, Handled, RecordHandler};
use crate::domain::deposits::stale_as_of;
use crate::domain::refunds::{can_cover, plan_payments, transfers_match_deposit, Payment, Transfer};
use crate::ingest::Record;
use crate::journal::{lock_chain_heads, store_chain_heads, ChainHead, JournalWriter};
use crate::notice::{SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::{trace_headers, OutboxRows};
use crate::settings::{OrderSigningSettings, Settings};
use crate::store::refunds::{self as store, DueRefund, NewOrder, OrderResult, OrderToSettle};
use crate::suspense::{self, ReturnOrder};

/// Refunds ordered per runner round, at most.
const REFUNDS_PER_ROUND_MAX: i64 = 100;

pub struct OrderSigner {
    key: SigningKey,
    key_ref: String,
}

impl OrderSigner {
    pub fn from_settings(settings: &OrderSigningSettings) -> anyhow::Result<OrderSigner> {
        let key = SigningKey::from_hex(settings.scheme, settings.private_key.expose_secret())?;
        Ok(OrderSigner { key, key_ref: settings.key_ref.to_ascii_lowercase() })
    }

    /// The base64 signature over `order`'s bytes.
    pub fn sign(&self, order: &[u8]) -> String {
        self.key.sign(order)
    }

    /// The reference banks know the platform's key by (`jinfu-signing-key`).
    pub fn key_ref(&self) -> &str {
        &self.key_ref
    }
}

/// Orders due refunds until `shutdown` turns true.
/// Every round it also publishes the collusion leads of sections whose bids were opened
/// ([`publish_opened_leads`]), with or without a signing key.
pub async fn run_refunds(pool: PgPool, settings: Settings, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let signer = match &settings.refunds.signing {
        Some(signing) => Some(OrderSigner::from_settings(signing)?),
        None => {
            warn!("no payment-order signing key configured (refunds.signing): refunds are scheduled but not ordered");
            None
        }
    };
    let orders_topic = settings.kafka.topic(topics::BANK_PAYMENT_ORDERS);
    let events_topic = settings.kafka.topic(topics::LEDGER_EVENTS);
    loop {
        if let Err(error) = publish_opened_leads(&pool, &events_topic, Utc::now()).await {
            warn!(error = %error, "publishing collusion leads failed; retrying next round");
        }
        if let Some(signer) = &signer {
            if let Err(error) = report_stale(&pool, &events_topic, Utc::now()).await {
                warn!(error = %error, "reporting stale deposits failed; retrying next round");
            }
            match order_due_refunds(&pool, signer, &orders_topic, &events_topic, Utc::now()).await {
                Ok(0) => {}
                Ok(count) => info!(count, "refunds handled"),
                Err(error) => warn!(error = %error, "ordering refunds failed; retrying next round"),
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(Duration::from_millis(settings.refunds.poll_ms)) => {},
        }
    }
    Ok(())
}

/// Publishes `collusion.lead` once for every lead whose section's bids are opened: a lead names
/// the bidders, so before the `bids.opened` fact it is only recorded (and shown to nobody).
/// Returns how many were published.
pub async fn publish_opened_leads(pool: &PgPool, events_topic: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let leads = crate::store::ingest_writes::take_opened_leads(&mut transaction, now).await?;
    let mut outbox = OutboxRows::default();
    for (centre, section, payer, bidders) in &leads {
        let data = json!({
            "section_id": section,
            "payer_account": payer,
            "bidder_usccs": bidders,
            "rule": "招标投标法实施条例 art. 40(6): deposits of different bidders paid from one account",
        });
        outbox.push_event(events_topic, &format!("{centre}:{section}"), "collusion.lead", centre, data);
    }
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(leads.len())
}

/// Publishes `deposit.stale` once for every refund past its due date whose money is still held
/// (滞留保证金). Returns how many became stale. The log line names no bidder: the section may
/// still be sealed, and logs are read by people who may not know its bidders before opening
/// (the event carries the bidder to the services that may; `ListStaleDeposits` lists it after
/// opening).
pub async fn report_stale(pool: &PgPool, events_topic: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let stale = store::mark_stale(&mut transaction, stale_as_of(now), now).await?;
    let mut outbox = OutboxRows::default();
    for (centre_id, section_id, bidder_uscc, due_on, refund_status) in &stale {
        warn!(centre = %centre_id, section = %section_id, due_on = %due_on, refund_status = %refund_status, "deposit is stale: held past its refund due date");
        outbox.push_event(
            events_topic,
            bidder_uscc,
            "deposit.stale",
            centre_id,
            json!({
                "section_id": section_id, "bidder_uscc": bidder_uscc, "due_on": due_on, "refund_status": refund_status,
            }),
        );
    }
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(stale.len())
}

/// What one runner round writes, across the refunds it handles.
struct Round<'a> {
    signer: &'a OrderSigner,
    orders_topic: &'a str,
    events_topic: &'a str,
    now: DateTime<Utc>,
    journal: JournalWriter,
    outbox: OutboxRows,
    /// Money already promised from each collection account by orders not yet settled.
    reserved: HashMap<(String, String), i64>,
}

/// Orders (or forfeits) every scheduled refund whose hold has passed. Returns how many.
pub async fn order_due_refunds(pool: &PgPool, signer: &OrderSigner, orders_topic: &str, events_topic: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let due = store::lock_due(&mut transaction, now, REFUNDS_PER_ROUND_MAX).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let centres: BTreeSet<&str> = due.iter().map(|refund| refund.centre_id.as_str()).collect();
    let mut heads = lock_chain_heads(&mut transaction, &centres).await?;
    let mut round =
        Round { signer, orders_topic, events_topic, now, journal: JournalWriter::default(), outbox: OutboxRows::default(), reserved: HashMap::new() };
    for refund in &due {
        let head = heads.get_mut(&refund.centre_id).expect("heads are locked for every centre with due refunds");
        round.handle(&mut transaction, head, refund).await?;
    }
    round.journal.flush(&mut transaction).await?;
    store_chain_heads(&mut transaction, &heads).await?;
    round.outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(due.len())
}

impl Round<'_> {
    /// Forfeits, orders, or leaves one due refund (with a warning) for an operator.
    async fn handle(&mut self, transaction: &mut Transaction<'_, Postgres>, head: &mut ChainHead, refund: &DueRefund) -> anyhow::Result<()> {
        let deposit = AccountKey::Deposit { section: refund.section_id.clone(), bidder: refund.bidder_uscc.clone() };
        let held = crate::store::deposits::balance(transaction, &refund.centre_id, &deposit.to_string()).await?;
        let forfeiture = store::forfeiture_reason(transaction, refund).await?;
        if held == 0 {
            return Ok(store::set_status(transaction, refund.refund_id, "nothing_held").await?);
        }
        if let Some(reason) = forfeiture {
            let forfeited = AccountKey::Forfeited { section: refund.section_id.clone() };
            let entry = JournalEntry::transfer(EntryKind::DepositForfeited, deposit, forfeited, Fen::from_fen(held))?;
            let sequence = self.journal.append(head, &refund.centre_id, EntryKind::DepositForfeited, &format!("refund:{}", refund.refund_id), &entry);
            store::set_status(transaction, refund.refund_id, "forfeited").await?;
            let data = json!({
                "section_id": refund.section_id, "bidder_uscc": refund.bidder_uscc, "amount_fen": held, "reason": reason, "entry_sequence": sequence,
            });
            self.outbox.push_event(self.events_topic, &refund.bidder_uscc, "deposit.forfeited", &refund.centre_id, data);
            return Ok(());
        }
        let Some((bank, account_number, payments)) = self.plan(transaction, refund, held).await? else {
            return Ok(());
        };
        for payment in &payments {
            self.order(transaction, head, refund, (&bank, &account_number), payment).await?;
        }
        Ok(store::set_status(transaction, refund.refund_id, "ordered").await?)
    }

    /// The payments of a refund and the collection account they leave from, or `None` (with a
    /// warning) when the refund must wait.
    async fn plan(
        &mut self,
        transaction: &mut Transaction<'_, Postgres>,
        refund: &DueRefund,
        held: i64,
    ) -> anyhow::Result<Option<(String, String, Vec<Payment>)>> {
        // Paying accounts already refunded by a confirmed order of this refund are done; a
        // second attempt pays the rest.
        let remaining = store::transfers_to_refund(transaction, refund).await?;
        let transfers: Vec<Transfer> = remaining
            .iter()
            .map(|row| Transfer {
                amount: Fen::from_fen(row.amount_fen),
                payer_account: row.payer_account.clone(),
                payer_name: row.payer_name.clone(),
                value_date: beijing::date(row.value_time),
            })
            .collect();
        if !transfers_match_deposit(&transfers, held) {
            let paid: i64 = transfers.iter().map(|transfer| transfer.amount.fen()).sum();
            warn!(refund = %refund.refund_id, paid, held, "deposit balance differs from the transfers still to refund; refund left scheduled for an operator");
            return Ok(None);
        }
        // An approved correction (second refund) redirects what remains to the corrected account.
        let correction = store::approved_correction(transaction, refund.refund_id).await?;
        let (bank, account_number) = (remaining[0].bank.clone(), remaining[0].account_number.clone());
        let rates = store::rates(transaction, &bank, &account_number).await?;
        let payments = plan_payments(&transfers, &rates, beijing::date(self.now), correction.as_ref())?;
        // The collection account must cover what it is asked to pay, counting unsettled orders.
        let bank_key = (bank.clone(), account_number.clone());
        if !self.reserved.contains_key(&bank_key) {
            let outstanding = store::outstanding_orders_fen(transaction, &bank, &account_number).await?;
            self.reserved.insert(bank_key.clone(), outstanding);
        }
        let bank_balance = crate::store::deposits::balance(transaction, &refund.centre_id, &format!("bank:{bank}:{account_number}")).await?;
        let needed: i64 = payments.iter().map(|payment| payment.total().fen()).sum();
        let already = self.reserved.get(&bank_key).copied().unwrap_or(0);
        if !can_cover(bank_balance, already, needed) {
            warn!(refund = %refund.refund_id, bank_balance, already, needed, "collection account cannot cover principal and interest (interest income not yet recorded?); refund left scheduled");
            return Ok(None);
        }
        self.reserved.insert(bank_key, already + needed);
        Ok(Some((bank, account_number, payments)))
    }

    /// One payment order: its entry (deposit and interest expense to refund-in-transit), its
    /// row, the signed order and the `refund.ordered` event.
    async fn order(
        &mut self,
        transaction: &mut Transaction<'_, Postgres>,
        head: &mut ChainHead,
        refund: &DueRefund,
        (bank, account_number): (&str, &str),
        payment: &Payment,
    ) -> anyhow::Result<()> {
        let Payment { payee_account, payee_name, principal, interest } = payment;
        let (principal, interest, total) = (*principal, *interest, payment.total());
        let order_id = Uuid::now_v7();
        let deposit = AccountKey::Deposit { section: refund.section_id.clone(), bidder: refund.bidder_uscc.clone() };
        let mut postings = vec![Posting { account: deposit, side: Side::Debit, amount: principal }];
        if interest.is_positive() {
            postings.push(Posting { account: AccountKey::InterestExpense, side: Side::Debit, amount: interest });
        }
        postings.push(Posting { account: AccountKey::RefundInTransit, side: Side::Credit, amount: total });
        let entry = JournalEntry::new(EntryKind::RefundOrdered, postings)?;
        let sequence = self.journal.append(head, &refund.centre_id, EntryKind::RefundOrdered, &format!("order:{order_id}"), &entry);
        let row = NewOrder {
            order_id,
            refund,
            bank,
            account_number,
            payee_account,
            payee_name,
            principal_fen: principal.fen(),
            interest_fen: interest.fen(),
            refund_date: beijing::date(self.now),
            order_sequence: sequence,
        };
        store::insert_order(transaction, &row).await?;
        let order = serde_json::to_vec(&json!({
            "schema_version": 1,
            "order_id": order_id,
            "centre_id": refund.centre_id,
            "bank": bank,
            "account_number": account_number,
            "payee_account": payee_account,
            "payee_name": payee_name,
            "amount": total.to_yuan_string(),
            "currency": "CNY",
            "principal": principal.to_yuan_string(),
            "interest": interest.to_yuan_string(),
            "purpose": "deposit_refund",
            "remark": format!("保证金退还 {}", refund.section_id),
            "ordered_at": beijing::rfc3339(self.now),
        }))?;
        let mut headers = trace_headers();
        headers.push((SIGNATURE_HEADER.into(), self.signer.key.sign(&order).into_bytes()));
        headers.push((SIGNING_KEY_HEADER.into(), self.signer.key_ref.clone().into_bytes()));
        self.outbox.push(self.orders_topic, &order_id.to_string(), order, &headers);
        let data = json!({
            "section_id": refund.section_id, "bidder_uscc": refund.bidder_uscc, "order_id": order_id,
            "principal_fen": principal.fen(), "interest_fen": interest.fen(), "payee_account": payee_account, "entry_sequence": sequence,
        });
        self.outbox.push_event(self.events_topic, &refund.bidder_uscc, "refund.ordered", &refund.centre_id, data);
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentResultV1 {
    schema_version: u32,
    order_id: Uuid,
    bank: String,
    bank_serial: String,
    status: String,
    #[serde(default)]
    failure_reason: Option<String>,
    settled_at: DateTime<FixedOffset>,
}

/// Settles payment orders from the banks' results.
pub struct ResultsHandler {
    pub keys: HashMap<String, VerifyingKey>,
    pub events_topic: String,
}

impl RecordHandler for ResultsHandler {
    fn handle<'a>(&'a self, transaction: &'a mut Transaction<'static, Postgres>, record: &'a Record) -> BoxFuture<'a, anyhow::Result<Handled>> {
        Box::pin(self.apply(transaction, record))
    }
}

/// What settling one order writes.
struct Settlement<'a> {
    result: &'a PaymentResultV1,
    order: &'a OrderToSettle,
    head: &'a mut ChainHead,
    journal: JournalWriter,
    outbox: OutboxRows,
    reference: String,
}

impl ResultsHandler {
    async fn apply(&self, transaction: &mut Transaction<'static, Postgres>, record: &Record) -> anyhow::Result<Handled> {
        if record.value.len() > 16 * 1024 {
            return refused("oversized", format!("{} bytes", record.value.len()));
        }
        let header = |name: &str| record.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok());
        let (Some(signature), Some(key_ref)) = (header(SIGNATURE_HEADER), header(SIGNING_KEY_HEADER)) else {
            return refused("missing_signature", "jinfu-signature and jinfu-signing-key headers are required");
        };
        let result: PaymentResultV1 = match serde_json::from_slice(&record.value) {
            Ok(result) => result,
            Err(error) => return refused("malformed_json", error.to_string().replace(char::is_control, "?")),
        };
        if result.schema_version != 1 {
            return refused("unsupported_schema_version", format!("schema_version {}", result.schema_version));
        }
        let Some(order) = store::lock_order(transaction, result.order_id).await? else {
            return refused("unknown_order", format!("no payment order {}", result.order_id));
        };
        let bank = &order.bank;
        if result.bank != *bank {
            return refused("bank_mismatch", format!("order {} was sent to {bank}, not {}", result.order_id, result.bank));
        }
        let presented = key_ref.to_ascii_lowercase();
        let Some(key) = self.keys.get(&presented).filter(|_| presented == order.signing_key_ref) else {
            return refused("unknown_signing_key", format!("{presented:?} is not the key registered for {bank}/{}", order.account_number));
        };
        if let Err(error) = key.verify(&record.value, signature) {
            return refused("bad_signature", error.to_string());
        }
        let outcome = match result.status.as_str() {
            "succeeded" | "failed" => result.status.as_str(),
            other => return refused("bad_field", format!("status {other:?} is neither succeeded nor failed")),
        };
        let effect = if order.status != "ordered" {
            format!("no change: the order is already {}", order.status)
        } else {
            self.settle(transaction, &result, &order, outcome == "succeeded").await?;
            format!("order {outcome}")
        };
        store::insert_payment_result(transaction, result.order_id, &result.bank_serial, outcome, &effect).await?;
        info!(order = %result.order_id, effect = %effect, "payment result applied");
        Ok(Handled::Applied)
    }

    /// Settles an order still `ordered`, in the result's transaction.
    async fn settle(
        &self,
        transaction: &mut Transaction<'static, Postgres>,
        result: &PaymentResultV1,
        order: &OrderToSettle,
        succeeded: bool,
    ) -> anyhow::Result<()> {
        let centres = BTreeSet::from([order.centre_id.as_str()]);
        let mut heads = lock_chain_heads(transaction, &centres).await?;
        let head = heads.get_mut(&order.centre_id).expect("the centre's head is locked");
        let reference = format!("result:{}/{}", order.bank, result.bank_serial);
        let mut settlement = Settlement { result, order, head, journal: JournalWriter::default(), outbox: OutboxRows::default(), reference };
        if order.purpose == "suspense_return" {
            self.settle_return(transaction, &mut settlement, succeeded).await?;
        } else if succeeded {
            self.confirm_refund(transaction, &mut settlement).await?;
        } else {
            self.fail_refund(transaction, &mut settlement).await?;
        }
        let Settlement { journal, outbox, .. } = settlement;
        journal.flush(transaction).await?;
        store_chain_heads(transaction, &heads).await?;
        outbox.insert(transaction).await?;
        Ok(())
    }

    async fn settle_return(&self, transaction: &mut Transaction<'static, Postgres>, settlement: &mut Settlement<'_>, succeeded: bool) -> anyhow::Result<()> {
        let (result, order) = (settlement.result, settlement.order);
        let return_order = ReturnOrder {
            order_id: result.order_id,
            centre_id: order.centre_id.clone(),
            bank: order.bank.clone(),
            account_number: order.account_number.clone(),
            amount_fen: order.principal_fen,
        };
        let (_, sequence) =
            suspense::settle_return(transaction, &mut settlement.journal, settlement.head, &return_order, succeeded, &settlement.reference).await?;
        let reason = result.failure_reason.clone().filter(|_| !succeeded).map(|reason| reason.replace(char::is_control, "?"));
        record_result(transaction, result, if succeeded { "confirmed" } else { "failed" }, sequence, reason.as_deref()).await?;
        let event_type = if succeeded { "suspense.returned" } else { "suspense.return_failed" };
        settlement.outbox.push_event(
            &self.events_topic,
            &result.order_id.to_string(),
            event_type,
            &order.centre_id,
            json!({
                "order_id": result.order_id, "amount_fen": order.principal_fen, "bank_serial": result.bank_serial,
                "failure_reason": reason, "entry_sequence": sequence,
            }),
        );
        Ok(())
    }

    /// The money left the bank: refund-in-transit to the collection account.
    async fn confirm_refund(&self, transaction: &mut Transaction<'static, Postgres>, settlement: &mut Settlement<'_>) -> anyhow::Result<()> {
        let (result, order) = (settlement.result, settlement.order);
        let total = Fen::from_fen(order.principal_fen + order.interest_fen);
        let bank_account = AccountKey::Bank { bank: order.bank.clone(), account_number: order.account_number.clone() };
        let entry = JournalEntry::transfer(EntryKind::RefundConfirmed, AccountKey::RefundInTransit, bank_account, total)?;
        let sequence = settlement.journal.append(settlement.head, &order.centre_id, EntryKind::RefundConfirmed, &settlement.reference, &entry);
        record_result(transaction, result, "confirmed", sequence, None).await?;
        store::settle_if_done(transaction, order.refund_id, result.order_id).await?;
        settlement.outbox.push_event(
            &self.events_topic,
            &order.bidder_uscc,
            "refund.confirmed",
            &order.centre_id,
            json!({
                "section_id": order.section_id, "bidder_uscc": order.bidder_uscc, "order_id": result.order_id,
                "principal_fen": order.principal_fen, "interest_fen": order.interest_fen, "bank_serial": result.bank_serial, "entry_sequence": sequence,
            }),
        );
        Ok(())
    }

    /// The order failed: its entry reversed, and the refund failed for a second attempt.
    async fn fail_refund(&self, transaction: &mut Transaction<'static, Postgres>, settlement: &mut Settlement<'_>) -> anyhow::Result<()> {
        let (result, order) = (settlement.result, settlement.order);
        let (principal, interest) = (order.principal_fen, order.interest_fen);
        let deposit = AccountKey::Deposit { section: order.section_id.clone(), bidder: order.bidder_uscc.clone() };
        let mut postings = vec![
            Posting { account: AccountKey::RefundInTransit, side: Side::Debit, amount: Fen::from_fen(principal + interest) },
            Posting { account: deposit, side: Side::Credit, amount: Fen::from_fen(principal) },
        ];
        if interest > 0 {
            postings.push(Posting { account: AccountKey::InterestExpense, side: Side::Credit, amount: Fen::from_fen(interest) });
        }
        let entry = JournalEntry::new(EntryKind::RefundFailed, postings)?;
        let sequence = settlement.journal.append(settlement.head, &order.centre_id, EntryKind::RefundFailed, &settlement.reference, &entry);
        let reason = result.failure_reason.clone().unwrap_or_else(|| "not given".into()).replace(char::is_control, "?");
        record_result(transaction, result, "failed", sequence, Some(&reason)).await?;
        store::mark_failed(transaction, order.refund_id).await?;
        settlement.outbox.push_event(
            &self.events_topic,
            &order.bidder_uscc,
            "refund.failed",
            &order.centre_id,
            json!({
                "section_id": order.section_id, "bidder_uscc": order.bidder_uscc, "order_id": result.order_id,
                "reason": reason, "entry_sequence": sequence,
            }),
        );
        Ok(())
    }
}

/// Stores a bank's result on its payment order: status, the result's entry, serial and time.
async fn record_result(
    transaction: &mut Transaction<'static, Postgres>,
    result: &PaymentResultV1,
    status: &str,
    sequence: i64,
    failure_reason: Option<&str>,
) -> anyhow::Result<()> {
    let row = OrderResult {
        order_id: result.order_id,
        status,
        result_sequence: sequence,
        bank_serial: &result.bank_serial,
        settled_at: result.settled_at.with_timezone(&Utc),
        failure_reason,
    };
    Ok(store::record_result(transaction, &row).await?)
}
