//! Fraud warnings (DOMAIN.md, Fujian practice): evaluated in the transaction of the change that
//! may trigger them, stored once per rule, subject and hour, and published on guarantee.events.

use jinfu_platform::outbox::OutboxRows;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::store::{self, Tx};

/// Thresholds (`JINFU_FRAUD__…`); a warning is raised when a count goes ABOVE its threshold.
#[derive(Debug, Clone, Deserialize)]
pub struct FraudSettings {
    /// Cancelled or rejected applications by one bidder in an hour.
    #[serde(default = "five")]
    pub failed_applications_per_hour: i64,
    /// Firms applying to one issuer for one section in an hour.
    #[serde(default = "three")]
    pub firms_per_issuer_section_per_hour: i64,
    /// Firms applying from one IP address in an hour.
    #[serde(default = "three")]
    pub firms_per_ip_per_hour: i64,
    /// Change of a product's premium rate, in percent of the old rate.
    #[serde(default = "twenty")]
    pub premium_swing_percent: i64,
}

fn five() -> i64 {
    5
}
fn three() -> i64 {
    3
}
fn twenty() -> i64 {
    20
}

impl Default for FraudSettings {
    fn default() -> Self {
        FraudSettings {
            failed_applications_per_hour: five(),
            firms_per_issuer_section_per_hour: three(),
            firms_per_ip_per_hour: three(),
            premium_swing_percent: twenty(),
        }
    }
}

/// Stores a warning unless the same rule already warned about the same subject this hour;
/// publishes it when stored.
pub async fn warn(
    transaction: &mut Tx,
    outbox: &mut OutboxRows,
    events_topic: &str,
    centre_id: &str,
    rule: &'static str,
    subject: &str,
    detail: String,
) -> anyhow::Result<bool> {
    let stored = store::fraud_warnings::insert(transaction, centre_id, rule, subject, &detail).await?;
    if stored {
        tracing::warn!(centre = centre_id, rule, subject, detail = %detail, "fraud warning");
        metrics::counter!(FRAUD_WARNINGS, "rule" => rule).increment(1);
        outbox.push_event(
            events_topic,
            subject,
            "guarantee.fraud_warning",
            centre_id,
            serde_json::json!({
                "rule": rule, "subject": subject, "detail": detail,
            }),
        );
    }
    Ok(stored)
}

/// Fraud warnings raised (counter; label `rule`).
pub const FRAUD_WARNINGS: &str = "jinfu_guarantee_fraud_warnings_total";

/// After an application was cancelled or rejected: the bidder's failed applications this hour.
pub async fn after_failed_application(
    transaction: &mut Tx,
    outbox: &mut OutboxRows,
    events_topic: &str,
    settings: &FraudSettings,
    centre_id: &str,
    bidder_tag: &[u8],
    bidder_uscc: &str,
) -> anyhow::Result<()> {
    let failed = store::applications::failed_last_hour(transaction, centre_id, bidder_tag).await?;
    if failed > settings.failed_applications_per_hour {
        let detail = format!("{failed} cancelled or rejected applications in the last hour (threshold {})", settings.failed_applications_per_hour);
        warn(transaction, outbox, events_topic, centre_id, "failed_applications", bidder_uscc, detail).await?;
    }
    Ok(())
}

/// After an application: firms applying to its issuer for its section, and from its IP address,
/// in the last hour.
#[allow(clippy::too_many_arguments)]
pub async fn after_application(
    transaction: &mut Tx,
    outbox: &mut OutboxRows,
    events_topic: &str,
    settings: &FraudSettings,
    centre_id: &str,
    section_id: &str,
    issuer_code: &str,
    client_ip: Option<&str>,
) -> anyhow::Result<()> {
    let firms = store::applications::firms_for_issuer_section_last_hour(transaction, centre_id, section_id, issuer_code).await?;
    if firms > settings.firms_per_issuer_section_per_hour {
        let detail = format!(
            "{firms} firms applied to issuer {issuer_code} for section {section_id} in the last hour (threshold {})",
            settings.firms_per_issuer_section_per_hour
        );
        warn(transaction, outbox, events_topic, centre_id, "firms_per_issuer_section", &format!("{issuer_code}/{section_id}"), detail).await?;
    }
    if let Some(ip) = client_ip {
        let firms = store::applications::firms_from_ip_last_hour(transaction, ip).await?;
        if firms > settings.firms_per_ip_per_hour {
            let detail = format!("{firms} firms applied from {ip} in the last hour (threshold {})", settings.firms_per_ip_per_hour);
            warn(transaction, outbox, events_topic, centre_id, "firms_per_ip", ip, detail).await?;
        }
    }
    Ok(())
}

/// Whether a premium rate moved by more than `percent` % of the old rate.
pub fn premium_swing(old: Decimal, new: Decimal, percent: i64) -> bool {
    if old.is_zero() {
        return !new.is_zero();
    }
    ((new - old).abs() / old) * Decimal::from(100) > Decimal::from(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swing_is_more_than_the_threshold_of_the_old_rate() {
        let rate = |text: &str| text.parse::<Decimal>().expect("rate");
        assert!(!premium_swing(rate("0.0010"), rate("0.0012"), 20), "exactly 20 % is not above 20 %");
        assert!(premium_swing(rate("0.0010"), rate("0.00121"), 20));
        assert!(premium_swing(rate("0.0010"), rate("0.00079"), 20));
        assert!(!premium_swing(rate("0.0010"), rate("0.0010"), 20));
        assert!(premium_swing(rate("0"), rate("0.001"), 20));
    }
}
