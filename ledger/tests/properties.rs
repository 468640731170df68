//! Property tests on the core. Each property checks the core against an oracle the test works
//! out for itself, from DESIGN.md §3 and the core's doc comments, so that a wrong core fails it:
//! an entry is accepted exactly when its postings balance; a sequence of notices, refunds,
//! returns and payments keeps the books balanced, no protected balance negative and the chain
//! intact; and every notice lands where the matching rules send it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use jinfu_ledger::chain::{entry_hash, ChainedEntry, ChainedPosting, GENESIS_HASH};
use jinfu_ledger::entry::check_postings_balance;
use jinfu_ledger::matching::{match_credit, CreditFacts, Target};
use jinfu_ledger::{AccountKey, DepositProgress, EntryError, EntryKind, Fen, JournalEntry, Outcome, Posting, Side, SuspenseReason};
use proptest::prelude::*;

const CENTRE: &str = "520100";
const TARGET_COUNT: usize = 6;

fn collection_bank() -> AccountKey {
    AccountKey::Bank { bank: "ICBC".into(), account_number: "2402".into() }
}

fn collection_suspense() -> AccountKey {
    AccountKey::Suspense { bank: "ICBC".into(), account_number: "2402".into() }
}

/// Whether an account grows on the debit side, from the chart of accounts in DESIGN.md §3:
/// assets and expenses do; liabilities and income grow on the credit side.
fn grows_on_debit(account: &AccountKey) -> bool {
    matches!(account, AccountKey::Bank { .. } | AccountKey::InterestExpense)
}

/// Accounts whose balance may never be negative, from DESIGN.md §3: deposits and suspense
/// (invariant 3: a refund cannot exceed what is held), the collection account (it must equal
/// the bank's statement balance, and a bank holds no negative money for us), and
/// refund-in-transit (the bank cannot confirm paying more than was ordered).
fn protected(account: &AccountKey) -> bool {
    matches!(account, AccountKey::Deposit { .. } | AccountKey::Suspense { .. } | AccountKey::Bank { .. } | AccountKey::RefundInTransit)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).single().expect("a valid UTC time")
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Debit), Just(Side::Credit)]
}

fn chained(entry: &JournalEntry, names: &[String], extra_fen: i64) -> Vec<(String, Side, i64)> {
    entry.postings().iter().zip(names).map(|(p, account)| (account.clone(), p.side, p.amount.fen() + extra_fen)).collect()
}

fn hash(previous: &[u8; 32], sequence: i64, kind: EntryKind, postings: &[(String, Side, i64)]) -> [u8; 32] {
    let postings: Vec<ChainedPosting<'_>> =
        postings.iter().map(|(account, side, amount_fen)| ChainedPosting { account, side: *side, amount_fen: *amount_fen }).collect();
    entry_hash(previous, &ChainedEntry { centre_id: CENTRE, sequence, entry_id: "e", kind: kind.as_str(), reference: "r", postings: &postings })
}

// ---------------------------------------------------------------------------------------------
// Invariant 1: an entry is accepted exactly when its postings balance.

/// The accounts generated postings go to: one of every type, two deposits.
fn chart() -> [AccountKey; 8] {
    [
        collection_bank(),
        AccountKey::Deposit { section: "S0".into(), bidder: "B0".into() },
        AccountKey::Deposit { section: "S1".into(), bidder: "B1".into() },
        collection_suspense(),
        AccountKey::RefundInTransit,
        AccountKey::InterestExpense,
        AccountKey::InterestIncome,
        AccountKey::Forfeited { section: "S0".into() },
    ]
}

#[derive(Debug, Clone)]
struct DraftPosting {
    account: usize,
    side: Side,
    amount_fen: i64,
}

fn draft_amount_fen() -> impl Strategy<Value = i64> {
    prop_oneof![
        // Small amounts, so that drafts also balance by chance.
        6 => 1i64..20,
        3 => 1i64..5_000_000,
        1 => Just(0i64),
        1 => -5_000_000i64..0,
        // Two of these on one side overflow i64.
        1 => prop_oneof![Just(i64::MAX), Just(i64::MAX / 2 + 1), Just(i64::MIN)],
    ]
}

fn debit_signed_fen(draft: &DraftPosting) -> i128 {
    match draft.side {
        Side::Debit => i128::from(draft.amount_fen),
        Side::Credit => -i128::from(draft.amount_fen),
    }
}

