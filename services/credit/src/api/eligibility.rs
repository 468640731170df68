//! "May this party take part, here, now?" — with a signed receipt.

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{from_timestamp, invalid, timestamp};
use jinfu_proto::credit::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self, debarment, record_pb};
use super::{failed, CreditApi};
use crate::domain::{is_uscc, receipt_text, Regime, Scope};
use crate::store::records;

/// Every authenticated role may ask.
const ANYONE: &[Role] = &[Role::Operator, Role::Bidder, Role::Supervisor, Role::Bank, Role::Issuer, Role::Admin, Role::Purchaser, Role::Supplier];

pub(super) async fn check(api: &CreditApi, request: Request<pb::CheckEligibilityRequest>) -> Result<Response<pb::Eligibility>, Status> {
    let (_, centre) = CreditApi::caller(&request, ANYONE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    if !is_uscc(&body.subject_uscc) {
        return Err(invalid("subject_uscc: a unified social credit code (18 characters, upper-case, correct check character)"));
    }
    let regime = convert::regime(body.regime)?;
    let now = api.clock.now();
    let at = if body.at.is_some() { from_timestamp("at", body.at)? } else { now };
    let rows = records::bans_at(&api.pool, &body.subject_uscc, &centre.as_str()[..2], at).await.map_err(failed("reading records"))?;
    let barring: Vec<_> = rows
        .iter()
        .filter(|row| {
            let scope = Scope { centre_id: row.centre_id.clone(), province_wide: row.province_wide, regime: row.regime.as_deref().and_then(Regime::parse) };
            scope.covers(centre.as_str(), regime) && debarment(row).is_some_and(|ban| ban.holds_at(at))
        })
        .collect();
    let ids: Vec<String> = barring.iter().map(|row| row.record_id.clone()).collect();
    let receipt = receipt_text(centre.as_str(), &body.subject_uscc, regime, at, ids.is_empty(), &ids, now);
    Ok(Response::new(pb::Eligibility {
        centre_id: centre.to_string(),
        subject_uscc: body.subject_uscc.clone(),
        at: Some(timestamp(at)),
        eligible: ids.is_empty(),
        barring: barring.iter().map(|row| record_pb(row, at)).collect(),
        receipt_signature: api.signer.sign(receipt.as_bytes()),
        receipt_key_ref: api.signer.key_ref().to_owned(),
        receipt,
    }))
}
