//! The ledger's gRPC API (proto/jinfu/ledger/v1/ledger.proto). Every handler authorises the
//! caller's role and centre before touching data, and scopes every query to that centre.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use jinfu_ledger::ids::{sub_account_number, CentreCode, Uscc};
use jinfu_ledger::matching::DepositProgress;
use jinfu_ledger::{AccountKey, Fen};
use jinfu_platform::auth::{Caller, Role};
use jinfu_proto::ledger::v1 as pb;
use jinfu_proto::ledger::v1::ledger_service_server::LedgerService;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use tonic::{Request, Response, Status};

pub struct LedgerApi {
    /// The ledger's pool; its search path is the `ledger` schema.
    pub pool: PgPool,
    /// Applies tender events submitted by call, exactly as the topic consumer does.
    pub trading: std::sync::Arc<crate::trading::TradingHandler>,
    /// Configured bank key references, so an account cannot be registered with a key that
    /// would make every one of its notices fail verification.
    pub known_key_refs: Vec<String>,
    /// Signs payment orders for suspense returns; `None` when no key is configured.
    pub signer: Option<std::sync::Arc<crate::refunds::OrderSigner>>,
    pub events_topic: String,
    pub orders_topic: String,
}

fn resolve_error(error: crate::suspense::ResolveError) -> Status {
    use crate::suspense::ResolveError;
    match error {
        ResolveError::NotFound(message) => Status::not_found(message),
        ResolveError::FailedPrecondition(message) => Status::failed_precondition(message),
        ResolveError::Internal(error) => {
            tracing::error!(error = %error, "resolving a suspense item failed");
            Status::internal("internal error")
        }
    }
}

fn resolution_message(resolution: crate::suspense::Resolution) -> pb::SuspenseResolution {
    pb::SuspenseResolution {
        resolution_id: resolution.resolution_id.to_string(),
        bank: resolution.bank,
        bank_serial: resolution.bank_serial,
        action: resolution.action,
        status: resolution.status,
        amount_fen: resolution.amount_fen,
        sub_account_number: resolution.sub_account_number.unwrap_or_default(),
        section_id: resolution.section_id.unwrap_or_default(),
        bidder_uscc: resolution.bidder_uscc.unwrap_or_default(),
        order_id: resolution.order_id.map(|id| id.to_string()).unwrap_or_default(),
        entry_sequence: resolution.entry_sequence,
        decided_by: resolution.decided_by,
        reason: resolution.reason,
        decided_at: Some(timestamp(resolution.decided_at)),
    }
}

fn report_message(report: crate::statements::Report, lines: Vec<crate::statements::ReportLine>) -> pb::ReconciliationReport {
    pb::ReconciliationReport {
        statement_id: report.statement_id,
        bank: report.bank,
        account_number: report.account_number,
        centre_id: report.centre_id,
        statement_date: report.statement_date.to_string(),
        status: report.status,
        line_count: report.line_count,
        credits_fen: report.credits_fen,
        debits_fen: report.debits_fen,
        bank_opening_fen: report.bank_opening_fen,
        bank_closing_fen: report.bank_closing_fen,
        ledger_opening_fen: report.ledger_opening_fen,
        ledger_closing_fen: report.ledger_closing_fen,
        late_notified: report.late_notified,
        discrepancy_count: report.discrepancies,
        first_part_at: Some(timestamp(report.first_part_at)),
        reconciled_at: Some(timestamp(report.reconciled_at)),
        reconcile_ms: report.reconcile_ms,
        discrepancies: lines
            .into_iter()
            .map(|(kind, serial, amount, detail)| pb::Discrepancy { kind, bank_serial: serial.unwrap_or_default(), amount_fen: amount.unwrap_or(0), detail })
            .collect(),
    }
}

fn decision_reason(text: &str) -> Result<&str, Status> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 1000 {
        return Err(invalid("reason must be 1–1000 characters"));
    }
    Ok(trimmed)
}

fn internal(error: sqlx::Error) -> Status {
    tracing::error!(error = %error, "database error in a gRPC handler");
    Status::internal("database error")
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0) }
}

fn from_timestamp(field: &str, value: Option<prost_types::Timestamp>) -> Result<DateTime<Utc>, Status> {
    let value = value.ok_or_else(|| invalid(format!("{field} is required")))?;
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).unwrap_or(0))
        .ok_or_else(|| invalid(format!("{field} is out of range")))
}

fn centre(text: &str) -> Result<CentreCode, Status> {
    CentreCode::parse(text).map_err(|error| invalid(error.to_string()))
}

fn required_text<'a>(field: &str, text: &'a str) -> Result<&'a str, Status> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 256 || trimmed.contains(':') {
        return Err(invalid(format!("{field} must be 1–256 characters without ':'")));
    }
    Ok(trimmed)
}

