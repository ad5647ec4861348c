//! Email rendering and delivery for invoice reminders.
//!
//! The reminder job uses these modules in order. [`render`] turns a reminder's values into a
//! subject, an HTML and a plain-text part using the templates in `templates/`, with amounts
//! formatted by [`money`]. [`message`] wraps the parts in an [`OutgoingEmail`] with the stored
//! Message-ID and the metadata headers. [`rate_limit`] paces sends. [`transport`] hands the email to
//! the SMTP server, or writes it to an outbox directory for local runs, and classifies failures for
//! at-most-once delivery. Deciding whether a reminder should go out at all is the job's work, not
//! this module's.

pub mod message;
pub mod money;
pub mod rate_limit;
pub mod render;
pub mod transport;

pub use message::{MessageError, OutgoingEmail, new_message_id};
pub use money::{UnknownCurrency, currency_exponent, format_amount};
pub use rate_limit::SendRateLimiter;
pub use render::{ReminderVars, RenderedEmail, TemplateError, Templates};
pub use transport::{Mailer, SendError, SmtpUrlError};
