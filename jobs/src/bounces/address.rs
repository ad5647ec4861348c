//! Suppression keys for email addresses, and addr-spec extraction from header fields.
//!
//! A suppression key is the address with its domain lowercased and converted to ASCII (A-labels,
//! `xn--…`) and its local part lowercased, because DueSpark matches bounces, complaints and
//! contacts case-insensitively. Plus-tags and dots are part of the mailbox and stay in the key, so
//! `ap+invoices@acme.example` and `ap@acme.example` are suppressed separately. The key is for
//! matching only: store, display and send the address as the user typed it.

/// Maximum length of a whole address in octets (RFC 5321 path limit of 256, minus the angle
/// brackets).
pub const MAX_ADDRESS_OCTETS: usize = 254;

/// Maximum length of a local part in octets (RFC 5321, section 4.5.3.1.1).
pub const MAX_LOCAL_PART_OCTETS: usize = 64;

/// Maximum length of one domain label in octets (RFC 1035), measured in A-label form.
pub const MAX_LABEL_OCTETS: usize = 63;

/// An email address that cannot become a suppression key. Each message contains the address in
/// Rust debug quoting, so control characters stay visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("invalid email address: it is empty")]
    Empty,

    #[error(
        "invalid email address {address:?}: it contains a line break (CR or LF), \
         which could inject mail headers"
    )]
    LineBreak { address: String },

    #[error(
        "invalid email address {address:?}: give the bare address, such as ap@example.com, \
         without a display name or angle brackets"
    )]
    DisplayName { address: String },

    #[error("invalid email address {address:?}: it has no '@'")]
    MissingAt { address: String },

    #[error("invalid email address {address:?}: the local part before the last '@' is empty")]
    EmptyLocalPart { address: String },

    #[error("invalid email address {address:?}: the domain after the last '@' is empty")]
    EmptyDomain { address: String },

    #[error(
        "invalid email address {address:?}: the local part contains non-ASCII characters, \
         which need SMTPUTF8. DueSpark does not support SMTPUTF8, so use an ASCII address"
    )]
    NonAsciiLocalPart { address: String },

    #[error("invalid email address {address:?}: the local part {local_part:?} {reason}")]
    InvalidLocalPart {
        address: String,
        local_part: String,
        reason: String,
    },

    #[error("invalid email address {address:?}: the domain {domain:?} {reason}")]
    InvalidDomain {
        address: String,
        domain: String,
        reason: String,
    },

    #[error(
        "invalid email address {address:?}: it is {octets} octets long, \
         more than the maximum of {max}",
        max = MAX_ADDRESS_OCTETS
    )]
    AddressTooLong { address: String, octets: usize },

    #[error(
        "invalid email address {address:?}: the local part is {octets} octets long, \
         more than the maximum of {max}",
        max = MAX_LOCAL_PART_OCTETS
    )]
    LocalPartTooLong { address: String, octets: usize },

    #[error(
        "invalid email address {address:?}: the domain label {label:?} is {octets} octets long \
         in ASCII form, more than the maximum of {max}",
        max = MAX_LABEL_OCTETS
    )]
    LabelTooLong {
        address: String,
        label: String,
        octets: usize,
    },
}

