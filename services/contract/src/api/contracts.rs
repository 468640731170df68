//! Contracts: drafting from the award, the parties' signatures, publication and filing,
//! amendments and termination.

use chrono::{DateTime, Utc};
use jinfu_ledger::calendar::CalendarError;
use jinfu_ledger::Fen;
use jinfu_platform::auth::{Caller, Role};
use jinfu_platform::fields::{self, from_timestamp, invalid, printable, reason, required_text};
use jinfu_platform::signing::{Scheme, VerifyingKey};
use jinfu_proto::contract::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use super::convert::{self, contract_pb};
use super::{failed, fen, request_hash, ContractApi, PURCHASER_SIDE, READERS};
use crate::domain::clocks::clocks;
use crate::domain::contracts::{self as domain, CollectionAccount, Signing, Terms};
use crate::domain::{is_reference, is_uscc, ContractStatus, Party, Refusal};
use crate::events::{yuan, Events};
use crate::facts::clock_facts;
use crate::store::contracts::{self as store, ContractRow};
use crate::store::{awards, rules, Tx};

/// The contract with its milestones, clocks and amendments, as the API shows it.
pub(super) async fn view(api: &ContractApi, contract: &ContractRow) -> Result<pb::Contract, Status> {
    let (centre, id) = (contract.centre_id.as_str(), contract.contract_id.as_str());
    let milestones = store::milestones(&api.pool, centre, id).await.map_err(failed("reading milestones"))?;
    let acceptances = store::acceptances(&api.pool, centre, id).await.map_err(failed("reading acceptances"))?;
    let amendments = store::amendments(&api.pool, centre, id).await.map_err(failed("reading amendments"))?;
    let account_changes = crate::store::accounts::history(&api.pool, centre, id).await.map_err(failed("reading account changes"))?;
    let facts = clock_facts(contract, &acceptances);
    let mut view = contract_pb(contract, &milestones, &clocks(&facts), amendments, api.today());
    view.account_changes = account_changes;
    Ok(view)
}

pub(super) fn name(field: &str, text: &str) -> Result<String, Status> {
    let text = printable(field, required_text(field, text)?)?;
    if text.chars().count() > 200 || text.contains('|') {
        return Err(invalid(format!("{field}: at most 200 characters, no '|'")));
    }
    Ok(text.to_owned())
}

fn uscc(field: &str, text: &str) -> Result<String, Status> {
    if !is_uscc(text) {
        return Err(invalid(format!("{field}: a unified social credit code (18 characters, upper-case, correct check character) is required")));
    }
    Ok(text.to_owned())
}

/// The draft's terms, every field checked; `awarded_at` from the award seen, else the request.
fn terms(request: &pb::DraftContractRequest, centre_id: &str, awarded_at: DateTime<Utc>) -> Result<Terms, Status> {
    if !is_reference(&request.contract_id) {
        return Err(invalid("contract_id: 1-64 letters, digits, '-', '_' or '.'"));
    }
    let milestones = request.milestones.iter().enumerate().map(|(index, milestone)| convert::milestone_term(index, milestone)).collect::<Result<_, _>>()?;
    let account = request.collection_account.as_ref().ok_or_else(|| invalid("collection_account is required"))?;
    let amount = fen("amount_fen", request.amount_fen)?;
    if !amount.is_positive() {
        return Err(invalid("amount_fen: more than 0"));
    }
    let scale = convert::scale(request.supplier_scale)?;
    Ok(Terms {
        centre_id: centre_id.to_owned(),
        contract_id: request.contract_id.clone(),
        section_id: fields::identifier("section_id", &request.section_id)?.to_owned(),
        regime: convert::regime(request.regime)?,
        purchaser_uscc: uscc("purchaser_uscc", &request.purchaser_uscc)?,
        purchaser_name: name("purchaser_name", &request.purchaser_name)?,
        supplier_uscc: uscc("supplier_uscc", &request.supplier_uscc)?,
        supplier_name: name("supplier_name", &request.supplier_name)?,
        supplier_scale: scale,
        amount,
        awarded_at,
        milestones,
        payment_days: if request.payment_days == 0 { domain::LAW_PAYMENT_DAYS } else { request.payment_days },
        collection_account: CollectionAccount {
            bank_name: name("collection_account.bank_name", &account.bank_name)?,
            account_no: name("collection_account.account_no", &account.account_no)?,
            account_name: name("collection_account.account_name", &account.account_name)?,
        },
        performance_security: convert::security("performance_security", request.performance_security.as_ref())?,
        quality_retention: convert::security("quality_retention", request.quality_retention.as_ref())?,
        overdue_rate: convert::overdue_rate(request.overdue_rate.as_ref())?,
    })
}

