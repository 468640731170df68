//! Credit rules without I/O: behaviours and their legal bounds, debarment periods derived from
//! dates, scope, due process (the proposer never confirms), repair after the minimum publication
//! period, and the text of an eligibility receipt. Decisions take `now`.

pub mod facts;

use chrono::{DateTime, Months, Utc};
use jinfu_platform::coded;

coded! {
    /// What a subject did.
    Behaviour {
        FalseMaterials = "false_materials",
        Collusion = "collusion",
        Bribery = "bribery",
        RefusingToSign = "refusing_to_sign",
        UnilateralTermination = "unilateral_termination",
        FalseComplaint = "false_complaint",
        LoanDefault = "loan_default",
        GuaranteeFraud = "guarantee_fraud",
        NonPerformance = "non_performance",
        LatePayment = "late_payment",
    }
}

coded! {
    /// The tendering regime a record is limited to.
    Regime { Procurement = "procurement", Engineering = "engineering" }
}

coded! {
    /// Where a proposal stands.
    ProposalStatus { Pending = "pending", Confirmed = "confirmed", Dismissed = "dismissed" }
}

coded! {
    /// Where a record's repair (信用修复) stands.
    Repair { NotApplied = "none", Applied = "applied", Approved = "approved", Refused = "refused" }
}