/// Normalizes an email address into its suppression key.
///
/// The address must be a bare addr-spec. Surrounding whitespace is trimmed, but a CR or LF
/// anywhere, trailing ones included, is rejected. The local part is everything before the last
/// `@`, so a quoted local part such as `"john@doe"` may contain `@`. The local part is ASCII-
/// lowercased, and a quoted one keeps its quotes and escapes. A local part that starts with `xn--`
/// is plain ASCII and is not decoded. The domain goes through UTS #46 mapping with the STD3 rules,
/// which lowercases it and converts Unicode labels to A-labels. Address literals such as
/// `[192.0.2.1]` are rejected.
///
/// NOTE: the placement of dots in an unquoted local part (leading, trailing or doubled) is not
/// checked, so that a bounce for such an address, which some mailbox providers have issued, still
/// gets a key.
pub fn normalize(address: &str) -> Result<String, AddressError> {
    // Checked before trimming: a trailing CRLF is as much a header injection as an inner one.
    if address.contains(['\r', '\n']) {
        return Err(AddressError::LineBreak {
            address: address.to_owned(),
        });
    }

    let address = address.trim();
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    if unquoted_chars(address).any(|(_, c)| c == '<' || c == '>') {
        return Err(AddressError::DisplayName {
            address: address.to_owned(),
        });
    }

    let Some((local_part, domain)) = address.rsplit_once('@') else {
        return Err(AddressError::MissingAt {
            address: address.to_owned(),
        });
    };
    if local_part.is_empty() {
        return Err(AddressError::EmptyLocalPart {
            address: address.to_owned(),
        });
    }
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain {
            address: address.to_owned(),
        });
    }

    let local_key = normalize_local_part(address, local_part)?;
    let domain_key = normalize_domain(address, domain)?;

    let key = format!("{local_key}@{domain_key}");
    if key.len() > MAX_ADDRESS_OCTETS {
        return Err(AddressError::AddressTooLong {
            address: address.to_owned(),
            octets: key.len(),
        });
    }
    Ok(key)
}

/// Extracts the addr-spec from a header field value, such as `"Acme AP" <ap@acme.example>` or a
/// bare `ap@acme.example`, as provider payloads carry them (SES `commonHeaders.from`).
///
/// Comments in parentheses are dropped and folded lines are unfolded. The address is returned as
/// written, not normalized. Returns `None` when the value contains no address, more than one (a list
/// or a group), an unclosed quote, comment or angle bracket, or a line break that is not folding.
pub fn extract_addr_spec(header_value: &str) -> Option<String> {
    let unfolded = unfold(header_value);
    if unfolded.contains(['\r', '\n']) {
        return None;
    }
    let value = strip_comments(&unfolded)?;
    let value = value.trim();

    let mut open = None;
    let mut close = None;
    for (offset, c) in unquoted_chars(value) {
        match c {
            '<' if open.is_none() => open = Some(offset),
            '>' if open.is_some() && close.is_none() => close = Some(offset),
            // A second bracket, or ',', ';' and ':' (list and group syntax), means this is not
            // a single mailbox.
            '<' | '>' | ',' | ';' | ':' => return None,
            _ => {}
        }
    }

    let addr_spec = match (open, close) {
        (Some(open), Some(close)) => {
            if !value[close + 1..].trim().is_empty() {
                return None;
            }
            value[open + 1..close].trim()
        }
        (None, None) => value,
        _ => return None,
    };

    // Unquoted whitespace inside the address means a display name without angle brackets, or
    // the obsolete spaced form "ap @ acme.example". Neither yields a reliable address.
    if unquoted_chars(addr_spec).any(|(_, c)| c.is_whitespace()) {
        return None;
    }
    let (local_part, domain) = addr_spec.rsplit_once('@')?;
    if local_part.is_empty() || domain.is_empty() {
        return None;
    }
    Some(addr_spec.to_owned())
}

/// Checks the local part's syntax and returns it ASCII-lowercased.
fn normalize_local_part(address: &str, local_part: &str) -> Result<String, AddressError> {
    if !local_part.is_ascii() {
        return Err(AddressError::NonAsciiLocalPart {
            address: address.to_owned(),
        });
    }
    if local_part.len() > MAX_LOCAL_PART_OCTETS {
        return Err(AddressError::LocalPartTooLong {
            address: address.to_owned(),
            octets: local_part.len(),
        });
    }

    let syntax = if local_part.starts_with('"') {
        check_quoted_local_part(local_part)
    } else {
        check_dot_string(local_part)
    };
    if let Err(reason) = syntax {
        return Err(AddressError::InvalidLocalPart {
            address: address.to_owned(),
            local_part: local_part.to_owned(),
            reason,
        });
    }

    Ok(local_part.to_ascii_lowercase())
}

