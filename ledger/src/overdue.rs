//! Overdue-payment interest owed to a small or medium-sized supplier under 保障中小企业款项支付条例
//! (art. 15 of the 2020 text, State Council Decree 728; art. 17 of the text revised by Decree 802,
//! in force from 2025-06-01): an organ, public institution or large enterprise that pays late owes
//! interest. An agreed rate may not be below the one-year loan prime rate (LPR) at the time the
//! contract was concluded; without an agreement the rate is 0.05 % of the overdue amount per day.
//!
//! The one-year LPR history ships as data (`ledger/data/lpr-1y.txt`, complete up to the
//! 2025-05-20 announcement); later announcements are loaded at run time with
//! [`LprHistory::with_rate`]. Interest is summed exactly in decimal fen and rounded half up once,
//! at the end, and is returned with the runs of days ([`Segment`]) a person can check by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use crate::interest::round_half_up;
use crate::money::Fen;

const CHINA_LPR_DATA: &str = include_str!("../data/lpr-1y.txt");

/// The statutory daily rate (万分之五): 0.05 % of the overdue amount per day, applying when the
/// parties agreed no rate (or, in Jinfu's reading, agreed one below the legal floor).
pub const STATUTORY_DAILY_RATE: Decimal = Decimal::from_parts(5, 0, 0, false, 4);

/// Days in the year by which an agreed annual rate is divided to give its daily rate. This is
/// Jinfu's convention for contractual annual rates (a calendar year, as courts usually count
/// overdue interest); it differs on purpose from the 360-day year of bank deposit interest in
/// [`crate::interest`].
pub const DAYS_PER_YEAR_FOR_AGREED_RATES: i64 = 365;

/// The longest overdue period computed: 100 years of days. A longer one is a wrong date, and the
/// limit keeps the day-by-day walk bounded.
pub const OVERDUE_DAYS_MAX: i64 = 36_600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverdueError {
    #[error("rate {0} is outside the accepted range (an annual decimal fraction: 0.031 is 3.1 %)")]
    BadRate(Decimal),
    #[error("no one-year LPR is known before {0}, the first date of the history")]
    NoLprBefore(NaiveDate),
    #[error("overdue interest overflows")]
    Overflow,
    #[error("LPR data line {line}: {problem}")]
    BadData { line: usize, problem: String },
    #[error("{days} days overdue is more than the {OVERDUE_DAYS_MAX} days (100 years) accepted")]
    TooLong { days: i64 },
    #[error("amount {0} yuan is negative")]
    NegativeAmount(Fen),
}

/// The one-year LPR as announced over time. A rate is in force from its announcement day (the
/// 20th of the month, or the next working day) until the day before the next change. Built only
/// through [`LprHistory::china`], [`LprHistory::parse`] and [`LprHistory::with_rate`], so it is
/// never empty and every rate lies strictly between 0 and 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LprHistory {
    /// Effective-from date → annual rate as a decimal fraction (0.0310 is 3.10 %), in date order.
    rows: BTreeMap<NaiveDate, Decimal>,
}

impl LprHistory {
    /// The history shipped with Jinfu, complete up to the 2025-05-20 announcement.
    pub fn china() -> LprHistory {
        LprHistory::parse(CHINA_LPR_DATA).expect("the shipped LPR data parses")
    }

