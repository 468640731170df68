//! Who is told what about one event: a pure function of the event. Sealing: nothing planned
//! for a centre's operators names a bidder; a bidder is told only about its own deposit,
//! refund or guarantee.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{operators_of, Category};

/// An event as the consumer parsed it.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// `ledger`, `guarantee`, `contract`, `credit`, `loans`, or `trading`.
    pub source: &'a str,
    pub event_type: &'a str,
    pub centre_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub data: &'a Value,
}

/// One message to one recipient, before channels are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub recipient: String,
    pub category: Category,
    /// The template's name (`templates/<name>.j2`).
    pub template: &'static str,
    /// A legal notice: sent whatever the preferences say.
    pub legal: bool,
    /// The deadline the message is about, if any: an SMS about a deadline inside the quiet
    /// hours is not held back.
    pub deadline: Option<DateTime<Utc>>,
    /// The template's variables: the event's data, plus `centre_id`, `occurred_at`, `event_type`.
    pub vars: Value,
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str).filter(|text| !text.is_empty())
}

/// A deadline field: an RFC 3339 instant, or a Beijing date `YYYY-MM-DD` (the end of that day).
fn until(data: &Value, key: &str) -> Option<DateTime<Utc>> {
    let text = text(data, key)?;
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.succ_opt().map(jinfu_ledger::beijing::start_of);
    }
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&Utc))
}

/// The messages `event` calls for (none for an event nobody needs to hear about).
pub fn plan(event: &Incoming<'_>) -> Vec<Message> {
    let data = event.data;
    let mut vars = match data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    vars.insert("centre_id".into(), json!(event.centre_id));
    vars.insert("occurred_at".into(), json!(event.occurred_at.to_rfc3339()));
    vars.insert("event_type".into(), json!(event.event_type));
    let vars = Value::Object(vars);
    let operators = operators_of(event.centre_id);
    let to = |recipient: Option<&str>, category, template, legal| -> Option<Message> {
        Some(Message { recipient: recipient?.to_owned(), category, template, legal, deadline: None, vars: vars.clone() })
    };
    let bidder = text(data, "bidder_uscc");
    let supplier = text(data, "supplier_uscc");
    let purchaser = text(data, "purchaser_uscc");
    let messages: Vec<Option<Message>> = match (event.source, event.event_type) {
        ("ledger", "deposit.received") => {
            let short = text(data, "status") == Some("short");
            vec![if short { to(bidder, Category::Deposit, "deposit_short", true) } else { to(bidder, Category::Deposit, "deposit_received", false) }]
        }
        ("ledger", "deposit.suspended") => {
            vec![to(bidder, Category::Deposit, "deposit_suspended", true), to(Some(&operators), Category::Alert, "operators_suspense", false)]
        }
        ("ledger", "refund.ordered") => vec![to(bidder, Category::Refund, "refund_ordered", false)],
        ("ledger", "refund.confirmed") => vec![to(bidder, Category::Refund, "refund_paid", false)],
        ("ledger", "refund.failed") => {
            vec![to(bidder, Category::Refund, "refund_failed", true), to(Some(&operators), Category::Alert, "operators_refund_failed", true)]
        }
        ("ledger", "deposit.forfeited") => vec![to(bidder, Category::Refund, "deposit_forfeited", true)],
        // A refund past its due date (after opening: the operators' message names no bidder anyway).
        ("ledger", "deposit.stale") => {
            vec![to(bidder, Category::Refund, "refund_overdue", true), to(Some(&operators), Category::Alert, "operators_refund_overdue", true)]
        }
        ("ledger", "suspense.return_failed") | ("ledger", "reconciliation.discrepancy") | ("ledger", "alert.notice_conflict") => {
            vec![to(Some(&operators), Category::Alert, "operators_alert", false)]
        }
        ("guarantee", "guarantee.issued") => vec![to(bidder, Category::Guarantee, "guarantee_issued", false)],
        ("guarantee", "guarantee.claim_paid") | ("guarantee", "guarantee.fraud_warning") => {
            vec![to(Some(&operators), Category::Alert, "operators_alert", false)]
        }
        ("contract", "award.recorded") => vec![deadline(to(supplier, Category::Contract, "contract_sign_by", true), until(data, "sign_by"))],
        ("contract", "contract.signed") => {
            vec![to(supplier, Category::Contract, "contract_signed", false), to(purchaser, Category::Contract, "contract_signed", false)]
        }
        ("contract", "contract.deadline_breached") => vec![
            to(supplier, Category::Contract, "contract_deadline_breached", true),
            to(purchaser, Category::Contract, "contract_deadline_breached", true),
            to(Some(&operators), Category::Alert, "contract_deadline_breached", true),
        ],
        ("contract", "invoice.received") => {
            vec![
                to(supplier, Category::Payment, "invoice_received", false),
                deadline(to(purchaser, Category::Payment, "invoice_objection_window", true), until(data, "object_by")),
            ]
        }
        ("contract", "invoice.accepted") if data.get("deemed").and_then(Value::as_bool) == Some(true) => {
            vec![to(supplier, Category::Payment, "invoice_deemed", false)]
        }
        ("contract", "payment.reminder") => vec![deadline(to(purchaser, Category::Payment, "payment_due", true), until(data, "due_on"))],
        ("contract", "payment.overdue") => {
            vec![to(purchaser, Category::Payment, "payment_overdue", true), to(supplier, Category::Payment, "payment_overdue_supplier", false)]
        }
        ("contract", "invoice.paid") => vec![to(supplier, Category::Payment, "invoice_paid", false)],
        ("credit", "credit.proposal_received") => vec![to(text(data, "subject_uscc"), Category::Credit, "credit_proposed", true)],
        ("credit", "credit.record_confirmed") => vec![to(text(data, "subject_uscc"), Category::Credit, "credit_record", true)],
        ("credit", "credit.proposal_dismissed") => vec![to(text(data, "subject_uscc"), Category::Credit, "credit_dismissed", false)],
        ("credit", "credit.record_repaired") | ("credit", "credit.repair_refused") => {
            vec![to(text(data, "subject_uscc"), Category::Credit, "credit_repair_decided", true)]
        }
        ("loans", "loan.approved") | ("loans", "loan.rejected") => vec![to(supplier, Category::Payment, "loan_decided", false)],
        ("loans", "loan.disbursed") => {
            vec![to(supplier, Category::Payment, "loan_disbursed", false), to(purchaser, Category::Payment, "loan_account_locked", true)]
        }
        ("loans", "loan.confirmation_requested") => {
            vec![deadline(to(purchaser, Category::Payment, "loan_confirmation", true), until(data, "due_on"))]
        }
        ("loans", "loan.closed") => vec![to(supplier, Category::Payment, "loan_closed", false)],
        ("loans", "loan.delinquent") | ("loans", "loan.defaulted") => vec![to(supplier, Category::Payment, "loan_overdue", true)],
        _ => Vec::new(),
    };
    messages.into_iter().flatten().collect()
}

