//! A contract's legal clocks — signing, publication, filing, acceptance — and where each stands
//! on a day: done in time, done late, running, or breached (not done and past its last day).
//! A breach is published once per clock (`contract.deadline_breached`) naming who is late.

use chrono::{DateTime, NaiveDate, Utc};

use super::Party;

/// One clock of a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// `signing`, `publication`, `filing`, `acceptance.<milestone>`.
    pub name: String,
    pub due_on: NaiveDate,
    pub done_at: Option<DateTime<Utc>>,
    /// Who must act (both, for a contract neither party signed).
    pub parties: Vec<Party>,
}

impl Clock {
    /// Done after its last day, or not done and the last day has passed.
    pub fn late(&self, today: NaiveDate) -> bool {
        match self.done_at {
            Some(done) => jinfu_ledger::beijing::date(done) > self.due_on,
            None => today > self.due_on,
        }
    }

    /// Not done and past its last day: a breach to publish.
    pub fn breached(&self, today: NaiveDate) -> bool {
        self.done_at.is_none() && today > self.due_on
    }

    /// The parties as published: `purchaser`, `supplier` or `purchaser,supplier`.
    pub fn party_codes(&self) -> String {
        self.parties.iter().map(|party| party.code()).collect::<Vec<_>>().join(",")
    }
}

/// The facts the clocks of one contract come from.
#[derive(Debug, Clone, Default)]
pub struct ClockFacts {
    pub sign_by: Option<NaiveDate>,
    pub purchaser_signed_at: Option<DateTime<Utc>>,
    pub supplier_signed_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub publish_by: Option<NaiveDate>,
    pub published_at: Option<DateTime<Utc>>,
    pub file_by: Option<NaiveDate>,
    pub filed_at: Option<DateTime<Utc>>,
    /// Per acceptance requested: milestone, last day, when recorded.
    pub acceptances: Vec<(u32, Option<NaiveDate>, Option<DateTime<Utc>>)>,
}

/// Every clock that has started and is dated (a deadline pending the calendar is left out
/// until the sweeper dates it), in the order the law runs them.
pub fn clocks(facts: &ClockFacts) -> Vec<Clock> {
    let mut clocks = Vec::new();
    if let Some(sign_by) = facts.sign_by {
        let mut parties = Vec::new();
        if facts.purchaser_signed_at.is_none() {
            parties.push(Party::Purchaser);
        }
        if facts.supplier_signed_at.is_none() {
            parties.push(Party::Supplier);
        }
        if parties.is_empty() {
            // Signed: the later signature is the one that was or was not in time.
            let last = if facts.purchaser_signed_at >= facts.supplier_signed_at { Party::Purchaser } else { Party::Supplier };
            parties.push(last);
        }
        clocks.push(Clock { name: "signing".into(), due_on: sign_by, done_at: facts.signed_at, parties });
    }
    if let Some(due_on) = facts.publish_by {
        clocks.push(Clock { name: "publication".into(), due_on, done_at: facts.published_at, parties: vec![Party::Purchaser] });
    }
    if let Some(due_on) = facts.file_by {
        clocks.push(Clock { name: "filing".into(), due_on, done_at: facts.filed_at, parties: vec![Party::Purchaser] });
    }
    for (milestone, due_on, recorded) in &facts.acceptances {
        let Some(due_on) = due_on else { continue };
        clocks.push(Clock { name: format!("acceptance.{milestone}"), due_on: *due_on, done_at: *recorded, parties: vec![Party::Purchaser] });
    }
    clocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_contract_nobody_signed_makes_both_parties_late_after_its_last_day() {
        let facts = ClockFacts { sign_by: Some(day("2026-02-24")), ..ClockFacts::default() };
        let signing = &clocks(&facts)[0];
        assert_eq!(signing.party_codes(), "purchaser,supplier");
        assert!(!signing.breached(day("2026-02-24")));
        assert!(signing.breached(day("2026-02-25")));
        let purchaser_signed = ClockFacts { purchaser_signed_at: Some(at("2026-02-24T10:00:00+08:00")), ..facts };
        assert_eq!(clocks(&purchaser_signed)[0].party_codes(), "supplier");
    }

    #[test]
    fn done_late_is_late_but_not_a_breach_and_beijing_dates_decide() {
        let facts = ClockFacts {
            sign_by: Some(day("2026-02-24")),
            purchaser_signed_at: Some(at("2026-02-20T10:00:00+08:00")),
            supplier_signed_at: Some(at("2026-02-25T00:30:00+08:00")),
            signed_at: Some(at("2026-02-25T00:30:00+08:00")),
            publish_by: Some(day("2026-02-27")),
            published_at: Some(at("2026-02-27T23:59:00+08:00")),
            ..ClockFacts::default()
        };
        let all = clocks(&facts);
        // 00:30 Beijing on the 25th is 16:30 UTC on the 24th: still late in Beijing.
        assert!(all[0].late(day("2026-03-01")) && !all[0].breached(day("2026-03-01")));
        assert_eq!(all[0].party_codes(), "supplier");
        assert!(!all[1].late(day("2026-03-01")));
    }
}
