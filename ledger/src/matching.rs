//! The matching rules of DESIGN.md §3, as pure functions.
//!
//! Order: idempotency → resolve sub-account → payer is the registered bidder → arrived before
//! the deposit deadline → section still open → accumulate. Anything that fails goes to suspense
//! with a reason; nothing is dropped (invariant 7).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::money::Fen;

/// What a bank says arrived, once validated at the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditFacts {
    pub centre_id: String,
    pub bank: String,
    pub collection_account: String,
    pub amount: Fen,
    pub payer_name: String,
    pub payer_account: String,
    pub value_time: DateTime<Utc>,
}

/// The sub-account the notice names, with its section, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub centre_id: String,
    pub section_id: String,
    pub bidder_uscc: String,
    pub bidder_name: String,
    pub bidder_basic_account: String,
    pub required: Fen,
    pub deposit_deadline: DateTime<Utc>,
    pub section_open: bool,
    pub basic_account_required: bool,
    pub section_bank: String,
    pub section_collection_account: String,
}

/// Why money went to suspense. The text codes are part of the published API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuspenseReason {
    UnknownSubAccount,
    WrongCollectionAccount,
    PayerNameMismatch,
    PayerNotBasicAccount,
    Late,
    SectionClosed,
}

impl SuspenseReason {
    pub const ALL: [SuspenseReason; 6] = [
        SuspenseReason::UnknownSubAccount,
        SuspenseReason::WrongCollectionAccount,
        SuspenseReason::PayerNameMismatch,
        SuspenseReason::PayerNotBasicAccount,
        SuspenseReason::Late,
        SuspenseReason::SectionClosed,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            SuspenseReason::UnknownSubAccount => "unknown_sub_account",
            SuspenseReason::WrongCollectionAccount => "wrong_collection_account",
            SuspenseReason::PayerNameMismatch => "payer_name_mismatch",
            SuspenseReason::PayerNotBasicAccount => "payer_not_basic_account",
            SuspenseReason::Late => "late",
            SuspenseReason::SectionClosed => "section_closed",
        }
    }

    pub fn parse(code: &str) -> Option<SuspenseReason> {
        SuspenseReason::ALL.into_iter().find(|reason| reason.code() == code)
    }
}

/// Where a deposit stands after a matched notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepositProgress {
    /// The matched total is below the requirement by `missing`.
    Short { missing: Fen },
    /// The matched total equals the requirement.
    Satisfied,
    /// The matched total exceeds the requirement; `excess` is refundable.
    Over { excess: Fen },
}

impl DepositProgress {
    pub fn of(held: Fen, required: Fen) -> DepositProgress {
        if held < required {
            DepositProgress::Short { missing: required - held }
        } else if held == required {
            DepositProgress::Satisfied
        } else {
            DepositProgress::Over { excess: held - required }
        }
    }

    pub const fn code(self) -> &'static str {
        match self {
            DepositProgress::Short { .. } => "short",
            DepositProgress::Satisfied => "matched",
            DepositProgress::Over { .. } => "over",
        }
    }

    pub const fn is_satisfied(self) -> bool {
        !matches!(self, DepositProgress::Short { .. })
    }
}

/// The result of matching one new notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Bound to the bidder's deposit account; `held_after` is its balance after this notice.
    Deposit {
        progress: DepositProgress,
        held_after: Fen,
    },
    Suspense(SuspenseReason),
}

impl Outcome {
    pub const fn code(self) -> &'static str {
        match self {
            Outcome::Deposit { progress, .. } => progress.code(),
            Outcome::Suspense(reason) => reason.code(),
        }
    }
}

/// Matches a new (not replayed) notice against its target, given what the deposit account holds
/// before it.
pub fn match_credit(credit: &CreditFacts, target: Option<&Target>, held_before: Fen) -> Outcome {
    let Some(target) = target.filter(|target| target.centre_id == credit.centre_id) else {
        return Outcome::Suspense(SuspenseReason::UnknownSubAccount);
    };
    if target.section_bank != credit.bank || target.section_collection_account != credit.collection_account {
        return Outcome::Suspense(SuspenseReason::WrongCollectionAccount);
    }
    if normalize_party_name(&credit.payer_name) != normalize_party_name(&target.bidder_name) {
        return Outcome::Suspense(SuspenseReason::PayerNameMismatch);
    }
    if target.basic_account_required && normalize_account_number(&credit.payer_account) != normalize_account_number(&target.bidder_basic_account) {
        return Outcome::Suspense(SuspenseReason::PayerNotBasicAccount);
    }
    if credit.value_time > target.deposit_deadline {
        return Outcome::Suspense(SuspenseReason::Late);
    }
    if !target.section_open {
        return Outcome::Suspense(SuspenseReason::SectionClosed);
    }
    let held_after = held_before + credit.amount;
    Outcome::Deposit { progress: DepositProgress::of(held_after, target.required), held_after }
}

/// Normalises a company name the way a bank clerk reads it: full-width ASCII to half-width,
/// Chinese and full-width brackets to ASCII brackets, whitespace removed, Latin letters
/// upper-cased. "贵州某某（集团）有限公司" and "贵州某某(集团)有限公司" are the same payer.
pub fn normalize_party_name(name: &str) -> String {
    name.chars()
        .filter_map(|character| {
            let half = match character {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(character as u32 - 0xFEE0).unwrap_or(character),
                '【' | '〔' => '(',
                '】' | '〕' => ')',
                other => other,
            };
            let half = match half {
                '[' => '(',
                ']' => ')',
                other => other,
            };
            (!half.is_whitespace()).then(|| half.to_ascii_uppercase())
        })
        .collect()
}