    /// Parses lines `YYYY-MM-DD <percent>` (e.g. `2019-08-20 4.25`), blank lines and `#` comments
    /// ignored. Refuses, with the line number, a malformed line, a date not after the previous
    /// row's, and a percent not strictly between 0 and 100; refuses data without any row (line 0).
    pub fn parse(text: &str) -> Result<LprHistory, OverdueError> {
        let mut rows = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| OverdueError::BadData { line: index + 1, problem };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [date_text, percent_text] = fields[..] else {
                return Err(bad("expected `YYYY-MM-DD <percent>`".to_owned()));
            };
            let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d").map_err(|_| bad(format!("bad date {date_text:?}")))?;
            let percent = Decimal::from_str(percent_text).map_err(|_| bad(format!("bad percent {percent_text:?}")))?;
            if percent <= Decimal::ZERO || percent >= Decimal::ONE_HUNDRED {
                return Err(bad(format!("percent {percent} is not between 0 and 100")));
            }
            if let Some((previous, _)) = rows.last_key_value() {
                if date == *previous {
                    return Err(bad(format!("date {date} is given twice")));
                }
                if date < *previous {
                    return Err(bad(format!("date {date} is before the previous row's {previous}")));
                }
            }
            rows.insert(date, percent.checked_div(Decimal::ONE_HUNDRED).ok_or_else(|| bad("percent overflows".to_owned()))?);
        }
        if rows.is_empty() {
            return Err(OverdueError::BadData { line: 0, problem: "no rate in the data".to_owned() });
        }
        Ok(LprHistory { rows })
    }

    /// A copy with the rate announced for `from` (an annual decimal fraction, strictly between 0
    /// and 1) added, or replacing the row of that date: how announcements after the shipped data
    /// are loaded at run time.
    pub fn with_rate(&self, from: NaiveDate, annual_rate: Decimal) -> Result<LprHistory, OverdueError> {
        if annual_rate <= Decimal::ZERO || annual_rate >= Decimal::ONE {
            return Err(OverdueError::BadRate(annual_rate));
        }
        let mut history = self.clone();
        history.rows.insert(from, annual_rate);
        Ok(history)
    }

    /// The annual rate (decimal fraction) in force on `day`: the last row effective on or before
    /// it, a rate applying from its announcement day. A day before the first row has no LPR.
    pub fn rate_on(&self, day: NaiveDate) -> Result<Decimal, OverdueError> {
        match self.rows.range(..=day).next_back() {
            Some((_, rate)) => Ok(*rate),
            None => Err(OverdueError::NoLprBefore(self.first().0)),
        }
    }

    /// The rows (effective from, annual rate as a decimal fraction), in date order.
    pub fn rows(&self) -> impl Iterator<Item = (NaiveDate, Decimal)> + '_ {
        self.rows.iter().map(|(day, rate)| (*day, *rate))
    }

    /// The latest row: the rate in force from its date on, until an announcement is loaded.
    pub fn last(&self) -> (NaiveDate, Decimal) {
        let (day, rate) = self.rows.last_key_value().expect("an LPR history is never empty");
        (*day, *rate)
    }

    fn first(&self) -> (NaiveDate, Decimal) {
        let (day, rate) = self.rows.first_key_value().expect("an LPR history is never empty");
        (*day, *rate)
    }
}

/// The rate at which overdue interest accrues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueRate {
    /// No agreed rate: [`STATUTORY_DAILY_RATE`] (0.05 %) of the overdue amount per day.
    Statutory,
    /// An agreed fixed annual rate as a decimal fraction (0.0365 is 3.65 % a year), accruing at
    /// annual / [`DAYS_PER_YEAR_FOR_AGREED_RATES`] per day. Accepted from 0 up to, not including, 1.
    Fixed(Decimal),
    /// An agreed floating rate: each day's annual rate is the one-year LPR in force that day plus
    /// this spread (an annual decimal fraction, from 0 up to, not including, 1), per day divided
    /// by [`DAYS_PER_YEAR_FOR_AGREED_RATES`].
    LprPlus(Decimal),
}

/// The rate that applies to a contract signed on `signed_on` whose agreed overdue rate is
/// `agreed` (pass [`OverdueRate::Statutory`] when the contract agrees none). The law sets a floor
/// for an agreed rate: the one-year LPR when the contract was concluded. A `Fixed` rate below it
/// is, in Jinfu's reading, void as to the rate, and the statutory daily rate applies instead; a
/// `Fixed` rate at or above it stands. An `LprPlus` spread of 0 or more stands whatever the LPR
/// does later. A negative spread or rate, or one of 1 (100 %) or more, is refused as `BadRate`.
pub fn rate_in_force(agreed: &OverdueRate, signed_on: NaiveDate, lpr: &LprHistory) -> Result<OverdueRate, OverdueError> {
    check_rate(agreed)?;
    match agreed {
        OverdueRate::Fixed(annual) if *annual < lpr.rate_on(signed_on)? => Ok(OverdueRate::Statutory),
        other => Ok(*other),
    }
}

