//! Verification of the `Stripe-Signature` header on webhook deliveries, as pure functions.
//!
//! The header is a comma-separated list of `key=value` items. `t` is the Unix time in seconds at
//! which this delivery attempt was signed. There is one `v1` per active endpoint secret, and in
//! test mode a decoy `v0` that must never be accepted. Each `v1` is the lowercase hex HMAC-SHA256 of
//! `"{t}." + raw body`, keyed with the UTF-8 bytes of the whole secret, `whsec_` prefix included
//! (Stripe does not base64-decode it). The body must be the exact bytes received: parsing and
//! re-serialising the JSON changes key order and whitespace and breaks the signature. This module
//! does not read requests, parse events or load configuration. Callers verify at receipt time,
//! because a queued event would drift outside the tolerance window.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The tolerance, in seconds, that Stripe's official libraries use by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Length of a `v1` signature: 32 bytes of HMAC-SHA256 in hex.
const V1_HEX_LEN: usize = 64;

/// Maximum length, in characters, of a header value quoted back in an error.
const QUOTED_VALUE_MAX_CHARS: usize = 24;

/// A reason a webhook delivery failed verification. Messages never contain a secret or an
/// expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header: Stripe signs every webhook delivery")]
    MissingHeader,

    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(String),

    #[error("Stripe-Signature header has no v1 signature (v0 signatures are never accepted)")]
    NoV1Signature,

    /// `skew_secs` is the server time minus `t`, so a positive value means that `t` is in the past.
    #[error(
        "Stripe-Signature timestamp is {skew_secs} s from the server clock (positive: in the past), \
         outside the {tolerance_secs} s tolerance: check that the host clock is NTP-synced"
    )]
    TimestampOutsideTolerance { skew_secs: i64, tolerance_secs: i64 },

    #[error("no v1 signature in the Stripe-Signature header matches a configured webhook secret")]
    NoMatchingSignature,

    #[error(
        "STRIPE_WEBHOOK_SECRETS is empty: set it to the endpoint's signing secret (whsec_...), \
         comma-separated while a secret is being rolled"
    )]
    NoSecretsConfigured,
}

/// The items of a `Stripe-Signature` header that verification uses.
#[derive(Debug)]
struct ParsedHeader<'a> {
    timestamp: i64,
    v1_signatures: Vec<&'a str>,
}

/// Verifies a webhook delivery and returns its signature timestamp `t`, in Unix seconds.
///
/// `body` is the raw request body. The delivery passes when any `v1` in the header matches the
/// HMAC of any secret in `secrets`, and `|now_unix - t| <= tolerance_secs`. Blank secrets are
/// skipped, because an empty HMAC key is known to everyone. The signature is checked before the
/// timestamp, so a skew error always comes from an authentic delivery and points at a clock
/// problem rather than a forged request.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let usable_secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|secret| !secret.trim().is_empty())
        .collect();
    if usable_secrets.is_empty() {
        return Err(SignatureError::NoSecretsConfigured);
    }

    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    if parsed.v1_signatures.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }

    let candidates: Vec<Vec<u8>> = parsed
        .v1_signatures
        .iter()
        .filter_map(|signature| decode_v1(signature))
        .collect();
    let matched = usable_secrets.iter().any(|secret| {
        let mac = signed_payload_mac(secret, parsed.timestamp, body);
        candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    });
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }

    check_tolerance(parsed.timestamp, now_unix, tolerance_secs)?;
    Ok(parsed.timestamp)
}

/// Signs `body` as Stripe does and returns a whole header value, `t={timestamp},v1={hex}`.
///
/// Tests and the Stripe stand-in used by integration tests build deliveries with it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signed_payload_mac(secret, timestamp, body)
        .finalize()
        .into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Parses the header items. Exactly one `t` made of ASCII digits is required. Every `v1` is