/// Arbitrary postings; half of them get one more posting on their short side, so that balanced
/// sets are common rather than a coincidence. Shuffled, so the closing posting is anywhere.
fn draft_postings() -> impl Strategy<Value = Vec<DraftPosting>> {
    (prop::collection::vec((0..chart().len(), side(), draft_amount_fen()), 0..6), any::<bool>())
        .prop_map(|(drafts, close)| {
            let mut drafts: Vec<DraftPosting> = drafts.into_iter().map(|(account, side, amount_fen)| DraftPosting { account, side, amount_fen }).collect();
            let net_fen: i128 = drafts.iter().map(debit_signed_fen).sum();
            if close && net_fen != 0 {
                if let Ok(amount_fen) = i64::try_from(net_fen.abs()) {
                    let side = if net_fen > 0 { Side::Credit } else { Side::Debit };
                    drafts.push(DraftPosting { account: drafts.len() % chart().len(), side, amount_fen });
                }
            }
            drafts
        })
        .prop_shuffle()
}

/// What is wrong with a set of postings by the rules of entry.rs (`EntryError`), worked out in
/// i128 so that no sum here can overflow.
#[derive(Debug)]
struct Defects {
    /// Postings whose amount is zero or negative, as (account, amount).
    non_positive: Vec<(String, Fen)>,
    /// The sums of the positive amounts on each side.
    debits_fen: i128,
    credits_fen: i128,
}

impl Defects {
    fn of(postings: &[Posting]) -> Defects {
        let mut defects = Defects { non_positive: Vec::new(), debits_fen: 0, credits_fen: 0 };
        for posting in postings {
            let amount_fen = i128::from(posting.amount.fen());
            if amount_fen <= 0 {
                defects.non_positive.push((posting.account.to_string(), posting.amount));
            } else if posting.side == Side::Debit {
                defects.debits_fen += amount_fen;
            } else {
                defects.credits_fen += amount_fen;
            }
        }
        defects
    }

    fn overflows(&self) -> bool {
        self.debits_fen > i128::from(i64::MAX) || self.credits_fen > i128::from(i64::MAX)
    }

    fn one_sided(&self) -> bool {
        self.debits_fen == 0 || self.credits_fen == 0
    }

    fn unbalanced(&self) -> bool {
        self.debits_fen != self.credits_fen
    }

    /// A valid entry: every amount positive, both sides present, debits equal to credits.
    fn none(&self) -> bool {
        self.non_positive.is_empty() && !self.overflows() && !self.one_sided() && !self.unbalanced()
    }