pub(super) async fn draft(api: &ContractApi, request: Request<pb::DraftContractRequest>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, PURCHASER_SIDE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    if caller.role == Role::Purchaser && caller.party != body.purchaser_uscc {
        return Err(Status::permission_denied("a purchaser drafts its own contracts: purchaser_uscc must be the caller"));
    }
    let section_id = fields::identifier("section_id", &body.section_id)?;
    let award = awards::get(&api.pool, centre.as_str(), section_id).await.map_err(failed("reading the award"))?;
    let awarded_at = match &award {
        Some(award) => {
            if let Some(reason) = &award.closed_reason {
                return Err(Refusal::AwardClosed { section: section_id.to_owned(), reason: reason.clone() }.into());
            }
            if award.winner_uscc != body.supplier_uscc {
                return Err(Refusal::NotTheWinner { section: section_id.to_owned() }.into());
            }
            award.awarded_at
        }
        None if body.awarded_at.is_some() => from_timestamp("awarded_at", body.awarded_at)?,
        None => return Err(Refusal::AwardUnknown { section: section_id.to_owned() }.into()),
    };
    let terms = terms(body, centre.as_str(), awarded_at)?;
    let now = api.clock.now();
    let lpr = rules::lpr_history(&api.pool).await.map_err(failed("reading the LPR"))?;
    terms.check(&lpr, jinfu_ledger::beijing::date(now)).map_err(|bad| invalid(bad.0))?;
    let centre_rules = rules::centre_rules(&api.pool, centre.as_str()).await.map_err(failed("reading centre rules"))?;
    let sign_by = pending(centre_rules.sign_by(&api.calendar.current(), jinfu_ledger::beijing::date(awarded_at)))?;
    let hash = request_hash(&terms.canonical_text());
    let mut transaction = api.begin().await?;
    if let Some(existing) = store::lock(&mut transaction, centre.as_str(), &terms.contract_id).await.map_err(failed("reading a contract"))? {
        if existing.draft_hash != hash || !super::may_see(&caller, &existing) {
            return Err(Status::already_exists(format!("contract {} exists with other terms", terms.contract_id)));
        }
        return Ok(Response::new(view(api, &existing).await?));
    }
    store::insert_draft(&mut transaction, &terms, sign_by, &hash, &caller.party, now).await.map_err(failed("storing a draft"))?;
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &terms.contract_id,
        "contract.drafted",
        json!({
            "contract_id": terms.contract_id, "section_id": terms.section_id, "purchaser_uscc": terms.purchaser_uscc, "supplier_uscc": terms.supplier_uscc,
            "amount": yuan(terms.amount.fen()), "sign_by": sign_by,
        }),
    );
    let contract = finish(transaction, events, centre.as_str(), &terms.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}

/// Writes the events, re-reads the contract and commits.
pub(super) async fn finish(mut transaction: Tx, events: Events<'_>, centre_id: &str, contract_id: &str) -> Result<ContractRow, Status> {
    events.insert(&mut transaction).await.map_err(failed("writing events"))?;
    let contract = store::get(&mut *transaction, centre_id, contract_id).await.map_err(failed("reading a contract"))?;
    transaction.commit().await.map_err(failed("committing"))?;
    contract.ok_or_else(|| super::not_found(contract_id))
}

/// A deadline, or `None` while it needs a calendar year not loaded yet (the sweeper dates it
/// later); never a reason to refuse the act it follows.
pub(super) fn pending<T>(deadline: Result<T, CalendarError>) -> Result<Option<T>, Status> {
    match deadline {
        Ok(deadline) => Ok(Some(deadline)),
        Err(CalendarError::NoDataForYear(_)) => Ok(None),
        Err(other) => Err(fields::internal("computing a deadline", other)),
    }
}

pub(super) async fn get(api: &ContractApi, request: Request<pb::ContractRef>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, READERS, &request.get_ref().centre_id)?;
    let contract = api.visible(&caller, &centre, &request.get_ref().contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}

/// Contracts a list returns at most.
const LIST_MAX: i64 = 500;

