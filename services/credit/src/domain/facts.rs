//! Facts of the other services that become proposals (never bans: a supervisor who did not
//! propose confirms or dismisses them), decided from one event without I/O:
//! - `contract.deadline_breached` for the signing clock when only the supplier has not signed a
//!   drafted contract: the supplier refused to sign (实施条例 art. 72, `refusing_to_sign`);
//! - `payment.overdue`: the purchaser did not pay an invoice by its due date
//!   (保障中小企业款项支付条例, `late_payment`: recorded, never debarred).
//!
//! - `collusion.lead` (ledger): one payer account funded several bidders of a section
//!   (招标投标法实施条例 art. 40(6)): a `collusion` proposal for each bidder it names. The ledger
//!   publishes a lead only once the section's bids are opened, so a proposal never names the
//!   bidder of a sealed section.
//!
//! Other events propose nothing.

use serde_json::Value;

use super::Behaviour;

/// A proposal a fact calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactProposal {
    /// Stable for the fact, so a redelivered or repeated event proposes once.
    pub proposal_id: String,
    pub subject_uscc: String,
    pub behaviour: Behaviour,
    /// `<publisher>:<event type>`.
    pub source: String,
    pub evidence_refs: Vec<String>,
    pub summary: String,
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str).filter(|text| !text.is_empty())
}