    /// Whether `error` names a defect these postings really have. Several may be present, so
    /// any of them will do, but an `Unbalanced` of all-positive postings must carry the true
    /// sums (which also refuses an overflow reported as a wrapped-around imbalance).
    fn justify(&self, error: &EntryError) -> bool {
        match error {
            EntryError::NonPositivePosting { account, amount } => self.non_positive.contains(&(account.clone(), *amount)),
            EntryError::Overflow => self.overflows(),
            EntryError::OneSided => self.one_sided(),
            EntryError::Unbalanced { debits, credits } => {
                let true_sums = i128::from(debits.fen()) == self.debits_fen && i128::from(credits.fen()) == self.credits_fen;
                self.unbalanced() && (true_sums || !self.non_positive.is_empty())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants 1, 3, 6 and 7 over a sequence of operations.

#[derive(Debug, Clone)]
struct Notice {
    target: Option<usize>,
    amount_fen: i64,
    payer_is_bidder: bool,
    minutes_after_start: i64,
}

/// Three bidders: one who must pay from its basic account, one who need not, one whose section
/// is closed. Few, so that each deposit sees many receipts and refunds.
const SEQUENCE_TARGET_COUNT: usize = 3;

fn notice() -> impl Strategy<Value = Notice> {
    (prop::option::weighted(0.9, 0..SEQUENCE_TARGET_COUNT), 1i64..5_000_000, prop::bool::weighted(0.85), 0i64..3000)
        .prop_map(|(target, amount_fen, payer_is_bidder, minutes_after_start)| Notice { target, amount_fen, payer_is_bidder, minutes_after_start })
}

fn targets() -> Vec<Target> {
    (0..SEQUENCE_TARGET_COUNT)
        .map(|index| Target {
            centre_id: CENTRE.into(),
            section_id: format!("S{}", index % 2),
            bidder_uscc: format!("B{index}"),
            bidder_name: format!("投标人{index}（集团）有限公司"),
            bidder_basic_account: format!("6222{index}"),
            required: Fen::from_fen(1_000_000),
            deposit_deadline: start() + Duration::days(2),
            section_open: index != 2,
            basic_account_required: index == 0,
            section_bank: "ICBC".into(),
            section_collection_account: "2402".into(),
        })
        .collect()
}

fn deposit_of(target: &Target) -> AccountKey {
    AccountKey::Deposit { section: target.section_id.clone(), bidder: target.bidder_uscc.clone() }
}

/// How much an operation takes out of an account: everything it holds, a little more than that,
/// or a fixed amount that may be anything (more than is held, zero, negative).
#[derive(Debug, Clone, Copy)]
enum Take {
    Everything,
    MoreThanHeld(i64),
    Fixed(i64),
}

fn take() -> impl Strategy<Value = Take> {
    prop_oneof![
        3 => Just(Take::Everything),
        2 => (1i64..1_000).prop_map(Take::MoreThanHeld),
        4 => (1i64..3_000_000).prop_map(Take::Fixed),
        1 => (-1_000i64..=0).prop_map(Take::Fixed),
    ]
}

impl Take {
    fn amount_fen(self, held_fen: i128) -> i64 {
        let held_fen = i64::try_from(held_fen).expect("test balances are far below i64::MAX");
        match self {
            Take::Everything => held_fen,
            Take::MoreThanHeld(extra_fen) => held_fen + extra_fen,
            Take::Fixed(amount_fen) => amount_fen,
        }
    }
}

#[derive(Debug, Clone)]
enum Operation {
    /// A bank credit notice, matched and posted to a deposit or to suspense.
    Receive(Notice),
    /// A refund ordered out of one bidder's deposit with interest: the deposit (principal) and
    /// interest expense to refund-in-transit, as DESIGN.md §3 describes the ordered phase.
    OrderRefund { target: usize, principal: Take, interest_fen: i64 },
    /// Money in suspense ordered back to its payer: suspense to refund-in-transit.
    ReturnSuspense(Take),
    /// The bank confirms a payment: refund-in-transit to the collection account.
    ConfirmPayment(Take),
}

/// Takings are nearly as frequent as receipts, so that accounts are often drained.
fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => notice().prop_map(Operation::Receive),
        3 => (0..SEQUENCE_TARGET_COUNT, take(), 0i64..2_000)
            .prop_map(|(target, principal, interest_fen)| Operation::OrderRefund { target, principal, interest_fen }),
        1 => take().prop_map(Operation::ReturnSuspense),
        2 => take().prop_map(Operation::ConfirmPayment),
    ]
}

/// Single operations, and now and then a failed tender (DESIGN.md §3: everyone is refunded):
/// every deposit refunded in full with interest, suspense returned, and everything in transit
/// confirmed. That drains every liability, so paying out the interest too would overdraw the
/// collection account, which holds only what was received.
fn operations() -> impl Strategy<Value = Vec<Operation>> {
    let failed_tender = (0i64..2_000).prop_map(|interest_fen| {
        let mut block: Vec<Operation> =
            (0..SEQUENCE_TARGET_COUNT).map(|target| Operation::OrderRefund { target, principal: Take::Everything, interest_fen }).collect();
        block.push(Operation::ReturnSuspense(Take::Everything));
        block.push(Operation::ConfirmPayment(Take::Everything));
        block
    });
    let block = prop_oneof![9 => operation().prop_map(|operation| vec![operation]), 1 => failed_tender];
    prop::collection::vec(block, 0..100).prop_map(|blocks| blocks.into_iter().flatten().collect())
}

/// One operation as the core posts it and as the test understands it.
struct Planned {
    kind: EntryKind,
    /// The entry the core builds, or its refusal.
    built: Result<JournalEntry, EntryError>,
    /// Each account's change, positive in the direction the account grows.
    moves: Vec<(AccountKey, i128)>,
    /// Whether every amount the operation moves is positive.
    positive: bool,
}

// ---------------------------------------------------------------------------------------------
// Invariant 7 and the matching rules: every notice lands where DESIGN.md §3 sends it.

#[derive(Debug, Clone)]
struct TargetDraft {
    section_open: bool,
    basic_account_required: bool,
    deadline_minutes: i64,
    required_fen: i64,
}

fn target_drafts() -> impl Strategy<Value = Vec<TargetDraft>> {
    let draft = (prop::bool::weighted(0.8), any::<bool>(), prop_oneof![Just(1440i64), Just(2880i64)], round_or_any_fen(3_000_000)).prop_map(
        |(section_open, basic_account_required, deadline_minutes, required_fen)| TargetDraft {
            section_open,
            basic_account_required,
            deadline_minutes,
            required_fen,
        },
    );
    prop::collection::vec(draft, TARGET_COUNT)
}

/// An amount below `below_fen`: often a round multiple of 1,000 yuan, so that payments add up
/// to a requirement exactly (satisfied, not short or over) as well as missing or passing it.
fn round_or_any_fen(below_fen: i64) -> impl Strategy<Value = i64> {
    prop_oneof![1 => 1i64..below_fen, 3 => (1i64..below_fen / 100_000).prop_map(|thousands| thousands * 100_000)]
}

/// Registered names mix Chinese, full-width brackets and Latin letters, so that every rule of
/// name normalisation has something to do.
fn registered_name(index: usize) -> String {
    format!("贵州Qx{index}（集团）有限公司")
}

fn registered_basic_account(index: usize) -> String {
    format!("6222000{index}1111")
}

fn drafted_targets(drafts: &[TargetDraft]) -> Vec<Target> {
    drafts
        .iter()
        .enumerate()
        .map(|(index, draft)| Target {
            centre_id: CENTRE.into(),
            section_id: format!("S{}", index % 2),
            bidder_uscc: format!("B{index}"),
            bidder_name: registered_name(index),
            bidder_basic_account: registered_basic_account(index),
            required: Fen::from_fen(draft.required_fen),
            deposit_deadline: start() + Duration::minutes(draft.deadline_minutes),
            section_open: draft.section_open,
            basic_account_required: draft.basic_account_required,
            section_bank: "ICBC".into(),
            section_collection_account: "2402".into(),
        })
        .collect()
}

/// How the bank wrote the payer's name.
#[derive(Debug, Clone, Copy)]
enum PayerName {
    Registered,
    HalfWidthBrackets,
    LenticularBrackets,
    TortoiseShellBrackets,
    SquareBrackets,
    SpacedOut,
    FullWidthLowerCase,
    AnotherBidder,
    Stranger,
}

impl PayerName {
    fn write(self, index: usize) -> String {
        let name = registered_name(index);
        let brackets = |open: &str, close: &str| name.replace('（', open).replace('）', close);
        match self {
            PayerName::Registered => name.clone(),
            PayerName::HalfWidthBrackets => brackets("(", ")"),
            PayerName::LenticularBrackets => brackets("【", "】"),
            PayerName::TortoiseShellBrackets => brackets("〔", "〕"),
            PayerName::SquareBrackets => brackets("[", "]"),
            PayerName::SpacedOut => name.chars().enumerate().flat_map(|(n, c)| [c, if n % 2 == 0 { ' ' } else { '\u{3000}' }]).collect(),
            PayerName::FullWidthLowerCase => name.replace("Qx", "ｑｘ"),
            PayerName::AnotherBidder => registered_name((index + 1) % TARGET_COUNT),
            PayerName::Stranger => "第三方公司".into(),
        }
    }

    /// Whether a bank clerk reads the name as the registered bidder's: DESIGN.md §3 and
    /// `normalize_party_name` ignore full-width/half-width forms, bracket styles, whitespace and
    /// the case of Latin letters.
    fn is_the_bidder(self) -> bool {
        !matches!(self, PayerName::AnotherBidder | PayerName::Stranger)
    }
}

/// How the bank wrote the paying account.
#[derive(Debug, Clone, Copy)]
enum PayerAccount {
    Basic,
    BasicSpaced,
    BasicDashed,
    Another,
}

impl PayerAccount {
    fn write(self, index: usize) -> String {
        let basic = registered_basic_account(index);
        let grouped = |separator: &str| basic.as_bytes().chunks(4).map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect::<Vec<_>>().join(separator);
        match self {
            PayerAccount::Basic => basic.clone(),
            PayerAccount::BasicSpaced => grouped(" "),
            PayerAccount::BasicDashed => grouped("-"),
            PayerAccount::Another => "6217999988887777".into(),
        }
    }

    /// Banks print account numbers with spaces and dashes for readability (matching.rs).
    fn is_the_basic_account(self) -> bool {
        !matches!(self, PayerAccount::Another)
    }
}

/// Which collection account the money arrived at.
#[derive(Debug, Clone, Copy)]
enum Collection {
    TheSections,
    AnotherAccount,
    AnotherBank,
}

impl Collection {
    fn bank_and_account(self) -> (&'static str, &'static str) {
        match self {
            Collection::TheSections => ("ICBC", "2402"),
            Collection::AnotherAccount => ("ICBC", "2403"),
            Collection::AnotherBank => ("CCB", "2402"),
        }
    }
}

/// When the money arrived, relative to the start or to the target's deadline.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    MinutesAfterStart(i64),
    SecondBeforeDeadline,
    AtDeadline,
    SecondAfterDeadline,
}

impl Arrival {
    fn time(self, deadline: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Arrival::MinutesAfterStart(minutes) => start() + Duration::minutes(minutes),
            Arrival::SecondBeforeDeadline => deadline - Duration::seconds(1),
            Arrival::AtDeadline => deadline,
            Arrival::SecondAfterDeadline => deadline + Duration::seconds(1),
        }
    }

