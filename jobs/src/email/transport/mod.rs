//! Email delivery: SMTP with failure classification for at-most-once sends, or an outbox directory.
//!
//! [`Mailer::send`] builds the MIME message from an [`OutgoingEmail`] and hands it over. A failed
//! send returns a [`SendError`] whose variant decides what the reminder job may do next: retry,
//! give up, or record the outcome as unknown and never send again. This module does not decide whether an
//! email should be sent, and it does not retry by itself.

mod outbox;
mod smtp;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use smtp::SmtpUrlError;

use super::message::OutgoingEmail;
use outbox::Outbox;
use smtp::SmtpMailer;

/// The default limit on each SMTP step: connecting (TCP, TLS, greeting, EHLO, AUTH), each command
/// and its reply, and sending the message data with its final reply.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The failure of a send, classified for at-most-once delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server did not take the message: a 4xx reply at any step, or a failure (refused
    /// connection, DNS, TLS, greeting, a network error or timeout) before the message data was
    /// sent. Sending again later is safe.
    #[error("email not sent, retry later: {0}")]
    Retryable(String),

    /// The server refused the message with a 5xx reply to MAIL FROM, RCPT TO, DATA or the message
    /// data, or the email could not be built (an invalid address or header). Sending the same
    /// email again cannot succeed.
    #[error("email rejected: {0}")]
    Rejected(String),

    /// The connection failed or timed out while the message data was being sent or its reply
    /// awaited, so the server may or may not have accepted it. Sending again could deliver a
    /// duplicate, which cannot be taken back.
    #[error("email delivery uncertain: {0}")]
    Uncertain(String),
}

/// Sends emails through an SMTP server or writes them to an outbox directory.
///
/// `Debug` shows the SMTP host, port and TLS mode but never the credentials.
pub struct Mailer {
    kind: MailerKind,
}

enum MailerKind {
    Smtp(SmtpMailer),
    Outbox(Outbox),
}

impl Mailer {
    /// Creates a mailer for an SMTP URL with [`DEFAULT_SMTP_TIMEOUT`]. Connections are pooled and
    /// reused across sends.
    ///
    /// The URL follows lettre's `from_url` format: `smtps://user:pass@host:465` for implicit TLS,
    /// `smtp://user:pass@host:587?tls=required` for STARTTLS, `?tls=opportunistic` for STARTTLS
    /// when the server offers it, and plain `smtp://host:25` for no TLS. The user name and
    /// password are percent-decoded, credentials are used only when a password is present, and a
    /// path (`smtp://host/mail.example.com`) sets the EHLO name.
    pub fn smtp(url: &str) -> Result<Mailer, SmtpUrlError> {
        Mailer::smtp_with_timeout(url, DEFAULT_SMTP_TIMEOUT)
    }

    /// Creates an SMTP mailer like [`Mailer::smtp`] with `step_timeout` as the limit on each step.
    pub fn smtp_with_timeout(url: &str, step_timeout: Duration) -> Result<Mailer, SmtpUrlError> {
        Ok(Mailer {
            kind: MailerKind::Smtp(SmtpMailer::from_url(url, step_timeout)?),
        })
    }

    /// Creates a mailer that writes each email to `dir` as `<UTC timestamp>-<UUID>.eml`, creating
    /// the directory on the first send. For local runs without an SMTP server.
    pub fn outbox(dir: PathBuf) -> Mailer {
        Mailer {
            kind: MailerKind::Outbox(Outbox::new(dir)),
        }
    }

    /// Builds `email` and hands it to the SMTP server or writes it to the outbox.
    ///
    /// An email that cannot be built fails with [`SendError::Rejected`] before any connection is
    /// made. A failure to write to the outbox is [`SendError::Retryable`].
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = email
            .to_message()
            .map_err(|error| SendError::Rejected(format!("invalid email: {error}")))?;

        match &self.kind {
            MailerKind::Smtp(smtp) => smtp.send(&message, &email.message_id).await,
            MailerKind::Outbox(outbox) => {
                let path = outbox.write(&message).await.map_err(|error| {
                    SendError::Retryable(format!(
                        "failed to write the email to the outbox {}: {error}",
                        outbox.dir().display()
                    ))
                })?;
                tracing::info!(
                    message_id = %email.message_id,
                    path = %path.display(),
                    "wrote email to the outbox"
                );
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            MailerKind::Smtp(smtp) => f.debug_tuple("Mailer::Smtp").field(smtp).finish(),
            MailerKind::Outbox(outbox) => f.debug_tuple("Mailer::Outbox").field(outbox).finish(),
        }
    }
}
