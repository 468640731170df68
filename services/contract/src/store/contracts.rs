//! Contracts: drafts with their milestones, signatures, disclosure, amendments, termination and
//! acceptances.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::Fen;
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::Tx;
use crate::domain::contracts::{AgreedRate, Milestone, MilestoneTerm, Terms};
use crate::domain::{MilestoneKind, Party, RateKind};

/// A contract as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContractRow {
    pub centre_id: String,
    pub contract_id: String,
    pub section_id: String,
    pub regime: String,
    pub purchaser_uscc: String,
    pub purchaser_name: String,
    pub supplier_uscc: String,
    pub supplier_name: String,
    pub supplier_scale: String,
    pub amount_fen: i64,
    pub awarded_at: DateTime<Utc>,
    /// `None` while pending (its year has no calendar data yet).
    pub sign_by: Option<NaiveDate>,
    pub payment_days: i32,
    pub bank_name: String,
    pub account_no: String,
    pub account_name: String,
    pub performance_form: String,
    pub performance_fen: i64,
    pub quality_form: String,
    pub quality_fen: i64,
    pub rate_kind: String,
    pub rate_annual: Option<String>,
    pub rate_kind_in_force: Option<String>,
    pub status: String,
    pub canonical_text: String,
    pub draft_hash: Vec<u8>,
    pub purchaser_signed_at: Option<DateTime<Utc>>,
    pub supplier_signed_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub publish_by: Option<NaiveDate>,
    pub file_by: Option<NaiveDate>,
    pub published_at: Option<DateTime<Utc>>,
    pub filed_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
    pub termination_reason: Option<String>,
    pub paid_on_termination_fen: Option<i64>,
    /// The lock on the collection account (a loan's reference), when a lender holds it.
    pub account_locked_by: Option<String>,
}

impl ContractRow {
    /// The overdue rate agreed.
    pub fn agreed_rate(&self) -> AgreedRate {
        AgreedRate {
            kind: RateKind::parse(&self.rate_kind).unwrap_or(RateKind::Statutory),
            annual: self.rate_annual.as_deref().and_then(|text| text.parse::<Decimal>().ok()),
        }
    }

    /// The overdue rate that applies (set at signing; the agreed one before).
    pub fn rate_in_force(&self) -> AgreedRate {
        match self.rate_kind_in_force.as_deref().and_then(RateKind::parse) {
            Some(RateKind::Statutory) => AgreedRate::STATUTORY,
            Some(kind) => AgreedRate { kind, ..self.agreed_rate() },
            None => self.agreed_rate(),
        }
    }

    pub fn party_of(&self, uscc: &str) -> Option<Party> {
        if uscc == self.purchaser_uscc {
            Some(Party::Purchaser)
        } else if uscc == self.supplier_uscc {
            Some(Party::Supplier)
        } else {
            None
        }
    }
}

const COLUMNS: &str = "centre_id, contract_id, section_id, regime, purchaser_uscc, purchaser_name, supplier_uscc, supplier_name, supplier_scale, amount_fen,
    awarded_at, sign_by, payment_days, bank_name, account_no, account_name, performance_form, performance_fen, quality_form, quality_fen, rate_kind,
    rate_annual::text AS rate_annual, rate_kind_in_force, status, canonical_text, draft_hash, purchaser_signed_at, supplier_signed_at, signed_at, publish_by,
    file_by, published_at, filed_at, terminated_at, termination_reason, paid_on_termination_fen, account_locked_by";

pub async fn get(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Option<ContractRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM contracts WHERE centre_id = $1 AND contract_id = $2"))
        .bind(centre_id)
        .bind(contract_id)
        .fetch_optional(executor)
        .await
}

/// The contract, locked for the transaction's change.
pub async fn lock(transaction: &mut Tx, centre_id: &str, contract_id: &str) -> sqlx::Result<Option<ContractRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM contracts WHERE centre_id = $1 AND contract_id = $2 FOR UPDATE"))
        .bind(centre_id)
        .bind(contract_id)
        .fetch_optional(&mut **transaction)
        .await
}

