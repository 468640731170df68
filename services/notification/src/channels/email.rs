//! E-mail over SMTP (lettre). The Message-ID is `<delivery id>@<sender domain>`, so a message
//! sent again after a lost answer carries the same id and mail clients show it once.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::SendError;
use crate::settings::SmtpSettings;
use crate::store::deliveries::Claimed;

pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl EmailSender {
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<EmailSender> {
        let from: Mailbox = settings.from.parse().map_err(|error| anyhow::anyhow!("smtp.from {:?}: {error}", settings.from))?;
        let domain = from.email.domain().to_owned();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(Duration::from_secs(settings.timeout_seconds.max(1))));
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose_secret().to_owned()));
        }
        Ok(EmailSender { transport: builder.build(), from, domain })
    }

    pub async fn send(&self, delivery: &Claimed) -> Result<String, SendError> {
        let to: Mailbox = delivery.destination.parse().map_err(|error| SendError::permanent("bad_address", format!("{error}")))?;
        let message_id = format!("<{}@{}>", delivery.id, self.domain);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&delivery.subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(delivery.body.clone())
            .map_err(|error| SendError::permanent("bad_message", format!("{error}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(message_id),
            Err(error) if error.is_permanent() => Err(SendError::permanent("smtp_refused", format!("{error}"))),
            Err(error) => Err(SendError::transient("smtp_unavailable", format!("{error}"))),
        }
    }
}
