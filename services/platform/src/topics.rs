//! Topic names of DESIGN.md §4 as constants: code names a topic by constant, never by a string
//! literal, so a typo is a compile error. Each topic has a dead-letter twin (`<topic>.dlq`,
//! [`crate::kafka::dlq_topic`]). `KafkaSettings::topic` prepends the configured prefix.

/// Banks' credit notices (入账通知), signed by the bank. Consumed by the ledger.
pub const BANK_CREDIT_NOTICES: &str = "bank.credit-notices";
/// Banks' end-of-day statements. Consumed by the ledger's reconciliation.
pub const BANK_STATEMENTS: &str = "bank.statements";
/// Refund payment orders the ledger signs for a bank to execute.
pub const BANK_PAYMENT_ORDERS: &str = "bank.payment-orders";
/// Banks' results of payment orders.
pub const BANK_PAYMENT_RESULTS: &str = "bank.payment-results";
/// The e-trading system's tender events (bids opened, award, contract signed, ...).
pub const TRADING_EVENTS: &str = "trading.events";
/// What the ledger posted and decided.
pub const LEDGER_EVENTS: &str = "ledger.events";
/// Guarantees issued, claimed, released, expired.
pub const GUARANTEE_EVENTS: &str = "guarantee.events";
/// Contract loans.
pub const LOAN_EVENTS: &str = "loan.events";
/// Contracts, acceptance, invoices, payments.
pub const CONTRACT_EVENTS: &str = "contract.events";
/// Purchasers' payment records, signed with a key registered for the purchaser at the contract
/// service (docs/schemas/contract.payment.v1.json). Consumed by the contract service.
pub const CONTRACT_PAYMENTS: &str = "contract.payments";
/// Credit records and debarments.
pub const CREDIT_EVENTS: &str = "credit.events";

/// Every topic of DESIGN.md §4 (and `contract.payments`). Each has a `.dlq` twin.
pub const ALL: [&str; 11] = [
    BANK_CREDIT_NOTICES,
    BANK_STATEMENTS,
    BANK_PAYMENT_ORDERS,
    BANK_PAYMENT_RESULTS,
    TRADING_EVENTS,
    LEDGER_EVENTS,
    GUARANTEE_EVENTS,
    LOAN_EVENTS,
    CONTRACT_EVENTS,
    CONTRACT_PAYMENTS,
    CREDIT_EVENTS,
];
