//! Conversions between the API's messages and the domain's types.

use chrono::{DateTime, Utc};
use jinfu_platform::fields::{invalid, timestamp};
use jinfu_proto::credit::v1 as pb;
use tonic::Status;

use crate::domain::{Behaviour, Debarment, Regime};
use crate::store::proposals::ProposalRow;
use crate::store::records::RecordRow;

const BEHAVIOURS: [(pb::Behaviour, Behaviour); 10] = [
    (pb::Behaviour::FalseMaterials, Behaviour::FalseMaterials),
    (pb::Behaviour::Collusion, Behaviour::Collusion),
    (pb::Behaviour::Bribery, Behaviour::Bribery),
    (pb::Behaviour::RefusingToSign, Behaviour::RefusingToSign),
    (pb::Behaviour::UnilateralTermination, Behaviour::UnilateralTermination),
    (pb::Behaviour::FalseComplaint, Behaviour::FalseComplaint),
    (pb::Behaviour::LoanDefault, Behaviour::LoanDefault),
    (pb::Behaviour::GuaranteeFraud, Behaviour::GuaranteeFraud),
    (pb::Behaviour::NonPerformance, Behaviour::NonPerformance),
    (pb::Behaviour::LatePayment, Behaviour::LatePayment),
];

pub fn behaviour(value: i32) -> Result<Behaviour, Status> {
    let api = pb::Behaviour::try_from(value).map_err(|_| invalid("behaviour is unknown"))?;
    BEHAVIOURS.iter().find(|(known, _)| *known == api).map(|(_, behaviour)| *behaviour).ok_or_else(|| invalid("behaviour is required"))
}

fn behaviour_pb(code: &str) -> i32 {
    BEHAVIOURS.iter().find(|(_, behaviour)| behaviour.code() == code).map_or(pb::Behaviour::Unspecified, |(api, _)| *api) as i32
}

/// A request's regime; unspecified is none (any).
pub fn regime(value: i32) -> Result<Option<Regime>, Status> {
    match pb::Regime::try_from(value) {
        Ok(pb::Regime::Unspecified) => Ok(None),
        Ok(pb::Regime::Procurement) => Ok(Some(Regime::Procurement)),
        Ok(pb::Regime::Engineering) => Ok(Some(Regime::Engineering)),
        Err(_) => Err(invalid("regime is unknown")),
    }
}

fn regime_pb(code: Option<&str>) -> i32 {
    (match code.and_then(Regime::parse) {
        Some(Regime::Procurement) => pb::Regime::Procurement,
        Some(Regime::Engineering) => pb::Regime::Engineering,
        None => pb::Regime::Unspecified,
    }) as i32
}

pub fn proposal_pb(row: &ProposalRow) -> pb::Proposal {
    pb::Proposal {
        centre_id: row.centre_id.clone(),
        proposal_id: row.proposal_id.clone(),
        subject_uscc: row.subject_uscc.clone(),
        behaviour: behaviour_pb(&row.behaviour),
        source: row.source.clone(),
        evidence_refs: row.evidence_refs.clone(),
        summary: row.summary.clone(),
        regime: regime_pb(row.regime.as_deref()),
        proposed_by: row.proposed_by.clone(),
        proposed_at: Some(timestamp(row.proposed_at)),
        status: row.status.clone(),
        decided_by: row.decided_by.clone().unwrap_or_default(),
        decided_at: row.decided_at.map(timestamp),
        decision_reason: row.decision_reason.clone().unwrap_or_default(),
        record_id: row.record_id.clone().unwrap_or_default(),
    }
}

/// The record's ban, if it has one.
pub fn debarment(row: &RecordRow) -> Option<Debarment> {
    Some(Debarment { from: row.debarred_from?, until: row.debarred_until? })
}

pub fn record_pb(row: &RecordRow, now: DateTime<Utc>) -> pb::Record {
    pb::Record {
        record_id: row.record_id.clone(),
        centre_id: row.centre_id.clone(),
        subject_uscc: row.subject_uscc.clone(),
        behaviour: behaviour_pb(&row.behaviour),
        kind: row.kind.clone(),
        legal_basis: row.legal_basis.clone(),
        authority: row.authority.clone(),
        decided_on: row.decided_on.to_string(),
        evidence_refs: row.evidence_refs.clone(),
        fine_fen: row.fine_fen,
        debarred_from: row.debarred_from.map(timestamp),
        debarred_until: row.debarred_until.map(timestamp),
        province_wide: row.province_wide,
        regime: regime_pb(row.regime.as_deref()),
        listed_at: Some(timestamp(row.listed_at)),
        proposal_id: row.proposal_id.clone(),
        repair: row.repair.clone(),
        repaired_at: row.repaired_at.map(timestamp),
        debarred_now: debarment(row).is_some_and(|ban| ban.holds_at(now)),
    }
}
