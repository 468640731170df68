//! A centre's clocks and the deadlines they give. Every deadline is a Beijing date computed on
//! the national working-day calendar (`jinfu_ledger::calendar`): N working days after D is the
//! N-th working day after D (D not counted); N calendar days after D ending on a day off moves
//! to the next working day (民法典 art. 201-203). A deadline needing a year the calendar has no
//! data for is an error, never a guess.

use chrono::NaiveDate;
use jinfu_ledger::calendar::{Calendar, CalendarError};

/// A centre's clocks; [`CentreRules::LAW`] where the centre set none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentreRules {
    /// From the award notice to signing.
    pub sign_days: u32,
    pub sign_in_working_days: bool,
    /// Working days from signing to publication (实施条例 art. 50).
    pub publish_working_days: u32,
    /// Working days from signing to filing (政府采购法 art. 47).
    pub file_working_days: u32,
    /// Working days from the supplier's request to the acceptance result.
    pub acceptance_working_days: u32,
    /// Working days after receipt in which the purchaser may object to an invoice.
    pub objection_working_days: u32,
    /// Working days from invoice receipt to payment (the centre's own rule); 0: none.
    pub invoice_payment_working_days: u32,
}

impl CentreRules {
    /// The law's clocks, and Jinfu's defaults where the law sets none (acceptance: 10 working
    /// days; objection: 5 working days, the practice of Chongqing and Shanxi).
    pub const LAW: CentreRules = CentreRules {
        sign_days: 30,
        sign_in_working_days: false,
        publish_working_days: 2,
        file_working_days: 7,
        acceptance_working_days: 10,
        objection_working_days: 5,
        invoice_payment_working_days: 0,
    };

    /// The rules a centre asked for, each 0 replaced by the default; refused when a clock is
    /// longer than the law allows or out of range.
    pub fn with_defaults(asked: CentreRules) -> Result<CentreRules, String> {
        let pick = |value: u32, default: u32| if value == 0 { default } else { value };
        let rules = CentreRules {
            sign_days: pick(asked.sign_days, CentreRules::LAW.sign_days),
            sign_in_working_days: asked.sign_in_working_days,
            publish_working_days: pick(asked.publish_working_days, CentreRules::LAW.publish_working_days),
            file_working_days: pick(asked.file_working_days, CentreRules::LAW.file_working_days),
            acceptance_working_days: pick(asked.acceptance_working_days, CentreRules::LAW.acceptance_working_days),
            objection_working_days: pick(asked.objection_working_days, CentreRules::LAW.objection_working_days),
            invoice_payment_working_days: asked.invoice_payment_working_days,
        };
        // Signing: the law's 30 calendar days; counted in working days, at most 20 (never longer).
        let sign_max = if rules.sign_in_working_days { 20 } else { 30 };
        let limits = [
            ("sign_days", rules.sign_days, sign_max),
            ("publish_working_days", rules.publish_working_days, CentreRules::LAW.publish_working_days),
            ("file_working_days", rules.file_working_days, CentreRules::LAW.file_working_days),
            ("acceptance_working_days", rules.acceptance_working_days, 60),
            ("objection_working_days", rules.objection_working_days, 30),
            ("invoice_payment_working_days", rules.invoice_payment_working_days, 60),
        ];
        for (name, value, max) in limits {
            if value > max {
                return Err(format!("{name} is {value}; at most {max} (the legal maximum or the range the platform accepts)"));
            }
        }
        Ok(rules)
    }

    /// The last day to sign, from the award's date.
    pub fn sign_by(&self, calendar: &Calendar, awarded_on: NaiveDate) -> Result<NaiveDate, CalendarError> {
        if self.sign_in_working_days {
            calendar.add_working_days(awarded_on, self.sign_days)
        } else {
            calendar.add_calendar_days(awarded_on, self.sign_days)
        }
    }

    /// The last days to publish and to file, from the signing date.
    pub fn disclose_by(&self, calendar: &Calendar, signed_on: NaiveDate) -> Result<(NaiveDate, NaiveDate), CalendarError> {
        Ok((calendar.add_working_days(signed_on, self.publish_working_days)?, calendar.add_working_days(signed_on, self.file_working_days)?))
    }

    /// The last day to record an acceptance requested on `requested_on`.
    pub fn organise_by(&self, calendar: &Calendar, requested_on: NaiveDate) -> Result<NaiveDate, CalendarError> {
        calendar.add_working_days(requested_on, self.acceptance_working_days)
    }

    /// The last day to object to an invoice received on `received_on`.
    pub fn object_by(&self, calendar: &Calendar, received_on: NaiveDate) -> Result<NaiveDate, CalendarError> {
        calendar.add_working_days(received_on, self.objection_working_days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn zero_means_the_law_and_longer_than_the_law_is_refused() {
        let asked = CentreRules {
            sign_days: 0,
            publish_working_days: 0,
            file_working_days: 0,
            acceptance_working_days: 0,
            objection_working_days: 0,
            ..CentreRules::LAW
        };
        assert_eq!(CentreRules::with_defaults(asked), Ok(CentreRules::LAW));
        let longer = CentreRules { publish_working_days: 3, ..CentreRules::LAW };
        assert!(CentreRules::with_defaults(longer).unwrap_err().starts_with("publish_working_days is 3"));
    }

    // Spring Festival 2026 (国办发明电〔2025〕7号): holidays 15-23 February; make-up workdays
    // Saturday 14 February and Saturday 28 February.
    #[test]
    fn the_clocks_cross_the_spring_festival_2026() {
        let calendar = Calendar::china();
        let xuchang = CentreRules {
            sign_days: 2,
            sign_in_working_days: true,
            publish_working_days: 1,
            file_working_days: 1,
            acceptance_working_days: 1,
            ..CentreRules::LAW
        };
        // Award Friday 13 Feb: Saturday 14 is a make-up workday (1), then the holiday to the 23rd, Tuesday 24 is 2.
        assert_eq!(xuchang.sign_by(&calendar, day("2026-02-13")), Ok(day("2026-02-24")));
        // Signed Friday 13 Feb: publish and file by the make-up Saturday 14 (Xuchang: 1 working day).
        assert_eq!(xuchang.disclose_by(&calendar, day("2026-02-13")), Ok((day("2026-02-14"), day("2026-02-14"))));
        // The law: 2 and 7 working days from Friday 13 Feb: Sat 14 (1), Tue 24 (2); ... Mon 2 March (7):
        // 24, 25, 26, 27, Sat 28 (make-up) = 2..6, Mon 2 March = 7.
        assert_eq!(CentreRules::LAW.disclose_by(&calendar, day("2026-02-13")), Ok((day("2026-02-24"), day("2026-03-02"))));
        // 30 calendar days from 16 January is 15 February, a holiday: the next working day, 24 February.
        assert_eq!(CentreRules::LAW.sign_by(&calendar, day("2026-01-16")), Ok(day("2026-02-24")));
        // Acceptance asked on the make-up Saturday 28 Feb, Xuchang's 1 working day: Monday 2 March.
        assert_eq!(xuchang.organise_by(&calendar, day("2026-02-28")), Ok(day("2026-03-02")));
        // Objection window of 5 working days from Friday 13 Feb: 14, 24, 25, 26, 27.
        assert_eq!(CentreRules::LAW.object_by(&calendar, day("2026-02-13")), Ok(day("2026-02-27")));
    }
}