    /// DESIGN.md §3 asks that the money "arrived before the deposit deadline". The oracle reads
    /// the deadline as the last instant still on time: money stamped exactly at it is on time,
    /// one second later is late (as matching.rs's own unit test pins the second after).
    fn is_late(self, deadline_minutes: i64) -> bool {
        match self {
            Arrival::MinutesAfterStart(minutes) => minutes > deadline_minutes,
            Arrival::SecondBeforeDeadline | Arrival::AtDeadline => false,
            Arrival::SecondAfterDeadline => true,
        }
    }
}

#[derive(Debug, Clone)]
struct MatchNotice {
    /// The sub-account the notice names, if it exists.
    target: Option<usize>,
    /// The sub-account exists, but the notice comes from another centre.
    from_another_centre: bool,
    collection: Collection,
    payer_name: PayerName,
    payer_account: PayerAccount,
    arrival: Arrival,
    amount_fen: i64,
}

fn match_notice() -> impl Strategy<Value = MatchNotice> {
    let payer_name = prop_oneof![
        3 => Just(PayerName::Registered),
        2 => Just(PayerName::HalfWidthBrackets),
        1 => Just(PayerName::LenticularBrackets),
        1 => Just(PayerName::TortoiseShellBrackets),
        1 => Just(PayerName::SquareBrackets),
        1 => Just(PayerName::SpacedOut),
        1 => Just(PayerName::FullWidthLowerCase),
        1 => Just(PayerName::AnotherBidder),
        1 => Just(PayerName::Stranger),
    ];
    let payer_account = prop_oneof![
        4 => Just(PayerAccount::Basic),
        1 => Just(PayerAccount::BasicSpaced),
        1 => Just(PayerAccount::BasicDashed),
        1 => Just(PayerAccount::Another),
    ];
    let collection = prop_oneof![8 => Just(Collection::TheSections), 1 => Just(Collection::AnotherAccount), 1 => Just(Collection::AnotherBank)];
    let arrival = prop_oneof![
        7 => (0i64..3000).prop_map(Arrival::MinutesAfterStart),
        1 => Just(Arrival::SecondBeforeDeadline),
        1 => Just(Arrival::AtDeadline),
        1 => Just(Arrival::SecondAfterDeadline),
    ];
    (prop::option::weighted(0.9, 0..TARGET_COUNT), prop::bool::weighted(0.05), collection, payer_name, payer_account, arrival, round_or_any_fen(2_000_000))
        .prop_map(|(target, from_another_centre, collection, payer_name, payer_account, arrival, amount_fen)| MatchNotice {
            target,
            from_another_centre,
            collection,
            payer_name,
            payer_account,
            arrival,
            amount_fen,
        })
}