fn check_rate(rate: &OverdueRate) -> Result<(), OverdueError> {
    match rate {
        OverdueRate::Statutory => Ok(()),
        OverdueRate::Fixed(annual) | OverdueRate::LprPlus(annual) if *annual < Decimal::ZERO || *annual >= Decimal::ONE => Err(OverdueError::BadRate(*annual)),
        OverdueRate::Fixed(_) | OverdueRate::LprPlus(_) => Ok(()),
    }
}

/// Overdue interest as computed, with the runs of days that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueInterest {
    /// The interest owed: `exact_fen` rounded half up once to whole fen.
    pub fen: Fen,
    /// The exact sum of the segments' interest, in fen, before rounding.
    pub exact_fen: Decimal,
    /// Days on which a positive amount was unpaid after the due date.
    pub overdue_days: u32,
    /// The maximal runs of days with one unpaid amount and one daily rate, in date order.
    pub segments: Vec<Segment>,
}

/// A maximal run of overdue days with the same unpaid amount and the same daily rate: the line a
/// supplier sees, and a person checks by hand (days × unpaid × daily rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The first day of the run.
    pub from: NaiveDate,
    /// The last day of the run, inclusive.
    pub to: NaiveDate,
    /// Days from `from` to `to`, both counted.
    pub days: u32,
    /// The amount unpaid on each day of the run.
    pub unpaid: Fen,
    /// The rate per day, a decimal fraction of the unpaid amount (0.0005 is 0.05 %).
    pub daily_rate: Decimal,
    /// The run's interest in fen, unrounded.
    pub exact_fen: Decimal,
}

impl fmt::Display for Segment {
    /// E.g. `2026-03-02..2026-03-15: 14 days × 10000.00 yuan × 0.0005 = 70.00 yuan`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.days == 1 { "day" } else { "days" };
        write!(
            formatter,
            "{}..{}: {} {unit} × {} yuan × {} = {} yuan",
            self.from,
            self.to,
            self.days,
            self.unpaid.to_yuan_string(),
            self.daily_rate.normalize(),
            exact_yuan_text(self.exact_fen)
        )
    }
}

/// Exact fen as yuan with at least two and as many decimals as needed: `70.00`, `0.005`.
fn exact_yuan_text(exact_fen: Decimal) -> String {
    let mut yuan = exact_fen.checked_div(Decimal::ONE_HUNDRED).unwrap_or(exact_fen).normalize();
    if yuan.scale() < 2 {
        yuan.rescale(2);
    }
    yuan.to_string()
}

/// One day's rate as a fraction `numerator / per_days`, kept apart so that an agreed annual rate
/// is divided by 365 once per segment rather than rounded to a daily decimal first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayRate {
    numerator: Decimal,
    per_days: i64,
}

impl DayRate {
    fn on(rate: &OverdueRate, day: NaiveDate, lpr: &LprHistory) -> Result<DayRate, OverdueError> {
        let annual = |numerator| DayRate { numerator, per_days: DAYS_PER_YEAR_FOR_AGREED_RATES };
        match rate {
            OverdueRate::Statutory => Ok(DayRate { numerator: STATUTORY_DAILY_RATE, per_days: 1 }),
            OverdueRate::Fixed(rate) => Ok(annual(*rate)),
            OverdueRate::LprPlus(spread) => Ok(annual(lpr.rate_on(day)?.checked_add(*spread).ok_or(OverdueError::Overflow)?)),
        }
    }

    fn daily(self) -> Result<Decimal, OverdueError> {
        self.numerator.checked_div(Decimal::from(self.per_days)).ok_or(OverdueError::Overflow)
    }

    /// unpaid × numerator × days ÷ per_days, in fen.
    fn interest_fen(self, unpaid: Fen, days: u32) -> Result<Decimal, OverdueError> {
        Decimal::from(unpaid.fen())
            .checked_mul(self.numerator)
            .and_then(|value| value.checked_mul(Decimal::from(days)))
            .and_then(|value| value.checked_div(Decimal::from(self.per_days)))
            .ok_or(OverdueError::Overflow)
    }
}