const STAFF: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn register_centre(&self, request: Request<pb::RegisterCentreRequest>) -> Result<Response<pb::RegisterCentreResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Admin], code.as_str())?;
        let name = required_text("name", &body.name)?;
        let parent = if body.parent_centre_id.is_empty() { None } else { Some(centre(&body.parent_centre_id)?) };
        if body.refund_period_days.is_some_and(|days| !(1..=60).contains(&days)) {
            return Err(invalid("refund_period_days must be 1–60"));
        }
        if body.refund_hold_working_days.is_some_and(|days| !(0..=10).contains(&days)) {
            return Err(invalid("refund_hold_working_days must be 0–10"));
        }
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let existing = sqlx::query("SELECT name, parent_centre_id FROM centres WHERE centre_id = $1")
            .bind(code.as_str())
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        if let Some(row) = existing {
            let same = row.get::<String, _>(0) == name && row.get::<Option<String>, _>(1).as_deref() == parent.as_ref().map(CentreCode::as_str);
            return if same {
                set_refund_rules(&mut transaction, code.as_str(), &body).await?;
                transaction.commit().await.map_err(internal)?;
                Ok(Response::new(pb::RegisterCentreResponse { created: false }))
            } else {
                Err(Status::already_exists(format!("centre {code} is registered with another name or parent")))
            };
        }
        if let Some(parent) = &parent {
            let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1")
                .bind(parent.as_str())
                .fetch_optional(&mut *transaction)
                .await
                .map_err(internal)?;
            if known.is_none() {
                return Err(Status::failed_precondition(format!("parent centre {parent} is not registered")));
            }
        }
        sqlx::query("INSERT INTO centres (centre_id, name, parent_centre_id) VALUES ($1, $2, $3)")
            .bind(code.as_str())
            .bind(name)
            .bind(parent.as_ref().map(CentreCode::as_str))
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        sqlx::query("INSERT INTO chain_heads (centre_id, last_sequence, last_hash) VALUES ($1, 0, $2)")
            .bind(code.as_str())
            .bind(jinfu_ledger::chain::GENESIS_HASH.to_vec())
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        set_refund_rules(&mut transaction, code.as_str(), &body).await?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(pb::RegisterCentreResponse { created: true }))
    }

    async fn register_bank_account(&self, request: Request<pb::RegisterBankAccountRequest>) -> Result<Response<pb::RegisterBankAccountResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Admin], code.as_str())?;
        let bank = required_text("bank", &body.bank)?;
        let number = required_text("account_number", &body.account_number)?;
        let key_ref = required_text("signing_key_ref", &body.signing_key_ref)?.to_ascii_lowercase();
        if !self.known_key_refs.contains(&key_ref) {
            return Err(Status::failed_precondition(format!(
                "signing key {key_ref:?} is not configured on the ledger (banks.{key_ref}.scheme / public_key)"
            )));
        }
        let rate = Decimal::from_str(body.demand_deposit_rate.trim())
            .ok()
            .filter(|rate| *rate >= Decimal::ZERO && *rate < Decimal::ONE)
            .ok_or_else(|| invalid("demand_deposit_rate must be a decimal fraction in [0, 1), e.g. \"0.0010\""))?;
        let result = sqlx::query(
            "INSERT INTO bank_accounts (bank, account_number, centre_id, signing_key_ref, demand_deposit_rate)
             VALUES ($1, $2, $3, $4, $5::numeric)
             ON CONFLICT (bank, account_number) DO UPDATE SET signing_key_ref = EXCLUDED.signing_key_ref,
                 demand_deposit_rate = EXCLUDED.demand_deposit_rate
             WHERE bank_accounts.centre_id = EXCLUDED.centre_id
             RETURNING (xmax = 0)",
        )
        .bind(bank)
        .bind(number)
        .bind(code.as_str())
        .bind(&key_ref)
        .bind(rate.to_string())
        .fetch_optional(&self.pool)
        .await;
        match result {
            Ok(Some(row)) => {
                sqlx::query(
                    "INSERT INTO bank_account_rates (bank, account_number, effective_from, annual_rate)
                     VALUES ($1, $2, DATE '2000-01-01', $3::numeric)
                     ON CONFLICT (bank, account_number, effective_from) DO UPDATE SET annual_rate = EXCLUDED.annual_rate",
                )
                .bind(bank)
                .bind(number)
                .bind(rate.to_string())
                .execute(&self.pool)
                .await
                .map_err(internal)?;
                Ok(Response::new(pb::RegisterBankAccountResponse { created: row.get(0) }))
            }
            Ok(None) => Err(Status::already_exists(format!("account {bank}/{number} belongs to another centre"))),
            Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
                Err(Status::failed_precondition(format!("centre {code} is not registered")))
            }
            Err(error) => Err(internal(error)),
        }
    }

    async fn create_section(&self, request: Request<pb::CreateSectionRequest>) -> Result<Response<pb::CreateSectionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        caller.authorize(&[Role::Operator, Role::Admin], code.as_str())?;
        let section = required_text("section_id", &body.section_id)?;
        let name = required_text("name", &body.name)?;
        let regime = match pb::Regime::try_from(body.regime) {
            Ok(pb::Regime::Engineering) => "engineering",
            Ok(pb::Regime::Procurement) => "procurement",
            _ => return Err(invalid("regime must be REGIME_ENGINEERING or REGIME_PROCUREMENT")),
        };
        if body.required_deposit_fen <= 0 || body.required_deposit_fen > jinfu_ledger::money::AMOUNT_FEN_MAX {
            return Err(invalid("required_deposit_fen must be positive"));
        }
        let deadline = from_timestamp("deposit_deadline", body.deposit_deadline)?;
        let opening = from_timestamp("bid_opening_time", body.bid_opening_time)?;
        if opening < deadline {
            return Err(invalid("bid_opening_time must not be before deposit_deadline"));
        }
        let account_centre: Option<String> = sqlx::query_scalar("SELECT centre_id FROM bank_accounts WHERE bank = $1 AND account_number = $2")
            .bind(&body.bank)
            .bind(&body.account_number)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        if account_centre.as_deref() != Some(code.as_str()) {
            return Err(Status::failed_precondition(format!(
                "collection account {}/{} is not registered for centre {code}",
                body.bank, body.account_number
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO sections (centre_id, section_id, name, regime, required_deposit_fen, deposit_deadline,
                 bid_opening_time, bank, account_number, basic_account_required)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(code.as_str())
        .bind(section)
        .bind(name)
        .bind(regime)
        .bind(body.required_deposit_fen)
        .bind(deadline)
        .bind(opening)
        .bind(&body.bank)
        .bind(&body.account_number)
        .bind(body.basic_account_required)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        if inserted.rows_affected() == 0 {
            return Err(Status::already_exists(format!("section {section} already exists in centre {code}")));
        }
        Ok(Response::new(pb::CreateSectionResponse { created: true }))
    }

    async fn close_section(&self, request: Request<pb::CloseSectionRequest>) -> Result<Response<pb::CloseSectionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator, Role::Admin], &body.centre_id)?;
        let reason = required_text("reason", &body.reason)?;
        let updated = sqlx::query("UPDATE sections SET open = false, closed_reason = $3 WHERE centre_id = $1 AND section_id = $2")
            .bind(&body.centre_id)
            .bind(&body.section_id)
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        if updated.rows_affected() == 0 {
            return Err(Status::not_found(format!("section {} not found in centre {}", body.section_id, body.centre_id)));
        }
        Ok(Response::new(pb::CloseSectionResponse {}))
    }

    async fn open_sub_account(&self, request: Request<pb::OpenSubAccountRequest>) -> Result<Response<pb::OpenSubAccountResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        let code = centre(&body.centre_id)?;
        let uscc = Uscc::parse(&body.bidder_uscc).map_err(|error| invalid(error.to_string()))?;
        caller.authorize(&[Role::Bidder, Role::Operator], code.as_str())?;
        if caller.role == Role::Bidder && caller.party != uscc.as_str() {
            return Err(Status::permission_denied("a bidder may open a sub-account only for itself"));
        }
        let name = required_text("bidder_name", &body.bidder_name)?;
        let basic_account = required_text("basic_account", &body.basic_account)?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let section_open: Option<bool> = sqlx::query_scalar("SELECT open FROM sections WHERE centre_id = $1 AND section_id = $2")
            .bind(code.as_str())
            .bind(&body.section_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        match section_open {
            None => return Err(Status::not_found(format!("section {} not found in centre {code}", body.section_id))),
            Some(false) => return Err(Status::failed_precondition(format!("section {} is closed", body.section_id))),
            Some(true) => {}
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT sub_account_number FROM sub_accounts WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3",
        )
        .bind(code.as_str())
        .bind(&body.section_id)
        .bind(uscc.as_str())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?;
        if let Some(number) = existing {
            return Ok(Response::new(pb::OpenSubAccountResponse { sub_account_number: number, created: false }));
        }
        let sequence: i64 = sqlx::query_scalar("SELECT nextval('sub_account_sequence')")
            .fetch_one(&mut *transaction)
            .await
            .map_err(internal)?;
        let number = sub_account_number(&code, u64::try_from(sequence).map_err(|_| Status::internal("sequence out of range"))?);
        let inserted = sqlx::query(
            "INSERT INTO sub_accounts (sub_account_number, centre_id, section_id, bidder_uscc, bidder_name, basic_account)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (centre_id, section_id, bidder_uscc) DO NOTHING",
        )
        .bind(&number)
        .bind(code.as_str())
        .bind(&body.section_id)
        .bind(uscc.as_str())
        .bind(name)
        .bind(basic_account)
        .execute(&mut *transaction)
        .await
        .map_err(internal)?;
        if inserted.rows_affected() == 0 {
            return Err(Status::aborted("a concurrent request opened this sub-account; retry to read it"));
        }
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(pb::OpenSubAccountResponse { sub_account_number: number, created: true }))
    }

    async fn open_sub_accounts(&self, request: Request<pb::OpenSubAccountsRequest>) -> Result<Response<pb::OpenSubAccountsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        if body.accounts.len() > 1000 {
            return Err(invalid("at most 1000 sub-accounts per call"));
        }
        // Validate everything before touching the database.
        let mut items: Vec<(CentreCode, String, Uscc, &str, &str)> = Vec::with_capacity(body.accounts.len());
        for (index, item) in body.accounts.iter().enumerate() {
            let at = |status: Status| Status::new(status.code(), format!("accounts[{index}]: {}", status.message()));
            let code = centre(&item.centre_id).map_err(at)?;
            caller.authorize(&[Role::Operator], code.as_str()).map_err(at)?;
            let uscc = Uscc::parse(&item.bidder_uscc).map_err(|error| at(invalid(error.to_string())))?;
            let name = required_text("bidder_name", &item.bidder_name).map_err(at)?;
            let basic_account = required_text("basic_account", &item.basic_account).map_err(at)?;
            items.push((code, item.section_id.clone(), uscc, name, basic_account));
        }
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let keys: (Vec<&str>, Vec<&str>) = items.iter().map(|(code, section, ..)| (code.as_str(), section.as_str())).unzip();
        let open: std::collections::HashMap<(String, String), bool> = sqlx::query_as::<_, (String, String, bool)>(
            "SELECT s.centre_id, s.section_id, s.open FROM sections s JOIN UNNEST($1::text[], $2::text[]) AS k(centre_id, section_id)
               ON s.centre_id = k.centre_id AND s.section_id = k.section_id",
        )
        .bind(&keys.0)
        .bind(&keys.1)
        .fetch_all(&mut *transaction)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(centre_id, section_id, open)| ((centre_id, section_id), open))
        .collect();
        for (index, (code, section, ..)) in items.iter().enumerate() {
            match open.get(&(code.as_str().to_owned(), section.clone())) {
                None => return Err(Status::not_found(format!("accounts[{index}]: section {section} not found in centre {code}"))),
                Some(false) => return Err(Status::failed_precondition(format!("accounts[{index}]: section {section} is closed"))),
                Some(true) => {}
            }
        }
        let usccs: Vec<&str> = items.iter().map(|(_, _, uscc, ..)| uscc.as_str()).collect();
        let mut numbers: std::collections::HashMap<(String, String, String), (String, bool)> = sqlx::query_as::<_, (String, String, String, String)>(
            "SELECT s.centre_id, s.section_id, s.bidder_uscc, s.sub_account_number FROM sub_accounts s
             JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(centre_id, section_id, bidder_uscc)
               ON s.centre_id = k.centre_id AND s.section_id = k.section_id AND s.bidder_uscc = k.bidder_uscc",
        )
        .bind(&keys.0)
        .bind(&keys.1)
        .bind(&usccs)
        .fetch_all(&mut *transaction)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(centre_id, section_id, uscc, number)| ((centre_id, section_id, uscc), (number, false)))
        .collect();
        let mut fresh: std::collections::HashSet<(String, String, String)> = std::collections::HashSet::new();
        for (code, section, uscc, ..) in &items {
            let key = (code.as_str().to_owned(), section.clone(), uscc.as_str().to_owned());
            if !numbers.contains_key(&key) {
                fresh.insert(key);
            }
        }
        let mut sequences = sqlx::query_scalar::<_, i64>("SELECT nextval('sub_account_sequence') FROM generate_series(1, $1)")
            .bind(i32::try_from(fresh.len()).unwrap_or(0))
            .fetch_all(&mut *transaction)
            .await
            .map_err(internal)?
            .into_iter();
        let mut new_rows: [Vec<String>; 6] = Default::default();
        for (code, section, uscc, name, basic_account) in &items {
            let key = (code.as_str().to_owned(), section.clone(), uscc.as_str().to_owned());
            if numbers.contains_key(&key) {
                continue;
            }
            let sequence = sequences.next().ok_or_else(|| Status::internal("sequence values ran out"))?;
            let number = sub_account_number(code, u64::try_from(sequence).map_err(|_| Status::internal("sequence out of range"))?);
            for (column, value) in new_rows.iter_mut().zip([number.as_str(), code.as_str(), section, uscc.as_str(), name, basic_account]) {
                column.push(value.to_owned());
            }
            numbers.insert(key, (number, true));
        }
        let inserted = sqlx::query(
            "INSERT INTO sub_accounts (sub_account_number, centre_id, section_id, bidder_uscc, bidder_name, basic_account)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
             ON CONFLICT (centre_id, section_id, bidder_uscc) DO NOTHING",
        )
        .bind(&new_rows[0])
        .bind(&new_rows[1])
        .bind(&new_rows[2])
        .bind(&new_rows[3])
        .bind(&new_rows[4])
        .bind(&new_rows[5])
        .execute(&mut *transaction)
        .await
        .map_err(internal)?;
        if inserted.rows_affected() != new_rows[0].len() as u64 {
            return Err(Status::aborted("a concurrent request opened some of these sub-accounts; retry to read them"));
        }
        transaction.commit().await.map_err(internal)?;
        let accounts = items
            .iter()
            .map(|(code, section, uscc, ..)| {
                let (number, created) = numbers[&(code.as_str().to_owned(), section.clone(), uscc.as_str().to_owned())].clone();
                pb::OpenSubAccountResponse { sub_account_number: number, created }
            })
            .collect();
        Ok(Response::new(pb::OpenSubAccountsResponse { accounts }))
    }

    async fn get_deposit_status(&self, request: Request<pb::GetDepositStatusRequest>) -> Result<Response<pb::DepositStatus>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Bidder], &body.centre_id)?;
        if caller.party != body.bidder_uscc {
            return Err(Status::permission_denied("a bidder may read only its own deposit"));
        }
        let statuses = self.deposit_statuses(&body.centre_id, &body.section_id, Some(&body.bidder_uscc)).await?;
        statuses
            .into_iter()
            .next()
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no sub-account for this bidder and section"))
    }

    async fn list_section_deposits(&self, request: Request<pb::ListSectionDepositsRequest>) -> Result<Response<pb::ListSectionDepositsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator, Role::Supervisor], &body.centre_id)?;
        let opening: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT bid_opening_time FROM sections WHERE centre_id = $1 AND section_id = $2")
            .bind(&body.centre_id)
            .bind(&body.section_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        let opening = opening.ok_or_else(|| Status::not_found("section not found"))?;
        if Utc::now() < opening {
            return Err(Status::failed_precondition(format!(
                "bidders of section {} are confidential until bid opening at {}",
                body.section_id,
                opening.to_rfc3339()
            )));
        }
        let deposits = self.deposit_statuses(&body.centre_id, &body.section_id, None).await?;
        Ok(Response::new(pb::ListSectionDepositsResponse { deposits }))
    }

    async fn get_account_balances(&self, request: Request<pb::GetAccountBalancesRequest>) -> Result<Response<pb::GetAccountBalancesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let rows = sqlx::query(
            "SELECT a.account, a.kind, a.balance_fen FROM accounts a
             WHERE a.centre_id = $1 AND starts_with(a.account, $2)
               AND NOT EXISTS (SELECT 1 FROM sections s
                               WHERE s.centre_id = a.centre_id AND s.bid_opening_time > now()
                                 AND starts_with(a.account, 'deposit:' || s.section_id || ':'))
             ORDER BY a.account LIMIT 10000",
        )
        .bind(&body.centre_id)
        .bind(&body.key_prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let balances = rows
            .iter()
            .map(|row| pb::AccountBalance { account: row.get(0), kind: row.get(1), balance_fen: row.get(2) })
            .collect();
        Ok(Response::new(pb::GetAccountBalancesResponse { balances }))
    }

    async fn list_suspense(&self, request: Request<pb::ListSuspenseRequest>) -> Result<Response<pb::ListSuspenseResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        if !body.reason.is_empty() && jinfu_ledger::SuspenseReason::parse(&body.reason).is_none() {
            return Err(invalid(format!("unknown suspense reason {:?}", body.reason)));
        }
        let limit = if body.limit == 0 { 100 } else { body.limit.min(1000) };
        let items = self.suspense_items(&body.centre_id, None, &body.reason, i64::from(limit), true).await?;
        Ok(Response::new(pb::ListSuspenseResponse { items }))
    }

    async fn bind_suspense_item(&self, request: Request<pb::BindSuspenseItemRequest>) -> Result<Response<pb::SuspenseResolution>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator], &body.centre_id)?;
        let reason = decision_reason(&body.reason)?;
        let sub_account = required_text("sub_account_number", &body.sub_account_number)?;
        let decision = crate::suspense::Decision::Bind { sub_account_number: sub_account };
        let resolution = self.resolve_suspense(&body.centre_id, &body.bank, &body.bank_serial, decision, &caller.party, reason).await?;
        Ok(Response::new(resolution_message(resolution)))
    }

    async fn return_suspense_item(&self, request: Request<pb::ReturnSuspenseItemRequest>) -> Result<Response<pb::SuspenseResolution>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator], &body.centre_id)?;
        let reason = decision_reason(&body.reason)?;
        let resolution = self.resolve_suspense(&body.centre_id, &body.bank, &body.bank_serial, crate::suspense::Decision::Return, &caller.party, reason).await?;
        Ok(Response::new(resolution_message(resolution)))
    }

    async fn list_suspense_resolutions(&self, request: Request<pb::ListSuspenseResolutionsRequest>) -> Result<Response<pb::ListSuspenseResolutionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let limit = if body.limit == 0 { 100 } else { body.limit.min(1000) };
        let resolutions = crate::suspense::list(&self.pool, &body.centre_id, i64::from(limit)).await.map_err(internal)?;
        Ok(Response::new(pb::ListSuspenseResolutionsResponse { resolutions: resolutions.into_iter().map(resolution_message).collect() }))
    }

    async fn list_reconciliation_reports(&self, request: Request<pb::ListReconciliationReportsRequest>) -> Result<Response<pb::ListReconciliationReportsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let today = crate::trading::china_date(Utc::now());
        let date = |field: &str, text: &str, default: chrono::NaiveDate| {
            if text.is_empty() {
                Ok(default)
            } else {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid(format!("{field} must be an ISO date (YYYY-MM-DD)")))
            }
        };
        let to = date("to_date", &body.to_date, today)?;
        let from = date("from_date", &body.from_date, to - chrono::Duration::days(31))?;
        let reports = crate::statements::list_reports(&self.pool, &body.centre_id, from, to).await.map_err(internal)?;
        Ok(Response::new(pb::ListReconciliationReportsResponse { reports: reports.into_iter().map(|report| report_message(report, Vec::new())).collect() }))
    }

    async fn set_calendar_overrides(&self, request: Request<pb::SetCalendarOverridesRequest>) -> Result<Response<pb::SetCalendarOverridesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Admin], &body.centre_id)?;
        let mut days = Vec::with_capacity(body.overrides.len());
        let mut kinds = Vec::with_capacity(body.overrides.len());
        for entry in &body.overrides {
            let day = chrono::NaiveDate::parse_from_str(&entry.date, "%Y-%m-%d")
                .map_err(|_| invalid(format!("override date {:?} must be an ISO date (YYYY-MM-DD)", entry.date)))?;
            if !matches!(entry.kind.as_str(), "holiday" | "workday") {
                return Err(invalid(format!("override kind {:?} must be \"holiday\" or \"workday\"", entry.kind)));
            }
            if days.contains(&day) {
                return Err(invalid(format!("day {day} is overridden twice")));
            }
            days.push(day);
            kinds.push(entry.kind.clone());
        }
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1 FOR UPDATE")
            .bind(&body.centre_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(internal)?;
        if known.is_none() {
            return Err(Status::not_found(format!("centre {} is not registered", body.centre_id)));
        }
        sqlx::query("DELETE FROM calendar_overrides WHERE centre_id = $1")
            .bind(&body.centre_id)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        sqlx::query("INSERT INTO calendar_overrides (centre_id, day, kind) SELECT $1, day, kind FROM UNNEST($2::date[], $3::text[]) AS o(day, kind)")
            .bind(&body.centre_id)
            .bind(&days)
            .bind(&kinds)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        let count = i32::try_from(days.len()).map_err(|_| invalid("too many overrides"))?;
        Ok(Response::new(pb::SetCalendarOverridesResponse { count }))
    }

    async fn get_centre_holdings(&self, request: Request<pb::GetCentreHoldingsRequest>) -> Result<Response<pb::CentreHoldings>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM centres WHERE centre_id = $1")
            .bind(&body.centre_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        if known.is_none() {
            return Err(Status::not_found(format!("centre {} is not registered", body.centre_id)));
        }
        let rows = sqlx::query(
            "SELECT split_part(account, ':', 1) AS class, sum(balance_fen)::bigint FROM accounts
             WHERE centre_id = $1 AND kind = 'liability' GROUP BY 1",
        )
        .bind(&body.centre_id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut holdings = pb::CentreHoldings::default();
        for row in &rows {
            let fen: i64 = row.get::<Option<i64>, _>(1).unwrap_or(0);
            match row.get::<&str, _>(0) {
                "deposit" => holdings.deposits_fen += fen,
                "suspense" => holdings.suspense_fen += fen,
                "refund-in-transit" => holdings.refund_in_transit_fen += fen,
                "forfeited" => holdings.forfeited_fen += fen,
                // Any liability class added later still counts towards what the centre holds.
                _ => holdings.total_fen += fen,
            }
        }
        holdings.total_fen += holdings.deposits_fen + holdings.suspense_fen + holdings.refund_in_transit_fen + holdings.forfeited_fen;
        Ok(Response::new(holdings))
    }

    async fn get_section(&self, request: Request<pb::GetSectionRequest>) -> Result<Response<pb::Section>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        if !caller.may_access(&body.centre_id) {
            return Err(Status::permission_denied(format!("caller of centre {} may not read centre {}", caller.centre, body.centre_id)));
        }
        let row = sqlx::query(
            "SELECT name, regime, required_deposit_fen, deposit_deadline, bid_opening_time, open, bids_opened_at, winner_uscc, contract_signed_at
             FROM sections WHERE centre_id = $1 AND section_id = $2",
        )
        .bind(&body.centre_id)
        .bind(&body.section_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?
        .ok_or_else(|| Status::not_found(format!("centre {} has no section {}", body.centre_id, body.section_id)))?;
        let time = timestamp;
        Ok(Response::new(pb::Section {
            centre_id: body.centre_id,
            section_id: body.section_id,
            name: row.get(0),
            regime: row.get(1),
            required_deposit_fen: row.get(2),
            deposit_deadline: Some(time(row.get(3))),
            bid_opening_time: Some(time(row.get(4))),
            open: row.get(5),
            bids_opened_at: row.get::<Option<DateTime<Utc>>, _>(6).map(time),
            winner_uscc: row.get::<Option<String>, _>(7).unwrap_or_default(),
            contract_signed_at: row.get::<Option<DateTime<Utc>>, _>(8).map(time),
        }))
    }

    async fn get_reconciliation_report(&self, request: Request<pb::GetReconciliationReportRequest>) -> Result<Response<pb::ReconciliationReport>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let limit = if body.limit == 0 { 1000 } else { body.limit.min(100_000) };
        let found = crate::statements::get_report(&self.pool, &body.statement_id, i64::from(limit)).await.map_err(internal)?;
        match found {
            Some((report, lines)) if report.centre_id == body.centre_id => Ok(Response::new(report_message(report, lines))),
            _ => Err(Status::not_found(format!("centre {} has no reconciliation report for statement {:?}", body.centre_id, body.statement_id))),
        }
    }

    async fn get_ingest_summary(&self, request: Request<pb::GetIngestSummaryRequest>) -> Result<Response<pb::IngestSummary>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let rows = sqlx::query(
            "SELECT outcome, count(*), coalesce(sum(amount_fen), 0)::int8 FROM credit_notices WHERE centre_id = $1 GROUP BY outcome ORDER BY outcome",
        )
        .bind(&body.centre_id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let outcomes = rows
            .iter()
            .map(|row| pb::OutcomeCount { outcome: row.get(0), notices: row.get(1), amount_fen: row.get(2) })
            .collect();
        let leads = sqlx::query(
            "SELECT c.section_id, c.payer_account, array_agg(l.bidder_uscc ORDER BY l.bidder_uscc)
             FROM collusion_leads c JOIN payer_links l USING (centre_id, section_id, payer_account)
             WHERE c.centre_id = $1
               AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.centre_id = c.centre_id AND s.section_id = c.section_id
                                                         AND s.bid_opening_time > now())
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(&body.centre_id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let collusion_leads = leads
            .iter()
            .map(|row| pb::CollusionLead { section_id: row.get(0), payer_account: row.get(1), bidder_usccs: row.get(2) })
            .collect();
        let conflicts: i64 = sqlx::query_scalar("SELECT count(*) FROM notice_conflicts WHERE centre_id = $1")
            .bind(&body.centre_id)
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        let refund_rows = sqlx::query(
            "SELECT r.status, count(DISTINCT r.refund_id), coalesce(sum(o.principal_fen + o.interest_fen), 0)::int8
             FROM refunds r LEFT JOIN payment_orders o ON o.refund_id = r.refund_id
             WHERE r.centre_id = $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(&body.centre_id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let refunds = refund_rows
            .iter()
            .map(|row| pb::OutcomeCount { outcome: row.get(0), notices: row.get(1), amount_fen: row.get(2) })
            .collect();
        Ok(Response::new(pb::IngestSummary { outcomes, collusion_leads, conflicts, refunds }))
    }

    async fn submit_tender_event(&self, request: Request<pb::SubmitTenderEventRequest>) -> Result<Response<pb::SubmitTenderEventResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator, Role::Admin], &body.centre_id)?;
        let occurred_at = from_timestamp("occurred_at", body.occurred_at)?;
        let data: serde_json::Value = if body.data_json.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&body.data_json).map_err(|error| invalid(format!("data_json is not JSON: {error}")))?
        };
        let value = serde_json::to_vec(&serde_json::json!({
            "schema_version": 1,
            "event_id": body.event_id,
            "centre_id": body.centre_id,
            "section_id": body.section_id,
            "type": body.r#type,
            "occurred_at": occurred_at.to_rfc3339(),
            "data": data,
        }))
        .map_err(|_| Status::internal("event does not serialise"))?;
        let record = crate::ingest::Record { partition: -1, offset: -1, value, headers: Vec::new(), timestamp: None };
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        match self.trading.apply(&mut transaction, &record).await {
            Ok(crate::consumer::Handled::Applied) => {
                transaction.commit().await.map_err(internal)?;
                Ok(Response::new(pb::SubmitTenderEventResponse {}))
            }
            Ok(crate::consumer::Handled::Refused(crate::consumer::Refused(code, sentence))) => Err(invalid(format!("{code}: {sentence}"))),
            Err(error) => {
                tracing::error!(error = %error, "applying a tender event failed");
                Err(Status::internal("applying the event failed"))
            }
        }
    }

    async fn set_demand_deposit_rate(&self, request: Request<pb::SetDemandDepositRateRequest>) -> Result<Response<pb::SetDemandDepositRateResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Admin], &body.centre_id)?;
        let from = chrono::NaiveDate::parse_from_str(&body.effective_from, "%Y-%m-%d").map_err(|_| invalid("effective_from must be YYYY-MM-DD"))?;
        let rate = Decimal::from_str(body.annual_rate.trim())
            .ok()
            .filter(|rate| *rate >= Decimal::ZERO && *rate < Decimal::ONE)
            .ok_or_else(|| invalid("annual_rate must be a decimal fraction in [0, 1)"))?;
        let updated = sqlx::query(
            "INSERT INTO bank_account_rates (bank, account_number, effective_from, annual_rate)
             SELECT bank, account_number, $4, $5::numeric FROM bank_accounts WHERE bank = $2 AND account_number = $3 AND centre_id = $1
             ON CONFLICT (bank, account_number, effective_from) DO UPDATE SET annual_rate = EXCLUDED.annual_rate",
        )
        .bind(&body.centre_id)
        .bind(&body.bank)
        .bind(&body.account_number)
        .bind(from)
        .bind(rate.to_string())
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        if updated.rows_affected() == 0 {
            return Err(Status::not_found("no such collection account in this centre"));
        }
        Ok(Response::new(pb::SetDemandDepositRateResponse {}))
    }

    async fn submit_refund_correction(&self, request: Request<pb::SubmitRefundCorrectionRequest>) -> Result<Response<pb::RefundCorrection>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Bidder], &body.centre_id)?;
        if caller.party != body.bidder_uscc {
            return Err(Status::permission_denied("a bidder may correct only its own refund"));
        }
        let account = required_text("payee_account", &body.payee_account)?;
        let name = required_text("payee_name", &body.payee_name)?;
        let refund: Option<(uuid::Uuid, String)> = sqlx::query_as(
            "SELECT refund_id, status FROM refunds WHERE centre_id = $1 AND section_id = $2 AND bidder_uscc = $3",
        )
        .bind(&body.centre_id)
        .bind(&body.section_id)
        .bind(&body.bidder_uscc)
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?;
        let refund_id = match refund {
            Some((refund_id, status)) if status == "failed" => refund_id,
            Some((_, status)) => return Err(Status::failed_precondition(format!("the refund is {status}, not failed"))),
            None => return Err(Status::not_found("no refund for this bidder and section")),
        };
        let row = sqlx::query(&format!(
            "WITH c AS (INSERT INTO refund_corrections (correction_id, refund_id, payee_account, payee_name, status, submitted_by)
                        VALUES ($1, $2, $3, $4, 'submitted', $5) RETURNING *)
             SELECT {CORRECTION_COLUMNS} FROM c JOIN refunds r USING (refund_id)"
        ))
        .bind(uuid::Uuid::now_v7())
        .bind(refund_id)
        .bind(account)
        .bind(name)
        .bind(&caller.party)
        .fetch_one(&self.pool)
        .await
        .map_err(internal)?;
        Ok(Response::new(correction_reply(&row)))
    }

    async fn verify_refund_correction(&self, request: Request<pb::RefundCorrectionDecision>) -> Result<Response<pb::RefundCorrection>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Operator], &body.centre_id)?;
        self.decide_correction(&body, "submitted", "verified", &caller.party).await
    }

    async fn approve_refund_correction(&self, request: Request<pb::RefundCorrectionDecision>) -> Result<Response<pb::RefundCorrection>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(&[Role::Supervisor], &body.centre_id)?;
        self.decide_correction(&body, "verified", "approved", &caller.party).await
    }

    async fn list_refunds(&self, request: Request<pb::ListRefundsRequest>) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let rows: Vec<(String, String, String, chrono::NaiveDate, String)> = sqlx::query_as(
            "SELECT section_id, bidder_uscc, trigger, due_on, status FROM refunds
             WHERE centre_id = $1 AND ($2 = '' OR status = $2) ORDER BY due_on, section_id, bidder_uscc LIMIT 1000",
        )
        .bind(&body.centre_id)
        .bind(&body.status)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let refunds = rows
            .into_iter()
            .map(|(section_id, bidder_uscc, trigger, due_on, status)| pb::Refund { section_id, bidder_uscc, trigger, due_on: due_on.to_string(), status })
            .collect();
        Ok(Response::new(pb::ListRefundsResponse { refunds }))
    }

    async fn list_stale_deposits(&self, request: Request<pb::ListStaleDepositsRequest>) -> Result<Response<pb::ListStaleDepositsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.into_inner();
        caller.authorize(STAFF, &body.centre_id)?;
        let deposits = stale_deposits(&self.pool, &body.centre_id, crate::trading::china_date(Utc::now()))
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(section_id, bidder_uscc, held_fen, due_on, refund_status)| pb::StaleDeposit {
                section_id,
                bidder_uscc,
                held_fen,
                due_on: due_on.to_string(),
                refund_status,
            })
            .collect();
        Ok(Response::new(pb::ListStaleDepositsResponse { deposits }))
    }
}

