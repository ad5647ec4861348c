//! Outgoing emails and their conversion to MIME messages.
//!
//! [`OutgoingEmail`] contains everything one reminder email needs: addresses, the rendered parts, the
//! Message-ID that the platform stores, and metadata pairs that let a bounce be traced back to the
//! invoice and account. [`OutgoingEmail::to_message`] checks every header value and builds a lettre
//! `multipart/alternative` message. This module does not render templates or send anything.

use lettre::Address;
use lettre::message::header::{HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, Message, MultiPart};

/// Prefix of the headers that carry metadata. Postmark turns `X-PM-Metadata-<key>` headers into the
/// `Metadata` object of its bounce and complaint webhooks and strips them before delivery. Other
/// providers deliver them unchanged.
pub const METADATA_HEADER_PREFIX: &str = "X-PM-Metadata-";

/// One email ready to be built and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The address of `MAIL_FROM`, used for the From header and the SMTP envelope sender.
    pub from_address: String,
    /// The account's sender display name, shown with `from_address`.
    pub from_name: String,
    /// The account's own address, where the client's replies go.
    pub reply_to: String,
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The Message-ID header value with its angle brackets, as [`new_message_id`] returns it.
    pub message_id: String,
    /// Pairs sent as `X-PM-Metadata-<key>: <value>` headers, such as `("invoice_id", ..)`,
    /// `("account_id", ..)` and `("reminder_id", ..)`. Keys contain only ASCII letters, digits,
    /// `_` and `-`.
    pub metadata: Vec<(String, String)>,
}

/// The error for an email that cannot be built into a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{field} contains a line break, which would allow header injection")]
    LineBreak { field: String },

    #[error("{field} {address:?} is not a valid email address: {reason}")]
    InvalidAddress {
        field: &'static str,
        address: String,
        reason: String,
    },

    #[error("message_id {0:?} is invalid: expected the form <unique@domain> without spaces")]
    InvalidMessageId(String),

    #[error("metadata key {0:?} is invalid: expected 1 to 40 ASCII letters, digits, '_' or '-'")]
    InvalidMetadataKey(String),

    #[error("failed to build the message: {0}")]
    Build(String),
}

