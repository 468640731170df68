//! A centre's clocks, parties' signing keys and LPR announcements.

use jinfu_platform::auth::Role;
use jinfu_platform::fields::{invalid, required_text};
use jinfu_platform::signing::{is_key_ref, Scheme, VerifyingKey};
use jinfu_proto::contract::v1 as pb;
use tonic::{Request, Response, Status};

use super::{failed, parse_date, ContractApi};
use crate::domain::rules::CentreRules;
use crate::domain::{is_uscc, Refusal};
use crate::store::rules as store;

fn rules_pb(centre_id: &str, rules: &CentreRules) -> pb::CentreRules {
    pb::CentreRules {
        centre_id: centre_id.to_owned(),
        sign_days: rules.sign_days,
        sign_in_working_days: rules.sign_in_working_days,
        publish_working_days: rules.publish_working_days,
        file_working_days: rules.file_working_days,
        acceptance_working_days: rules.acceptance_working_days,
        objection_working_days: rules.objection_working_days,
        invoice_payment_working_days: rules.invoice_payment_working_days,
    }
}

pub(super) async fn set(api: &ContractApi, request: Request<pb::CentreRules>) -> Result<Response<pb::CentreRules>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Operator, Role::Admin], &request.get_ref().centre_id)?;
    let asked = request.get_ref();
    let rules = CentreRules::with_defaults(CentreRules {
        sign_days: asked.sign_days,
        sign_in_working_days: asked.sign_in_working_days,
        publish_working_days: asked.publish_working_days,
        file_working_days: asked.file_working_days,
        acceptance_working_days: asked.acceptance_working_days,
        objection_working_days: asked.objection_working_days,
        invoice_payment_working_days: asked.invoice_payment_working_days,
    })
    .map_err(invalid)?;
    store::set_centre_rules(&api.pool, centre.as_str(), &rules, &caller.party, api.clock.now()).await.map_err(failed("storing centre rules"))?;
    Ok(Response::new(rules_pb(centre.as_str(), &rules)))
}

pub(super) async fn get(api: &ContractApi, request: Request<pb::CentreRef>) -> Result<Response<pb::CentreRules>, Status> {
    let (_, centre) = ContractApi::caller(&request, super::READERS, &request.get_ref().centre_id)?;
    let rules = store::centre_rules(&api.pool, centre.as_str()).await.map_err(failed("reading centre rules"))?;
    Ok(Response::new(rules_pb(centre.as_str(), &rules)))
}

pub(super) async fn register_key(api: &ContractApi, request: Request<pb::PartyKey>) -> Result<Response<pb::PartyKey>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Operator, Role::Admin], &request.get_ref().centre_id)?;
    let key = request.get_ref();
    if !is_uscc(&key.party_uscc) {
        return Err(invalid("party_uscc: a unified social credit code (18 characters, upper-case, correct check character) is required"));
    }
    if !is_key_ref(&key.key_ref) {
        return Err(invalid("key_ref: 1-64 lower-case letters, digits or _"));
    }
    let scheme = match pb::SignatureScheme::try_from(key.scheme) {
        Ok(pb::SignatureScheme::Sm2Sm3) => Scheme::Sm2Sm3,
        Ok(pb::SignatureScheme::Ed25519) => Scheme::Ed25519,
        _ => return Err(invalid("scheme must be SM2_SM3 or ED25519")),
    };
    let public_key = required_text("public_key", &key.public_key)?;
    VerifyingKey::from_hex(scheme, public_key).map_err(|error| invalid(format!("public_key: {error}")))?;
    let new = store::NewKey {
        centre_id: centre.as_str(),
        party: &key.party_uscc,
        key_ref: &key.key_ref,
        scheme: scheme.as_str(),
        public_key,
        by: &caller.party,
        now: api.clock.now(),
    };
    store::register_key(&api.pool, &new).await.map_err(failed("storing a key"))?;
    Ok(Response::new(pb::PartyKey { centre_id: centre.to_string(), ..key.clone() }))
}

pub(super) async fn add_lpr(api: &ContractApi, request: Request<pb::LprRate>) -> Result<Response<pb::LprRate>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Admin], &request.get_ref().centre_id)?;
    if !centre.is_province() {
        return Err(invalid(format!("the LPR is national: centre_id must be a province centre (e.g. {}), not {centre}", centre.province())));
    }
    let asked = request.get_ref();
    let from = parse_date("effective_from", &asked.effective_from)?;
    let rate = super::convert::percent_rate("rate_percent", &asked.rate_percent)?;
    if rate.is_zero() {
        return Err(invalid("rate_percent: must be above 0"));
    }
    let shipped = jinfu_ledger::overdue::LprHistory::china();
    if let Some((_, other)) = shipped.rows().find(|(day, other)| *day == from && *other != rate) {
        return Err(Refusal::LprConflict { day: from, rate: crate::domain::contracts::percent(other) }.into());
    }
    if let Some(other) = store::add_lpr(&api.pool, from, rate, &caller.party, api.clock.now()).await.map_err(failed("storing an LPR rate"))? {
        return Err(Refusal::LprConflict { day: from, rate: other }.into());
    }
    Ok(Response::new(asked.clone()))
}