fn correction_reply(row: &sqlx::postgres::PgRow) -> pb::RefundCorrection {
    pb::RefundCorrection {
        correction_id: row.get::<uuid::Uuid, _>("correction_id").to_string(),
        section_id: row.get("section_id"),
        bidder_uscc: row.get("bidder_uscc"),
        payee_account: row.get("payee_account"),
        payee_name: row.get("payee_name"),
        status: row.get("status"),
        submitted_by: row.get("submitted_by"),
        verified_by: row.get::<Option<String>, _>("verified_by").unwrap_or_default(),
        approved_by: row.get::<Option<String>, _>("approved_by").unwrap_or_default(),
    }
}

const CORRECTION_COLUMNS: &str = "c.correction_id, r.section_id, r.bidder_uscc, c.payee_account, c.payee_name, c.status, c.submitted_by, c.verified_by, c.approved_by";

async fn set_refund_rules(transaction: &mut sqlx::Transaction<'_, sqlx::Postgres>, centre_id: &str, body: &pb::RegisterCentreRequest) -> Result<(), Status> {
    sqlx::query(
        "UPDATE centres SET refund_period_days = coalesce($2, refund_period_days),
                            refund_hold_working_days = coalesce($3, refund_hold_working_days)
         WHERE centre_id = $1",
    )
    .bind(centre_id)
    .bind(body.refund_period_days)
    .bind(body.refund_hold_working_days)
    .execute(&mut **transaction)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Deposits still held after their refund due date: (section, bidder, held, due on, status).
pub async fn stale_deposits(pool: &PgPool, centre_id: &str, today: chrono::NaiveDate) -> Result<Vec<(String, String, i64, chrono::NaiveDate, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.section_id, r.bidder_uscc, a.balance_fen, r.due_on, r.status FROM refunds r
         JOIN accounts a ON a.centre_id = r.centre_id AND a.account = 'deposit:' || r.section_id || ':' || r.bidder_uscc
         WHERE r.centre_id = $1 AND r.due_on < $2 AND r.status IN ('scheduled', 'ordered', 'failed') AND a.balance_fen > 0
         ORDER BY r.due_on, r.section_id, r.bidder_uscc",
    )
    .bind(centre_id)
    .bind(today)
    .fetch_all(pool)
    .await
}