impl MatchNotice {
    fn credit(&self, targets: &[Target]) -> CreditFacts {
        let index = self.target.unwrap_or(0);
        let (bank, collection_account) = self.collection.bank_and_account();
        CreditFacts {
            centre_id: if self.from_another_centre { "520300".into() } else { CENTRE.into() },
            bank: bank.into(),
            collection_account: collection_account.into(),
            amount: Fen::from_fen(self.amount_fen),
            payer_name: self.payer_name.write(index),
            payer_account: self.payer_account.write(index),
            value_time: self.arrival.time(targets[index].deposit_deadline),
        }
    }

    /// Where DESIGN.md §3 sends the notice, worked out from the facts the test wrote into it:
    /// the target's index, or suspense with the reason of the first rule that fails. In order:
    /// resolve the sub-account (account keys are unique within a centre, so only in the
    /// notice's own centre) → the money came to the section's collection account → the payer is
    /// the registered bidder → from its basic account where the section requires it → arrived
    /// by the deadline → the section is still open.
    fn expected_route(&self, drafts: &[TargetDraft]) -> Result<usize, SuspenseReason> {
        let Some(index) = self.target.filter(|_| !self.from_another_centre) else {
            return Err(SuspenseReason::UnknownSubAccount);
        };
        let target = &drafts[index];
        if !matches!(self.collection, Collection::TheSections) {
            return Err(SuspenseReason::WrongCollectionAccount);
        }
        if !self.payer_name.is_the_bidder() {
            return Err(SuspenseReason::PayerNameMismatch);
        }
        if target.basic_account_required && !self.payer_account.is_the_basic_account() {
            return Err(SuspenseReason::PayerNotBasicAccount);
        }
        if self.arrival.is_late(target.deadline_minutes) {
            return Err(SuspenseReason::Late);
        }
        if !target.section_open {
            return Err(SuspenseReason::SectionClosed);
        }
        Ok(index)
    }
}

/// DESIGN.md §3: the deposit is satisfied when the matched total reaches the requirement;
/// short while below it, over (the excess refundable) above it.
fn expected_progress(held_fen: i64, required_fen: i64) -> DepositProgress {
    if held_fen < required_fen {
        DepositProgress::Short { missing: Fen::from_fen(required_fen - held_fen) }
    } else if held_fen == required_fen {
        DepositProgress::Satisfied
    } else {
        DepositProgress::Over { excess: Fen::from_fen(held_fen - required_fen) }
    }
}