pub(super) async fn list(api: &ContractApi, request: Request<pb::ListContractsRequest>) -> Result<Response<pb::ListContractsResponse>, Status> {
    let (caller, centre) = ContractApi::caller(&request, READERS, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let section = (!body.section_id.is_empty()).then_some(body.section_id.as_str());
    let party = matches!(caller.role, Role::Purchaser | Role::Supplier).then_some(caller.party.as_str());
    let rows = store::list(&api.pool, centre.as_str(), section, party, LIST_MAX).await.map_err(failed("listing contracts"))?;
    let mut contracts = Vec::new();
    for row in rows.iter().filter(|row| super::may_see(&caller, row)) {
        let contract = view(api, row).await?;
        if !body.late_only || contract.clocks.iter().any(|clock| clock.late) {
            contracts.push(contract);
        }
    }
    Ok(Response::new(pb::ListContractsResponse { contracts }))
}

/// The party `caller` signs as: the purchaser or the supplier of the contract, for itself.
fn signing_party(caller: &Caller, contract: &ContractRow) -> Result<Party, Status> {
    match (caller.role, contract.party_of(&caller.party)) {
        (Role::Purchaser, Some(Party::Purchaser)) => Ok(Party::Purchaser),
        (Role::Supplier, Some(Party::Supplier)) => Ok(Party::Supplier),
        _ => Err(Status::permission_denied("only the contract's purchaser or supplier signs it, for itself")),
    }
}

pub(super) async fn sign(api: &ContractApi, request: Request<pb::SignContractRequest>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, &[Role::Purchaser, Role::Supplier], &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let signature = required_text("signature", &body.signature)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    let party = signing_party(&caller, &contract)?;
    let signing = domain::sign(
        ContractStatus::parse(&contract.status).unwrap_or(ContractStatus::Terminated),
        party,
        contract.purchaser_signed_at,
        contract.supplier_signed_at,
        now,
    )?;
    if signing == Signing::AlreadySigned {
        return Ok(Response::new(view(api, &contract).await?));
    }
    let key = rules::party_key(&mut *transaction, centre.as_str(), &caller.party, &body.key_ref).await.map_err(failed("reading a key"))?;
    let unknown = || Refusal::UnknownKey { party: caller.party.clone(), key_ref: fields::clip(&body.key_ref, 64) };
    let (scheme, public_key) = key.ok_or_else(unknown)?;
    let scheme: Scheme = scheme.parse().map_err(failed("reading a key's scheme"))?;
    let verifying = VerifyingKey::from_hex(scheme, &public_key).map_err(failed("reading a stored key"))?;
    if verifying.verify(contract.canonical_text.as_bytes(), signature).is_err() {
        return Err(Refusal::BadSignature { key_ref: body.key_ref.clone() }.into());
    }
    store::record_signature(&mut transaction, &contract, party, &body.key_ref, signature, now).await.map_err(failed("storing a signature"))?;
    let mut events = Events::new(&api.events_topic);
    if let Signing::Completes { signed_at } = signing {
        let centre_rules = rules::centre_rules(&mut *transaction, centre.as_str()).await.map_err(failed("reading centre rules"))?;
        let signed_on = jinfu_ledger::beijing::date(signed_at);
        let disclose_by = pending(centre_rules.disclose_by(&api.calendar.current(), signed_on))?;
        let lpr = rules::lpr_history(&mut *transaction).await.map_err(failed("reading the LPR"))?;
        let rate = domain::rate_at_signing(&contract.agreed_rate(), signed_on, &lpr);
        store::activate(&mut transaction, &contract, signed_at, disclose_by, rate.kind).await.map_err(failed("activating a contract"))?;
        events.push(
            centre.as_str(),
            &contract.contract_id,
            "contract.signed",
            json!({
                "contract_id": contract.contract_id, "section_id": contract.section_id, "supplier_uscc": contract.supplier_uscc,
                "purchaser_uscc": contract.purchaser_uscc, "amount": yuan(contract.amount_fen), "signed_at": jinfu_ledger::beijing::rfc3339(signed_at),
                "sign_by": contract.sign_by, "late": contract.sign_by.is_some_and(|sign_by| signed_on > sign_by),
                "publish_by": disclose_by.map(|(publish, _)| publish), "file_by": disclose_by.map(|(_, file)| file),
            }),
        );
    }
    let contract = finish(transaction, events, centre.as_str(), &contract.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}

pub(super) async fn disclose(api: &ContractApi, request: Request<pb::RecordDisclosureRequest>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, PURCHASER_SIDE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let filing = match pb::record_disclosure_request::Kind::try_from(body.kind) {
        Ok(pb::record_disclosure_request::Kind::Publication) => false,
        Ok(pb::record_disclosure_request::Kind::Filing) => true,
        _ => return Err(invalid("kind must be PUBLICATION or FILING")),
    };
    let reference = printable("reference", required_text("reference", &body.reference)?)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    let Some(signed_at) = contract.signed_at else { return Err(Refusal::NotSigned.into()) };
    let mut events = Events::new(&api.events_topic);
    if store::record_disclosure(&mut transaction, &contract, filing, reference, now).await.map_err(failed("recording a disclosure"))? {
        let (kind, due) = if filing { ("contract.filed", contract.file_by) } else { ("contract.published", contract.publish_by) };
        let late = due.is_some_and(|due| jinfu_ledger::beijing::date(now) > due);
        events.push(
            centre.as_str(),
            &contract.contract_id,
            kind,
            json!({
                "contract_id": contract.contract_id, "section_id": contract.section_id, "reference": reference, "due_on": due, "late": late,
                "signed_at": jinfu_ledger::beijing::rfc3339(signed_at),
            }),
        );
    }
    let contract = finish(transaction, events, centre.as_str(), &contract.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}

pub(super) async fn amend(api: &ContractApi, request: Request<pb::AmendContractRequest>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, PURCHASER_SIDE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let amount = fen("new_amount_fen", body.new_amount_fen)?;
    if !amount.is_positive() {
        return Err(invalid("new_amount_fen: more than 0"));
    }
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    if contract.status != ContractStatus::Active.code() {
        return Err(
            Refusal::WrongStatus { status: ContractStatus::parse(&contract.status).map_or("unknown", ContractStatus::code), what: "an amendment" }.into()
        );
    }
    let invoiced =
        crate::store::invoices::contract_total(&mut transaction, centre.as_str(), &contract.contract_id).await.map_err(failed("summing invoices"))?;
    if amount.fen() < invoiced {
        return Err(Refusal::AmountBelowInvoiced { amount_fen: amount.fen(), invoiced_fen: invoiced }.into());
    }
    let terms: Vec<_> = store::milestones(&mut *transaction, centre.as_str(), &contract.contract_id)
        .await
        .map_err(failed("reading milestones"))?
        .iter()
        .map(|m| m.term)
        .collect();
    store::amend(&mut transaction, &contract, amount, why, &caller.party, now).await.map_err(failed("storing an amendment"))?;
    store::replace_milestones(&mut transaction, centre.as_str(), &contract.contract_id, &domain::milestone_amounts(&terms, amount))
        .await
        .map_err(failed("updating milestones"))?;
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "contract.amended",
        json!({ "contract_id": contract.contract_id, "section_id": contract.section_id, "old_amount": yuan(contract.amount_fen), "new_amount": yuan(amount.fen()), "reason": why }),
    );
    let contract = finish(transaction, events, centre.as_str(), &contract.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}

pub(super) async fn terminate(api: &ContractApi, request: Request<pb::TerminateContractRequest>) -> Result<Response<pb::Contract>, Status> {
    let (caller, centre) = ContractApi::caller(&request, PURCHASER_SIDE, &request.get_ref().centre_id)?;
    let body = request.get_ref();
    let paid: Fen = fen("paid_fen", body.paid_fen)?;
    let why = reason(&body.reason)?;
    let now = api.clock.now();
    let mut transaction = api.begin().await?;
    let contract = api.lock_visible(&mut transaction, &caller, &centre, &body.contract_id).await?;
    if contract.status == ContractStatus::Terminated.code() {
        return Ok(Response::new(view(api, &contract).await?));
    }
    if paid.fen() > contract.amount_fen {
        return Err(invalid("paid_fen: at most the contract amount"));
    }
    store::terminate(&mut transaction, &contract, why, paid, now).await.map_err(failed("terminating a contract"))?;
    let mut events = Events::new(&api.events_topic);
    events.push(
        centre.as_str(),
        &contract.contract_id,
        "contract.terminated",
        json!({ "contract_id": contract.contract_id, "section_id": contract.section_id, "reason": why, "paid": yuan(paid.fen()), "was": contract.status }),
    );
    let contract = finish(transaction, events, centre.as_str(), &contract.contract_id).await?;
    Ok(Response::new(view(api, &contract).await?))
}
