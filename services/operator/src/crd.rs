//! The `TradingCentre` custom resource: one public-resource trading centre as an SRE declares it.
//! `crdgen` prints its CustomResourceDefinition; `k8s/crds/` and the chart hold that output.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A public-resource trading centre (公共资源交易中心) served by the platform: its identity, its
/// deposit collection accounts, its refund rules and its own calendar days. The operator
/// registers it with the ledger and keeps it in step; deleting it is refused while the centre
/// still holds money.
// kube-derive's printcolumn(…) repeats `type_ = …` per column, which clippy reads as one
// attribute given twice.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "jinfu.io",
    version = "v1",
    kind = "TradingCentre",
    plural = "tradingcentres",
    shortname = "tc",
    namespaced,
    status = "TradingCentreStatus",
    doc = "A public-resource trading centre served by the Jinfu platform.",
    printcolumn(name = "Centre", type_ = "string", json_path = ".spec.centreId"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Held (fen)", type_ = "integer", json_path = ".status.heldFen"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TradingCentreSpec {
    /// Six-digit administrative-division code, e.g. "520100" (Guiyang). Immutable: a centre's
    /// ledger is keyed by it.
    #[schemars(regex(pattern = r"^[1-9][0-9]{5}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("centreId is immutable"))]
    pub centre_id: String,
    /// The centre's official name, e.g. "贵阳市公共资源交易中心". The ledger keeps the name and
    /// parent it was first registered with: a later change is refused (Ready=False, Refused).
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// The province centre's code for a city centre; absent for a province centre. The parent's
    /// own TradingCentre must be registered first (the operator retries until it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{5}$"))]
    pub parent_centre_id: Option<String>,
    /// Refund rules; absent fields keep the platform's defaults (5 days, hold 1 working day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunds: Option<RefundRules>,
    /// The centre's deposit collection accounts (保证金专户). Accounts removed from this list are
    /// not closed in the ledger: their history is the books.
    #[serde(default)]
    pub bank_accounts: Vec<BankAccount>,
    /// The centre's own days off and make-up working days on top of the State Council calendar.
    /// The list replaces the centre's overrides as a whole.
    #[serde(default)]
    pub calendar_overrides: Vec<CalendarOverride>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRules {
    /// Days from the trigger (award, contract signed, termination) to the refund's due date:
    /// calendar days for engineering sections, working days for procurement sections. 1–60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60))]
    pub period_days: Option<i32>,
    /// Working days a triggered refund waits before it is ordered, so an operator can still mark
    /// forfeiture. 0–10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub hold_working_days: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankAccount {
    /// The bank's short code as it appears in its notices, e.g. "ICBC".
    #[schemars(regex(pattern = r"^[A-Z][A-Z0-9]{1,15}$"))]
    pub bank: String,
    /// The collection account number at that bank.
    #[schemars(regex(pattern = r"^[0-9]{6,32}$"))]
    pub account_number: String,
    /// Names the bank's notice-signing public key in the ledger's configuration
    /// (`JINFU_BANKS__<REF>__PUBLIC_KEY`); notices for this account must carry that key.
    #[schemars(regex(pattern = r"^[a-z0-9_]{1,64}$"))]
    pub signing_key_ref: String,
    /// Demand-deposit (活期) annual rate as a decimal fraction, e.g. "0.0035" for 0.35 %. This is
    /// the account's base rate, applying from the start: changing it changes interest for past
    /// days too. A new rate from a date on belongs in `rateChanges`.
    #[schemars(regex(pattern = r"^0(\.[0-9]{1,8})?$"))]
    pub demand_deposit_rate: String,
    /// Later rate changes: from each date on, interest for days from that date uses that rate.
    #[serde(default)]
    pub rate_changes: Vec<RateChange>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateChange {
    /// First day the rate applies, `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub effective_from: String,
    /// Annual rate as a decimal fraction.
    #[schemars(regex(pattern = r"^0(\.[0-9]{1,8})?$"))]
    pub annual_rate: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarOverride {
    /// The day, `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub date: String,
    /// `holiday`: the centre is closed that day; `workday`: the centre works that day.
    pub kind: DayKind,
    /// Why, for the audit trail (e.g. the local government's notice).
    #[serde(default)]
    pub reason: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DayKind {
    Holiday,
    Workday,
}

/// What the operator last did and saw.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TradingCentreStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (registered and in step with the spec) and, while a deletion is refused,
    /// `DeletionBlocked`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Money the centre still holds in the ledger, in fen: deposits, suspense, refunds in
    /// transit and forfeited deposits not yet paid on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_fen: Option<i64>,
    /// Collection accounts registered with the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_accounts: Option<i32>,
}

/// A Kubernetes-style status condition.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason code.
    pub reason: String,
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The finalizer that keeps a centre holding money from being deleted.
pub const FINALIZER: &str = "tradingcentres.jinfu.io/holds-money";
