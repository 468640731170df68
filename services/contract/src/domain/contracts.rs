//! A contract's terms as drafted, checked once (milestones sum to 100 %, securities within the
//! law's limits, an SME's payment term, the agreed overdue rate), the canonical text both parties
//! sign, and what signing, amending and terminating may do.

use chrono::{DateTime, NaiveDate, Utc};
use jinfu_ledger::overdue::{LprHistory, OverdueRate};
use jinfu_ledger::Fen;
use rust_decimal::Decimal;

use super::{ContractStatus, MilestoneKind, Party, RateKind, Refusal, Regime, Scale, SecurityForm};

/// Basis points in 100 %.
pub const WHOLE_BP: u32 = 10_000;
/// Milestones a contract may have.
pub const MILESTONES_MAX: usize = 20;
/// The law's payment term for SMEs when the contract sets none (条例 art. 9).
pub const LAW_PAYMENT_DAYS: u32 = 30;
/// The longest payment term a contract may agree with an SME (条例 art. 9).
pub const SME_PAYMENT_DAYS_MAX: u32 = 60;
/// Performance security: at most 10 % of the amount (实施条例 art. 48; 条例 art. 13).
pub const PERFORMANCE_BP_MAX: i64 = 1_000;
/// Quality retention: at most 3 % of the amount (工程质量保证金管理办法 art. 7).
pub const QUALITY_BP_MAX: i64 = 300;

/// A payment term as drafted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MilestoneTerm {
    pub kind: MilestoneKind,
    pub percent_bp: u32,
    pub period_days: u32,
    pub working_days: bool,
}

/// A milestone of a contract: its term, position and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Milestone {
    pub sequence: u32,
    pub term: MilestoneTerm,
    pub amount: Fen,
}

/// A security: how it is given and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Security {
    pub form: SecurityForm,
    pub amount: Fen,
}

/// The agreed overdue rate, as drafted: `annual` is a decimal fraction (0.0345 for 3.45 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreedRate {
    pub kind: RateKind,
    pub annual: Option<Decimal>,
}

impl AgreedRate {
    pub const STATUTORY: AgreedRate = AgreedRate { kind: RateKind::Statutory, annual: None };

    pub fn overdue_rate(&self) -> OverdueRate {
        match (self.kind, self.annual) {
            (RateKind::Fixed, Some(annual)) => OverdueRate::Fixed(annual),
            (RateKind::LprPlus, Some(spread)) => OverdueRate::LprPlus(spread),
            _ => OverdueRate::Statutory,
        }
    }

    pub fn from_overdue_rate(rate: &OverdueRate) -> AgreedRate {
        match rate {
            OverdueRate::Statutory => AgreedRate::STATUTORY,
            OverdueRate::Fixed(annual) => AgreedRate { kind: RateKind::Fixed, annual: Some(*annual) },
            OverdueRate::LprPlus(spread) => AgreedRate { kind: RateKind::LprPlus, annual: Some(*spread) },
        }
    }
}

/// Where the purchaser pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionAccount {
    pub bank_name: String,
    pub account_no: String,
    pub account_name: String,
}

/// Everything a draft says: what both parties sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub centre_id: String,
    pub contract_id: String,
    pub section_id: String,
    pub regime: Regime,
    pub purchaser_uscc: String,
    pub purchaser_name: String,
    pub supplier_uscc: String,
    pub supplier_name: String,
    pub supplier_scale: Scale,
    pub amount: Fen,
    pub awarded_at: DateTime<Utc>,
    pub milestones: Vec<MilestoneTerm>,
    /// Days from delivery or acceptance to payment (条例 art. 9).
    pub payment_days: u32,
    pub collection_account: CollectionAccount,
    pub performance_security: Security,
    pub quality_retention: Security,
    pub overdue_rate: AgreedRate,
}

/// Why terms were refused: the field and the rule, for INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTerms(pub String);