/// Account numbers are compared without spaces and dashes, which banks print for readability.
pub fn normalize_account_number(number: &str) -> String {
    number.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

/// Whether a notice is new, a harmless replay, or a conflicting reuse of a bank serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    New,
    /// Same (bank, serial), same content: changes nothing (invariant 4).
    Duplicate,
    /// Same (bank, serial), different content: rejected and alerted.
    Conflict,
}

pub fn classify_replay(stored_content_hash: Option<&[u8]>, incoming_content_hash: &[u8]) -> Replay {
    match stored_content_hash {
        None => Replay::New,
        Some(stored) if stored == incoming_content_hash => Replay::Duplicate,
        Some(_) => Replay::Conflict,
    }
}

/// One payer account funding two or more different bidders in one section is a collusion lead
/// (招标投标法实施条例 art. 40(6)).
pub fn is_collusion_lead(bidders_funded_by_one_payer: &BTreeSet<String>) -> bool {
    bidders_funded_by_one_payer.len() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn credit() -> CreditFacts {
        CreditFacts {
            centre_id: "520100".into(),
            bank: "ICBC".into(),
            collection_account: "2402".into(),
            amount: Fen::from_fen(1_000_000),
            payer_name: "贵州黔信（集团）建设有限公司".into(),
            payer_account: "6222 0000 1111".into(),
            value_time: Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap(),
        }
    }

    fn target() -> Target {
        Target {
            centre_id: "520100".into(),
            section_id: "S1".into(),
            bidder_uscc: "U".into(),
            bidder_name: "贵州黔信(集团)建设有限公司".into(),
            bidder_basic_account: "622200001111".into(),
            required: Fen::from_fen(1_000_000),
            deposit_deadline: Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 0).unwrap(),
            section_open: true,
            basic_account_required: true,
            section_bank: "ICBC".into(),
            section_collection_account: "2402".into(),
        }
    }

    #[test]
    fn an_exact_payment_matches_despite_full_width_brackets_and_spaced_account() {
        let outcome = match_credit(&credit(), Some(&target()), Fen::ZERO);
        assert_eq!(outcome, Outcome::Deposit { progress: DepositProgress::Satisfied, held_after: Fen::from_fen(1_000_000) });
    }

    #[test]
    fn a_short_payment_then_a_top_up_accumulates_to_satisfied() {
        let mut first = credit();
        first.amount = Fen::from_fen(400_000);
        let outcome = match_credit(&first, Some(&target()), Fen::ZERO);
        assert_eq!(outcome.code(), "short");
        let outcome = match_credit(&credit(), Some(&target()), Fen::from_fen(400_000));
        assert_eq!(outcome, Outcome::Deposit { progress: DepositProgress::Over { excess: Fen::from_fen(400_000) }, held_after: Fen::from_fen(1_400_000) });
    }

    #[test]
    fn each_failed_rule_names_its_reason_in_design_order() {
        assert_eq!(match_credit(&credit(), None, Fen::ZERO).code(), "unknown_sub_account");
        let mut other_centre = target();
        other_centre.centre_id = "520300".into();
        assert_eq!(match_credit(&credit(), Some(&other_centre), Fen::ZERO).code(), "unknown_sub_account");
        let mut wrong_account = target();
        wrong_account.section_collection_account = "9999".into();
        assert_eq!(match_credit(&credit(), Some(&wrong_account), Fen::ZERO).code(), "wrong_collection_account");
        let mut stranger = credit();
        stranger.payer_name = "另一家公司".into();
        assert_eq!(match_credit(&stranger, Some(&target()), Fen::ZERO).code(), "payer_name_mismatch");
        let mut other_account = credit();
        other_account.payer_account = "1234".into();
        assert_eq!(match_credit(&other_account, Some(&target()), Fen::ZERO).code(), "payer_not_basic_account");
        let mut late = credit();
        late.value_time = Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 1).unwrap();
        assert_eq!(match_credit(&late, Some(&target()), Fen::ZERO).code(), "late");
        let mut closed = target();
        closed.section_open = false;
        assert_eq!(match_credit(&credit(), Some(&closed), Fen::ZERO).code(), "section_closed");
    }

    #[test]
    fn names_normalise_full_width_letters_brackets_and_spaces() {
        assert_eq!(normalize_party_name("ＡＢＣ　科技（贵州）有限公司"), normalize_party_name("abc科技(贵州)有限公司"));
        assert_ne!(normalize_party_name("甲公司"), normalize_party_name("乙公司"));
    }

    #[test]
    fn replays_are_duplicates_or_conflicts_by_content() {
        assert_eq!(classify_replay(None, b"a"), Replay::New);
        assert_eq!(classify_replay(Some(b"a"), b"a"), Replay::Duplicate);
        assert_eq!(classify_replay(Some(b"a"), b"b"), Replay::Conflict);
    }

    #[test]
    fn suspense_reason_codes_round_trip() {
        for reason in SuspenseReason::ALL {
            assert_eq!(SuspenseReason::parse(reason.code()), Some(reason));
        }
    }
}