/// Checks an unquoted local part: RFC 5322 `atext` characters and dots.
fn check_dot_string(local_part: &str) -> Result<(), String> {
    let is_atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    match local_part.chars().find(|&c| c != '.' && !is_atext(c)) {
        Some(c) => Err(format!(
            "contains {c:?}, which is allowed only inside a quoted local part such as \"john doe\""
        )),
        None => Ok(()),
    }
}

/// Checks a quoted local part against RFC 5321 `Quoted-string`: printable ASCII and spaces between
/// two double quotes, with `"` and `\` escaped by a backslash.
fn check_quoted_local_part(local_part: &str) -> Result<(), String> {
    let Some(inner) = local_part
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Err("starts with a double quote but does not end with one".to_owned());
    };

    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(' '..='~') => {}
                Some(escaped) => {
                    return Err(format!("escapes {escaped:?}, which is not printable ASCII"));
                }
                None => return Err("ends with a backslash that escapes nothing".to_owned()),
            },
            '"' => {
                return Err("contains an unescaped double quote; write it as \\\"".to_owned());
            }
            ' '..='~' => {}
            other => {
                return Err(format!("contains {other:?}, which is not printable ASCII"));
            }
        }
    }
    Ok(())
}

/// Converts the domain to lowercase A-labels and checks its labels.
fn normalize_domain(address: &str, domain: &str) -> Result<String, AddressError> {
    let invalid = |reason: &str| AddressError::InvalidDomain {
        address: address.to_owned(),
        domain: domain.to_owned(),
        reason: reason.to_owned(),
    };

    if domain.starts_with('[') {
        return Err(invalid(
            "is an address literal, but only domain names are supported",
        ));
    }

    // STD3 rules allow only letters, digits and hyphens in the ASCII form of each label.
    let ascii =
        idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3).map_err(|_| {
            invalid(
                "is not a valid domain name: use letters, digits, hyphens and dots, \
                 or an internationalized domain name",
            )
        })?;

    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(invalid(
                "has an empty label: remove the leading, trailing or doubled dot",
            ));
        }
        if label.len() > MAX_LABEL_OCTETS {
            return Err(AddressError::LabelTooLong {
                address: address.to_owned(),
                label: label.to_owned(),
                octets: label.len(),
            });
        }
    }
    Ok(ascii.into_owned())
}

/// Yields the characters of `value` outside quoted strings, with their byte offsets. The quotes
/// themselves and everything between them, escapes included, are skipped.
fn unquoted_chars(value: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_quotes = false;
    let mut escaped = false;
    value.char_indices().filter(move |&(_, c)| {
        if escaped {
            escaped = false;
            return false;
        }
        match c {
            '"' => {
                in_quotes = !in_quotes;
                false
            }
            '\\' if in_quotes => {
                escaped = true;
                false
            }
            _ => !in_quotes,
        }
    })
}

/// Removes each CRLF that is followed by a space or tab (RFC 5322 folding).
fn unfold(value: &str) -> String {
    let mut unfolded = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(position) = rest.find("\r\n") {
        let after = &rest[position + 2..];
        unfolded.push_str(&rest[..position]);
        if !after.starts_with([' ', '\t']) {
            unfolded.push_str("\r\n");
        }
        rest = after;
    }
    unfolded.push_str(rest);
    unfolded
}