impl Terms {
    /// Checks the terms against the law on `today` (the LPR in force for a fixed agreed rate).
    pub fn check(&self, lpr: &LprHistory, today: NaiveDate) -> Result<(), BadTerms> {
        let bad = |text: String| Err(BadTerms(text));
        if self.milestones.is_empty() || self.milestones.len() > MILESTONES_MAX {
            return bad(format!("milestones: 1 to {MILESTONES_MAX} are required"));
        }
        let total: u32 = self.milestones.iter().map(|milestone| milestone.percent_bp).sum();
        if total != WHOLE_BP || self.milestones.iter().any(|milestone| milestone.percent_bp == 0) {
            return bad(format!("milestones: percent_bp must each be positive and sum to {WHOLE_BP} (100 %), not {total}"));
        }
        if let Some(milestone) = self.milestones.iter().find(|milestone| milestone.period_days > 365) {
            return bad(format!("milestones: period_days {} is more than 365", milestone.period_days));
        }
        if self.supplier_scale.is_sme() && !(1..=SME_PAYMENT_DAYS_MAX).contains(&self.payment_days) {
            return bad(format!("payment_days: at most {SME_PAYMENT_DAYS_MAX} for an SME (条例 art. 9), not {}", self.payment_days));
        }
        if !(1..=365).contains(&self.payment_days) {
            return bad(format!("payment_days: 1 to 365, not {}", self.payment_days));
        }
        let within = |security: &Security, bp: i64| security.amount.fen() <= self.amount.fen().saturating_mul(bp) / 10_000;
        for (name, security, bp) in
            [("performance_security", &self.performance_security, PERFORMANCE_BP_MAX), ("quality_retention", &self.quality_retention, QUALITY_BP_MAX)]
        {
            if (security.form == SecurityForm::None) != (security.amount == Fen::ZERO) {
                return bad(format!("{name}: form NONE goes with amount 0, and only it"));
            }
            if !within(security, bp) {
                return bad(format!("{name}: at most {} % of the amount", bp / 100));
            }
        }
        if self.regime != Regime::Engineering && self.quality_retention.form != SecurityForm::None {
            return bad("quality_retention: only engineering contracts retain a quality deposit".into());
        }
        match self.overdue_rate.overdue_rate() {
            OverdueRate::Fixed(annual) => {
                let in_force = lpr.rate_on(today).map_err(|error| BadTerms(format!("overdue_rate: {error}")))?;
                if annual < in_force {
                    return bad(format!("overdue_rate: an agreed rate may not be below the one-year LPR ({}) (条例 art. 17)", percent(in_force)));
                }
            }
            OverdueRate::LprPlus(spread) if spread < Decimal::ZERO => return bad("overdue_rate: the spread over the LPR may not be negative".into()),
            _ => {}
        }
        Ok(())
    }

    /// The milestones with their amounts: amount × percent ÷ 100 %, rounded down to the fen, the
    /// last one taking the remainder so that they sum to the amount exactly.
    pub fn milestones(&self) -> Vec<Milestone> {
        milestone_amounts(&self.milestones, self.amount)
    }

    /// The text both parties sign: a header line, then one `name=value` line per term, each
    /// ending in `\n`. Values are what the API shows (codes, fen, RFC 3339 in UTC). It must stay
    /// byte-identical across versions: a change is a new header (`jinfu-contract-v2`).
    pub fn canonical_text(&self) -> String {
        let mut lines = vec![
            "jinfu-contract-v1".to_owned(),
            format!("centre_id={}", self.centre_id),
            format!("contract_id={}", self.contract_id),
            format!("section_id={}", self.section_id),
            format!("regime={}", self.regime),
            format!("purchaser_uscc={}", self.purchaser_uscc),
            format!("purchaser_name={}", self.purchaser_name),
            format!("supplier_uscc={}", self.supplier_uscc),
            format!("supplier_name={}", self.supplier_name),
            format!("supplier_scale={}", self.supplier_scale),
            format!("amount_fen={}", self.amount.fen()),
            format!("awarded_at={}", self.awarded_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            format!("payment_days={}", self.payment_days),
        ];
        for milestone in self.milestones() {
            let term = milestone.term;
            let unit = if term.working_days { "working" } else { "calendar" };
            lines.push(format!("milestone.{}={} {} {} {} {}", milestone.sequence, term.kind, term.percent_bp, milestone.amount.fen(), term.period_days, unit));
        }
        let account = &self.collection_account;
        lines.push(format!("collection_account={}|{}|{}", account.bank_name, account.account_no, account.account_name));
        lines.push(format!("performance_security={} {}", self.performance_security.form, self.performance_security.amount.fen()));
        lines.push(format!("quality_retention={} {}", self.quality_retention.form, self.quality_retention.amount.fen()));
        let annual = self.overdue_rate.annual.map(|rate| rate.normalize().to_string()).unwrap_or_default();
        lines.push(format!("overdue_rate={} {}", self.overdue_rate.kind, annual).trim_end().to_owned());
        lines.into_iter().map(|line| line + "\n").collect()
    }
}

/// The milestones' amounts (see [`Terms::milestones`]).
pub fn milestone_amounts(terms: &[MilestoneTerm], amount: Fen) -> Vec<Milestone> {
    let mut left = amount.fen();
    let count = terms.len();
    terms
        .iter()
        .enumerate()
        .map(|(index, term)| {
            let share = if index + 1 == count { left } else { amount.fen().saturating_mul(i64::from(term.percent_bp)) / i64::from(WHOLE_BP) };
            left -= share;
            Milestone { sequence: u32::try_from(index + 1).unwrap_or(u32::MAX), term: *term, amount: Fen::from_fen(share) }
        })
        .collect()
}

/// A rate as percent text ("3.10 %").
pub fn percent(rate: Decimal) -> String {
    format!("{} %", (rate * Decimal::from(100)).normalize())
}

/// Who may still sign, and what signing by `party` makes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// This party had signed already: nothing changes.
    AlreadySigned,
    /// This party signs; the other has not yet.
    First,
    /// This party signs last: the contract is in force from `signed_at`.
    Completes { signed_at: DateTime<Utc> },
}

