//! The ledger service's decisions, as plain functions and types: no database, no transport.
//! Whatever depends on the time takes `now` as a parameter, so each rule is tested by giving
//! it an instant rather than by moving rows or clocks.

pub mod calendar;
pub mod centres;
pub mod deposits;
pub mod refund_triggers;
pub mod refunds;
pub mod sealing;
pub mod sections;
pub mod tender_events;