/// Removes RFC 5322 comments, the parenthesized text outside quoted strings, which may nest.
/// Returns `None` when a quoted string or a comment is not closed.
fn strip_comments(value: &str) -> Option<String> {
    let mut stripped = String::with_capacity(value.len());
    let mut in_quotes = false;
    let mut comment_depth = 0usize;
    let mut chars = value.chars();

    while let Some(c) = chars.next() {
        if c == '\\' && (in_quotes || comment_depth > 0) {
            let escaped = chars.next()?;
            if comment_depth == 0 {
                stripped.push(c);
                stripped.push(escaped);
            }
            continue;
        }
        if comment_depth > 0 {
            match c {
                '(' => comment_depth += 1,
                ')' => comment_depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = !in_quotes;
                stripped.push(c);
            }
            '(' if !in_quotes => comment_depth = 1,
            ')' if !in_quotes => return None,
            _ => stripped.push(c),
        }
    }

    if in_quotes || comment_depth > 0 {
        return None;
    }
    Some(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that every pair normalizes to the same key.
    fn assert_same_key(pairs: &[(&str, &str)]) {
        for (left, right) in pairs {
            let left_key = normalize(left).unwrap_or_else(|e| panic!("{left:?}: {e}"));
            let right_key = normalize(right).unwrap_or_else(|e| panic!("{right:?}: {e}"));
            assert_eq!(left_key, right_key, "{left:?} and {right:?}");
        }
    }

    /// Asserts each input's key, and that normalizing the key again changes nothing.
    fn assert_keys(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            let key = normalize(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(key, *expected, "key of {input:?}");
            assert_eq!(normalize(&key).as_ref(), Ok(&key), "key of key {key:?}");
        }
    }

    /// A check that an error is the expected variant.
    type ErrorCheck = fn(&AddressError) -> bool;

    /// Asserts that each input is rejected with an error that its check accepts.
    fn assert_rejected(cases: &[(&str, ErrorCheck)]) {
        for (input, expected) in cases {
            match normalize(input) {
                Ok(key) => panic!("{input:?} was accepted as {key:?}"),
                Err(error) => assert!(expected(&error), "{input:?} gave {error:?}"),
            }
        }
    }

    #[test]
    fn upper_case_domain_matches_lower_case() {
        assert_same_key(&[
            ("ap@ACME.EXAMPLE", "ap@acme.example"),
            ("ap@Acme.Example", "ap@acme.example"),
            ("AP@acme.example", "ap@acme.example"),
            ("  ap@acme.example\t", "ap@acme.example"),
        ]);
        assert_keys(&[("Billing.Team@Acme.EXAMPLE", "billing.team@acme.example")]);
    }

    #[test]
    fn plus_tag_and_dots_kept() {
        assert_keys(&[
            ("ap+invoices@acme.example", "ap+invoices@acme.example"),
            ("AP+Invoices@acme.example", "ap+invoices@acme.example"),
            ("a.p@acme.example", "a.p@acme.example"),
            ("first.last+tag@acme.example", "first.last+tag@acme.example"),
        ]);

        let distinct = [
            ("ap+invoices@acme.example", "ap@acme.example"),
            ("a.p@acme.example", "ap@acme.example"),
            ("ap+a@acme.example", "ap+b@acme.example"),
        ];
        for (left, right) in distinct {
            assert_ne!(normalize(left), normalize(right), "{left:?} and {right:?}");
        }
    }

    #[test]
    fn idn_domain_matches_punycode() {
        assert_same_key(&[
            ("ap@bücher.example", "ap@xn--bcher-kva.example"),
            ("ap@BÜCHER.example", "ap@xn--bcher-kva.example"),
            ("ap@XN--BCHER-KVA.EXAMPLE", "ap@xn--bcher-kva.example"),
            ("ap@bücher\u{3002}example", "ap@xn--bcher-kva.example"),
        ]);
        assert_keys(&[
            ("ap@bücher.example", "ap@xn--bcher-kva.example"),
            (
                "ap@münchen.bücher.example",
                "ap@xn--mnchen-3ya.xn--bcher-kva.example",
            ),
        ]);
    }

    #[test]
    fn quoted_local_part_kept() {
        assert_keys(&[
            (r#""john doe"@example.org"#, r#""john doe"@example.org"#),
            (r#""John Doe"@Example.ORG"#, r#""john doe"@example.org"#),
            (r#""john@doe"@example.org"#, r#""john@doe"@example.org"#),
            (r#""a\"b"@example.org"#, r#""a\"b"@example.org"#),
            (r#""<ap>"@example.org"#, r#""<ap>"@example.org"#),
        ]);
        assert_ne!(
            normalize(r#""john doe"@example.org"#),
            normalize("johndoe@example.org"),
        );
    }

    #[test]
    fn xn_local_part_not_decoded() {
        assert_keys(&[
            ("xn--bcher-kva@example.com", "xn--bcher-kva@example.com"),
            ("XN--Bcher-KVA@example.com", "xn--bcher-kva@example.com"),
            ("xn--@example.com", "xn--@example.com"),
        ]);
    }

    #[test]
    fn line_breaks_rejected() {
        assert_rejected(&[
            ("ap@acme.example\r\nBcc: x@evil.example", |e| {
                matches!(e, AddressError::LineBreak { .. })
            }),
            ("ap@acme.example\n", |e| {
                matches!(e, AddressError::LineBreak { .. })
            }),
            ("\rap@acme.example", |e| {
                matches!(e, AddressError::LineBreak { .. })
            }),
            ("\"a\nb\"@acme.example", |e| {
                matches!(e, AddressError::LineBreak { .. })
            }),
        ]);
    }

    #[test]
    fn display_name_rejected_by_normalize() {
        assert_rejected(&[
            ("\"Acme AP\" <ap@acme.example>", |e| {
                matches!(e, AddressError::DisplayName { .. })
            }),
            ("Acme AP <ap@acme.example>", |e| {
                matches!(e, AddressError::DisplayName { .. })
            }),
            ("<ap@acme.example>", |e| {
                matches!(e, AddressError::DisplayName { .. })
            }),
            ("Acme AP ap@acme.example", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
        ]);
    }

    #[test]
    fn extract_addr_spec_header_forms() {
        let cases = [
            ("\"Acme AP\" <ap@acme.example>", Some("ap@acme.example")),
            (
                "Acme AP <AP+Invoices@Acme.Example>",
                Some("AP+Invoices@Acme.Example"),
            ),
            ("<ap@acme.example>", Some("ap@acme.example")),
            ("ap@acme.example", Some("ap@acme.example")),
            ("  ap@acme.example  ", Some("ap@acme.example")),
            ("\"Doe, John\" <j@acme.example>", Some("j@acme.example")),
            ("\"a <b>\" <c@acme.example>", Some("c@acme.example")),
            ("ap@acme.example (Accounts)", Some("ap@acme.example")),
            (
                "(Accounts) <ap@acme.example> (payable)",
                Some("ap@acme.example"),
            ),
            ("Acme\r\n AP <ap@acme.example>", Some("ap@acme.example")),
            (
                "\"x\" <\"john doe\"@example.org>",
                Some("\"john doe\"@example.org"),
            ),
            (
                "=?UTF-8?B?QWNtZQ==?= <ap@bücher.example>",
                Some("ap@bücher.example"),
            ),
            ("", None),
            ("Acme AP", None),
            ("<>", None),
            ("Acme AP ap@acme.example", None),
            ("a@acme.example, b@acme.example", None),
            ("Payables: a@acme.example, b@acme.example;", None),
            ("<a@acme.example> <b@acme.example>", None),
            ("Acme <ap@acme.example", None),
            ("Acme <ap@acme.example> trailing", None),
            ("\"Acme <ap@acme.example>", None),
            ("(Acme <ap@acme.example>", None),
            ("Acme <ap@acme.example>\r\nBcc: x@evil.example", None),
            ("<@acme.example>", None),
            ("<ap@>", None),
        ];
        for (header_value, expected) in cases {
            assert_eq!(
                extract_addr_spec(header_value).as_deref(),
                expected,
                "{header_value:?}"
            );
        }
    }

    #[test]
    fn extracted_addr_spec_normalizes() {
        let address = extract_addr_spec("\"Acme AP\" <AP@Bücher.Example>").unwrap();
        assert_eq!(
            normalize(&address).as_deref(),
            Ok("ap@xn--bcher-kva.example")
        );
    }

    #[test]
    fn non_ascii_local_part_rejected() {
        assert_rejected(&[
            ("jörg@example.com", |e| {
                matches!(e, AddressError::NonAsciiLocalPart { .. })
            }),
            ("用户@例子.广告", |e| {
                matches!(e, AddressError::NonAsciiLocalPart { .. })
            }),
            ("\"jörg\"@example.com", |e| {
                matches!(e, AddressError::NonAsciiLocalPart { .. })
            }),
        ]);
        let message = normalize("jörg@example.com").unwrap_err().to_string();
        assert!(message.contains("SMTPUTF8"), "{message}");
    }

    #[test]
    fn length_limits() {
        let label_63 = "d".repeat(63);
        // 64 + 1 + 189 = 254 octets.
        let domain_189 = format!("{label_63}.{label_63}.{}", "e".repeat(61));
        let local_64 = "l".repeat(64);

        let accepted = [
            format!("{local_64}@acme.example"),
            format!("ap@{label_63}.example"),
            format!("{local_64}@{domain_189}"),
        ];
        for address in &accepted {
            assert_eq!(
                normalize(address).as_ref(),
                Ok(address),
                "{} octets",
                address.len()
            );
        }

        let address_255 = format!("{local_64}@{domain_189}e");
        assert_eq!(
            normalize(&address_255),
            Err(AddressError::AddressTooLong {
                address: address_255.clone(),
                octets: 255
            })
        );

        let local_65 = format!("{}@acme.example", "l".repeat(65));
        assert_eq!(
            normalize(&local_65),
            Err(AddressError::LocalPartTooLong {
                address: local_65.clone(),
                octets: 65
            })
        );

        let quoted_65 = format!("\"{}\"@acme.example", "l".repeat(63));
        assert!(
            matches!(
                normalize(&quoted_65),
                Err(AddressError::LocalPartTooLong { octets: 65, .. })
            ),
            "quotes count towards the local part"
        );

        let label_64 = format!("ap@{}.example", "d".repeat(64));
        assert!(matches!(
            normalize(&label_64),
            Err(AddressError::LabelTooLong { octets: 64, .. })
        ));

        // A label of 60 characters (61 octets in UTF-8) becomes an A-label of more than 63 octets.
        let idn_label = format!("ap@{}ü.example", "d".repeat(59));
        assert!(
            matches!(
                normalize(&idn_label),
                Err(AddressError::LabelTooLong { ref label, .. }) if label.starts_with("xn--")
            ),
            "labels are measured in A-label form: {:?}",
            normalize(&idn_label)
        );
    }

    #[test]
    fn malformed_addresses_rejected() {
        assert_rejected(&[
            ("", |e| matches!(e, AddressError::Empty)),
            ("   ", |e| matches!(e, AddressError::Empty)),
            ("ap.acme.example", |e| {
                matches!(e, AddressError::MissingAt { .. })
            }),
            ("@acme.example", |e| {
                matches!(e, AddressError::EmptyLocalPart { .. })
            }),
            ("ap@", |e| matches!(e, AddressError::EmptyDomain { .. })),
            ("a@b@acme.example", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("a b@acme.example", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("a\"b@acme.example", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("\"john doe@example.org", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("\"a\"b\"@example.org", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("\"a\\\"@example.org", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("\"a\tb\"@example.org", |e| {
                matches!(e, AddressError::InvalidLocalPart { .. })
            }),
            ("ap@[192.0.2.1]", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@acme..example", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@acme.example.", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@.acme.example", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@acme_billing.example", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@acme example", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
            ("ap@xn--zz.example", |e| {
                matches!(e, AddressError::InvalidDomain { .. })
            }),
        ]);
    }

    #[test]
    fn error_messages_name_the_value() {
        let cases = [
            ("Acme <ap@acme.example>", "\"Acme <ap@acme.example>\""),
            ("a b@acme.example", "' '"),
            ("ap@acme..example", "\"acme..example\""),
            ("ap@acme.example\r\n", "\\r\\n"),
        ];
        for (input, expected) in cases {
            let message = normalize(input).unwrap_err().to_string();
            assert!(message.contains(expected), "{input:?} gave {message:?}");
        }
    }
}