/// What a repeated proposal must match: SHA-256 of its content.
pub fn proposal_hash(subject: &str, behaviour: Behaviour, source: &str, evidence_refs: &[String], summary: &str, regime: Option<Regime>) -> Vec<u8> {
    use sha2::Digest;
    let text = format!("{subject}|{}|{source}|{}|{summary}|{:?}", behaviour.code(), evidence_refs.join("\u{1f}"), regime.map(|r| r.code()));
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

/// A unified social credit code as the platform keeps them (valid, upper-case).
pub fn is_uscc(text: &str) -> bool {
    jinfu_ledger::ids::Uscc::is_canonical(text)
}

/// The minimum publication period before a subject may apply for repair (months from listing).
pub const MINIMUM_PUBLICATION_MONTHS: u32 = 3;

impl Behaviour {
    /// The debarment a behaviour allows, in months (inclusive bounds), or `None` when it is
    /// never debarred: 政府采购法 art. 77 and 实施条例 art. 72-73, one to three years; 招标投标法实施条例
    /// art. 67, collusion in engineering tenders, one to two years; a purchaser's late payment is
    /// recorded, not debarred.
    pub fn debarment_bounds(self, regime: Option<Regime>) -> Option<(u32, u32)> {
        match (self, regime) {
            (Behaviour::LatePayment, _) => None,
            // A record not limited to procurement also bars engineering tenders: the stricter bound.
            (Behaviour::Collusion, Some(Regime::Engineering) | None) => Some((12, 24)),
            _ => Some((12, 36)),
        }
    }
}

/// Why a request was refused: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a debarment for {behaviour} is {min} to {max} months, not {months}")]
    PeriodOutOfBounds { behaviour: &'static str, months: u32, min: u32, max: u32 },
    #[error("{behaviour} is recorded but never debarred")]
    NeverDebarred { behaviour: &'static str },
    #[error("the proposer of a fact does not confirm or dismiss it")]
    ProposerIsConfirmer,
    #[error("the proposal is {status}")]
    NotPending { status: &'static str },
    #[error("repair may be applied for from {from} (three months after listing)")]
    TooEarly { from: DateTime<Utc> },
    #[error("the record's repair is {state}")]
    RepairState { state: &'static str },
    #[error("a province-wide record needs a province centre")]
    NotProvince,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::PeriodOutOfBounds { .. } => "period_out_of_bounds",
            Refusal::NeverDebarred { .. } => "never_debarred",
            Refusal::ProposerIsConfirmer => "proposer_is_confirmer",
            Refusal::NotPending { .. } => "not_pending",
            Refusal::TooEarly { .. } => "too_early",
            Refusal::RepairState { .. } => "repair_state",
            Refusal::NotProvince => "not_province",
        }
    }
}

/// `months` calendar months after `at`, counted on the Beijing calendar (00:00 on 1 May in
/// Beijing plus 13 months is 00:00 on 1 June the next year in Beijing, whatever UTC says).
pub fn add_months(at: DateTime<Utc>, months: u32) -> Option<DateTime<Utc>> {
    jinfu_ledger::beijing::at(at).checked_add_months(Months::new(months)).map(|local| local.with_timezone(&Utc))
}

/// A ban: from (inclusive) until (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debarment {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Debarment {
    /// The ban of `months` months for `behaviour` from `from`, checked against the law's bounds;
    /// `None` for 0 months (a record without a ban).
    pub fn new(behaviour: Behaviour, regime: Option<Regime>, months: u32, from: DateTime<Utc>) -> Result<Option<Debarment>, Refusal> {
        if months == 0 {
            return Ok(None);
        }
        let Some((min, max)) = behaviour.debarment_bounds(regime) else { return Err(Refusal::NeverDebarred { behaviour: behaviour.code() }) };
        if !(min..=max).contains(&months) {
            return Err(Refusal::PeriodOutOfBounds { behaviour: behaviour.code(), months, min, max });
        }
        let until = add_months(from, months).ok_or(Refusal::PeriodOutOfBounds { behaviour: behaviour.code(), months, min, max })?;
        Ok(Some(Debarment { from, until }))
    }

    /// Whether the ban holds at `at`: from its first instant, and no longer at `until`.
    pub fn holds_at(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
}

/// Where a record applies: its centre (or, province-wide, every centre of that province) and,
/// when limited, one regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub centre_id: String,
    pub province_wide: bool,
    pub regime: Option<Regime>,
}

impl Scope {
    /// Whether a tender of `centre_id` (and `regime`, when known) is within the scope. Centre
    /// codes are six digits; a province is its first two (`520100` is in `520000`).
    pub fn covers(&self, centre_id: &str, regime: Option<Regime>) -> bool {
        let place = if self.province_wide { self.centre_id.get(..2) == centre_id.get(..2) } else { self.centre_id == centre_id };
        let kind = match (self.regime, regime) {
            (Some(limited), Some(asked)) => limited == asked,
            _ => true,
        };
        place && kind
    }
}

/// Due process: the party that proposed a fact does not decide it (parties compared trimmed and
/// case-folded, as the ledger's four-eyes rule does; an empty party never decides).
pub fn may_decide(proposed_by: &str, decider: &str) -> Result<(), Refusal> {
    let same = |one: &str, other: &str| one.trim().to_lowercase() == other.trim().to_lowercase();
    if decider.trim().is_empty() || same(proposed_by, decider) {
        return Err(Refusal::ProposerIsConfirmer);
    }
    Ok(())
}

/// A repair may be applied for once the minimum publication period from `listed_at` has passed.
pub fn may_apply_for_repair(listed_at: DateTime<Utc>, repair: Repair, now: DateTime<Utc>) -> Result<(), Refusal> {
    if !matches!(repair, Repair::NotApplied | Repair::Refused) {
        return Err(Refusal::RepairState { state: repair.code() });
    }
    let from = add_months(listed_at, MINIMUM_PUBLICATION_MONTHS).unwrap_or(listed_at);
    if now < from {
        return Err(Refusal::TooEarly { from });
    }
    Ok(())
}

/// The text an eligibility receipt signs (docs/credit.md, "Receipts").
pub fn receipt_text(
    centre_id: &str,
    subject: &str,
    regime: Option<Regime>,
    at: DateTime<Utc>,
    eligible: bool,
    barring: &[String],
    checked_at: DateTime<Utc>,
) -> String {
    let instant = |time: DateTime<Utc>| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "jinfu-credit-check-v1\ncentre_id={centre_id}\nsubject_uscc={subject}\nregime={}\nat={}\neligible={eligible}\nbarring={}\nchecked_at={}\n",
        regime.map_or("any", Regime::code),
        instant(at),
        barring.join(","),
        instant(checked_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_ban_holds_from_its_first_instant_and_not_at_its_end() {
        let from = at("2026-03-01T00:00:00+08:00");
        let ban = Debarment::new(Behaviour::FalseMaterials, None, 12, from).unwrap().unwrap();
        assert_eq!(ban.until, at("2027-03-01T00:00:00+08:00"));
        assert!(ban.holds_at(from) && ban.holds_at(at("2027-02-28T23:59:59+08:00")));
        assert!(!ban.holds_at(ban.until) && !ban.holds_at(at("2026-02-28T23:59:59+08:00")));
        // Months count on the Beijing calendar: 00:00 on 1 May + 13 months is 00:00 on 1 June.
        let may = Debarment::new(Behaviour::FalseMaterials, None, 13, at("2026-05-01T00:00:00+08:00")).unwrap().unwrap();
        assert_eq!(may.until, at("2027-06-01T00:00:00+08:00"));
    }

    #[test]
    fn periods_follow_the_law_per_behaviour() {
        let from = at("2026-03-01T00:00:00+08:00");
        assert_eq!(Debarment::new(Behaviour::Collusion, Some(Regime::Engineering), 36, from).unwrap_err().code(), "period_out_of_bounds");
        assert_eq!(Debarment::new(Behaviour::Collusion, None, 36, from).unwrap_err().code(), "period_out_of_bounds", "it would bar engineering tenders too");
        assert!(Debarment::new(Behaviour::Collusion, Some(Regime::Procurement), 36, from).is_ok());
        assert_eq!(Debarment::new(Behaviour::Bribery, None, 6, from).unwrap_err().code(), "period_out_of_bounds");
        assert_eq!(Debarment::new(Behaviour::LatePayment, None, 12, from).unwrap_err().code(), "never_debarred");
        assert_eq!(Debarment::new(Behaviour::LatePayment, None, 0, from), Ok(None));
    }

    #[test]
    fn a_province_record_covers_its_cities_and_a_city_record_only_itself() {
        let province = Scope { centre_id: "520000".into(), province_wide: true, regime: None };
        let city = Scope { centre_id: "520100".into(), province_wide: false, regime: Some(Regime::Engineering) };
        assert!(province.covers("520100", None) && province.covers("520300", Some(Regime::Procurement)) && !province.covers("530100", None));
        assert!(city.covers("520100", Some(Regime::Engineering)) && city.covers("520100", None));
        assert!(!city.covers("520300", Some(Regime::Engineering)) && !city.covers("520100", Some(Regime::Procurement)));
    }

    #[test]
    fn due_process_and_repair() {
        assert_eq!(may_decide("supervisor-1", "supervisor-1").unwrap_err().code(), "proposer_is_confirmer");
        assert_eq!(may_decide("Zhang-San", " zhang-san").unwrap_err().code(), "proposer_is_confirmer");
        assert_eq!(may_decide("ledger", "").unwrap_err().code(), "proposer_is_confirmer");
        assert!(may_decide("ledger", "supervisor-1").is_ok());
        let listed = at("2026-03-01T10:00:00+08:00");
        assert_eq!(may_apply_for_repair(listed, Repair::NotApplied, at("2026-06-01T09:59:59+08:00")).unwrap_err().code(), "too_early");
        assert!(may_apply_for_repair(listed, Repair::NotApplied, at("2026-06-01T10:00:00+08:00")).is_ok());
        assert_eq!(may_apply_for_repair(listed, Repair::Approved, at("2027-01-01T00:00:00+08:00")).unwrap_err().code(), "repair_state");
    }

    #[test]
    fn the_receipt_names_everything_it_answers() {
        let text =
            receipt_text("520100", "91520100000000001X", None, at("2026-03-01T00:00:00Z"), false, &["r-1".into(), "r-2".into()], at("2026-03-01T00:00:01Z"));
        assert_eq!(text, "jinfu-credit-check-v1\ncentre_id=520100\nsubject_uscc=91520100000000001X\nregime=any\nat=2026-03-01T00:00:00Z\neligible=false\nbarring=r-1,r-2\nchecked_at=2026-03-01T00:00:01Z\n");
    }
}
