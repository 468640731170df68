//! Records: the subject's repair application, the supervisor's decision, listings.

use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, reason};
use jinfu_proto::credit::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::convert::record_pb;
use super::{failed, CreditApi, STAFF};
use crate::domain::{may_apply_for_repair, Refusal, Repair};
use crate::store::records::{self as store, RecordRow};
use crate::store::Tx;

/// Subjects acting for themselves.
const SUBJECTS: &[Role] = &[Role::Supplier, Role::Bidder];

fn may_see(caller: &Caller, record: &RecordRow) -> bool {
    match caller.role {
        Role::Supplier | Role::Bidder => caller.party == record.subject_uscc,
        // Staff of the record's centre, or of its province.
        role => {
            STAFF.contains(&role)
                && (caller.centre.as_str() == record.centre_id || (caller.centre.is_province() && caller.centre.as_str().get(..2) == record.centre_id.get(..2)))
        }
    }
}

async fn lock_visible(transaction: &mut Tx, caller: &Caller, record_id: &str) -> Result<RecordRow, Status> {
    let row = store::lock(transaction, record_id).await.map_err(failed("reading a record"))?;
    row.filter(|row| may_see(caller, row)).ok_or_else(|| Status::not_found(format!("record {} not found", fields::clip(record_id, 64))))
}

pub(super) async fn apply_for_repair(api: &CreditApi, request: Request<pb::RepairRequest>) -> Result<Response<pb::Record>, Status> {
    let (caller, _) = CreditApi::caller(&request, SUBJECTS, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let mut row = lock_visible(&mut transaction, &caller, &body.record_id).await?;
    may_apply_for_repair(row.listed_at, Repair::parse(&row.repair).unwrap_or(Repair::Approved), now)?;
    store::apply_for_repair(&mut transaction, &row.record_id, why, now).await.map_err(failed("storing a repair application"))?;
    let data = json!({ "record_id": row.record_id, "subject_uscc": row.subject_uscc, "reason": why });
    crate::events::push(&mut transaction, &api.events_topic, &row.centre_id, &row.subject_uscc, "credit.repair_applied", data).await?;
    transaction.commit().await.map_err(failed("committing"))?;
    row.repair = Repair::Applied.code().into();
    Ok(Response::new(record_pb(&row, now)))
}

pub(super) async fn decide_repair(api: &CreditApi, request: Request<pb::DecideRepairRequest>) -> Result<Response<pb::Record>, Status> {
    let (caller, _) = CreditApi::caller(&request, &[Role::Supervisor], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let row = lock_visible(&mut transaction, &caller, &body.record_id).await?;
    if row.repair != Repair::Applied.code() {
        return Err(Refusal::RepairState { state: Repair::parse(&row.repair).map_or("unknown", Repair::code) }.into());
    }
    store::decide_repair(&mut transaction, &row.record_id, body.approve, &caller.party, now).await.map_err(failed("deciding a repair"))?;
    let kind = if body.approve { "credit.record_repaired" } else { "credit.repair_refused" };
    let data = json!({ "record_id": row.record_id, "subject_uscc": row.subject_uscc, "reason": why });
    crate::events::push(&mut transaction, &api.events_topic, &row.centre_id, &row.subject_uscc, kind, data).await?;
    transaction.commit().await.map_err(failed("committing"))?;
    let row = store::get(&api.pool, &row.record_id).await.map_err(failed("reading a record"))?.ok_or_else(|| Status::internal("record vanished"))?;
    Ok(Response::new(record_pb(&row, now)))
}

pub(super) async fn list(api: &CreditApi, request: Request<pb::ListRecordsRequest>) -> Result<Response<pb::ListRecordsResponse>, Status> {
    let roles = [Role::Operator, Role::Supervisor, Role::Admin, Role::Supplier, Role::Bidder];
    let (caller, centre) = CreditApi::caller(&request, &roles, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let province = &centre.as_str()[..2];
    let rows = match caller.role {
        Role::Supplier | Role::Bidder => store::of_subject(&api.pool, &caller.party, province).await,
        _ if !body.subject_uscc.is_empty() => store::of_subject(&api.pool, &body.subject_uscc, province).await,
        _ => store::of_centre(&api.pool, centre.as_str()).await,
    }
    .map_err(failed("listing records"))?;
    let now = api.clock.now();
    Ok(Response::new(pb::ListRecordsResponse { records: rows.iter().filter(|row| may_see(&caller, row)).map(|row| record_pb(row, now)).collect() }))
}