/// Generates a Message-ID in the form `<uuid-v4@domain>`, with the domain of the `MAIL_FROM`
/// address in ASCII (punycode) form, or `localhost` when that address has no usable domain.
///
/// The returned string includes the angle brackets, exactly as the header carries it and as the
/// reminder record stores it.
pub fn new_message_id(mail_from_address: &str) -> String {
    let domain = mail_from_address
        .rsplit_once('@')
        .and_then(|(_, domain)| idna::domain_to_ascii(domain.trim()).ok())
        .filter(|domain| !domain.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("<{}@{domain}>", uuid::Uuid::new_v4())
}

impl OutgoingEmail {
    /// Builds the MIME message: From, Reply-To, To, Subject, Message-ID, the metadata headers and a
    /// `multipart/alternative` body with the plain-text part first and the HTML part second.
    ///
    /// Rejects a line break in any header value. Address domains are converted to their ASCII
    /// (punycode) form. A non-ASCII local part is rejected because sending it would need SMTPUTF8.
    pub fn to_message(&self) -> Result<Message, MessageError> {
        self.check_header_values()?;

        let from = mailbox(&self.from_name, "from_address", &self.from_address)?;
        let reply_to = mailbox("", "reply_to", &self.reply_to)?;
        let to = mailbox(&self.to_name, "to_address", &self.to_address)?;
        check_message_id(&self.message_id)?;

        let mut builder = Message::builder()
            .from(from)
            .reply_to(reply_to)
            .to(to)
            .subject(self.subject.clone())
            .header(MessageId::from(self.message_id.clone()));
        for (key, value) in &self.metadata {
            builder =
                builder.raw_header(HeaderValue::new(metadata_header_name(key)?, value.clone()));
        }

        let body = MultiPart::alternative_plain_html(self.text.clone(), self.html.clone());
        builder
            .multipart(body)
            .map_err(|error| MessageError::Build(error.to_string()))
    }

    /// Rejects CR and LF in every value that ends up in a header.
    fn check_header_values(&self) -> Result<(), MessageError> {
        let fields = [
            ("from_address", &self.from_address),
            ("from_name", &self.from_name),
            ("reply_to", &self.reply_to),
            ("to_name", &self.to_name),
            ("to_address", &self.to_address),
            ("subject", &self.subject),
            ("message_id", &self.message_id),
        ];
        for (field, value) in fields {
            reject_line_break(field, value)?;
        }
        for (key, value) in &self.metadata {
            reject_line_break("metadata key", key)?;
            reject_line_break(&format!("metadata value of {key:?}"), value)?;
        }
        Ok(())
    }
}

fn reject_line_break(field: &str, value: &str) -> Result<(), MessageError> {
    if value.contains(['\r', '\n']) {
        return Err(MessageError::LineBreak {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// Builds a mailbox from a display name (none when empty) and a bare address.
fn mailbox(name: &str, field: &'static str, address: &str) -> Result<Mailbox, MessageError> {
    let name = name.trim();
    let name = (!name.is_empty()).then(|| name.to_owned());
    Ok(Mailbox::new(name, parse_address(field, address)?))
}

/// Parses a bare address such as `ap+invoices@bücher.example`, splitting on the last `@` and
/// converting the domain to ASCII. Display-name forms such as `Ann <ann@example.com>` are rejected.
fn parse_address(field: &'static str, address: &str) -> Result<Address, MessageError> {
    let invalid = |reason: &str| MessageError::InvalidAddress {
        field,
        address: address.to_owned(),
        reason: reason.to_owned(),
    };

    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| invalid("missing '@'"))?;
    if local.is_empty() || domain.is_empty() {
        return Err(invalid("expected local@domain"));
    }
    if !local.is_ascii() {
        return Err(invalid(
            "the part before '@' must be ASCII, because non-ASCII local parts need SMTPUTF8",
        ));
    }
    let ascii_domain = idna::domain_to_ascii(domain)
        .map_err(|_| invalid("the domain is not a valid IDN domain"))?;

    Address::new(local, ascii_domain).map_err(|error| invalid(&error.to_string()))
}

fn check_message_id(message_id: &str) -> Result<(), MessageError> {
    let inner = message_id
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'));
    let valid = inner.is_some_and(|inner| {
        inner.split_once('@').is_some_and(|(left, right)| {
            !left.is_empty() && !right.is_empty() && !right.contains('@')
        }) && inner
            .chars()
            .all(|character| character.is_ascii_graphic() && !matches!(character, '<' | '>'))
    });
    if valid {
        Ok(())
    } else {
        Err(MessageError::InvalidMessageId(message_id.to_owned()))
    }
}

/// Returns the header name `X-PM-Metadata-<key>`. Header names must stay within 76 characters,
/// which the 40-character key limit guarantees.
fn metadata_header_name(key: &str) -> Result<HeaderName, MessageError> {
    let valid = (1..=40).contains(&key.len())
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'));
    if !valid {
        return Err(MessageError::InvalidMetadataKey(key.to_owned()));
    }
    HeaderName::new_from_ascii(format!("{METADATA_HEADER_PREFIX}{key}"))
        .map_err(|_| MessageError::InvalidMetadataKey(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use mailparse::{MailHeaderMap, ParsedMail};

    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            from_address: "reminders@duespark.example".to_owned(),
            from_name: "Maya Lopez".to_owned(),
            reply_to: "maya@studio-lumen.example".to_owned(),
            to_name: "Acme Corp".to_owned(),
            to_address: "ap+invoices@acme.example".to_owned(),
            subject: "Reminder: invoice INV-1042 for €99.90 is due today".to_owned(),
            html: "<p>Hi Acme Corp,</p>".to_owned(),
            text: "Hi Acme Corp,".to_owned(),
            message_id: new_message_id("reminders@duespark.example"),
            metadata: vec![
                ("invoice_id".to_owned(), "inv_123".to_owned()),
                ("account_id".to_owned(), "acc_456".to_owned()),
                ("reminder_id".to_owned(), "rem_789".to_owned()),
            ],
        }
    }

    /// A field name and a change that breaks that field.
    type Case = (&'static str, fn(&mut OutgoingEmail));

    fn header(parsed: &ParsedMail<'_>, name: &str) -> Option<String> {
        parsed.headers.get_first_value(name)
    }

    #[test]
    fn message_id_has_uuid_and_mail_from_domain() {
        let message_id = new_message_id("Reminders@DueSpark.example");

        let inner = message_id
            .strip_prefix('<')
            .and_then(|rest| rest.strip_suffix('>'))
            .expect("the Message-ID is enclosed in angle brackets");
        let (local, domain) = inner.split_once('@').expect("the Message-ID contains an @");
        assert!(uuid::Uuid::parse_str(local).is_ok(), "{message_id}");
        assert_eq!(domain, "duespark.example");
    }

    #[test]
    fn message_id_domain_is_punycode() {
        let message_id = new_message_id("mahnung@bücher.example");
        assert!(
            message_id.ends_with("@xn--bcher-kva.example>"),
            "{message_id}"
        );
    }

    #[test]
    fn message_id_without_domain_uses_localhost() {
        let message_id = new_message_id("not-an-address");
        assert!(message_id.ends_with("@localhost>"), "{message_id}");
    }

    #[test]
    fn formatted_message_has_expected_headers() {
        let email = email();
        let formatted = email.to_message().unwrap().formatted();

        let parsed = mailparse::parse_mail(&formatted).unwrap();

        assert_eq!(
            header(&parsed, "From").as_deref(),
            Some("\"Maya Lopez\" <reminders@duespark.example>")
        );
        assert_eq!(
            header(&parsed, "Reply-To").as_deref(),
            Some("maya@studio-lumen.example")
        );
        assert_eq!(
            header(&parsed, "To").as_deref(),
            Some("\"Acme Corp\" <ap+invoices@acme.example>")
        );
        assert_eq!(header(&parsed, "Subject"), Some(email.subject.clone()));
        assert_eq!(
            header(&parsed, "Message-ID"),
            Some(email.message_id.clone())
        );
        assert_eq!(
            header(&parsed, "X-PM-Metadata-invoice_id").as_deref(),
            Some("inv_123")
        );
        assert_eq!(
            header(&parsed, "X-PM-Metadata-account_id").as_deref(),
            Some("acc_456")
        );
        assert_eq!(
            header(&parsed, "X-PM-Metadata-reminder_id").as_deref(),
            Some("rem_789")
        );
        assert!(header(&parsed, "Date").is_some());
    }

    #[test]
    fn formatted_message_is_ascii() {
        let formatted = email().to_message().unwrap().formatted();
        assert!(formatted.is_ascii());
    }

    #[test]
    fn body_is_alternative_text_then_html() {
        let email = email();
        let formatted = email.to_message().unwrap().formatted();

        let parsed = mailparse::parse_mail(&formatted).unwrap();

        assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
        assert_eq!(parsed.subparts.len(), 2);
        assert_eq!(parsed.subparts[0].ctype.mimetype, "text/plain");
        assert_eq!(parsed.subparts[1].ctype.mimetype, "text/html");
        assert_eq!(
            parsed.subparts[0].get_body().unwrap().trim_end(),
            email.text
        );
        assert_eq!(
            parsed.subparts[1].get_body().unwrap().trim_end(),
            email.html
        );
    }

    #[test]
    fn envelope_uses_mail_from_and_recipient() {
        let message = email().to_message().unwrap();
        let envelope = message.envelope();

        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("reminders@duespark.example")
        );
        let recipients: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(recipients, ["ap+invoices@acme.example"]);
    }

    #[test]
    fn idn_recipient_domain_is_sent_as_punycode() {
        let mut email = email();
        email.to_address = "einkauf@bücher.example".to_owned();

        let message = email.to_message().unwrap();

        assert_eq!(
            message.envelope().to()[0].to_string(),
            "einkauf@xn--bcher-kva.example"
        );
    }

    #[test]
    fn non_ascii_local_part_is_rejected() {
        let mut email = email();
        email.to_address = "jürgen@example.com".to_owned();

        let error = email.to_message().unwrap_err();

        assert!(
            matches!(
                error,
                MessageError::InvalidAddress {
                    field: "to_address",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn display_name_form_is_rejected() {
        let mut email = email();
        email.reply_to = "Maya <maya@studio-lumen.example>".to_owned();

        let error = email.to_message().unwrap_err();

        assert!(
            matches!(
                error,
                MessageError::InvalidAddress {
                    field: "reply_to",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn line_breaks_in_header_values_are_rejected() {
        let cases: [Case; 7] = [
            ("from_name", |e| {
                e.from_name = "Maya\r\nBcc: x@evil.example".to_owned()
            }),
            ("to_name", |e| e.to_name = "Acme\nCorp".to_owned()),
            ("subject", |e| {
                e.subject = "Hello\rBcc: x@evil.example".to_owned()
            }),
            ("to_address", |e| e.to_address = "a@b.example\n".to_owned()),
            ("reply_to", |e| {
                e.reply_to = "\nmaya@studio.example".to_owned()
            }),
            ("message_id", |e| e.message_id = "<a@b>\r\nX: y".to_owned()),
            ("metadata value of \"invoice_id\"", |e| {
                e.metadata[0].1 = "inv\r\nBcc: x@evil.example".to_owned()
            }),
        ];
        for (expected_field, inject) in cases {
            let mut email = email();
            inject(&mut email);

            let error = email.to_message().unwrap_err();

            assert_eq!(
                error,
                MessageError::LineBreak {
                    field: expected_field.to_owned()
                },
                "{expected_field}"
            );
        }
    }

    #[test]
    fn invalid_metadata_key_is_rejected() {
        for key in ["", "invoice id", "invoice:id", "ключ"] {
            let mut email = email();
            email.metadata.push((key.to_owned(), "value".to_owned()));

            let error = email.to_message().unwrap_err();

            assert_eq!(
                error,
                MessageError::InvalidMetadataKey(key.to_owned()),
                "{key:?}"
            );
        }
    }

    #[test]
    fn invalid_message_id_is_rejected() {
        for message_id in [
            "",
            "abc@example.com",
            "<abc>",
            "<a b@example.com>",
            "<@example.com>",
        ] {
            let mut email = email();
            email.message_id = message_id.to_owned();

            let error = email.to_message().unwrap_err();

            assert_eq!(
                error,
                MessageError::InvalidMessageId(message_id.to_owned()),
                "{message_id:?}"
            );
        }
    }
}