/// collected, and `v0` and unknown keys are ignored. Empty items, such as after a trailing comma,
/// are skipped.
fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut timestamp = None;
    let mut v1_signatures = Vec::new();

    for item in header.split(',').map(|item| item.trim_matches(' ')) {
        if item.is_empty() {
            continue;
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(malformed(format!("item {} is not key=value", quote(item))));
        };
        match key.trim_matches(' ') {
            "t" => {
                if timestamp.is_some() {
                    return Err(malformed("more than one t item".to_owned()));
                }
                timestamp = Some(parse_timestamp(value.trim_matches(' '))?);
            }
            "v1" => v1_signatures.push(value.trim_matches(' ')),
            _ => {}
        }
    }

    let timestamp = timestamp.ok_or_else(|| malformed("missing t item".to_owned()))?;
    Ok(ParsedHeader {
        timestamp,
        v1_signatures,
    })
}

fn parse_timestamp(value: &str) -> Result<i64, SignatureError> {
    let is_digits = !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit());
    let parsed = if is_digits {
        value.parse::<i64>().ok()
    } else {
        None
    };
    parsed.ok_or_else(|| {
        malformed(format!(
            "t={} is not a Unix time in whole seconds",
            quote(value)
        ))
    })
}

/// Decodes a `v1` value to bytes. Only 64 lowercase hex digits decode, as Stripe sends them, so
/// any other value never matches.
fn decode_v1(signature: &str) -> Option<Vec<u8>> {
    let is_lowercase_hex = signature
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if signature.len() != V1_HEX_LEN || !is_lowercase_hex {
        return None;
    }
    hex::decode(signature).ok()
}

/// Builds the HMAC-SHA256 of `"{timestamp}." + body`, keyed with the secret's UTF-8 bytes.
fn signed_payload_mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn check_tolerance(
    timestamp: i64,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let skew_secs = now_unix.saturating_sub(timestamp);
    if skew_secs.unsigned_abs() > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::TimestampOutsideTolerance {
            skew_secs,
            tolerance_secs,
        });
    }
    Ok(())
}

fn malformed(problem: String) -> SignatureError {
    SignatureError::MalformedHeader(problem)
}

