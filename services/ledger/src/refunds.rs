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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use futures::future::BoxFuture;
use jinfu_ledger::interest::{interest_exact_fen, round_half_up};
use jinfu_ledger::{AccountKey, EntryKind, Fen, JournalEntry, Posting, Side};
use jinfu_platform::signing::{SigningKey, VerifyingKey};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::{info, warn};
use uuid::Uuid;

use crate::consumer::{refused, Handled, RecordHandler};
use crate::ingest::Record;
use crate::journal::{lock_chain_heads, store_chain_heads, JournalWriter};
use crate::notice::{SIGNATURE_HEADER, SIGNING_KEY_HEADER};
use crate::outbox::{trace_headers, OutboxRows};
use crate::settings::{OrderSigningSettings, Settings};
use crate::suspense::{self, ReturnOrder};
use crate::trading::china_date;

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
pub async fn run_refunds(pool: PgPool, settings: Settings, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let Some(signing) = &settings.refunds.signing else {
        warn!("no payment-order signing key configured (refunds.signing): refunds are scheduled but not ordered");
        let _ = shutdown.changed().await;
        return Ok(());
    };
    let signer = OrderSigner::from_settings(signing)?;
    let orders_topic = settings.kafka.topic("bank.payment-orders");
    let events_topic = settings.kafka.topic("ledger.events");
    loop {
        if let Err(error) = report_stale(&pool, &events_topic, Utc::now()).await {
            warn!(error = %error, "reporting stale deposits failed; retrying next round");
        }
        match order_due_refunds(&pool, &signer, &orders_topic, &events_topic, Utc::now()).await {
            Ok(0) => {}
            Ok(count) => info!(count, "refunds handled"),
            Err(error) => warn!(error = %error, "ordering refunds failed; retrying next round"),
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(Duration::from_millis(settings.refunds.poll_ms)) => {},
        }
    }
    Ok(())
}

/// Publishes `deposit.stale` once for every refund past its due date whose money is still held
/// (滞留保证金). Returns how many became stale.
pub async fn report_stale(pool: &PgPool, events_topic: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let rows = sqlx::query(
        "UPDATE refunds SET stale_reported_at = $2
         WHERE stale_reported_at IS NULL AND due_on < $1 AND status IN ('scheduled', 'ordered', 'failed')
         RETURNING centre_id, section_id, bidder_uscc, due_on, status",
    )
    .bind(china_date(now))
    .bind(now)
    .fetch_all(&mut *transaction)
    .await?;
    let mut outbox = OutboxRows::default();
    for row in &rows {
        let (centre_id, section_id, bidder_uscc): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        warn!(centre = %centre_id, section = %section_id, bidder = %bidder_uscc, "deposit is stale: held past its refund due date");
        outbox.push_event(events_topic, &bidder_uscc, "deposit.stale", &centre_id, json!({
            "section_id": section_id, "bidder_uscc": bidder_uscc, "due_on": row.get::<NaiveDate, _>(3), "refund_status": row.get::<String, _>(4),
        }));
    }
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(rows.len())
}

struct DueRefund {
    refund_id: Uuid,
    centre_id: String,
    section_id: String,
    bidder_uscc: String,
}

/// One paying account's share of a deposit: what it paid and the interest it earned.
struct Share {
    payee_name: String,
    principal: Fen,
    interest_exact: Decimal,
}