fn deadline(message: Option<Message>, at: Option<DateTime<Utc>>) -> Option<Message> {
    message.map(|message| Message { deadline: at, ..message })
}

/// A deadline a party is reminded of the working day before, unless its fact happens first.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    /// What fulfils it: `sign:<centre>:<section>`, `publish:<centre>:<contract>`,
    /// `object:<centre>:<invoice>`.
    pub key: String,
    pub recipient: String,
    pub template: &'static str,
    /// The last day (Beijing date): the deadline is its end.
    pub due_on: chrono::NaiveDate,
    pub vars: Value,
}

fn date(data: &Value, key: &str) -> Option<chrono::NaiveDate> {
    text(data, key).and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
}

/// The deadlines `event` starts: a supplier's contract signing (award.recorded), a purchaser's
/// contract publication (contract.signed), a purchaser's invoice objection window
/// (invoice.received).
pub fn deadlines(event: &Incoming<'_>) -> Vec<Deadline> {
    if event.source != "contract" {
        return Vec::new();
    }
    let data = event.data;
    let centre = event.centre_id;
    let mut vars = data.clone();
    if let Value::Object(map) = &mut vars {
        map.insert("centre_id".into(), json!(centre));
    }
    let deadline = |key: String, recipient: Option<&str>, template, due: Option<chrono::NaiveDate>| {
        Some(Deadline { key, recipient: recipient?.to_owned(), template, due_on: due?, vars: vars.clone() })
    };
    let found = match event.event_type {
        "award.recorded" => deadline(
            format!("sign:{centre}:{}", text(data, "section_id").unwrap_or_default()),
            text(data, "supplier_uscc"),
            "reminder_sign_by",
            date(data, "sign_by"),
        ),
        "contract.signed" => deadline(
            format!("publish:{centre}:{}", text(data, "contract_id").unwrap_or_default()),
            text(data, "purchaser_uscc"),
            "reminder_publish_by",
            date(data, "publish_by"),
        ),
        "invoice.received" => deadline(
            format!("object:{centre}:{}", text(data, "invoice_no").unwrap_or_default()),
            text(data, "purchaser_uscc"),
            "reminder_object_by",
            date(data, "object_by"),
        ),
        _ => None,
    };
    found.into_iter().collect()
}

/// The deadlines `event` fulfils (their keys): a contract signed, published; an invoice
/// objected to or accepted.
pub fn fulfilled(event: &Incoming<'_>) -> Vec<String> {
    if event.source != "contract" {
        return Vec::new();
    }
    let (data, centre) = (event.data, event.centre_id);
    let key = |prefix: &str, field: &str| text(data, field).map(|value| format!("{prefix}:{centre}:{value}"));
    let found = match event.event_type {
        "contract.signed" => key("sign", "section_id"),
        "contract.published" => key("publish", "contract_id"),
        "invoice.objected" | "invoice.accepted" => key("object", "invoice_no"),
        _ => None,
    };
    found.into_iter().collect()
}