/// Quotes a value from the header for an error message, cut to a few characters because the
/// header comes from the network.
fn quote(value: &str) -> String {
    if value.chars().count() <= QUOTED_VALUE_MAX_CHARS {
        return format!("{value:?}");
    }
    let prefix: String = value.chars().take(QUOTED_VALUE_MAX_CHARS).collect();
    format!("{prefix:?}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_example_only";
    const TIMESTAMP: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_example","object":"event"}"#;
    const EXPECTED_V1: &str = "f4fdb7700a5daffe9cbb41e769d23f22c3fcebdc9984421cfa9f992ea8b537f3";

    fn secrets(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    fn verify_at(header: &str, body: &[u8], now_unix: i64) -> Result<i64, SignatureError> {
        verify(
            Some(header),
            body,
            &secrets(&[SECRET]),
            now_unix,
            DEFAULT_TOLERANCE_SECS,
        )
    }

    #[test]
    fn sign_matches_worked_vector() {
        let header = sign(SECRET, TIMESTAMP, BODY);

        assert_eq!(header, format!("t={TIMESTAMP},v1={EXPECTED_V1}"));
    }

    #[test]
    fn verify_accepts_worked_vector() {
        let header = format!("t={TIMESTAMP},v1={EXPECTED_V1}");

        assert_eq!(verify_at(&header, BODY, TIMESTAMP), Ok(TIMESTAMP));
    }

    #[test]
    fn verify_trims_spaces_around_items() {
        let header = format!(" t = {TIMESTAMP} , v1 = {EXPECTED_V1} ,");

        assert_eq!(verify_at(&header, BODY, TIMESTAMP), Ok(TIMESTAMP));
    }

    #[test]
    fn verify_ignores_v0_and_unknown_keys() {
        let header = format!("t={TIMESTAMP},v0=abc,v9=def,v1={EXPECTED_V1}");

        assert_eq!(verify_at(&header, BODY, TIMESTAMP), Ok(TIMESTAMP));
    }

    #[test]
    fn verify_rejects_tampered_body() {
        let header = sign(SECRET, TIMESTAMP, BODY);
        let tampered = br#"{"id":"evt_example","object":"evil"}"#;

        assert_eq!(
            verify_at(&header, tampered, TIMESTAMP),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_reserialised_body() {
        let header = sign(SECRET, TIMESTAMP, BODY);
        let reserialised = b"{\n  \"id\": \"evt_example\",\n  \"object\": \"event\"\n}";
        let original: serde_json::Value = serde_json::from_slice(BODY).unwrap();
        let reparsed: serde_json::Value = serde_json::from_slice(reserialised).unwrap();
        assert_eq!(original, reparsed, "both bodies must hold the same JSON");

        assert_eq!(
            verify_at(&header, reserialised, TIMESTAMP),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_wrong_secret() {
        let header = sign("whsec_someone_else", TIMESTAMP, BODY);

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_secret_without_prefix() {
        let header = sign("example_only", TIMESTAMP, BODY);

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_expired_timestamp() {
        let header = sign(SECRET, TIMESTAMP, BODY);

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP + 301),
            Err(SignatureError::TimestampOutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn verify_rejects_future_timestamp() {
        let header = sign(SECRET, TIMESTAMP, BODY);

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP - 301),
            Err(SignatureError::TimestampOutsideTolerance {
                skew_secs: -301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn verify_accepts_skew_at_tolerance() {
        let header = sign(SECRET, TIMESTAMP, BODY);

        assert_eq!(verify_at(&header, BODY, TIMESTAMP + 300), Ok(TIMESTAMP));
        assert_eq!(verify_at(&header, BODY, TIMESTAMP - 300), Ok(TIMESTAMP));
    }

    #[test]
    fn verify_survives_extreme_timestamp() {
        let header = format!("t={},v1={EXPECTED_V1}", i64::MAX);

        assert_eq!(
            verify_at(&header, BODY, i64::MIN),
            Err(SignatureError::NoMatchingSignature)
        );
        assert_eq!(
            check_tolerance(i64::MAX, i64::MIN, 300),
            Err(SignatureError::TimestampOutsideTolerance {
                skew_secs: i64::MIN,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn verify_rejects_header_with_only_v0() {
        let header = format!("t={TIMESTAMP},v0={EXPECTED_V1}");

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP),
            Err(SignatureError::NoV1Signature)
        );
    }

    #[test]
    fn verify_rejects_missing_header() {
        let result = verify(
            None,
            BODY,
            &secrets(&[SECRET]),
            TIMESTAMP,
            DEFAULT_TOLERANCE_SECS,
        );

        assert_eq!(result, Err(SignatureError::MissingHeader));
    }

    #[test]
    fn verify_rejects_missing_timestamp() {
        let header = format!("v1={EXPECTED_V1}");

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP),
            Err(SignatureError::MalformedHeader("missing t item".to_owned()))
        );
        assert_eq!(
            verify_at("", BODY, TIMESTAMP),
            Err(SignatureError::MalformedHeader("missing t item".to_owned()))
        );
    }

    #[test]
    fn verify_rejects_non_numeric_timestamp() {
        for bad in [
            "abc",
            "",
            "-1700000000",
            "+1700000000",
            "1700000000.5",
            "99999999999999999999",
        ] {
            let header = format!("t={bad},v1={EXPECTED_V1}");

            let result = verify_at(&header, BODY, TIMESTAMP);

            assert!(
                matches!(&result, Err(SignatureError::MalformedHeader(problem)) if problem.contains("is not a Unix time")),
                "t={bad:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn verify_rejects_duplicate_timestamp() {
        let header = format!("t={TIMESTAMP},t={TIMESTAMP},v1={EXPECTED_V1}");

        assert_eq!(
            verify_at(&header, BODY, TIMESTAMP),
            Err(SignatureError::MalformedHeader(
                "more than one t item".to_owned()
            ))
        );
    }

    #[test]
    fn verify_rejects_item_without_equals() {
        let header = format!("t={TIMESTAMP},v1{EXPECTED_V1}");

        let result = verify_at(&header, BODY, TIMESTAMP);

        assert!(
            matches!(&result, Err(SignatureError::MalformedHeader(problem)) if problem.contains("is not key=value")),
            "{result:?}"
        );
    }

    #[test]
    fn verify_accepts_either_secret_during_rotation() {
        let old_secret = "whsec_old_secret";
        let new_secret = "whsec_new_secret";
        let v1_of = |secret: &str| {
            let header = sign(secret, TIMESTAMP, BODY);
            header.split_once(",v1=").unwrap().1.to_owned()
        };
        let header = format!(
            "t={TIMESTAMP},v1={},v1={}",
            v1_of(new_secret),
            v1_of(old_secret)
        );

        for configured in [
            secrets(&[old_secret, new_secret]),
            secrets(&[new_secret, old_secret]),
            secrets(&[old_secret]),
            secrets(&[new_secret]),
            secrets(&["whsec_unrelated", new_secret]),
        ] {
            let result = verify(
                Some(&header),
                BODY,
                &configured,
                TIMESTAMP,
                DEFAULT_TOLERANCE_SECS,
            );

            assert_eq!(result, Ok(TIMESTAMP), "secrets {configured:?}");
        }

        let unrelated = secrets(&["whsec_unrelated", "whsec_other"]);
        assert_eq!(
            verify(
                Some(&header),
                BODY,
                &unrelated,
                TIMESTAMP,
                DEFAULT_TOLERANCE_SECS
            ),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn verify_rejects_uppercase_or_short_v1() {
        let uppercase = EXPECTED_V1.to_ascii_uppercase();
        let short = &EXPECTED_V1[..62];
        let long = format!("{EXPECTED_V1}00");
        let not_hex = format!("{}zz", &EXPECTED_V1[..62]);

        for bad in [
            uppercase.as_str(),
            short,
            long.as_str(),
            not_hex.as_str(),
            "",
        ] {
            let header = format!("t={TIMESTAMP},v1={bad}");

            assert_eq!(
                verify_at(&header, BODY, TIMESTAMP),
                Err(SignatureError::NoMatchingSignature),
                "v1={bad:?}"
            );
        }
    }

    #[test]
    fn verify_requires_configured_secrets() {
        let header = sign(SECRET, TIMESTAMP, BODY);

        for configured in [secrets(&[]), secrets(&[""]), secrets(&["  "])] {
            let result = verify(
                Some(&header),
                BODY,
                &configured,
                TIMESTAMP,
                DEFAULT_TOLERANCE_SECS,
            );

            assert_eq!(
                result,
                Err(SignatureError::NoSecretsConfigured),
                "secrets {configured:?}"
            );
        }
    }

    #[test]
    fn verify_never_matches_empty_key() {
        let header = sign("", TIMESTAMP, BODY);

        let result = verify(
            Some(&header),
            BODY,
            &secrets(&["", SECRET]),
            TIMESTAMP,
            DEFAULT_TOLERANCE_SECS,
        );

        assert_eq!(result, Err(SignatureError::NoMatchingSignature));
    }

    #[test]
    fn error_messages_hide_secret_and_expected_signature() {
        let header = format!("t={TIMESTAMP},v1={}", "0".repeat(64));
        let errors = [
            verify_at(&header, BODY, TIMESTAMP).unwrap_err(),
            verify_at(&sign(SECRET, TIMESTAMP, BODY), BODY, TIMESTAMP + 301).unwrap_err(),
            verify_at("t=abc", BODY, TIMESTAMP).unwrap_err(),
        ];

        for error in errors {
            let message = error.to_string();
            assert!(!message.contains(SECRET), "{message}");
            assert!(!message.contains(EXPECTED_V1), "{message}");
        }
    }
}