/// Orders (or forfeits) every scheduled refund whose hold has passed. Returns how many.
pub async fn order_due_refunds(pool: &PgPool, signer: &OrderSigner, orders_topic: &str, events_topic: &str, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut transaction = pool.begin().await?;
    let due: Vec<DueRefund> = sqlx::query(
        "SELECT refund_id, centre_id, section_id, bidder_uscc FROM refunds
         WHERE status = 'scheduled' AND order_after <= $1 ORDER BY order_after, refund_id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(REFUNDS_PER_ROUND_MAX)
    .fetch_all(&mut *transaction)
    .await?
    .iter()
    .map(|row| DueRefund { refund_id: row.get(0), centre_id: row.get(1), section_id: row.get(2), bidder_uscc: row.get(3) })
    .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let centres: BTreeSet<&str> = due.iter().map(|refund| refund.centre_id.as_str()).collect();
    let mut heads = lock_chain_heads(&mut transaction, &centres).await?;
    let mut journal = JournalWriter::default();
    let mut outbox = OutboxRows::default();
    let refund_date = china_date(now);
    // Money already promised from each collection account by orders not yet settled.
    let mut reserved: HashMap<(String, String), i64> = HashMap::new();

    for refund in &due {
        let head = heads.get_mut(&refund.centre_id).expect("heads are locked for every centre with due refunds");
        let deposit = AccountKey::Deposit { section: refund.section_id.clone(), bidder: refund.bidder_uscc.clone() };
        let held: i64 = sqlx::query_scalar("SELECT balance_fen FROM accounts WHERE centre_id = $1 AND account = $2")
            .bind(&refund.centre_id)
            .bind(deposit.to_string())
            .fetch_optional(&mut *transaction)
            .await?
            .unwrap_or(0);
        let forfeiture: Option<String> = sqlx::query_scalar(
            "SELECT reason FROM forfeiture_marks WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3",
        )
        .bind(&refund.centre_id)
        .bind(&refund.section_id)
        .bind(&refund.bidder_uscc)
        .fetch_optional(&mut *transaction)
        .await?;
        if held == 0 {
            set_status(&mut transaction, refund.refund_id, "nothing_held").await?;
            continue;
        }
        if let Some(reason) = forfeiture {
            let forfeited = AccountKey::Forfeited { section: refund.section_id.clone() };
            let entry = JournalEntry::transfer(EntryKind::DepositForfeited, deposit.clone(), forfeited, Fen::from_fen(held))?;
            let sequence = journal.append(head, &refund.centre_id, EntryKind::DepositForfeited, &format!("refund:{}", refund.refund_id), &entry);
            set_status(&mut transaction, refund.refund_id, "forfeited").await?;
            let data = json!({
                "section_id": refund.section_id, "bidder_uscc": refund.bidder_uscc, "amount_fen": held, "reason": reason, "entry_sequence": sequence,
            });
            outbox.push_event(events_topic, &refund.bidder_uscc, "deposit.forfeited", &refund.centre_id, data);
            continue;
        }

        let notices = sqlx::query(
            "SELECT amount_fen, payer_account, payer_name, value_time, bank, account_number, bank_serial FROM credit_notices
             WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3 AND outcome IN ('matched', 'short', 'over')
             UNION ALL
             SELECT n.amount_fen, n.payer_account, n.payer_name, n.value_time, n.bank, n.account_number, n.bank_serial
             FROM suspense_resolutions r JOIN credit_notices n USING (bank, bank_serial)
             WHERE r.centre_id = $1 AND r.section_id = $2 AND r.bidder_uscc = $3 AND r.status = 'bound'
             ORDER BY 4, 5, 7",
        )
        .bind(&refund.centre_id)
        .bind(&refund.section_id)
        .bind(&refund.bidder_uscc)
        .fetch_all(&mut *transaction)
        .await?;
        // Paying accounts already refunded by a confirmed order of this refund are done; a
        // second attempt pays the rest.
        let confirmed: BTreeSet<String> = sqlx::query_scalar(
            "SELECT payee_account FROM payment_orders WHERE refund_id = $1 AND status = 'confirmed'",
        )
        .bind(refund.refund_id)
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .collect();
        let remaining: Vec<&sqlx::postgres::PgRow> = notices.iter().filter(|row| !confirmed.contains(&row.get::<String, _>(1))).collect();
        let paid: i64 = remaining.iter().map(|row| row.get::<i64, _>(0)).sum();
        if paid != held || remaining.is_empty() {
            warn!(refund = %refund.refund_id, paid, held, "deposit balance differs from the transfers still to refund; refund left scheduled for an operator");
            continue;
        }
        // An approved correction (second refund) redirects what remains to the corrected account.
        let correction = sqlx::query(
            "SELECT c.payee_account, c.payee_name FROM refund_corrections c
             WHERE c.refund_id = $1 AND c.status = 'approved'
               AND c.approved_at > coalesce((SELECT max(settled_at) FROM payment_orders WHERE refund_id = $1 AND status = 'failed'), '-infinity')
             ORDER BY c.approved_at DESC LIMIT 1",
        )
        .bind(refund.refund_id)
        .fetch_optional(&mut *transaction)
        .await?
        .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)));
        let (bank, account_number): (String, String) = (remaining[0].get(4), remaining[0].get(5));
        let rates: Vec<(NaiveDate, Decimal)> = sqlx::query(
            "SELECT effective_from, annual_rate::text FROM bank_account_rates WHERE bank = $1 AND account_number = $2 ORDER BY effective_from",
        )
        .bind(&bank)
        .bind(&account_number)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(|row| (row.get::<NaiveDate, _>(0), row.get::<String, _>(1).parse::<Decimal>().unwrap_or_default()))
        .collect();
        let mut shares: BTreeMap<String, Share> = BTreeMap::new();
        for row in &remaining {
            let amount = Fen::from_fen(row.get(0));
            let value_date = china_date(row.get::<DateTime<Utc>, _>(3));
            let exact = interest_exact_fen(amount, &rates, value_date, refund_date.max(value_date))?;
            let (payee_account, payee_name) = correction.clone().unwrap_or_else(|| (row.get(1), row.get(2)));
            let share = shares.entry(payee_account).or_insert_with(|| Share { payee_name, principal: Fen::ZERO, interest_exact: Decimal::ZERO });
            share.principal = share.principal + amount;
            share.interest_exact += exact;
        }
        let mut orders = Vec::new();
        for (payee_account, share) in &shares {
            orders.push((payee_account.clone(), share.payee_name.clone(), share.principal, round_half_up(share.interest_exact)?));
        }
        // The collection account must cover what it is asked to pay, counting unsettled orders.
        let bank_key = (bank.clone(), account_number.clone());
        if !reserved.contains_key(&bank_key) {
            let outstanding: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(principal_fen + interest_fen), 0)::int8 FROM payment_orders WHERE bank = $1 AND account_number = $2 AND status = 'ordered'",
            )
            .bind(&bank)
            .bind(&account_number)
            .fetch_one(&mut *transaction)
            .await?;
            reserved.insert(bank_key.clone(), outstanding);
        }
        let bank_balance: i64 = sqlx::query_scalar("SELECT balance_fen FROM accounts WHERE centre_id = $1 AND account = $2")
            .bind(&refund.centre_id)
            .bind(format!("bank:{bank}:{account_number}"))
            .fetch_optional(&mut *transaction)
            .await?
            .unwrap_or(0);
        let needed: i64 = orders.iter().map(|(_, _, principal, interest)| principal.fen() + interest.fen()).sum();
        let already = reserved.get(&bank_key).copied().unwrap_or(0);
        if bank_balance - already < needed {
            warn!(refund = %refund.refund_id, bank_balance, already, needed, "collection account cannot cover principal and interest (interest income not yet recorded?); refund left scheduled");
            continue;
        }
        reserved.insert(bank_key, already + needed);

        for (payee_account, payee_name, principal, interest) in orders {
            let order_id = Uuid::now_v7();
            let total = principal + interest;
            let mut postings = vec![Posting { account: deposit.clone(), side: Side::Debit, amount: principal }];
            if interest.is_positive() {
                postings.push(Posting { account: AccountKey::InterestExpense, side: Side::Debit, amount: interest });
            }
            postings.push(Posting { account: AccountKey::RefundInTransit, side: Side::Credit, amount: total });
            let entry = JournalEntry::new(EntryKind::RefundOrdered, postings)?;
            let sequence = journal.append(head, &refund.centre_id, EntryKind::RefundOrdered, &format!("order:{order_id}"), &entry);
            sqlx::query(
                "INSERT INTO payment_orders (order_id, refund_id, centre_id, bank, account_number, payee_account, payee_name,
                     principal_fen, interest_fen, refund_date, status, order_sequence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'ordered', $11)",
            )
            .bind(order_id)
            .bind(refund.refund_id)
            .bind(&refund.centre_id)
            .bind(&bank)
            .bind(&account_number)
            .bind(&payee_account)
            .bind(&payee_name)
            .bind(principal.fen())
            .bind(interest.fen())
            .bind(refund_date)
            .bind(sequence)
            .execute(&mut *transaction)
            .await?;
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
                "ordered_at": now.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8")).to_rfc3339(),
            }))?;
            let mut headers = trace_headers();
            headers.push((SIGNATURE_HEADER.into(), signer.key.sign(&order).into_bytes()));
            headers.push((SIGNING_KEY_HEADER.into(), signer.key_ref.clone().into_bytes()));
            outbox.push(orders_topic, &order_id.to_string(), order, &headers);
            let data = json!({
                "section_id": refund.section_id, "bidder_uscc": refund.bidder_uscc, "order_id": order_id,
                "principal_fen": principal.fen(), "interest_fen": interest.fen(), "payee_account": payee_account, "entry_sequence": sequence,
            });
            outbox.push_event(events_topic, &refund.bidder_uscc, "refund.ordered", &refund.centre_id, data);
        }
        set_status(&mut transaction, refund.refund_id, "ordered").await?;
    }
    journal.flush(&mut transaction).await?;
    store_chain_heads(&mut transaction, &heads).await?;
    outbox.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(due.len())
}

