//! The annual report of overdue payments to SMEs (条例 art. 18).

use jinfu_platform::auth::Role;
use jinfu_platform::fields::invalid;
use jinfu_proto::contract::v1 as pb;
use tonic::{Request, Response, Status};

use super::{failed, ContractApi};
use crate::report::{overdue_report, OverdueRow};

pub(super) async fn overdue(api: &ContractApi, request: Request<pb::OverdueReportRequest>) -> Result<Response<pb::OverdueReportResponse>, Status> {
    let roles = [Role::Operator, Role::Supervisor, Role::Admin, Role::Purchaser];
    let (caller, centre) = ContractApi::caller(&request, &roles, &request.get_ref().centre_id)?;
    let year = request.get_ref().year;
    let this_year = chrono::Datelike::year(&api.today());
    if !(2000..=this_year).contains(&year) {
        return Err(invalid(format!("year: 2000 to {this_year}")));
    }
    let purchaser = (caller.role == Role::Purchaser).then_some(caller.party.as_str());
    let rows = overdue_report(&api.pool, &api.calendar.current(), centre.as_str(), year, purchaser, api.today())
        .await
        .map_err(failed("computing the overdue report"))?;
    Ok(Response::new(pb::OverdueReportResponse { centre_id: centre.to_string(), year, rows: rows.into_iter().map(row_pb).collect() }))
}

fn row_pb(row: OverdueRow) -> pb::OverdueReportRow {
    pb::OverdueReportRow {
        purchaser_uscc: row.purchaser_uscc,
        purchaser_name: row.purchaser_name,
        contracts: row.contracts,
        invoices: row.invoices,
        overdue_unpaid_fen: row.overdue_unpaid_fen,
        overdue_interest_fen: row.overdue_interest_fen,
    }
}