/// A centre's contracts, newest award first: all, one section's, or one party's.
pub async fn list(executor: impl PgExecutor<'_>, centre_id: &str, section_id: Option<&str>, party: Option<&str>, limit: i64) -> sqlx::Result<Vec<ContractRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contracts WHERE centre_id = $1 AND ($2::text IS NULL OR section_id = $2)
           AND ($3::text IS NULL OR purchaser_uscc = $3 OR supplier_uscc = $3)
         ORDER BY awarded_at DESC, contract_id LIMIT $4"
    ))
    .bind(centre_id)
    .bind(section_id)
    .bind(party)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Contracts whose clocks may be running (pending or active), for the sweeper.
pub async fn running(executor: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<ContractRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contracts WHERE status = 'pending' OR (status = 'active' AND (published_at IS NULL OR filed_at IS NULL))
            OR status = 'active' AND EXISTS (SELECT 1 FROM acceptances a WHERE a.centre_id = contracts.centre_id AND a.contract_id = contracts.contract_id AND a.recorded_at IS NULL)
         ORDER BY awarded_at LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Stores a draft and its milestones.
pub async fn insert_draft(
    transaction: &mut Tx,
    terms: &Terms,
    sign_by: Option<NaiveDate>,
    draft_hash: &[u8],
    by: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO contracts (centre_id, contract_id, section_id, regime, purchaser_uscc, purchaser_name, supplier_uscc, supplier_name, supplier_scale,
             amount_fen, awarded_at, sign_by, payment_days, bank_name, account_no, account_name, performance_form, performance_fen, quality_form, quality_fen,
             rate_kind, rate_annual, status, canonical_text, draft_hash, drafted_at, drafted_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22::numeric, 'pending', $23, $24, $25, $26)",
    )
    .bind(&terms.centre_id)
    .bind(&terms.contract_id)
    .bind(&terms.section_id)
    .bind(terms.regime.code())
    .bind(&terms.purchaser_uscc)
    .bind(&terms.purchaser_name)
    .bind(&terms.supplier_uscc)
    .bind(&terms.supplier_name)
    .bind(terms.supplier_scale.code())
    .bind(terms.amount.fen())
    .bind(terms.awarded_at)
    .bind(sign_by)
    .bind(i32::try_from(terms.payment_days).unwrap_or(i32::MAX))
    .bind(&terms.collection_account.bank_name)
    .bind(&terms.collection_account.account_no)
    .bind(&terms.collection_account.account_name)
    .bind(terms.performance_security.form.code())
    .bind(terms.performance_security.amount.fen())
    .bind(terms.quality_retention.form.code())
    .bind(terms.quality_retention.amount.fen())
    .bind(terms.overdue_rate.kind.code())
    .bind(terms.overdue_rate.annual.map(|rate| rate.to_string()))
    .bind(terms.canonical_text())
    .bind(draft_hash)
    .bind(now)
    .bind(by)
    .execute(&mut **transaction)
    .await?;
    replace_milestones(transaction, &terms.centre_id, &terms.contract_id, &terms.milestones()).await
}

/// Writes the milestones' amounts (at drafting, and after an amendment).
pub async fn replace_milestones(transaction: &mut Tx, centre_id: &str, contract_id: &str, milestones: &[Milestone]) -> sqlx::Result<()> {
    for milestone in milestones {
        let term = milestone.term;
        sqlx::query(
            "INSERT INTO milestones (centre_id, contract_id, sequence, kind, percent_bp, period_days, working_days, amount_fen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (centre_id, contract_id, sequence) DO UPDATE SET amount_fen = $8",
        )
        .bind(centre_id)
        .bind(contract_id)
        .bind(i32::try_from(milestone.sequence).unwrap_or(i32::MAX))
        .bind(term.kind.code())
        .bind(i32::try_from(term.percent_bp).unwrap_or(i32::MAX))
        .bind(i32::try_from(term.period_days).unwrap_or(i32::MAX))
        .bind(term.working_days)
        .bind(milestone.amount.fen())
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}

/// The contract's milestones in order.
pub async fn milestones(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Vec<Milestone>> {
    let rows: Vec<(i32, String, i32, i32, bool, i64)> = sqlx::query_as(
        "SELECT sequence, kind, percent_bp, period_days, working_days, amount_fen FROM milestones WHERE centre_id = $1 AND contract_id = $2 ORDER BY sequence",
    )
    .bind(centre_id)
    .bind(contract_id)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sequence, kind, percent_bp, period_days, working_days, amount_fen)| Milestone {
            sequence: u32::try_from(sequence).unwrap_or(0),
            term: MilestoneTerm {
                kind: MilestoneKind::parse(&kind).unwrap_or(MilestoneKind::Acceptance),
                percent_bp: u32::try_from(percent_bp).unwrap_or(0),
                period_days: u32::try_from(period_days).unwrap_or(0),
                working_days,
            },
            amount: Fen::from_fen(amount_fen),
        })
        .collect())
}