async fn set_status(transaction: &mut Transaction<'_, Postgres>, refund_id: Uuid, status: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE refunds SET status = $2, updated_at = now() WHERE refund_id = $1")
        .bind(refund_id)
        .bind(status)
        .execute(&mut **transaction)
        .await?;
    Ok(())
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

/// Stores a bank's result on its payment order: status, the result's entry, serial and time.
async fn record_result(
    transaction: &mut Transaction<'static, Postgres>,
    result: &PaymentResultV1,
    status: &str,
    sequence: i64,
    failure_reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE payment_orders SET status = $2, result_sequence = $3, result_serial = $4, settled_at = $5, failure_reason = $6 WHERE order_id = $1")
        .bind(result.order_id)
        .bind(status)
        .bind(sequence)
        .bind(&result.bank_serial)
        .bind(result.settled_at.with_timezone(&Utc))
        .bind(failure_reason)
        .execute(&mut **transaction)
        .await?;
    Ok(())
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
        let order = sqlx::query(
            "SELECT o.refund_id, o.centre_id, o.bank, o.account_number, o.principal_fen, o.interest_fen, o.status,
                    coalesce(r.section_id, ''), coalesce(r.bidder_uscc, ''), a.signing_key_ref, o.purpose
             FROM payment_orders o LEFT JOIN refunds r USING (refund_id)
             JOIN bank_accounts a ON a.bank = o.bank AND a.account_number = o.account_number
             WHERE o.order_id = $1 FOR UPDATE OF o",
        )
        .bind(result.order_id)
        .fetch_optional(&mut **transaction)
        .await?;
        let Some(order) = order else {
            return refused("unknown_order", format!("no payment order {}", result.order_id));
        };
        let (refund_id, centre_id, bank, account_number): (Option<Uuid>, String, String, String) = (order.get(0), order.get(1), order.get(2), order.get(3));
        let purpose: String = order.get(10);
        let (principal, interest, status): (i64, i64, String) = (order.get(4), order.get(5), order.get(6));
        let (section_id, bidder_uscc, registered_key): (String, String, String) = (order.get(7), order.get(8), order.get(9));
        if result.bank != bank {
            return refused("bank_mismatch", format!("order {} was sent to {bank}, not {}", result.order_id, result.bank));
        }
        let presented = key_ref.to_ascii_lowercase();
        let Some(key) = self.keys.get(&presented).filter(|_| presented == registered_key) else {
            return refused("unknown_signing_key", format!("{presented:?} is not the key registered for {bank}/{account_number}"));
        };
        if let Err(error) = key.verify(&record.value, signature) {
            return refused("bad_signature", error.to_string());
        }
        let outcome = match result.status.as_str() {
            "succeeded" | "failed" => result.status.as_str(),
            other => return refused("bad_field", format!("status {other:?} is neither succeeded nor failed")),
        };
        let effect = if status != "ordered" {
            format!("no change: the order is already {status}")
        } else {
            let centres = BTreeSet::from([centre_id.as_str()]);
            let mut heads = lock_chain_heads(transaction, &centres).await?;
            let head = heads.get_mut(&centre_id).expect("the centre's head is locked");
            let mut journal = JournalWriter::default();
            let total = Fen::from_fen(principal + interest);
            let reference = format!("result:{}/{}", bank, result.bank_serial);
            let mut outbox = OutboxRows::default();
            if purpose == "suspense_return" {
                let return_order = ReturnOrder { order_id: result.order_id, centre_id: centre_id.clone(), bank: bank.clone(), account_number: account_number.clone(), amount_fen: principal };
                let succeeded = outcome == "succeeded";
                let (_, sequence) = suspense::settle_return(transaction, &mut journal, head, &return_order, succeeded, &reference).await?;
                let reason = result.failure_reason.clone().filter(|_| !succeeded).map(|reason| reason.replace(char::is_control, "?"));
                record_result(transaction, &result, if succeeded { "confirmed" } else { "failed" }, sequence, reason.as_deref()).await?;
                let event_type = if succeeded { "suspense.returned" } else { "suspense.return_failed" };
                outbox.push_event(&self.events_topic, &result.order_id.to_string(), event_type, &centre_id, json!({
                    "order_id": result.order_id, "amount_fen": principal, "bank_serial": result.bank_serial,
                    "failure_reason": reason, "entry_sequence": sequence,
                }));
            } else if outcome == "succeeded" {
                let bank_account = AccountKey::Bank { bank: bank.clone(), account_number: account_number.clone() };
                let entry = JournalEntry::transfer(EntryKind::RefundConfirmed, AccountKey::RefundInTransit, bank_account, total)?;
                let sequence = journal.append(head, &centre_id, EntryKind::RefundConfirmed, &reference, &entry);
                record_result(transaction, &result, "confirmed", sequence, None).await?;
                // Settled when nothing is in flight and the deposit is empty (a failed sibling
                // order keeps the refund failed until its second attempt is paid).
                sqlx::query(
                    "UPDATE refunds SET status = 'settled', updated_at = now() WHERE refund_id = $1
                       AND NOT EXISTS (SELECT 1 FROM payment_orders WHERE refund_id = $1 AND status = 'ordered' AND order_id <> $2)
                       AND NOT EXISTS (SELECT 1 FROM payment_orders WHERE refund_id = $1 AND status = 'failed'
                                         AND NOT EXISTS (SELECT 1 FROM payment_orders later WHERE later.refund_id = $1
                                                           AND later.status = 'confirmed' AND later.ordered_at > payment_orders.settled_at))",
                )
                .bind(refund_id)
                .bind(result.order_id)
                .execute(&mut **transaction)
                .await?;
                outbox.push_event(&self.events_topic, &bidder_uscc, "refund.confirmed", &centre_id, json!({
                    "section_id": section_id, "bidder_uscc": bidder_uscc, "order_id": result.order_id,
                    "principal_fen": principal, "interest_fen": interest, "bank_serial": result.bank_serial, "entry_sequence": sequence,
                }));
            } else {
                let deposit = AccountKey::Deposit { section: section_id.clone(), bidder: bidder_uscc.clone() };
                let mut postings = vec![
                    Posting { account: AccountKey::RefundInTransit, side: Side::Debit, amount: total },
                    Posting { account: deposit, side: Side::Credit, amount: Fen::from_fen(principal) },
                ];
                if interest > 0 {
                    postings.push(Posting { account: AccountKey::InterestExpense, side: Side::Credit, amount: Fen::from_fen(interest) });
                }
                let entry = JournalEntry::new(EntryKind::RefundFailed, postings)?;
                let sequence = journal.append(head, &centre_id, EntryKind::RefundFailed, &reference, &entry);
                let reason = result.failure_reason.clone().unwrap_or_else(|| "not given".into()).replace(char::is_control, "?");
                record_result(transaction, &result, "failed", sequence, Some(&reason)).await?;
                sqlx::query("UPDATE refunds SET status = 'failed', updated_at = now() WHERE refund_id = $1")
                    .bind(refund_id)
                    .execute(&mut **transaction)
                    .await?;
                outbox.push_event(&self.events_topic, &bidder_uscc, "refund.failed", &centre_id, json!({
                    "section_id": section_id, "bidder_uscc": bidder_uscc, "order_id": result.order_id,
                    "reason": reason, "entry_sequence": sequence,
                }));
            }
            journal.flush(transaction).await?;
            store_chain_heads(transaction, &heads).await?;
            outbox.insert(transaction).await?;
            format!("order {outcome}")
        };
        sqlx::query("INSERT INTO payment_results (order_id, bank_serial, status, effect) VALUES ($1, $2, $3, $4)")
            .bind(result.order_id)
            .bind(&result.bank_serial)
            .bind(outcome)
            .bind(&effect)
            .execute(&mut **transaction)
            .await?;
        info!(order = %result.order_id, effect = %effect, "payment result applied");
        Ok(Handled::Applied)
    }
}
