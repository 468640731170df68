//! Contract rules without I/O: plain types and decisions that take `today` (a Beijing date) and
//! the facts. The domain never sees an API (`pb::`) type; `api/` converts at the edge and
//! `store/` persists.

pub mod accounts;
pub mod clocks;
pub mod contracts;
pub mod invoices;
pub mod refusals;
pub mod rules;

pub use self::refusals::Refusal;

use jinfu_platform::coded;

coded! {
    /// The tendering regime: procurement (政府采购) or engineering (工程建设招投标).
    Regime { Procurement = "procurement", Engineering = "engineering" }
}

coded! {
    /// The supplier's size when the contract is concluded (条例 art. 3).
    Scale { Micro = "micro", Small = "small", Medium = "medium", Large = "large" }
}

impl Scale {
    /// Micro, small and medium enterprises are SMEs: the payment law protects them.
    pub fn is_sme(self) -> bool {
        !matches!(self, Scale::Large)
    }
}

coded! {
    /// What starts a milestone's payment clock.
    MilestoneKind {
        /// Prepayment (预付款): from signing.
        Prepayment = "prepayment",
        /// On delivery: from the supplier's request for acceptance.
        Delivery = "delivery",
        /// On acceptance (验收合格): from the result, or the end of the acceptance period when the
        /// purchaser records it late (条例 art. 10).
        Acceptance = "acceptance",
        /// On settlement (结算): from the confirmed settlement amount (条例 art. 9).
        Settlement = "settlement",
    }
}

coded! {
    /// How a security is given.
    SecurityForm { None = "none", Cash = "cash", Guarantee = "guarantee" }
}

coded! {
    /// OCDS contract statuses.
    ContractStatus { Pending = "pending", Active = "active", Terminated = "terminated" }
}

coded! {
    /// Peppol invoice-response states.
    InvoiceStatus {
        Received = "received",
        UnderQuery = "under_query",
        ConditionallyAccepted = "conditionally_accepted",
        Accepted = "accepted",
        Paid = "paid",
    }
}

coded! {
    /// The agreed overdue-rate kind (条例 art. 17).
    RateKind { Statutory = "statutory", Fixed = "fixed", LprPlus = "lpr_plus" }
}

coded! {
    /// Which party must act.
    Party { Purchaser = "purchaser", Supplier = "supplier" }
}

/// A unified social credit code as the platform takes it: 18 characters of GB 32100's set,
/// upper-case, with a correct check character.
pub fn is_uscc(text: &str) -> bool {
    jinfu_ledger::ids::Uscc::is_canonical(text)
}

/// A contract or payment reference: 1-64 ASCII letters, digits, `-`, `_` or `.`.
pub fn is_reference(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// An e-invoice number: 8-20 digits (a fully digital invoice has 20).
pub fn is_invoice_no(text: &str) -> bool {
    (8..=20).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_do_not_parse() {
        for status in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(status.code()), Some(*status));
        }
        assert_eq!(MilestoneKind::parse("on_delivery"), None);
        assert!(Scale::Small.is_sme() && !Scale::Large.is_sme());
    }

    #[test]
    fn identifiers_are_checked_by_shape() {
        let valid = jinfu_ledger::ids::Uscc::with_check_character("91520100MA6DKXXXX").unwrap().as_str().to_owned();
        assert!(is_uscc(&valid) && !is_uscc(&valid.to_ascii_lowercase()) && !is_uscc("123"));
        let wrong_check = format!("{}{}", &valid[..17], if valid.ends_with('0') { '1' } else { '0' });
        assert!(!is_uscc(&wrong_check));
        assert!(is_reference("HT-2026.001_a") && !is_reference("") && !is_reference("a b"));
        assert!(is_invoice_no("26522000000012345678") && !is_invoice_no("1234567") && !is_invoice_no("2652200000001234567X"));
    }
}