/// What a signature by `party` at `now` does to a contract in `status` whose parties signed at
/// `purchaser_signed` and `supplier_signed`.
pub fn sign(
    status: ContractStatus,
    party: Party,
    purchaser_signed: Option<DateTime<Utc>>,
    supplier_signed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Signing, Refusal> {
    let (own, other) = match party {
        Party::Purchaser => (purchaser_signed, supplier_signed),
        Party::Supplier => (supplier_signed, purchaser_signed),
    };
    if own.is_some() {
        return Ok(Signing::AlreadySigned);
    }
    if status != ContractStatus::Pending {
        return Err(Refusal::WrongStatus { status: status.code(), what: "signing" });
    }
    Ok(match other {
        Some(earlier) => Signing::Completes { signed_at: earlier.max(now) },
        None => Signing::First,
    })
}

/// The overdue rate that applies once the contract is concluded on `signed_on`: an agreed
/// fixed rate below the one-year LPR of that day is void as to the rate (条例 art. 17).
pub fn rate_at_signing(agreed: &AgreedRate, signed_on: NaiveDate, lpr: &LprHistory) -> AgreedRate {
    match jinfu_ledger::overdue::rate_in_force(&agreed.overdue_rate(), signed_on, lpr) {
        Ok(rate) => AgreedRate::from_overdue_rate(&rate),
        Err(_) => AgreedRate::STATUTORY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            centre_id: "520100".into(),
            contract_id: "HT-1".into(),
            section_id: "GY-1".into(),
            regime: Regime::Procurement,
            purchaser_uscc: "11520100MB1234567X".into(),
            purchaser_name: "贵阳市第一中学".into(),
            supplier_uscc: "91520100MA6DKXXXX1".into(),
            supplier_name: "黔货科技".into(),
            supplier_scale: Scale::Small,
            amount: Fen::from_fen(10_000_001),
            awarded_at: DateTime::parse_from_rfc3339("2026-03-02T10:00:00+08:00").unwrap().with_timezone(&Utc),
            milestones: vec![
                MilestoneTerm { kind: MilestoneKind::Prepayment, percent_bp: 3_000, period_days: 10, working_days: true },
                MilestoneTerm { kind: MilestoneKind::Acceptance, percent_bp: 7_000, period_days: 30, working_days: false },
            ],
            payment_days: 30,
            collection_account: CollectionAccount {
                bank_name: "工商银行贵阳分行".into(), account_no: "2402000001".into(), account_name: "黔货科技".into()
            },
            performance_security: Security { form: SecurityForm::Guarantee, amount: Fen::from_fen(1_000_000) },
            quality_retention: Security { form: SecurityForm::None, amount: Fen::ZERO },
            overdue_rate: AgreedRate::STATUTORY,
        }
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn milestones_sum_to_the_amount_exactly() {
        let milestones = terms().milestones();
        // 100,000.01 yuan: 30 % is 3,000,000.3 fen → 3,000,000; the last takes 7,000,001.
        assert_eq!(milestones.iter().map(|m| m.amount.fen()).collect::<Vec<_>>(), vec![3_000_000, 7_000_001]);
        assert_eq!(milestones[1].sequence, 2);
    }

    #[test]
    fn the_law_limits_are_checked() {
        let lpr = LprHistory::china();
        let today = day("2026-03-02");
        assert_eq!(terms().check(&lpr, today), Ok(()));
        type Change = Box<dyn Fn(&mut Terms)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|t| t.milestones[0].percent_bp = 2_000), "milestones: percent_bp"),
            (Box::new(|t| t.payment_days = 61), "payment_days: at most 60"),
            (Box::new(|t| t.performance_security.amount = Fen::from_fen(1_000_001)), "performance_security: at most 10 %"),
            (Box::new(|t| t.quality_retention = Security { form: SecurityForm::Cash, amount: Fen::from_fen(100) }), "quality_retention: only engineering"),
            (
                Box::new(|t| t.overdue_rate = AgreedRate { kind: RateKind::Fixed, annual: Some(Decimal::new(29, 3)) }),
                "overdue_rate: an agreed rate may not be below",
            ),
            (Box::new(|t| t.performance_security = Security { form: SecurityForm::None, amount: Fen::from_fen(5) }), "performance_security: form NONE"),
        ];
        for (change, expected) in cases {
            let mut changed = terms();
            change(&mut changed);
            let refused = changed.check(&lpr, today).unwrap_err().0;
            assert!(refused.starts_with(expected), "{refused}");
        }
        let mut engineering = terms();
        engineering.regime = Regime::Engineering;
        engineering.quality_retention = Security { form: SecurityForm::Cash, amount: Fen::from_fen(300_000) };
        assert_eq!(engineering.check(&lpr, today), Ok(()));
        engineering.quality_retention.amount = Fen::from_fen(300_001);
        assert!(engineering.check(&lpr, today).is_err());
        // A large supplier is not bound by the SME term.
        let mut large = terms();
        large.supplier_scale = Scale::Large;
        large.payment_days = 90;
        assert_eq!(large.check(&lpr, today), Ok(()));
    }

    #[test]
    fn the_canonical_text_names_every_term_and_changes_with_any() {
        let text = terms().canonical_text();
        assert!(text.starts_with("jinfu-contract-v1\ncentre_id=520100\n"));
        assert!(text.contains("milestone.2=acceptance 7000 7000001 30 calendar\n"));
        assert!(text.contains("awarded_at=2026-03-02T02:00:00Z\n"));
        assert!(text.ends_with("overdue_rate=statutory\n"));
        let mut other = terms();
        other.collection_account.account_no = "2402000002".into();
        assert_ne!(other.canonical_text(), text);
    }

    #[test]
    fn signed_at_is_the_later_signature_and_a_second_signature_changes_nothing() {
        let t = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        let first = t("2026-03-03T09:00:00+08:00");
        let now = t("2026-03-04T09:00:00+08:00");
        assert_eq!(sign(ContractStatus::Pending, Party::Supplier, None, None, now), Ok(Signing::First));
        assert_eq!(sign(ContractStatus::Pending, Party::Supplier, Some(first), None, now), Ok(Signing::Completes { signed_at: now }));
        assert_eq!(sign(ContractStatus::Active, Party::Supplier, Some(first), Some(now), now), Ok(Signing::AlreadySigned));
        assert_eq!(sign(ContractStatus::Terminated, Party::Purchaser, None, None, now).unwrap_err().code(), "wrong_status");
    }

    #[test]
    fn a_fixed_rate_below_the_lpr_at_signing_gives_way_to_the_statutory_rate() {
        let lpr = LprHistory::china();
        let agreed = AgreedRate { kind: RateKind::Fixed, annual: Some(Decimal::new(305, 4)) };
        // LPR 3.10 % until 2025-05-19, 3.00 % from 2025-05-20.
        assert_eq!(rate_at_signing(&agreed, day("2025-05-01"), &lpr), AgreedRate::STATUTORY);
        assert_eq!(rate_at_signing(&agreed, day("2025-06-01"), &lpr), agreed);
    }
}