impl LedgerApi {
    /// Moves a correction from `from` to `to`, recording who; approval re-schedules the refund.
    async fn decide_correction(&self, body: &pb::RefundCorrectionDecision, from: &str, to: &str, party: &str) -> Result<Response<pb::RefundCorrection>, Status> {
        let id = uuid::Uuid::parse_str(&body.correction_id).map_err(|_| invalid("correction_id is not a UUID"))?;
        let mut transaction = self.pool.begin().await.map_err(internal)?;
        let current = sqlx::query(
            "SELECT c.status, c.verified_by, c.refund_id, r.status AS refund_status FROM refund_corrections c JOIN refunds r USING (refund_id)
             WHERE c.correction_id = $1 AND r.centre_id = $2 FOR UPDATE OF c, r",
        )
        .bind(id)
        .bind(&body.centre_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(internal)?
        .ok_or_else(|| Status::not_found("no such correction in this centre"))?;
        let status: String = current.get(0);
        if status != from {
            return Err(Status::failed_precondition(format!("the correction is {status}; it must be {from} first")));
        }
        if to == "approved" && current.get::<Option<String>, _>(1).as_deref() == Some(party) {
            return Err(Status::permission_denied("the approver must not be the verifier"));
        }
        let refund_id: uuid::Uuid = current.get(2);
        let (by, at) = if to == "verified" { ("verified_by", "verified_at") } else { ("approved_by", "approved_at") };
        sqlx::query(&format!("UPDATE refund_corrections SET status = $2, {by} = $3, {at} = now() WHERE correction_id = $1"))
            .bind(id)
            .bind(to)
            .bind(party)
            .execute(&mut *transaction)
            .await
            .map_err(internal)?;
        if to == "approved" {
            if current.get::<String, _>(3) != "failed" {
                return Err(Status::failed_precondition("the refund is no longer failed"));
            }
            sqlx::query("UPDATE refunds SET status = 'scheduled', order_after = now(), updated_at = now() WHERE refund_id = $1")
                .bind(refund_id)
                .execute(&mut *transaction)
                .await
                .map_err(internal)?;
        }
        let row = sqlx::query(&format!(
            "SELECT {CORRECTION_COLUMNS} FROM refund_corrections c JOIN refunds r USING (refund_id) WHERE c.correction_id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(internal)?;
        transaction.commit().await.map_err(internal)?;
        Ok(Response::new(correction_reply(&row)))
    }

    async fn resolve_suspense(
        &self,
        centre_id: &str,
        bank: &str,
        bank_serial: &str,
        decision: crate::suspense::Decision<'_>,
        decided_by: &str,
        reason: &str,
    ) -> Result<crate::suspense::Resolution, Status> {
        let bank = required_text("bank", bank)?;
        let bank_serial = required_text("bank_serial", bank_serial)?;
        let topics = crate::suspense::Topics { events: &self.events_topic, orders: &self.orders_topic };
        crate::suspense::resolve(&self.pool, centre_id, bank, bank_serial, decision, decided_by, reason, self.signer.as_deref(), &topics)
            .await
            .map_err(resolve_error)
    }

    /// Suspense items, newest first. `hide_sealed` leaves out items bound to a section whose bids
    /// are not yet opened: they would name its bidders.
    async fn suspense_items(&self, centre_id: &str, sub_account: Option<&str>, reason: &str, limit: i64, hide_sealed: bool) -> Result<Vec<pb::SuspenseItem>, Status> {
        let suspense_codes: Vec<&str> = jinfu_ledger::SuspenseReason::ALL.iter().map(|r| r.code()).collect();
        let rows = sqlx::query(
            "SELECT bank, bank_serial, sub_account_number, amount_fen, payer_name, payer_account, value_time, outcome,
                    coalesce((SELECT r.status FROM suspense_resolutions r WHERE r.bank = credit_notices.bank
                                AND r.bank_serial = credit_notices.bank_serial AND r.status <> 'return_failed'), '')
             FROM credit_notices
             WHERE centre_id = $1 AND outcome = ANY($2) AND ($3 = '' OR outcome = $3)
               AND ($4::text IS NULL OR sub_account_number = $4)
               AND NOT ($6 AND EXISTS (SELECT 1 FROM sections s
                                       WHERE s.centre_id = credit_notices.centre_id AND s.section_id = credit_notices.section_id
                                         AND s.bid_opening_time > now()))
             ORDER BY posted_at DESC, bank, bank_serial LIMIT $5",
        )
        .bind(centre_id)
        .bind(&suspense_codes)
        .bind(reason)
        .bind(sub_account)
        .bind(limit)
        .bind(hide_sealed)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        Ok(rows
            .iter()
            .map(|row| pb::SuspenseItem {
                bank: row.get(0),
                bank_serial: row.get(1),
                sub_account_number: row.get(2),
                amount_fen: row.get(3),
                payer_name: row.get(4),
                payer_account: row.get(5),
                value_time: Some(timestamp(row.get(6))),
                reason: row.get(7),
                resolution_status: row.get(8),
            })
            .collect())
    }

    async fn deposit_statuses(&self, centre_id: &str, section_id: &str, bidder: Option<&str>) -> Result<Vec<pb::DepositStatus>, Status> {
        // Bidders with a sub-account, and bidders who secured the section by guarantee alone.
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
             LEFT JOIN accounts a ON a.centre_id = $1 AND a.account = 'deposit:' || $2 || ':' || b.bidder_uscc
             LEFT JOIN LATERAL (
                 SELECT g.guarantee_no, g.amount_fen FROM guarantee_covers g
                 WHERE g.centre_id = $1 AND g.section_id = $2 AND g.bidder_uscc = b.bidder_uscc AND g.ended_at IS NULL
                   AND g.valid_to >= (now() AT TIME ZONE 'Asia/Shanghai')::date
                 ORDER BY g.amount_fen DESC, g.guarantee_no LIMIT 1) cover ON true
             ORDER BY b.bidder_uscc",
        )
        .bind(centre_id)
        .bind(section_id)
        .bind(bidder)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        let mut statuses = Vec::with_capacity(rows.len());
        for row in rows {
            let uscc: String = row.get(0);
            let number: String = row.get(1);
            let required = Fen::from_fen(row.get(2));
            let held = Fen::from_fen(row.get(3));
            debug_assert_eq!(
                AccountKey::Deposit { section: section_id.into(), bidder: uscc.clone() }.to_string(),
                format!("deposit:{section_id}:{uscc}")
            );
            let guarantee_no: Option<String> = row.get(4);
            let guaranteed = Fen::from_fen(row.get(5));
            let suspended = if number.is_empty() { Vec::new() } else { self.suspense_items(centre_id, Some(&number), "", 100, false).await? };
            let (status, explanation, excess) = if guarantee_no.is_some() && guaranteed >= required {
                let no = guarantee_no.as_deref().unwrap_or_default();
                let cash = if held > Fen::ZERO { format!("已缴现金 {held} 元为超额部分，将退还。") } else { String::new() };
                ("satisfied_by_guarantee", format!("已由电子保函 {no}（担保金额 {guaranteed} 元）足额担保。{cash}"), held)
            } else if held == Fen::ZERO {
                ("no_money_received", "尚未收到保证金。".to_owned(), Fen::ZERO)
            } else {
                match DepositProgress::of(held, required) {
                    DepositProgress::Short { missing } => ("short", format!("已收到 {held} 元，还差 {missing} 元。"), Fen::ZERO),
                    DepositProgress::Satisfied => ("matched", format!("保证金 {held} 元已足额到账。"), Fen::ZERO),
                    DepositProgress::Over { excess } => ("over", format!("已收到 {held} 元，超出 {excess} 元，超出部分将退还。"), excess),
                }
            };
            let explanation = if suspended.is_empty() {
                explanation
            } else {
                format!("{explanation} 另有 {} 笔转账未能确认为保证金（见 suspended）。", suspended.len())
            };
            statuses.push(pb::DepositStatus {
                section_id: section_id.to_owned(),
                bidder_uscc: uscc,
                sub_account_number: number,
                received: held > Fen::ZERO,
                held_fen: held.fen(),
                required_fen: required.fen(),
                satisfied: held >= required || status == "satisfied_by_guarantee",
                excess_fen: excess.fen(),
                status: status.to_owned(),
                explanation,
                suspended,
                guarantee_no: guarantee_no.clone().unwrap_or_default(),
                guarantee_amount_fen: if guarantee_no.is_some() { guaranteed.fen() } else { 0 },
            });
        }
        Ok(statuses)
    }
}