/// A proposal id of at most 64 characters: `<prefix><key>`, the key hashed when too long.
fn proposal_id(prefix: &str, key: &str) -> String {
    let plain = format!("{prefix}{key}");
    if plain.len() <= 64 {
        return plain;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("{prefix}{}", digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect::<String>())
}

/// The proposals `event_type` from `publisher` with `data` calls for (none for most events);
/// `event_id` is kept as evidence.
pub fn proposals_from(publisher: &str, event_type: &str, event_id: &str, data: &Value) -> Vec<FactProposal> {
    if (publisher, event_type) == ("ledger", "collusion.lead") {
        return collusion(event_id, data);
    }
    proposal_from(publisher, event_type, event_id, data).into_iter().collect()
}

/// One `collusion` proposal per bidder a lead names.
fn collusion(event_id: &str, data: &Value) -> Vec<FactProposal> {
    let (Some(section), Some(payer)) = (text(data, "section_id"), text(data, "payer_account")) else { return Vec::new() };
    let bidders: Vec<&str> = data.get("bidder_usccs").and_then(Value::as_array).map(|list| list.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    bidders
        .iter()
        .map(|bidder| FactProposal {
            proposal_id: proposal_id("ledger:collusion_lead:", &format!("{section}:{payer}:{bidder}")),
            subject_uscc: (*bidder).to_owned(),
            behaviour: Behaviour::Collusion,
            source: "ledger:collusion_lead".into(),
            evidence_refs: vec![format!("ledger:{event_id}"), format!("section:{section}"), format!("payer_account:{payer}")],
            summary: format!("同一账户 {payer} 为标段 {section} 的 {} 家投标人缴纳保证金", bidders.len()),
        })
        .collect()
}

/// The proposal `event_type` from `publisher` with `data` calls for, if any; `event_id` is kept
/// as evidence.
fn proposal_from(publisher: &str, event_type: &str, event_id: &str, data: &Value) -> Option<FactProposal> {
    let evidence = |what: String| vec![format!("{publisher}:{event_id}"), what];
    match (publisher, event_type) {
        ("contract", "contract.deadline_breached") if text(data, "clock") == Some("signing") && text(data, "parties") == Some("supplier") => {
            let contract = text(data, "contract_id")?;
            Some(FactProposal {
                proposal_id: proposal_id("contract:refusing_to_sign:", contract),
                subject_uscc: text(data, "supplier_uscc")?.to_owned(),
                behaviour: Behaviour::RefusingToSign,
                source: "contract:deadline_breached".into(),
                evidence_refs: evidence(format!("contract:{contract}")),
                summary: format!("中标供应商未在 {} 前签订合同 {contract}（采购人已签订）", text(data, "due_on").unwrap_or("—")),
            })
        }
        ("contract", "payment.overdue") => {
            let invoice = text(data, "invoice_no")?;
            Some(FactProposal {
                proposal_id: proposal_id("contract:late_payment:", invoice),
                subject_uscc: text(data, "purchaser_uscc")?.to_owned(),
                behaviour: Behaviour::LatePayment,
                source: "contract:payment_overdue".into(),
                evidence_refs: evidence(format!("invoice:{invoice}")),
                summary: format!(
                    "采购人逾期未支付合同 {} 发票 {invoice}，到期日 {}，未付 {} 元",
                    text(data, "contract_id").unwrap_or("—"),
                    text(data, "due_on").unwrap_or("—"),
                    text(data, "outstanding").unwrap_or("—")
                ),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUPPLIER: &str = "91520100MA6DT1XX0B";
    const PURCHASER: &str = "12520100MB1234567X";

    fn breach(parties: &str, clock: &str) -> Value {
        json!({ "clock": clock, "section_id": "S-1", "contract_id": "HT-1", "due_on": "2026-03-05", "parties": parties,
                "supplier_uscc": SUPPLIER, "purchaser_uscc": PURCHASER, "detail": null })
    }

    #[test]
    fn only_a_supplier_that_alone_did_not_sign_is_proposed_for_refusing_to_sign() {
        let proposal = proposal_from("contract", "contract.deadline_breached", "E-1", &breach("supplier", "signing")).unwrap();
        assert_eq!((proposal.subject_uscc.as_str(), proposal.behaviour), (SUPPLIER, Behaviour::RefusingToSign));
        assert_eq!(proposal.proposal_id, "contract:refusing_to_sign:HT-1");
        assert_eq!(proposal.evidence_refs, ["contract:E-1", "contract:HT-1"]);
        assert_eq!(proposal_from("contract", "contract.deadline_breached", "E-1", &breach("purchaser,supplier", "signing")), None);
        assert_eq!(proposal_from("contract", "contract.deadline_breached", "E-1", &breach("purchaser", "signing")), None);
        assert_eq!(proposal_from("contract", "contract.deadline_breached", "E-1", &breach("supplier", "publication")), None);
        let award = json!({ "clock": "signing", "contract_id": null, "parties": "supplier", "supplier_uscc": SUPPLIER });
        assert_eq!(proposal_from("contract", "contract.deadline_breached", "E-1", &award), None);
    }

    #[test]
    fn an_overdue_payment_is_a_late_payment_proposal_for_the_purchaser_once_per_invoice() {
        let data = json!({ "invoice_no": "26522000000000000101", "contract_id": "HT-1", "due_on": "2026-03-16", "outstanding": "30000.00",
                           "purchaser_uscc": PURCHASER, "supplier_uscc": SUPPLIER });
        let first = proposal_from("contract", "payment.overdue", "E-1", &data).unwrap();
        let again = proposal_from("contract", "payment.overdue", "E-2", &data).unwrap();
        assert_eq!(first.proposal_id, again.proposal_id, "one proposal per invoice whatever the event id");
        assert_eq!((first.subject_uscc.as_str(), first.behaviour), (PURCHASER, Behaviour::LatePayment));
        assert!(proposals_from("ledger", "deposit.received", "E-3", &data).is_empty());
    }

    #[test]
    fn a_collusion_lead_proposes_each_bidder_it_names_once() {
        let lead = json!({ "section_id": "GZ-2026-0042-01", "payer_account": "2402001029200012345", "bidder_usccs": [SUPPLIER, PURCHASER], "rule": "x" });
        let proposals = proposals_from("ledger", "collusion.lead", "E-9", &lead);
        let subjects: Vec<&str> = proposals.iter().map(|p| p.subject_uscc.as_str()).collect();
        assert_eq!(subjects, [SUPPLIER, PURCHASER]);
        assert!(proposals.iter().all(|p| p.behaviour == Behaviour::Collusion && p.proposal_id.len() <= 64));
        assert_ne!(proposals[0].proposal_id, proposals[1].proposal_id);
        let again = proposals_from("ledger", "collusion.lead", "E-10", &lead);
        let ids = |list: &[FactProposal]| list.iter().map(|p| p.proposal_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&again), ids(&proposals), "the same lead told again proposes the same ids");
    }

    #[test]
    fn long_keys_are_hashed_into_64_characters() {
        let long = "C".repeat(64);
        let id = proposal_id("contract:refusing_to_sign:", &long);
        assert_eq!(id.len(), "contract:refusing_to_sign:".len() + 32);
    }
}