/// One party's signature.
pub async fn record_signature(
    transaction: &mut Tx,
    contract: &ContractRow,
    party: Party,
    key_ref: &str,
    signature: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let sql = match party {
        Party::Purchaser => {
            "UPDATE contracts SET purchaser_key_ref = $3, purchaser_signature = $4, purchaser_signed_at = $5 WHERE centre_id = $1 AND contract_id = $2"
        }
        Party::Supplier => {
            "UPDATE contracts SET supplier_key_ref = $3, supplier_signature = $4, supplier_signed_at = $5 WHERE centre_id = $1 AND contract_id = $2"
        }
    };
    sqlx::query(sql).bind(&contract.centre_id).bind(&contract.contract_id).bind(key_ref).bind(signature).bind(at).execute(&mut **transaction).await?;
    Ok(())
}

/// Both signed: the contract is active from `signed_at`, its disclosure clocks start and its
/// overdue rate is fixed.
pub async fn activate(
    transaction: &mut Tx,
    contract: &ContractRow,
    signed_at: DateTime<Utc>,
    disclose_by: Option<(NaiveDate, NaiveDate)>,
    rate: RateKind,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contracts SET status = 'active', signed_at = $3, publish_by = $4, file_by = $5, rate_kind_in_force = $6 WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(&contract.centre_id)
    .bind(&contract.contract_id)
    .bind(signed_at)
    .bind(disclose_by.map(|(publish, _)| publish))
    .bind(disclose_by.map(|(_, file)| file))
    .bind(rate.code())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Publication or filing, once; returns whether it was recorded now.
pub async fn record_disclosure(transaction: &mut Tx, contract: &ContractRow, filing: bool, reference: &str, at: DateTime<Utc>) -> sqlx::Result<bool> {
    let sql = if filing {
        "UPDATE contracts SET filed_at = $3, filing_ref = $4 WHERE centre_id = $1 AND contract_id = $2 AND filed_at IS NULL"
    } else {
        "UPDATE contracts SET published_at = $3, publication_ref = $4 WHERE centre_id = $1 AND contract_id = $2 AND published_at IS NULL"
    };
    let done = sqlx::query(sql).bind(&contract.centre_id).bind(&contract.contract_id).bind(at).bind(reference).execute(&mut **transaction).await?;
    Ok(done.rows_affected() == 1)
}

/// An amendment of the amount.
pub async fn amend(transaction: &mut Tx, contract: &ContractRow, new_amount: Fen, reason: &str, by: &str, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO amendments (centre_id, contract_id, sequence, old_amount_fen, new_amount_fen, reason, amended_at, amended_by)
         SELECT $1, $2, coalesce(max(sequence), 0) + 1, $3, $4, $5, $6, $7 FROM amendments WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(&contract.centre_id)
    .bind(&contract.contract_id)
    .bind(contract.amount_fen)
    .bind(new_amount.fen())
    .bind(reason)
    .bind(at)
    .bind(by)
    .execute(&mut **transaction)
    .await?;
    sqlx::query("UPDATE contracts SET amount_fen = $3 WHERE centre_id = $1 AND contract_id = $2")
        .bind(&contract.centre_id)
        .bind(&contract.contract_id)
        .bind(new_amount.fen())
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

/// Amendments as shown: "<date> <amount_fen>: <reason>".
pub async fn amendments(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(DateTime<Utc>, i64, String)> =
        sqlx::query_as("SELECT amended_at, new_amount_fen, reason FROM amendments WHERE centre_id = $1 AND contract_id = $2 ORDER BY sequence")
            .bind(centre_id)
            .bind(contract_id)
            .fetch_all(executor)
            .await?;
    Ok(rows.into_iter().map(|(at, amount, reason)| format!("{} {amount}: {reason}", jinfu_ledger::beijing::date(at))).collect())
}

pub async fn terminate(transaction: &mut Tx, contract: &ContractRow, reason: &str, paid: Fen, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contracts SET status = 'terminated', terminated_at = $3, termination_reason = $4, paid_on_termination_fen = $5 WHERE centre_id = $1 AND contract_id = $2",
    )
    .bind(&contract.centre_id)
    .bind(&contract.contract_id)
    .bind(at)
    .bind(reason)
    .bind(paid.fen())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// An acceptance as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AcceptanceRow {
    pub milestone: i32,
    pub requested_at: DateTime<Utc>,
    /// `None` while pending (its year has no calendar data yet).
    pub organise_by: Option<NaiveDate>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub passed: Option<bool>,
    pub note: Option<String>,
    pub settlement_amount_fen: Option<i64>,
}

pub async fn acceptances(executor: impl PgExecutor<'_>, centre_id: &str, contract_id: &str) -> sqlx::Result<Vec<AcceptanceRow>> {
    sqlx::query_as(
        "SELECT milestone, requested_at, organise_by, recorded_at, passed, note, settlement_amount_fen FROM acceptances
         WHERE centre_id = $1 AND contract_id = $2 ORDER BY milestone",
    )
    .bind(centre_id)
    .bind(contract_id)
    .fetch_all(executor)
    .await
}

/// Records a request for acceptance once (a repeat changes nothing), or again after a failed
/// acceptance (the supplier delivered again: a new period); `true` when it was recorded now.
pub async fn request_acceptance(
    transaction: &mut Tx,
    centre_id: &str,
    contract_id: &str,
    milestone: u32,
    at: DateTime<Utc>,
    organise_by: Option<NaiveDate>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO acceptances (centre_id, contract_id, milestone, requested_at, organise_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (centre_id, contract_id, milestone) DO UPDATE
         SET requested_at = $4, organise_by = $5, recorded_at = NULL, passed = NULL, note = NULL, settlement_amount_fen = NULL
         WHERE acceptances.passed = false",
    )
    .bind(centre_id)
    .bind(contract_id)
    .bind(i32::try_from(milestone).unwrap_or(i32::MAX))
    .bind(at)
    .bind(organise_by)
    .execute(&mut **transaction)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The result of an acceptance.
pub struct AcceptanceResult<'a> {
    pub milestone: u32,
    pub passed: bool,
    pub note: &'a str,
    pub settlement: Option<Fen>,
    pub at: DateTime<Utc>,
}

pub async fn record_acceptance(transaction: &mut Tx, centre_id: &str, contract_id: &str, result: &AcceptanceResult<'_>) -> sqlx::Result<()> {
    let milestone = i32::try_from(result.milestone).unwrap_or(i32::MAX);
    sqlx::query("UPDATE acceptances SET recorded_at = $4, passed = $5, note = $6, settlement_amount_fen = $7 WHERE centre_id = $1 AND contract_id = $2 AND milestone = $3")
        .bind(centre_id)
        .bind(contract_id)
        .bind(milestone)
        .bind(result.at)
        .bind(result.passed)
        .bind(result.note)
        .bind(result.settlement.map(Fen::fen))
        .execute(&mut **transaction)
        .await?;
    if let Some(settlement) = result.settlement {
        sqlx::query("UPDATE milestones SET amount_fen = $4 WHERE centre_id = $1 AND contract_id = $2 AND sequence = $3")
            .bind(centre_id)
            .bind(contract_id)
            .bind(milestone)
            .bind(settlement.fen())
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}
