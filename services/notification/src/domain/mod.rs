//! What the notification service decides, without I/O: who is told what about an event
//! ([`plan`]), on which channels and when ([`policy`]), in which words ([`templates`]).

pub mod plan;
pub mod policy;
pub mod templates;

use jinfu_platform::coded;

coded! {
    /// A way of reaching a party.
    Channel { Email = "email", Sms = "sms", Webhook = "webhook", Inbox = "inbox" }
}

coded! {
    /// What a message is about; preferences switch (category, channel) pairs.
    Category {
        Deposit = "deposit",
        Refund = "refund",
        Guarantee = "guarantee",
        Contract = "contract",
        Payment = "payment",
        Credit = "credit",
        Alert = "alert",
        Tender = "tender",
    }
}

coded! {
    /// Where a delivery stands.
    DeliveryState { Pending = "pending", Sending = "sending", Sent = "sent", Dead = "dead", Cancelled = "cancelled" }
}

/// A refusal of a request, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{field} is not valid: {why}")]
    Invalid { field: &'static str, why: &'static str },
    #[error("the delivery is not dead-lettered; only a dead delivery is retried")]
    NotDead,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid { .. } => "invalid_field",
            Refusal::NotDead => "not_dead",
        }
    }
}

fn invalid(field: &'static str, why: &'static str) -> Refusal {
    Refusal::Invalid { field, why }
}

/// A recipient: an 18-character USCC, or `operators:<centre code>`.
pub fn check_party(party: &str) -> Result<(), Refusal> {
    let is_uscc = party.len() == 18 && party.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
    let is_operators =
        party.strip_prefix("operators:").is_some_and(|centre| centre.len() == 6 && centre.chars().all(|c| c.is_ascii_digit()) && !centre.starts_with('0'));
    if is_uscc || is_operators {
        Ok(())
    } else {
        Err(invalid("party", "a USCC (18 digits or capital letters) or operators:<centre_id>"))
    }
}

/// The recipient that stands for a centre's operators.
pub fn operators_of(centre_id: &str) -> String {
    format!("operators:{centre_id}")
}

/// A mainland mobile number, 11 digits starting with 1; `+86` and spaces dropped.
pub fn normalise_phone(text: &str) -> Result<Option<String>, Refusal> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if compact.is_empty() {
        return Ok(None);
    }
    let digits = compact.strip_prefix("+86").unwrap_or(&compact);
    if digits.len() == 11 && digits.starts_with('1') && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(digits.to_owned()))
    } else {
        Err(invalid("phone", "a mainland mobile number: 11 digits starting with 1"))
    }
}

/// An e-mail address: one `@`, a non-empty local part, a domain with a dot, no spaces or
/// control characters, at most 254 characters.
pub fn normalise_email(text: &str) -> Result<Option<String>, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let well_formed = text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if well_formed {
        Ok(Some(text.to_owned()))
    } else {
        Err(invalid("email", "an address such as bids@example.cn"))
    }
}

/// A webhook URL and its secret: `https://`, or `http://` to a loopback host (tests); the secret
/// `whsec_` + base64 of 24 to 64 bytes, required with the URL.
pub fn check_webhook(url: &str, secret: &str) -> Result<Option<(String, String)>, Refusal> {
    let url = url.trim();
    if url.is_empty() {
        return if secret.is_empty() { Ok(None) } else { Err(invalid("webhook_url", "required with webhook_secret")) };
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|prefix| url.starts_with(prefix));
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) || !(url.starts_with("https://") || loopback) {
        return Err(invalid("webhook_url", "an https:// URL (http:// only to a loopback address)"));
    }
    if webhook_key(secret).is_none() {
        return Err(invalid("webhook_secret", "whsec_ followed by base64 of 24 to 64 bytes"));
    }
    Ok(Some((url.to_owned(), secret.to_owned())))
}

/// The HMAC key of a `whsec_…` secret.
pub fn webhook_key(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

/// An interest tag: `centre:<code>` or `regime:procurement|engineering`.
pub fn check_tag(tag: &str) -> Result<(), Refusal> {
    let centre = tag.strip_prefix("centre:").is_some_and(|code| code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) && !code.starts_with('0'));
    if centre || tag == "regime:procurement" || tag == "regime:engineering" {
        Ok(())
    } else {
        Err(invalid("interest_tags", "centre:<centre_id>, regime:procurement or regime:engineering"))
    }
}

/// The tags that select a tender of `centre_id` (its own code and its province's) in `regime`.
pub fn tender_tags(centre_id: &str, regime: Option<&str>) -> Vec<String> {
    let mut tags = vec![format!("centre:{centre_id}")];
    if centre_id.len() == 6 && !centre_id.ends_with("0000") {
        tags.push(format!("centre:{}0000", &centre_id[..2]));
    }
    if let Some(regime) = regime {
        tags.push(format!("regime:{regime}"));
    }
    tags
}

/// The destination with its middle masked, for listings: `138****8000`, `b***@example.cn`,
/// `https://hooks.example.cn/…`.
pub fn mask(channel: Channel, destination: &str) -> String {
    match channel {
        Channel::Sms if destination.len() == 11 => format!("{}****{}", &destination[..3], &destination[7..]),
        Channel::Email => match destination.split_once('@') {
            Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
            None => "***".into(),
        },
        Channel::Webhook => match destination.find("://").and_then(|scheme| destination[scheme + 3..].find('/').map(|path| scheme + 3 + path)) {
            Some(end) => format!("{}/…", &destination[..end]),
            None => destination.to_owned(),
        },
        _ => destination.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_phones_addresses_and_tags_are_checked_at_the_boundary() {
        assert!(check_party("91520100MA6DKQ1X2B").is_ok());
        assert!(check_party("operators:520100").is_ok());
        assert!(check_party("operators:020100").is_err());
        assert!(check_party("someone").is_err());
        assert_eq!(normalise_phone("+86 138 0013 8000").unwrap().as_deref(), Some("13800138000"));
        assert_eq!(normalise_phone("").unwrap(), None);
        assert!(normalise_phone("23800138000").is_err());
        assert!(normalise_email("a b@example.cn").is_err());
        assert!(normalise_email("bids@example").is_err());
        assert!(normalise_email("bids@example.cn").unwrap().is_some());
        assert!(check_webhook("http://example.cn/hook", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(check_webhook("https://example.cn/hook", "whsec_short").is_err());
        assert!(check_webhook("https://example.cn/hook", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap().is_some());
        assert!(check_tag("centre:520100").is_ok());
        assert!(check_tag("region:520100").is_err());
        assert_eq!(tender_tags("520100", Some("engineering")), ["centre:520100", "centre:520000", "regime:engineering"]);
        assert_eq!(mask(Channel::Sms, "13800138000"), "138****8000");
        assert_eq!(mask(Channel::Email, "bids@example.cn"), "b***@example.cn");
        assert_eq!(mask(Channel::Webhook, "https://hooks.example.cn/jinfu/1"), "https://hooks.example.cn/…");
    }
}