/// The reminder of a deadline, as a message.
pub fn deadline_reminder(deadline: &Deadline, due_at: DateTime<Utc>) -> Message {
    let category = if deadline.template == "reminder_object_by" { Category::Payment } else { Category::Contract };
    Message { recipient: deadline.recipient.clone(), category, template: deadline.template, legal: true, deadline: Some(due_at), vars: deadline.vars.clone() }
}

/// The reminder a bidder gets when its deposit is still short 24 hours before the deadline.
pub fn deposit_reminder(centre_id: &str, section_id: &str, bidder_uscc: &str, held_fen: i64, required_fen: i64, deadline: DateTime<Utc>) -> Message {
    Message {
        recipient: bidder_uscc.to_owned(),
        category: Category::Deposit,
        template: "deposit_reminder",
        legal: true,
        deadline: Some(deadline),
        vars: json!({
            "centre_id": centre_id, "section_id": section_id, "bidder_uscc": bidder_uscc, "held_fen": held_fen,
            "required_fen": required_fen, "missing_fen": required_fen.saturating_sub(held_fen), "deposit_deadline": deadline.to_rfc3339(),
        }),
    }
}

/// The message that tells parties with matching interest tags about a new or changed tender.
pub fn tender_notice(centre_id: &str, section_id: &str, recipient: &str, data: &Value) -> Message {
    let mut vars = match data {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    vars.insert("centre_id".into(), json!(centre_id));
    vars.insert("section_id".into(), json!(section_id));
    Message { recipient: recipient.to_owned(), category: Category::Tender, template: "tender_changed", legal: false, deadline: None, vars: Value::Object(vars) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming<'a>(source: &'a str, event_type: &'a str, data: &'a Value) -> Incoming<'a> {
        Incoming { source, event_type, centre_id: "520100", occurred_at: Utc::now(), data }
    }

    #[test]
    fn a_short_deposit_is_a_legal_notice_to_the_bidder_alone() {
        let data = json!({"bidder_uscc": "91520100MA6DKQ1X2B", "status": "short", "section_id": "S1", "amount_fen": 100, "held_fen": 100, "required_fen": 500});
        let messages = plan(&incoming("ledger", "deposit.received", &data));
        assert_eq!(messages.len(), 1);
        assert_eq!((messages[0].recipient.as_str(), messages[0].template, messages[0].legal), ("91520100MA6DKQ1X2B", "deposit_short", true));
    }

    #[test]
    fn operators_are_told_of_a_suspended_transfer_and_the_bidder_of_its_own() {
        let data = json!({"bidder_uscc": "91520100MA6DKQ1X2B", "reason": "late", "amount_fen": 100});
        let recipients: Vec<String> = plan(&incoming("ledger", "deposit.suspended", &data)).into_iter().map(|message| message.recipient).collect();
        assert_eq!(recipients, ["91520100MA6DKQ1X2B", "operators:520100"]);
        let anonymous = json!({"reason": "unknown_sub_account", "amount_fen": 100});
        assert_eq!(plan(&incoming("ledger", "deposit.suspended", &anonymous)).len(), 1);
    }

    #[test]
    fn an_award_starts_a_signing_deadline_that_the_signed_contract_fulfils() {
        let award = json!({"section_id": "S1", "supplier_uscc": "91520100MA6DKQ1X2B", "sign_by": "2026-12-30"});
        let started = deadlines(&incoming("contract", "award.recorded", &award));
        assert_eq!(started.len(), 1);
        assert_eq!((started[0].key.as_str(), started[0].template), ("sign:520100:S1", "reminder_sign_by"));
        assert_eq!(started[0].due_on.to_string(), "2026-12-30");
        let pending = json!({"section_id": "S1", "supplier_uscc": "91520100MA6DKQ1X2B", "sign_by": null});
        assert!(deadlines(&incoming("contract", "award.recorded", &pending)).is_empty(), "no date yet: nothing to remind of");
        let signed = json!({"section_id": "S1", "contract_id": "C1", "purchaser_uscc": "12520100MB1234567X", "publish_by": "2027-01-04"});
        assert_eq!(fulfilled(&incoming("contract", "contract.signed", &signed)), ["sign:520100:S1"]);
        assert_eq!(deadlines(&incoming("contract", "contract.signed", &signed))[0].key, "publish:520100:C1");
    }

    #[test]
    fn a_payment_reminder_carries_its_deadline_and_unknown_events_plan_nothing() {
        let data = json!({"purchaser_uscc": "12520100MB1234567X", "due_on": "2027-01-04", "due_by": "contract"});
        let messages = plan(&incoming("contract", "payment.reminder", &data));
        assert_eq!(messages[0].deadline.map(|at| at.to_rfc3339()).as_deref(), Some("2027-01-04T16:00:00+00:00"));
        assert!(plan(&incoming("ledger", "reconciliation.completed", &data)).is_empty());
        assert!(plan(&incoming("trading", "deposit.received", &data)).is_empty());
    }
}
