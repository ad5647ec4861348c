//! Field checks shared by the upserts.

use std::str::FromStr;

/// An invalid input field: which field, a stable snake_case code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// Checks an id of an account, client or invoice: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn validate_id(field: &str, id: &str) -> Result<(), FieldError> {
    let valid_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id.is_empty() || id.len() > 64 || !valid_chars {
        return Err(FieldError::new(
            field,
            "invalid_id",
            format!(
                "{id:?} is not a valid id: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"
            ),
        ));
    }
    Ok(())
}

/// Checks that a text field is present and not blank.
pub fn validate_required(field: &str, value: &str, max_len: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "required", "must not be empty"));
    }
    if value.chars().count() > max_len {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max_len} characters"),
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(FieldError::new(
            field,
            "invalid",
            "must not contain line breaks",
        ));
    }
    Ok(())
}

/// Checks an email address as we will send to it: a plain addr-spec (no display name), no line
/// breaks, an ASCII local part (non-ASCII local parts need SMTPUTF8, which providers such as SES
/// do not accept), at most 254 octets.
pub fn validate_email(field: &str, value: &str) -> Result<(), FieldError> {
    let invalid = |why: &str| {
        FieldError::new(
            field,
            "invalid_email",
            format!("{value:?} is not a valid email address: {why}"),
        )
    };

    if value.contains(['\r', '\n']) {
        return Err(invalid("it contains a line break"));
    }
    if value.contains(['<', '>']) || value.trim() != value {
        return Err(invalid(
            "give the bare address, without a display name or spaces",
        ));
    }
    if value.len() > 254 {
        return Err(invalid("it is longer than 254 octets"));
    }
    let Some((local, _domain)) = value.rsplit_once('@') else {
        return Err(invalid("it has no '@'"));
    };
    if !local.is_ascii() {
        return Err(invalid("the part before '@' must be ASCII"));
    }
    if let Err(error) = lettre::Address::from_str(value) {
        return Err(invalid(&error.to_string()));
    }
    Ok(())
}

/// Checks a URL that a client will open: absolute http or https.
pub fn validate_url(field: &str, value: &str) -> Result<(), FieldError> {
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(FieldError::new(
            field,
            "invalid_url",
            format!("{value:?} is not an absolute http or https URL"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("id", "inv_2026-001").is_ok());
        assert!(validate_id("id", "").is_err());
        assert!(validate_id("id", "has space").is_err());
        assert!(validate_id("id", &"a".repeat(65)).is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert!(validate_email("email", "ap+invoices@example.com").is_ok());
        assert!(validate_email("email", "Ann <ann@example.com>").is_err());
        assert!(validate_email("email", "ann@example.com\r\nBcc: x@y.z").is_err());
        assert!(validate_email("email", "not-an-address").is_err());
        assert!(validate_email("email", "jörg@example.com").is_err());
    }

    #[test]
    fn urls_are_checked() {
        assert!(validate_url("pay_url", "https://pay.example.com/i/1").is_ok());
        assert!(validate_url("pay_url", "javascript:alert(1)").is_err());
        assert!(validate_url("pay_url", "/relative").is_err());
    }
}