/// A run of days being collected before it becomes a [`Segment`].
struct Run {
    from: NaiveDate,
    to: NaiveDate,
    days: u32,
    unpaid: Fen,
    rate: DayRate,
}

/// Interest on `payable`, due on `due_on`, for each day d with `due_on` < d <= `until`, on the
/// amount still unpaid that day. A payment made on day p counts from p + 1 on: the day of payment
/// is still overdue, so paying on `due_on` + 1 costs one day. Payments on or before `due_on`
/// reduce the amount from the start. `payments` (day, amount) may come in any order and may sum
/// to more than `payable`; the unpaid amount never goes below zero. `rate` should come from
/// [`rate_in_force`]; `lpr` is read only for [`OverdueRate::LprPlus`]. The exact sum is rounded
/// half up once. Refuses negative amounts and more than [`OVERDUE_DAYS_MAX`] days.
pub fn overdue_interest(
    payable: Fen,
    due_on: NaiveDate,
    payments: &[(NaiveDate, Fen)],
    until: NaiveDate,
    rate: &OverdueRate,
    lpr: &LprHistory,
) -> Result<OverdueInterest, OverdueError> {
    check_rate(rate)?;
    if let Some(negative) = std::iter::once(payable).chain(payments.iter().map(|(_, amount)| *amount)).find(|amount| amount.fen() < 0) {
        return Err(OverdueError::NegativeAmount(negative));
    }
    let days = (until - due_on).num_days();
    if days > OVERDUE_DAYS_MAX {
        return Err(OverdueError::TooLong { days });
    }
    let runs = overdue_runs(payable, due_on, payments, days.max(0), rate, lpr)?;
    let mut result = OverdueInterest { fen: Fen::ZERO, exact_fen: Decimal::ZERO, overdue_days: 0, segments: Vec::with_capacity(runs.len()) };
    for run in runs {
        let exact_fen = run.rate.interest_fen(run.unpaid, run.days)?;
        result.exact_fen = result.exact_fen.checked_add(exact_fen).ok_or(OverdueError::Overflow)?;
        result.overdue_days = result.overdue_days.checked_add(run.days).ok_or(OverdueError::Overflow)?;
        let daily_rate = run.rate.daily()?;
        result.segments.push(Segment { from: run.from, to: run.to, days: run.days, unpaid: run.unpaid, daily_rate, exact_fen });
    }
    result.fen = round_half_up(result.exact_fen).map_err(|_| OverdueError::Overflow)?;
    assert!(result.exact_fen >= Decimal::ZERO, "overdue interest is never negative");
    Ok(result)
}

