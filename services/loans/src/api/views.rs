//! Reading: one loan, a centre's loans, a supplier's credit-flow line, the figures.

use chrono::NaiveDate;
use jinfu_platform::auth::Role;
use jinfu_platform::fields::invalid;
use jinfu_proto::loan::v1 as pb;
use tonic::{Request, Response, Status};

use super::applications::answer;
use super::convert::loan_pb;
use super::{failed, LoanApi, Who, READERS, STAFF};
use crate::domain::line;
use crate::domain::LoanStatus;
use crate::store::figures::{self, Scope};
use crate::store::loans::{self as store, Lister};
use crate::store::{facts, lenders};

pub(super) async fn get(api: &LoanApi, request: Request<pb::LoanRef>) -> Result<Response<pb::Loan>, Status> {
    let (who, centre) = api.caller(&request, READERS, &request.get_ref().centre_id).await?;
    let loan = api.visible(&who, &centre, &request.get_ref().loan_id).await?;
    answer(api, &loan).await
}

pub(super) async fn list(api: &LoanApi, request: Request<pb::ListLoansRequest>) -> Result<Response<pb::ListLoansResponse>, Status> {
    let (who, centre) = api.caller(&request, READERS, &request.get_ref().centre_id).await?;
    let status = match request.get_ref().status {
        0 => None,
        number => Some(LoanStatus::from_number(number).ok_or_else(|| invalid("status: a LoanStatus"))?.code()),
    };
    let lister = match &who {
        Who::Staff => Lister::Staff,
        Who::Supplier(party) => Lister::Supplier(party),
        Who::Purchaser(party) => Lister::Purchaser(party),
        Who::Lender(officer) => Lister::Lender(&officer.lender_id),
    };
    let rows = store::list(&api.pool, centre.as_str(), lister, status).await.map_err(failed("listing loans"))?;
    let today = api.today();
    // Lists show each loan's position, not its repayments (GetLoan has them).
    Ok(Response::new(pb::ListLoansResponse { loans: rows.iter().map(|row| loan_pb(row, &[], today)).collect() }))
}

pub(super) async fn credit_line(api: &LoanApi, request: Request<pb::CreditLineRequest>) -> Result<Response<pb::CreditLineAnswer>, Status> {
    let (who, centre) = api.caller(&request, &[Role::Supplier, Role::Lender], &request.get_ref().centre_id).await?;
    let supplier = request.get_ref().supplier_uscc.as_str();
    let allowed = match &who {
        Who::Supplier(party) => party == supplier,
        Who::Lender(officer) => lenders::consents(&api.pool, centre.as_str(), supplier, &officer.lender_id).await.map_err(failed("reading consents"))?,
        _ => false,
    };
    if !allowed {
        // Without consent a lender learns nothing, not even whether the supplier has history.
        return Err(Status::not_found("no credit line for this supplier"));
    }
    let today = api.today();
    let factors = facts::line_factors(&api.pool, centre.as_str(), supplier, today).await.map_err(failed("reading payment history"))?;
    let (line, formula) = line::credit_line(factors);
    Ok(Response::new(pb::CreditLineAnswer {
        supplier_uscc: supplier.to_owned(),
        as_of: today.format("%Y-%m-%d").to_string(),
        line_fen: line,
        received_12m_fen: factors.received_12m_fen,
        months_with_payments: factors.months_with_payments,
        distinct_purchasers: factors.distinct_purchasers,
        outstanding_fen: factors.outstanding_fen,
        formula,
    }))
}

fn optional_date(field: &str, text: &str) -> Result<Option<NaiveDate>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Some).map_err(|_| invalid(format!("{field}: a date YYYY-MM-DD, or empty")))
}

pub(super) async fn figures(api: &LoanApi, request: Request<pb::FiguresRequest>) -> Result<Response<pb::FiguresResponse>, Status> {
    let mut roles = STAFF.to_vec();
    roles.push(Role::Lender);
    let (who, centre) = api.caller(&request, &roles, &request.get_ref().centre_id).await?;
    let body = request.get_ref();
    let lender_id = match &who {
        Who::Lender(officer) if body.lender_id.is_empty() || body.lender_id == officer.lender_id => Some(officer.lender_id.as_str()),
        Who::Lender(_) => return Err(Status::permission_denied("a lender reads its own figures")),
        _ => (!body.lender_id.is_empty()).then_some(body.lender_id.as_str()),
    };
    let scope =
        Scope { centre_id: centre.as_str(), lender_id, from: optional_date("from", &body.from)?, to: optional_date("to", &body.to)?, today: api.today() };
    let row = figures::figures(&api.pool, &scope).await.map_err(failed("computing figures"))?;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(Response::new(pb::FiguresResponse {
        centre_id: centre.as_str().to_owned(),
        lender_id: lender_id.unwrap_or_default().to_owned(),
        applied: count(row.applied),
        approved: count(row.approved),
        disbursed: count(row.disbursed),
        disbursed_fen: row.disbursed_fen,
        average_rate_bp: u32::try_from(row.average_rate_bp).unwrap_or(0),
        average_days_to_cash: u32::try_from(row.average_days_to_cash).unwrap_or(0),
        repaid_fen: row.repaid_fen,
        outstanding_fen: row.outstanding_fen,
        overdue: count(row.overdue),
        defaulted: count(row.defaulted),
        rejected: count(row.rejected),
    }))
}