fn fen_of(balances: &BTreeMap<AccountKey, Fen>, account: &AccountKey) -> i128 {
    i128::from(balances.get(account).copied().unwrap_or_default().fen())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_entry_is_accepted_exactly_when_its_postings_balance_and_its_balance_changes_net_to_zero(drafts in draft_postings()) {
        let chart = chart();
        let postings: Vec<Posting> =
            drafts.iter().map(|d| Posting { account: chart[d.account].clone(), side: d.side, amount: Fen::from_fen(d.amount_fen) }).collect();
        let defects = Defects::of(&postings);
        let built = JournalEntry::new(EntryKind::DepositReceived, postings.clone());
        let checked = check_postings_balance(&postings);
        prop_assert_eq!(built.is_ok(), defects.none(), "JournalEntry::new of {:?}: {:?}", defects, built);
        prop_assert_eq!(checked.is_ok(), defects.none(), "check_postings_balance of {:?}: {:?}", defects, checked);
        for error in [built.as_ref().err(), checked.as_ref().err()].into_iter().flatten() {
            prop_assert!(defects.justify(error), "{} is not what is wrong with {:?}", error, defects);
        }
        if let Ok(entry) = built {
            prop_assert_eq!(entry.postings(), postings.as_slice());
            // Each account changes by what was posted on its growing side less what was posted
            // on the other.
            let mut expected: BTreeMap<AccountKey, i128> = BTreeMap::new();
            for posting in &postings {
                let grows = (posting.side == Side::Debit) == grows_on_debit(&posting.account);
                let amount_fen = i128::from(posting.amount.fen());
                *expected.entry(posting.account.clone()).or_default() += if grows { amount_fen } else { -amount_fen };
            }
            let deltas = entry.balance_deltas();
            prop_assert_eq!(deltas.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
            // Signed by side (debit-normal accounts plus, credit-normal minus), the changes sum to
            // zero: assets and expenses grow by exactly what liabilities and income grow by.
            let mut debit_signed_sum_fen = 0i128;
            for (account, delta) in &deltas {
                let delta_fen = i128::from(delta.fen());
                prop_assert_eq!(delta_fen, expected[account], "balance change of {}", account);
                debit_signed_sum_fen += if grows_on_debit(account) { delta_fen } else { -delta_fen };
            }
            prop_assert_eq!(debit_signed_sum_fen, 0);
        }
    }

    #[test]
    fn any_sequence_of_notices_refunds_and_payments_keeps_the_books_balanced_nothing_negative_and_the_chain_intact(
        operations in operations()
    ) {
        let targets = targets();
        let bank = collection_bank();
        let suspense = collection_suspense();
        // The balances the core's entries produce: each accepted entry's `balance_deltas`.
        let mut balances: BTreeMap<AccountKey, Fen> = BTreeMap::new();
        // The test's own account of the same balances, from what each operation means.
        let mut expected: BTreeMap<AccountKey, i128> = BTreeMap::new();
        let mut chain = GENESIS_HASH;
        let mut journal: Vec<(JournalEntry, Vec<String>, [u8; 32])> = Vec::new();
        let mut received_fen = 0i128;
        let mut paid_out_fen = 0i128;

        for (index, operation) in operations.iter().enumerate() {
            let expected_of = |account: &AccountKey| expected.get(account).copied().unwrap_or(0);
            // What the operation posts (through the core), and what it means to the test: each
            // account's change, and whether its amounts are positive.
            let Planned { kind, built, moves, positive } = match operation {
                Operation::Receive(notice) => {
                    let target = notice.target.map(|index| &targets[index]);
                    let credit = CreditFacts {
                        centre_id: CENTRE.into(),
                        bank: "ICBC".into(),
                        collection_account: "2402".into(),
                        amount: Fen::from_fen(notice.amount_fen),
                        payer_name: match (target, notice.payer_is_bidder) {
                            // Banks print brackets half-width; the registered name has them full-width.
                            (Some(target), true) => target.bidder_name.replace('（', "(").replace('）', ")"),
                            _ => "第三方公司".into(),
                        },
                        payer_account: target.map(|t| t.bidder_basic_account.clone()).unwrap_or_default(),
                        value_time: start() + Duration::minutes(notice.minutes_after_start),
                    };
                    let held = target.map(|t| balances.get(&deposit_of(t)).copied().unwrap_or_default()).unwrap_or_default();
                    // Where it lands is the matching property's business; here it only has to land.
                    let (kind, credited) = match (match_credit(&credit, target, held), target) {
                        (Outcome::Deposit { .. }, Some(target)) => (EntryKind::DepositReceived, deposit_of(target)),
                        (Outcome::Deposit { .. }, None) => return Err(TestCaseError::fail("a notice without a target matched a deposit")),
                        (Outcome::Suspense(_), _) => (EntryKind::SuspenseReceived, suspense.clone()),
                    };
                    let built = JournalEntry::transfer(kind, bank.clone(), credited.clone(), credit.amount);
                    let amount_fen = i128::from(notice.amount_fen);
                    Planned { kind, built, moves: vec![(bank.clone(), amount_fen), (credited, amount_fen)], positive: true }
                }
                Operation::OrderRefund { target, principal, interest_fen } => {
                    let deposit = deposit_of(&targets[*target]);
                    let principal_fen = principal.amount_fen(expected_of(&deposit));
                    let mut postings = vec![Posting { account: deposit.clone(), side: Side::Debit, amount: Fen::from_fen(principal_fen) }];
                    if *interest_fen > 0 {
                        postings.push(Posting { account: AccountKey::InterestExpense, side: Side::Debit, amount: Fen::from_fen(*interest_fen) });
                    }
                    postings.push(Posting { account: AccountKey::RefundInTransit, side: Side::Credit, amount: Fen::from_fen(principal_fen + interest_fen) });
                    let built = JournalEntry::new(EntryKind::RefundOrdered, postings);
                    let (principal_fen, interest_fen) = (i128::from(principal_fen), i128::from(*interest_fen));
                    let moves = vec![(deposit, -principal_fen), (AccountKey::InterestExpense, interest_fen), (AccountKey::RefundInTransit, principal_fen + interest_fen)];
                    Planned { kind: EntryKind::RefundOrdered, built, moves, positive: principal_fen > 0 }
                }
                Operation::ReturnSuspense(take) => {
                    let amount_fen = take.amount_fen(expected_of(&suspense));
                    let built = JournalEntry::transfer(EntryKind::SuspenseReturnOrdered, suspense.clone(), AccountKey::RefundInTransit, Fen::from_fen(amount_fen));
                    let amount_fen = i128::from(amount_fen);
                    let moves = vec![(suspense.clone(), -amount_fen), (AccountKey::RefundInTransit, amount_fen)];
                    Planned { kind: EntryKind::SuspenseReturnOrdered, built, moves, positive: amount_fen > 0 }
                }
                Operation::ConfirmPayment(take) => {
                    let amount_fen = take.amount_fen(expected_of(&AccountKey::RefundInTransit));
                    let built = JournalEntry::transfer(EntryKind::RefundConfirmed, AccountKey::RefundInTransit, bank.clone(), Fen::from_fen(amount_fen));
                    let amount_fen = i128::from(amount_fen);
                    let moves = vec![(AccountKey::RefundInTransit, -amount_fen), (bank.clone(), -amount_fen)];
                    Planned { kind: EntryKind::RefundConfirmed, built, moves, positive: amount_fen > 0 }
                }
            };

            // The oracle: an operation happens only if its amounts are positive and it leaves no
            // protected account negative (a refund or return of more than is held, a payment of
            // more than is in transit or in the bank).
            let would_go_negative = moves.iter().any(|(account, change_fen)| protected(account) && expected_of(account) + change_fen < 0);
            let oracle_applies = positive && !would_go_negative;

            // The system. The core refuses non-positive amounts itself (`JournalEntry::new`), but
            // it has no refusal of a negative balance: `Fen::checked_sub` and `checked_add` refuse
            // only i64 overflow, and `MoneyError` is about parsing. Invariant 3 is enforced by the
            // ledger service (services/ledger/src/journal.rs) on the core's own numbers: the
            // balance after the entry's `balance_deltas` must not be negative for any account the
            // core marks `must_not_go_negative`. That check is reproduced here, so that a wrong
            // delta (sign, amount) or a wrong classification makes the core's decision differ
            // from the oracle's, and the balances below stay non-negative only because of it.
            let core_applies = match &built {
                Err(error) => {
                    prop_assert!(matches!(error, EntryError::NonPositivePosting { .. }), "operation {} {:?}: {}", index, operation, error);
                    false
                }
                Ok(entry) => entry.balance_deltas().iter().all(|(account, delta)| {
                    let after = balances.get(account).copied().unwrap_or_default().checked_add(*delta);
                    after.is_some_and(|after| !account.must_not_go_negative() || after.fen() >= 0)
                }),
            };
            prop_assert_eq!(core_applies, oracle_applies, "operation {} {:?} (refused by the core: {:?})", index, operation, built.as_ref().err());
            if !core_applies {
                continue;
            }
            let entry = built.map_err(|error| TestCaseError::fail(format!("an applied entry was built: {error}")))?;
            for (account, delta) in entry.balance_deltas() {
                let balance = balances.entry(account).or_default();
                *balance = *balance + delta;
            }
            for (account, change_fen) in &moves {
                *expected.entry(account.clone()).or_default() += change_fen;
            }
            match operation {
                Operation::Receive(notice) => received_fen += i128::from(notice.amount_fen),
                Operation::ConfirmPayment(_) => paid_out_fen += -moves[1].1,
                _ => {}
            }
            for account in balances.keys().chain(expected.keys()) {
                prop_assert_eq!(fen_of(&balances, account), expected.get(account).copied().unwrap_or(0), "{} after operation {} {:?}", account, index, operation);
            }
            let names: Vec<String> = entry.postings().iter().map(|p| p.account.to_string()).collect();
            chain = hash(&chain, journal.len() as i64 + 1, kind, &chained(&entry, &names, 0));
            journal.push((entry, names, chain));
        }

        let mut debit_normal_fen = 0i128;
        let mut credit_normal_fen = 0i128;
        for (account, balance) in &balances {
            // Invariant 3, on balances the sequence tried to overdraw.
            prop_assert!(!protected(account) || balance.fen() >= 0, "{} is negative", account);
            if grows_on_debit(account) {
                debit_normal_fen += i128::from(balance.fen());
            } else {
                credit_normal_fen += i128::from(balance.fen());
            }
        }
        // The books balance as a whole (assets and expenses against liabilities and income), and
        // invariant 7: every fen received is still at the bank unless it was paid out, so it is
        // in a deposit, in suspense, or in transit back to its payer.
        prop_assert_eq!(debit_normal_fen, credit_normal_fen);
        prop_assert_eq!(fen_of(&balances, &bank), received_fen - paid_out_fen);
        // Invariant 6: one changed fen in the last entry breaks its hash.
        if let Some((entry, names, last_hash)) = journal.last() {
            let previous = if journal.len() > 1 { journal[journal.len() - 2].2 } else { GENESIS_HASH };
            prop_assert_eq!(hash(&previous, journal.len() as i64, entry.kind(), &chained(entry, names, 0)), *last_hash);
            prop_assert_ne!(hash(&previous, journal.len() as i64, entry.kind(), &chained(entry, names, 1)), *last_hash);
        }
    }

    #[test]
    fn every_notice_lands_where_the_matching_rules_send_it_and_each_deposit_holds_what_was_sent_to_it(
        drafts in target_drafts(),
        notices in prop::collection::vec(match_notice(), 0..80)
    ) {
        let targets = drafted_targets(&drafts);
        let mut balances: BTreeMap<AccountKey, Fen> = BTreeMap::new();
        // What the oracle sent to each deposit and suspense account, in fen.
        let mut routed_fen: BTreeMap<AccountKey, i64> = BTreeMap::new();
        for (number, notice) in notices.iter().enumerate() {
            let credit = notice.credit(&targets);
            let target = notice.target.map(|index| &targets[index]);
            let held = target.map(|t| balances.get(&deposit_of(t)).copied().unwrap_or_default()).unwrap_or_default();
            let outcome = match_credit(&credit, target, held);

            let suspense = AccountKey::Suspense { bank: credit.bank.clone(), account_number: credit.collection_account.clone() };
            match notice.expected_route(&drafts) {
                Ok(index) => {
                    let deposit = deposit_of(&targets[index]);
                    let held_after_fen = routed_fen.get(&deposit).copied().unwrap_or(0) + notice.amount_fen;
                    let progress = expected_progress(held_after_fen, drafts[index].required_fen);
                    prop_assert_eq!(outcome, Outcome::Deposit { progress, held_after: Fen::from_fen(held_after_fen) }, "notice {} {:?}", number, notice);
                    *routed_fen.entry(deposit).or_default() += notice.amount_fen;
                }
                Err(reason) => {
                    prop_assert_eq!(outcome, Outcome::Suspense(reason), "notice {} {:?}", number, notice);
                    *routed_fen.entry(suspense.clone()).or_default() += notice.amount_fen;
                }
            }

            // Posted where `match_credit` sent it, as the ledger does.
            let (kind, credited) = match (outcome, target) {
                (Outcome::Deposit { .. }, Some(target)) => (EntryKind::DepositReceived, deposit_of(target)),
                _ => (EntryKind::SuspenseReceived, suspense),
            };
            let bank = AccountKey::Bank { bank: credit.bank.clone(), account_number: credit.collection_account.clone() };
            let entry = JournalEntry::transfer(kind, bank, credited, credit.amount)
                .map_err(|error| TestCaseError::fail(format!("a positive transfer between two accounts balances: {error}")))?;
            for (account, delta) in entry.balance_deltas() {
                let balance = balances.entry(account).or_default();
                *balance = *balance + delta;
            }
        }
        // Invariant 7: each deposit and suspense account holds exactly the notices the rules sent
        // to it, and no other account but the banks received anything.
        for (account, balance) in &balances {
            if matches!(account, AccountKey::Bank { .. }) {
                continue;
            }
            prop_assert_eq!(balance.fen(), routed_fen.get(account).copied().unwrap_or(0), "{}", account);
        }
        for (account, sent_fen) in &routed_fen {
            prop_assert_eq!(balances.get(account).copied().unwrap_or_default().fen(), *sent_fen, "{}", account);
        }
        let banks_fen: i64 = balances.iter().filter(|(account, _)| matches!(account, AccountKey::Bank { .. })).map(|(_, balance)| balance.fen()).sum();
        prop_assert_eq!(banks_fen, notices.iter().map(|notice| notice.amount_fen).sum::<i64>());
    }
}