/// Walks the `days` days after `due_on` and groups those with a positive unpaid amount into
/// maximal runs of one unpaid amount and one daily rate. Stops once everything is paid, since
/// payments only ever lower the unpaid amount.
fn overdue_runs(
    payable: Fen,
    due_on: NaiveDate,
    payments: &[(NaiveDate, Fen)],
    days: i64,
    rate: &OverdueRate,
    lpr: &LprHistory,
) -> Result<Vec<Run>, OverdueError> {
    let mut payments = payments.to_vec();
    payments.sort_by_key(|(paid_on, _)| *paid_on);
    let mut pending = payments.iter().peekable();
    let mut paid = Fen::ZERO;
    let mut runs: Vec<Run> = Vec::new();
    for offset in 1..=days {
        let day = due_on + Duration::days(offset);
        while let Some((_, amount)) = pending.next_if(|(paid_on, _)| *paid_on < day) {
            paid = paid.checked_add(*amount).ok_or(OverdueError::Overflow)?;
        }
        let unpaid = payable.checked_sub(paid).ok_or(OverdueError::Overflow)?.max(Fen::ZERO);
        if !unpaid.is_positive() {
            break;
        }
        let day_rate = DayRate::on(rate, day, lpr)?;
        match runs.last_mut() {
            Some(run) if run.unpaid == unpaid && run.rate == day_rate => {
                run.to = day;
                run.days += 1;
            }
            _ => runs.push(Run { from: day, to: day, days: 1, unpaid, rate: day_rate }),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn yuan(text: &str) -> Fen {
        Fen::parse_balance_yuan(text).unwrap()
    }

    /// 10,000.00 yuan due 2026-03-01 under the statutory rate, computed up to `until`.
    fn statutory(payments: &[(&str, &str)], until: &str) -> OverdueInterest {
        let payments: Vec<(NaiveDate, Fen)> = payments.iter().map(|(day, amount)| (date(day), yuan(amount))).collect();
        overdue_interest(yuan("10000"), date("2026-03-01"), &payments, date(until), &OverdueRate::Statutory, &LprHistory::china()).unwrap()
    }

    #[test]
    fn ten_thousand_yuan_thirty_days_late_at_the_statutory_rate_is_150_yuan() {
        // 03-02..03-31 is 30 days; 1,000,000 fen × 0.0005 × 30 = 15,000 fen = 150.00 yuan.
        let interest = statutory(&[], "2026-03-31");
        assert_eq!(interest.fen, Fen::from_fen(15_000));
        assert_eq!(interest.exact_fen, Decimal::from(15_000));
        assert_eq!(interest.overdue_days, 30);
        assert_eq!(interest.segments.len(), 1);
        assert_eq!(interest.segments[0].to_string(), "2026-03-02..2026-03-31: 30 days × 10000.00 yuan × 0.0005 = 150.00 yuan");
    }

    #[test]
    fn a_partial_payment_lowers_the_unpaid_amount_from_the_next_day() {
        // 4,000 paid on 03-11: 03-02..03-11 (10 days) on 10,000 = 1,000,000 × 0.0005 × 10 = 5,000
        // fen; 03-12..03-31 (20 days) on 6,000 = 600,000 × 0.0005 × 20 = 6,000 fen; 110.00 yuan.
        let interest = statutory(&[("2026-03-11", "4000")], "2026-03-31");
        assert_eq!(interest.fen, Fen::from_fen(11_000));
        assert_eq!(interest.overdue_days, 30);
        let lines: Vec<String> = interest.segments.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["2026-03-02..2026-03-11: 10 days × 10000.00 yuan × 0.0005 = 50.00 yuan", "2026-03-12..2026-03-31: 20 days × 6000.00 yuan × 0.0005 = 60.00 yuan"]
        );
    }

    #[test]
    fn paying_on_the_due_date_costs_nothing_and_a_day_later_costs_one_day() {
        let on_time = statutory(&[("2026-03-01", "10000")], "2026-12-31");
        assert_eq!(on_time.fen, Fen::ZERO);
        assert_eq!(on_time.overdue_days, 0);
        assert!(on_time.segments.is_empty());
        // Paid on 03-02: 03-02 itself is overdue; 1,000,000 × 0.0005 × 1 = 500 fen.
        let one_day = statutory(&[("2026-03-02", "10000")], "2026-12-31");
        assert_eq!(one_day.fen, Fen::from_fen(500));
        assert_eq!(one_day.overdue_days, 1);
        assert_eq!(one_day.segments[0].to_string(), "2026-03-02..2026-03-02: 1 day × 10000.00 yuan × 0.0005 = 5.00 yuan");
    }

    #[test]
    fn an_end_date_not_after_the_due_date_gives_no_interest() {
        for until in ["2026-03-01", "2026-02-01"] {
            let interest = statutory(&[], until);
            assert_eq!(interest.fen, Fen::ZERO);
            assert!(interest.segments.is_empty());
        }
    }

    #[test]
    fn an_lpr_plus_zero_contract_follows_the_rate_cut_of_2025_05_20() {
        let lpr = LprHistory::china();
        let rate = rate_in_force(&OverdueRate::LprPlus(Decimal::ZERO), date("2025-04-01"), &lpr).unwrap();
        assert_eq!(rate, OverdueRate::LprPlus(Decimal::ZERO));
        // 1,000,000.00 yuan due 2025-05-10, counted to 05-31:
        // 05-11..05-19, 9 days at 3.10 %: 100,000,000 × 0.0310 × 9 / 365 = 27,900,000 / 365 fen;
        // 05-20..05-31, 12 days at 3.00 %: 100,000,000 × 0.0300 × 12 / 365 = 36,000,000 / 365 fen;
        // together 63,900,000 / 365 = 175,068.4931506849… fen → 175,068 fen = 1,750.68 yuan.
        let interest = overdue_interest(yuan("1000000"), date("2025-05-10"), &[], date("2025-05-31"), &rate, &lpr).unwrap();
        assert_eq!(interest.fen, Fen::from_fen(175_068));
        assert_eq!(interest.exact_fen.round_dp(10), decimal("175068.4931506849"));
        assert_eq!(interest.overdue_days, 21);
        let [before, after] = &interest.segments[..] else { panic!("two segments expected: {:?}", interest.segments) };
        assert_eq!((before.from, before.to, before.days), (date("2025-05-11"), date("2025-05-19"), 9));
        assert_eq!((after.from, after.to, after.days), (date("2025-05-20"), date("2025-05-31"), 12));
        assert_eq!(before.daily_rate, decimal("0.031") / Decimal::from(365));
        assert_eq!(after.daily_rate, decimal("0.03") / Decimal::from(365));
        assert_eq!(before.exact_fen, Decimal::from(27_900_000) / Decimal::from(365));
        assert_eq!(after.exact_fen, Decimal::from(36_000_000) / Decimal::from(365));
        assert!(before.to_string().starts_with("2025-05-11..2025-05-19: 9 days × 1000000.00 yuan × 0.0000849315068493"), "{before}");
        assert!(before.to_string().contains(" = 764.383561643835"), "{before}");
    }

    #[test]
    fn a_fixed_rate_below_the_lpr_at_signing_gives_way_to_the_statutory_rate() {
        let lpr = LprHistory::china();
        let agreed = OverdueRate::Fixed(decimal("0.0305"));
        // Signed 2025-05-01, LPR 3.10 %: 3.05 % is below the floor.
        assert_eq!(rate_in_force(&agreed, date("2025-05-01"), &lpr).unwrap(), OverdueRate::Statutory);
        // Signed 2025-06-01, LPR 3.00 %: 3.05 % stands; so from the announcement day 2025-05-20.
        assert_eq!(rate_in_force(&agreed, date("2025-06-01"), &lpr).unwrap(), agreed);
        assert_eq!(rate_in_force(&agreed, date("2025-05-20"), &lpr).unwrap(), agreed);
        // A rate equal to the LPR at signing is not below it.
        assert_eq!(rate_in_force(&OverdueRate::Fixed(decimal("0.031")), date("2025-05-01"), &lpr).unwrap(), OverdueRate::Fixed(decimal("0.031")));
        assert_eq!(rate_in_force(&OverdueRate::Statutory, date("2025-05-01"), &lpr).unwrap(), OverdueRate::Statutory);
    }

    #[test]
    fn negative_or_absurd_agreed_rates_are_refused() {
        let lpr = LprHistory::china();
        let refused = |rate: OverdueRate| rate_in_force(&rate, date("2025-06-01"), &lpr);
        assert_eq!(refused(OverdueRate::LprPlus(decimal("-0.001"))), Err(OverdueError::BadRate(decimal("-0.001"))));
        assert_eq!(refused(OverdueRate::Fixed(decimal("-0.05"))), Err(OverdueError::BadRate(decimal("-0.05"))));
        assert_eq!(refused(OverdueRate::Fixed(Decimal::ONE)), Err(OverdueError::BadRate(Decimal::ONE)));
        let direct = overdue_interest(yuan("1"), date("2026-01-01"), &[], date("2026-02-01"), &OverdueRate::LprPlus(decimal("-0.01")), &lpr);
        assert_eq!(direct, Err(OverdueError::BadRate(decimal("-0.01"))));
    }

    #[test]
    fn a_fixed_annual_rate_accrues_over_365_days() {
        // 1,000,000 fen at 3.65 % for 03-02..03-11: 1,000,000 × 0.0365 × 10 / 365 = 1,000 fen.
        let rate = OverdueRate::Fixed(decimal("0.0365"));
        let interest = overdue_interest(yuan("10000"), date("2026-03-01"), &[], date("2026-03-11"), &rate, &LprHistory::china()).unwrap();
        assert_eq!(interest.fen, Fen::from_fen(1_000));
        assert_eq!(interest.segments[0].to_string(), "2026-03-02..2026-03-11: 10 days × 10000.00 yuan × 0.0001 = 10.00 yuan");
    }

    #[test]
    fn half_a_fen_rounds_up_once_at_the_end() {
        let lpr = LprHistory::china();
        let one_day = |fen: i64| overdue_interest(Fen::from_fen(fen), date("2026-03-01"), &[], date("2026-03-02"), &OverdueRate::Statutory, &lpr).unwrap();
        // 1,000 fen × 0.0005 = 0.5 fen → 1; 3,000 × 0.0005 = 1.5 → 2; 999 × 0.0005 = 0.4995 → 0.
        assert_eq!(one_day(1_000).fen, Fen::from_fen(1));
        assert_eq!(one_day(1_000).segments[0].to_string(), "2026-03-02..2026-03-02: 1 day × 10.00 yuan × 0.0005 = 0.005 yuan");
        assert_eq!(one_day(3_000).fen, Fen::from_fen(2));
        assert_eq!(one_day(999).fen, Fen::ZERO);
        // Rounded once, not per day: 1,000 fen for 2 days is 0.5 + 0.5 = 1.0 fen → 1, not 1 + 1 = 2.
        let two_days = overdue_interest(Fen::from_fen(1_000), date("2026-03-01"), &[], date("2026-03-03"), &OverdueRate::Statutory, &lpr).unwrap();
        assert_eq!(two_days.fen, Fen::from_fen(1));
    }

    #[test]
    fn an_overpayment_stops_the_interest_and_never_makes_it_negative() {
        // 12,000 paid on 03-11 against 10,000: 10 days × 1,000,000 × 0.0005 = 5,000 fen, then nothing.
        let interest = statutory(&[("2026-03-11", "12000")], "2026-12-31");
        assert_eq!(interest.fen, Fen::from_fen(5_000));
        assert_eq!(interest.overdue_days, 10);
        assert_eq!(interest.segments.len(), 1);
        assert_eq!(statutory(&[("2026-02-01", "20000")], "2026-12-31").fen, Fen::ZERO);
    }

    #[test]
    fn payments_in_any_order_give_the_same_interest() {
        // 2,000 paid early (02-20), 1,000 on 03-11, 3,000 on 03-21:
        // 03-02..03-11 on 8,000: 800,000 × 0.0005 × 10 = 4,000 fen;
        // 03-12..03-21 on 7,000: 700,000 × 0.0005 × 10 = 3,500 fen;
        // 03-22..03-31 on 4,000: 400,000 × 0.0005 × 10 = 2,000 fen; 9,500 fen = 95.00 yuan.
        let shuffled = statutory(&[("2026-03-21", "3000"), ("2026-02-20", "2000"), ("2026-03-11", "1000")], "2026-03-31");
        let sorted = statutory(&[("2026-02-20", "2000"), ("2026-03-11", "1000"), ("2026-03-21", "3000")], "2026-03-31");
        assert_eq!(shuffled.fen, Fen::from_fen(9_500));
        assert_eq!(shuffled, sorted);
        let unpaid: Vec<Fen> = shuffled.segments.iter().map(|segment| segment.unpaid).collect();
        assert_eq!(unpaid, [yuan("8000"), yuan("7000"), yuan("4000")]);
    }

    #[test]
    fn negative_amounts_and_periods_over_a_hundred_years_are_refused() {
        let lpr = LprHistory::china();
        let compute = |payable: Fen, payments: &[(NaiveDate, Fen)], until: &str| {
            overdue_interest(payable, date("2026-03-01"), payments, date(until), &OverdueRate::Statutory, &lpr)
        };
        assert_eq!(compute(Fen::from_fen(-1), &[], "2026-04-01"), Err(OverdueError::NegativeAmount(Fen::from_fen(-1))));
        assert_eq!(compute(yuan("1"), &[(date("2026-03-05"), Fen::from_fen(-5))], "2026-04-01"), Err(OverdueError::NegativeAmount(Fen::from_fen(-5))));
        // 2026-03-01 + 36,600 days = 2126-05-16 (accepted); one more day is too long.
        assert!(compute(yuan("1"), &[], "2126-05-16").is_ok());
        assert_eq!(compute(yuan("1"), &[], "2126-05-17"), Err(OverdueError::TooLong { days: 36_601 }));
    }

    #[test]
    fn malformed_lpr_data_is_refused_with_its_line_number() {
        let problem = |text: &str| match LprHistory::parse(text) {
            Err(OverdueError::BadData { line, problem }) => (line, problem),
            other => panic!("expected BadData, got {other:?}"),
        };
        assert_eq!(problem("# c\n2019-08-20 4.25\n2019-13-01 4.20\n").0, 3);
        assert!(problem("2019-08-20 4,25\n").1.contains("bad percent"));
        assert!(problem("2019-08-20\n").1.contains("expected"));
        assert!(problem("2019-08-20 4.25 extra\n").1.contains("expected"));
        assert!(problem("2019-08-20 0\n").1.contains("not between 0 and 100"));
        assert!(problem("2019-08-20 -1\n").1.contains("not between 0 and 100"));
        assert!(problem("2019-08-20 100\n").1.contains("not between 0 and 100"));
        assert_eq!(problem("2019-08-20 4.25\n2019-08-20 4.20\n"), (2, "date 2019-08-20 is given twice".to_owned()));
        assert_eq!(problem("2019-09-20 4.20\n\n2019-08-20 4.25\n"), (3, "date 2019-08-20 is before the previous row's 2019-09-20".to_owned()));
        assert_eq!(problem("# only a comment\n"), (0, "no rate in the data".to_owned()));
    }

    #[test]
    fn there_is_no_lpr_before_2019_08_20() {
        let lpr = LprHistory::china();
        assert_eq!(lpr.rate_on(date("2019-08-19")), Err(OverdueError::NoLprBefore(date("2019-08-20"))));
        assert_eq!(rate_in_force(&OverdueRate::Fixed(decimal("0.05")), date("2019-08-19"), &lpr), Err(OverdueError::NoLprBefore(date("2019-08-20"))));
        let floating = overdue_interest(yuan("1"), date("2019-08-01"), &[], date("2019-09-01"), &OverdueRate::LprPlus(Decimal::ZERO), &lpr);
        assert_eq!(floating, Err(OverdueError::NoLprBefore(date("2019-08-20"))));
    }

    #[test]
    fn the_shipped_lpr_history_parses_and_ends_at_3_00_percent() {
        let lpr = LprHistory::china();
        assert_eq!(lpr.rows().count(), 13);
        assert_eq!(lpr.rows().next(), Some((date("2019-08-20"), decimal("0.0425"))));
        assert_eq!(lpr.last(), (date("2025-05-20"), decimal("0.0300")));
        assert_eq!(lpr.rate_on(date("2026-11-29")).unwrap(), decimal("0.0300"));
        assert_eq!(lpr.rate_on(date("2024-10-20")).unwrap(), decimal("0.0335"));
        assert_eq!(lpr.rate_on(date("2024-10-21")).unwrap(), decimal("0.0310"));
        assert!(lpr.rows().zip(lpr.rows().skip(1)).all(|((earlier, _), (later, _))| earlier < later));
    }

    #[test]
    fn a_rate_loaded_at_run_time_extends_or_replaces_the_history() {
        let lpr = LprHistory::china();
        // A test rate, not an announcement.
        let extended = lpr.with_rate(date("2026-06-22"), decimal("0.029")).unwrap();
        assert_eq!(extended.rate_on(date("2026-06-21")).unwrap(), decimal("0.03"));
        assert_eq!(extended.rate_on(date("2026-06-22")).unwrap(), decimal("0.029"));
        assert_eq!(extended.last(), (date("2026-06-22"), decimal("0.029")));
        let replaced = extended.with_rate(date("2026-06-22"), decimal("0.028")).unwrap();
        assert_eq!(replaced.rows().count(), 14);
        assert_eq!(replaced.rate_on(date("2026-12-01")).unwrap(), decimal("0.028"));
        assert_eq!(lpr.with_rate(date("2026-06-22"), Decimal::ZERO), Err(OverdueError::BadRate(Decimal::ZERO)));
        assert_eq!(lpr.with_rate(date("2026-06-22"), decimal("3.0")), Err(OverdueError::BadRate(decimal("3.0"))));
    }
}
