//! Verification of Amazon SNS HTTP deliveries that carry SES bounce, complaint and delivery
//! notifications.
//!
//! SNS posts a JSON envelope labelled `Content-Type: text/plain`, so the raw body is parsed as
//! JSON without looking at the header. Every message type is signed. The signature is RSA PKCS#1
//! v1.5 over a canonical string built from the decoded envelope values, with SHA-1 for
//! `SignatureVersion` "1" and SHA-256 for "2". The envelope names its own signing certificate
//! (`SigningCertURL`), so that URL is checked against the SNS host and path shape before anything
//! is fetched. Otherwise anyone could sign a forged message with a certificate of their own. In
//! [`verify`] the topic allow-list is checked before any network call, and the signature before
//! the message type is trusted or a `SubscribeURL` is considered. This module does not confirm
//! subscriptions, dedupe on `MessageId` or interpret the SES object. Those are the caller's steps.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePublicKey;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// Timeout for one certificate download, connection included.
const CERT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Maximum size of a downloaded certificate. SNS signing certificates are about 2 KB of PEM.
const CERT_MAX_BYTES: usize = 64 * 1024;

/// Maximum number of certificates kept in a [`CertCache`], which clears itself when full. Only
/// certificates served from validated SNS URLs are cached, so a real cache stays far smaller.
const CERT_CACHE_MAX_ENTRIES: usize = 64;

/// Maximum length, in characters, of a request value quoted back in an error.
const QUOTED_VALUE_MAX_CHARS: usize = 120;

/// Settings for accepting SNS deliveries.
#[derive(Debug, Clone, Default)]
pub struct SnsConfig {
    /// Topic ARNs whose messages are accepted. Messages from any other topic are rejected before
    /// any network call.
    pub topic_arns: Vec<String>,

    /// Test override: extra hosts accepted for `SigningCertURL` and `SubscribeURL`, over http or
    /// https and with any `.pem` certificate path. A `host` entry matches any port, and a
    /// `host:port` entry only that port. It lets
    /// tests serve their own certificate, which also means a message signed by anyone is accepted.
    /// Callers log loudly when it is set and never set it in production.
    pub trusted_cert_hosts: Option<Vec<String>>,
}

/// The three SNS message types, from the envelope's `Type` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl MessageType {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "Notification" => Some(Self::Notification),
            "SubscriptionConfirmation" => Some(Self::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(Self::UnsubscribeConfirmation),
            _ => None,
        }
    }

    /// Returns the value of the `Type` key for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "Notification",
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    fn is_confirmation(self) -> bool {
        self != Self::Notification
    }
}

/// An SNS envelope whose required keys are present, before its signature is checked. Values are
/// the decoded JSON strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub message_type: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// `Message` as sent: for SES notifications a JSON document encoded as a string.
    pub message: String,
    /// `Subject`, only on notifications whose publisher set one.
    pub subject: Option<String>,
    pub timestamp: String,
    pub signature_version: String,
    /// `Signature`, base64 as sent.
    pub signature: String,
    pub signing_cert_url: String,
    /// `Token`, present on both confirmation types.
    pub token: Option<String>,
    /// `SubscribeURL`, present on both confirmation types.
    pub subscribe_url: Option<String>,
    /// `UnsubscribeURL`, present on notifications. It is not signed.
    pub unsubscribe_url: Option<String>,
}

/// A verified SNS message.
#[derive(Debug, Clone, PartialEq)]
pub enum SnsMessage {
    /// A request to confirm the subscription. `subscribe_url` has passed
    /// [`validate_subscribe_url`]. SNS sends no notification until it is fetched once.
    SubscriptionConfirmation {
        message_id: String,
        topic_arn: String,
        subscribe_url: Url,
    },
    /// The subscription was removed. Callers alert and do not re-subscribe automatically.
    UnsubscribeConfirmation {
        message_id: String,
        topic_arn: String,
    },
    Notification {
        message_id: String,
        topic_arn: String,
        /// The SES notification object decoded from `Message`. It is `None` when `Message` is
        /// not JSON or does not decode to an object. The caller then returns 2xx and writes a
        /// dead-letter record, because SNS would resend the same bytes.
        ses: Option<Value>,
        /// `Message` as sent, kept for the dead-letter record.
        raw_message: String,
    },
}

/// A reason an SNS delivery was rejected. [`SnsError::is_forbidden`] and
/// [`SnsError::is_transient`] pick the HTTP status, and every other error is a bad request (400).
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error(
        "SNS request body is not a JSON object: {0}. \
         Raw message delivery must be disabled on the subscription"
    )]
    InvalidBody(String),

    #[error("SNS message is missing the required key `{0}`")]
    MissingKey(&'static str),

    #[error("SNS message key `{key}` is invalid: {reason}")]
    InvalidKey { key: &'static str, reason: String },

    #[error("SNS topic `{0}` is not in the allowed topic ARNs")]
    TopicNotAllowed(String),

    #[error("SigningCertURL `{url}` was rejected: {reason}")]
    InvalidCertUrl { url: String, reason: &'static str },

    /// `transient` is true for failures that a later retry may not hit: timeouts, connection
    /// errors and 5xx responses.
    #[error("failed to fetch the SNS signing certificate from `{url}`: {reason}")]
    CertFetch {
        url: String,
        reason: String,
        transient: bool,
    },

    #[error("invalid SNS signing certificate: {0}")]
    InvalidCertificate(String),

    #[error(
        "unsupported SNS SignatureVersion `{0}`: \
         only \"1\" (SHA-1) and \"2\" (SHA-256) are accepted"
    )]
    UnsupportedSignatureVersion(String),

    #[error("SNS Signature is not valid base64: {0}")]
    InvalidSignatureEncoding(String),

    #[error("SNS signature does not match the message and the signing certificate")]
    SignatureMismatch,

    #[error("SubscribeURL `{url}` was rejected: {reason}")]
    InvalidSubscribeUrl { url: String, reason: String },
}

impl SnsError {
    /// Returns true when the topic is not allowed. Callers respond with HTTP 403.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::TopicNotAllowed(_))
    }

    /// Returns true when the signing certificate could not be fetched for a reason that may pass
    /// on retry. Callers respond with HTTP 503 so that SNS redelivers.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::CertFetch {
                transient: true,
                ..
            }
        )
    }
}

/// Parses an SNS request body into an [`Envelope`] and checks that the keys required for its
/// `Type` are present and are strings.
///
/// Every type needs `Message`, `MessageId`, `Timestamp`, `TopicArn`, `Type`, `Signature`,
/// `SigningCertURL` and `SignatureVersion`. Both confirmation types also need `Token` and
/// `SubscribeURL`. The body is parsed as JSON whatever the request's `Content-Type` is.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, SnsError> {
    let object: Map<String, Value> =
        serde_json::from_slice(body).map_err(|error| SnsError::InvalidBody(error.to_string()))?;

    let type_value = required_string(&object, "Type")?;
    let Some(message_type) = MessageType::parse(&type_value) else {
        return Err(SnsError::InvalidKey {
            key: "Type",
            reason: format!(
                "`{}` is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation",
                quote(&type_value)
            ),
        });
    };

    let (token, subscribe_url) = if message_type.is_confirmation() {
        (
            Some(required_string(&object, "Token")?),
            Some(required_string(&object, "SubscribeURL")?),
        )
    } else {
        (None, None)
    };

    Ok(Envelope {
        message_type,
        message_id: required_string(&object, "MessageId")?,
        topic_arn: required_string(&object, "TopicArn")?,
        message: required_string(&object, "Message")?,
        subject: optional_string(&object, "Subject")?,
        timestamp: required_string(&object, "Timestamp")?,
        signature_version: required_string(&object, "SignatureVersion")?,
        signature: required_string(&object, "Signature")?,
        signing_cert_url: required_string(&object, "SigningCertURL")?,
        token,
        subscribe_url,
        unsubscribe_url: optional_string(&object, "UnsubscribeURL")?,
    })
}

fn required_string(object: &Map<String, Value>, key: &'static str) -> Result<String, SnsError> {
    optional_string(object, key)?.ok_or(SnsError::MissingKey(key))
}

/// Returns the string value of `key`, treating JSON `null` as absent.
fn optional_string(
    object: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, SnsError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(SnsError::InvalidKey {
            key,
            reason: "the value must be a JSON string".to_string(),
        }),
    }
}

/// Checks that the envelope's `TopicArn` is one of `config.topic_arns`, by exact comparison.
pub fn check_topic(envelope: &Envelope, config: &SnsConfig) -> Result<(), SnsError> {
    if config.topic_arns.contains(&envelope.topic_arn) {
        Ok(())
    } else {
        Err(SnsError::TopicNotAllowed(quote(&envelope.topic_arn)))
    }
}

/// Checks a `SigningCertURL` before it is fetched and returns the parsed URL to fetch.
///
/// An accepted URL is https, has a host of the form `sns.<region>.amazonaws.com` (or `.com.cn`), a
/// path of the form `/SimpleNotificationService-<lowercase hex>.pem`, and no userinfo, port, query
/// or fragment. With `config.trusted_cert_hosts` set, a URL on one of those hosts may also use http,
/// a port and any path ending in `.pem`.
pub fn validate_cert_url(url: &str, config: &SnsConfig) -> Result<Url, SnsError> {
    let reject = |reason: &'static str| SnsError::InvalidCertUrl {
        url: quote(url),
        reason,
    };

    let parsed = Url::parse(url).map_err(|_| reject("not an absolute URL"))?;
    check_no_userinfo(&parsed).map_err(reject)?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(reject("the URL must not have a query or fragment"));
    }

    if is_trusted_test_host(&parsed, config) {
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(reject("the scheme must be http or https"));
        }
        if !parsed.path().ends_with(".pem") {
            return Err(reject("the path must end in .pem"));
        }
        return Ok(parsed);
    }

    check_sns_origin(&parsed, url).map_err(reject)?;
    if !is_sns_cert_path(parsed.path()) {
        return Err(reject(
            "the path must be /SimpleNotificationService-<hex>.pem",
        ));
    }
    Ok(parsed)
}

/// Checks a `SubscribeURL` before the caller fetches it and returns the parsed URL.
///
/// An accepted URL passes the same scheme, host, userinfo and port checks as the certificate URL.
/// Its path is `/`, except on a trusted test host. Its query has exactly one `Action`, equal to
/// `ConfirmSubscription`, one `TopicArn`, equal to `topic_arn`, and one non-empty `Token`. Other
/// query parameters are allowed.
pub fn validate_subscribe_url(
    url: &str,
    topic_arn: &str,
    config: &SnsConfig,
) -> Result<Url, SnsError> {
    let reject = |reason: String| SnsError::InvalidSubscribeUrl {
        url: quote(url),
        reason,
    };

    let parsed = Url::parse(url).map_err(|_| reject("not an absolute URL".to_string()))?;
    check_no_userinfo(&parsed).map_err(|reason| reject(reason.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(reject("the URL must not have a fragment".to_string()));
    }

    if is_trusted_test_host(&parsed, config) {
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(reject("the scheme must be http or https".to_string()));
        }
    } else {
        check_sns_origin(&parsed, url).map_err(|reason| reject(reason.to_string()))?;
        if parsed.path() != "/" {
            return Err(reject("the path must be /".to_string()));
        }
    }

    let mut actions = Vec::new();
    let mut topic_arns = Vec::new();
    let mut tokens = Vec::new();
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "Action" => actions.push(value.into_owned()),
            "TopicArn" => topic_arns.push(value.into_owned()),
            "Token" => tokens.push(value.into_owned()),
            _ => {}
        }
    }

    if actions != ["ConfirmSubscription"] {
        return Err(reject(
            "the query must have exactly one Action=ConfirmSubscription".to_string(),
        ));
    }
    if topic_arns.len() != 1 || topic_arns[0] != topic_arn {
        return Err(reject(format!(
            "the query must have exactly one TopicArn, equal to the message's topic `{}`",
            quote(topic_arn)
        )));
    }
    if tokens.len() != 1 || tokens[0].is_empty() {
        return Err(reject(
            "the query must have exactly one non-empty Token".to_string(),
        ));
    }
    Ok(parsed)
}

fn check_no_userinfo(url: &Url) -> Result<(), &'static str> {
    if url.username().is_empty() && url.password().is_none() {
        Ok(())
    } else {
        Err("the URL must not contain userinfo")
    }
}

/// Checks the scheme, host and port of a URL that must point at SNS itself. `raw` is the URL as
/// sent, because the parsed URL drops an explicit default port such as `:443`.
fn check_sns_origin(url: &Url, raw: &str) -> Result<(), &'static str> {
    if url.scheme() != "https" {
        return Err("the scheme must be https");
    }
    let is_sns_host = url.host_str().is_some_and(is_sns_host);
    if !is_sns_host {
        return Err("the host must be sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn");
    }
    if url.port().is_some() || authority_has_port(raw) {
        return Err("the URL must not name a port");
    }
    Ok(())
}

/// Matches `^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`.
fn is_sns_host(host: &str) -> bool {
    let Some(rest) = host.strip_prefix("sns.") else {
        return false;
    };
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"));
    region.is_some_and(|region| {
        !region.is_empty()
            && region
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    })
}

/// Matches `^/SimpleNotificationService-[0-9a-f]+\.pem$`.
fn is_sns_cert_path(path: &str) -> bool {
    let hex = path
        .strip_prefix("/SimpleNotificationService-")
        .and_then(|rest| rest.strip_suffix(".pem"));
    hex.is_some_and(|hex| {
        !hex.is_empty()
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

/// Returns true when the authority of a raw absolute URL ends in `:<port>`. Userinfo has already
/// been rejected and SNS hosts are never IPv6 literals, so any `:` in the authority starts a port.
fn authority_has_port(raw: &str) -> bool {
    let Some((_, after_scheme)) = raw.split_once("://") else {
        return false;
    };
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    after_scheme[..authority_end].contains(':')
}

/// Returns true when the URL's host, or its `host:port`, is in `config.trusted_cert_hosts`.
fn is_trusted_test_host(url: &Url, config: &SnsConfig) -> bool {
    let (Some(trusted_hosts), Some(host)) = (&config.trusted_cert_hosts, url.host_str()) else {
        return false;
    };
    let host_and_port = url.port().map(|port| format!("{host}:{port}"));
    trusted_hosts.iter().any(|trusted| {
        let trusted = trusted.to_ascii_lowercase();
        trusted == host || host_and_port.as_deref() == Some(trusted.as_str())
    })
}

/// Builds the canonical string that SNS signs.
///
/// For each key in the list for the message type, in this order, that is present, the string
/// contains `key`, a newline, the decoded value and a newline. Notifications use `Message`,
/// `MessageId`, `Subject` (only when present), `Timestamp`, `TopicArn` and `Type`. Both
/// confirmation types use `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`
/// and `Type`.
pub fn string_to_sign(envelope: &Envelope) -> String {
    let message_type = envelope.message_type.as_str();
    let fields: Vec<(&str, Option<&str>)> = if envelope.message_type.is_confirmation() {
        vec![
            ("Message", Some(envelope.message.as_str())),
            ("MessageId", Some(envelope.message_id.as_str())),
            ("SubscribeURL", envelope.subscribe_url.as_deref()),
            ("Timestamp", Some(envelope.timestamp.as_str())),
            ("Token", envelope.token.as_deref()),
            ("TopicArn", Some(envelope.topic_arn.as_str())),
            ("Type", Some(message_type)),
        ]
    } else {
        vec![
            ("Message", Some(envelope.message.as_str())),
            ("MessageId", Some(envelope.message_id.as_str())),
            ("Subject", envelope.subject.as_deref()),
            ("Timestamp", Some(envelope.timestamp.as_str())),
            ("TopicArn", Some(envelope.topic_arn.as_str())),
            ("Type", Some(message_type)),
        ]
    };

    let mut canonical = String::new();
    for (key, value) in fields {
        if let Some(value) = value {
            canonical.push_str(key);
            canonical.push('\n');
            canonical.push_str(value);
            canonical.push('\n');
        }
    }
    canonical
}

/// Verifies the envelope's `Signature` with the RSA public key of the PEM certificate `cert_pem`.
///
/// `SignatureVersion` "1" is RSA PKCS#1 v1.5 with SHA-1 and "2" is the same with SHA-256. Any other
/// version is rejected. The certificate itself is not checked.
// NOTE: the certificate's issuer, chain and validity dates are not checked. The only thing that
// ties the key to Amazon is that `validate_cert_url` allowed its https URL on an SNS host.
pub fn verify_signature(envelope: &Envelope, cert_pem: &[u8]) -> Result<(), SnsError> {
    let canonical = string_to_sign(envelope);
    let (scheme, hashed) = match envelope.signature_version.as_str() {
        "1" => (
            Pkcs1v15Sign::new::<Sha1>(),
            Sha1::digest(canonical.as_bytes()).to_vec(),
        ),
        "2" => (
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(canonical.as_bytes()).to_vec(),
        ),
        other => return Err(SnsError::UnsupportedSignatureVersion(quote(other))),
    };

    let signature = BASE64
        .decode(envelope.signature.as_bytes())
        .map_err(|error| SnsError::InvalidSignatureEncoding(error.to_string()))?;
    let public_key = public_key_from_certificate(cert_pem)?;
    public_key
        .verify(scheme, &hashed, &signature)
        .map_err(|_| SnsError::SignatureMismatch)
}

fn public_key_from_certificate(cert_pem: &[u8]) -> Result<RsaPublicKey, SnsError> {
    let certificate = Certificate::from_pem(cert_pem).map_err(|error| {
        SnsError::InvalidCertificate(format!("not a PEM X.509 certificate: {error}"))
    })?;
    let spki_der = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|error| SnsError::InvalidCertificate(error.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki_der).map_err(|error| {
        SnsError::InvalidCertificate(format!("the public key is not RSA: {error}"))
    })
}

/// An in-memory cache of SNS signing certificates, as PEM bytes per URL.
///
/// Only URLs that passed [`validate_cert_url`] are fetched. Redirects are not followed, a
/// download has a short timeout and a size limit, and only bytes that parse as a PEM certificate
/// are cached. Failures are not cached.
pub struct CertCache {
    http: reqwest::Client,
    pems: Mutex<HashMap<Url, Vec<u8>>>,
    fetch_count: AtomicUsize,
}

impl CertCache {
    /// Creates an empty cache with its own HTTP client.
    pub fn new() -> Result<Self, SnsError> {
        // A redirect could lead the fetch off the validated SNS host.
        let http = reqwest::Client::builder()
            .timeout(CERT_FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| SnsError::CertFetch {
                url: String::new(),
                reason: format!("failed to build the HTTP client: {error}"),
                transient: false,
            })?;
        Ok(Self {
            http,
            pems: Mutex::new(HashMap::new()),
            fetch_count: AtomicUsize::new(0),
        })
    }

    /// Returns the number of downloads attempted so far, cache hits excluded.
    pub fn fetch_count(&self) -> usize {
        self.fetch_count.load(Ordering::Relaxed)
    }

    /// Returns the PEM certificate at `url`, downloading it on a cache miss. `url` must come from
    /// [`validate_cert_url`].
    pub async fn get(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        if let Some(pem) = self.lock_pems().get(url) {
            return Ok(pem.clone());
        }

        let pem = self.fetch(url).await?;
        Certificate::from_pem(&pem).map_err(|error| SnsError::CertFetch {
            url: quote(url.as_str()),
            reason: format!("the response is not a PEM X.509 certificate: {error}"),
            transient: false,
        })?;

        let mut pems = self.lock_pems();
        if pems.len() >= CERT_CACHE_MAX_ENTRIES {
            pems.clear();
        }
        pems.insert(url.clone(), pem.clone());
        Ok(pem)
    }

    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, SnsError> {
        self.fetch_count.fetch_add(1, Ordering::Relaxed);
        let fetch_error = |reason: String, transient: bool| SnsError::CertFetch {
            url: quote(url.as_str()),
            reason,
            transient,
        };

        let mut response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|error| fetch_error(error.to_string(), true))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fetch_error(
                format!("the server returned HTTP {status}"),
                status.is_server_error(),
            ));
        }

        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| fetch_error(error.to_string(), true))?
        {
            if body.len() + chunk.len() > CERT_MAX_BYTES {
                return Err(fetch_error(
                    format!("the response is larger than {CERT_MAX_BYTES} bytes"),
                    false,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn lock_pems(&self) -> std::sync::MutexGuard<'_, HashMap<Url, Vec<u8>>> {
        // The map is always left consistent, so a panic in another holder does not invalidate it.
        self.pems
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Verifies an SNS request body and returns the message it carries.
///
/// The steps run in this order: parse the envelope, check the topic allow-list, check
/// `SigningCertURL`, fetch the certificate through `certs`, verify the signature, and only then
/// read `Type`. A `SubscribeURL` is checked with [`validate_subscribe_url`] but not fetched. A
/// notification's `Message` is decoded as JSON, and a JSON string result is decoded once more.
pub async fn verify(
    body: &[u8],
    config: &SnsConfig,
    certs: &CertCache,
) -> Result<SnsMessage, SnsError> {
    let envelope = parse_envelope(body)?;
    check_topic(&envelope, config)?;
    let cert_url = validate_cert_url(&envelope.signing_cert_url, config)?;
    let cert_pem = certs.get(&cert_url).await?;
    verify_signature(&envelope, &cert_pem)?;

    let Envelope {
        message_type,
        message_id,
        topic_arn,
        message,
        subscribe_url,
        ..
    } = envelope;
    match message_type {
        MessageType::SubscriptionConfirmation => {
            // parse_envelope requires SubscribeURL on confirmations, so it is present here.
            let subscribe_url = subscribe_url.ok_or(SnsError::MissingKey("SubscribeURL"))?;
            let subscribe_url = validate_subscribe_url(&subscribe_url, &topic_arn, config)?;
            Ok(SnsMessage::SubscriptionConfirmation {
                message_id,
                topic_arn,
                subscribe_url,
            })
        }
        MessageType::UnsubscribeConfirmation => Ok(SnsMessage::UnsubscribeConfirmation {
            message_id,
            topic_arn,
        }),
        MessageType::Notification => Ok(SnsMessage::Notification {
            message_id,
            topic_arn,
            ses: decode_ses_object(&message),
            raw_message: message,
        }),
    }
}

/// Decodes a notification's `Message` into the SES object. A JSON string is decoded one more time,
/// because some publishers encode the object twice. Anything that does not end as an object gives
/// `None`.
fn decode_ses_object(message: &str) -> Option<Value> {
    let mut value: Value = serde_json::from_str(message).ok()?;
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner).ok()?;
    }
    value.is_object().then_some(value)
}

/// Shortens a request value for an error message.
fn quote(value: &str) -> String {
    if value.chars().count() <= QUOTED_VALUE_MAX_CHARS {
        return value.to_string();
    }
    let mut shortened: String = value.chars().take(QUOTED_VALUE_MAX_CHARS).collect();
    shortened.push_str("...");
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;

    use rsa::RsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use serde_json::json;

    /// Test-only RSA key and the self-signed certificate for it, made once with OpenSSL.
    const TEST_KEY_PEM: &str = include_str!("testdata/test-signing-key.pem");
    const TEST_CERT_PEM: &str = include_str!("testdata/test-signing-cert.pem");

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-bounces";
    const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";
    const SUBSCRIBE_URL: &str = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\
        &TopicArn=arn:aws:sns:us-east-1:123456789012:ses-bounces&Token=2336412f37fb687f5d51e6e2425c464d";

    fn config() -> SnsConfig {
        SnsConfig {
            topic_arns: vec![TOPIC.to_string()],
            trusted_cert_hosts: None,
        }
    }

    fn notification_fields(message: &str) -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Subject": "Amazon SES Email Event Notification",
            "Message": message,
            "Timestamp": "2024-05-01T12:00:00.123Z",
            "SignatureVersion": "2",
            "Signature": "",
            "SigningCertURL": CERT_URL,
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        })
    }

    fn confirmation_fields(message_type: &str) -> Value {
        json!({
            "Type": message_type,
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425c464d",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic.\nTo confirm, visit the SubscribeURL.",
            "SubscribeURL": SUBSCRIBE_URL,
            "Timestamp": "2024-05-01T12:00:00.123Z",
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": CERT_URL,
        })
    }

    /// Signs `fields` with the test key for its `SignatureVersion` and returns the request body.
    fn sign(mut fields: Value) -> Vec<u8> {
        let envelope = parse_envelope(fields.to_string().as_bytes()).unwrap();
        let canonical = string_to_sign(&envelope);
        let (scheme, hashed) = match envelope.signature_version.as_str() {
            "1" => (
                Pkcs1v15Sign::new::<Sha1>(),
                Sha1::digest(canonical.as_bytes()).to_vec(),
            ),
            _ => (
                Pkcs1v15Sign::new::<Sha256>(),
                Sha256::digest(canonical.as_bytes()).to_vec(),
            ),
        };
        let key = RsaPrivateKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
        let signature = key.sign(scheme, &hashed).unwrap();
        fields["Signature"] = Value::String(BASE64.encode(signature));
        fields.to_string().into_bytes()
    }

    fn with_version(mut fields: Value, version: &str) -> Value {
        fields["SignatureVersion"] = Value::String(version.to_string());
        fields
    }

    /// Serves the test certificate at `/cert.pem`, a redirect to it at `/redirect.pem` and a 404
    /// elsewhere, on 127.0.0.1 with a free port. The server stops when the test's runtime ends.
    async fn serve_test_cert() -> SocketAddr {
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;
        use axum::routing::get;

        let app = axum::Router::new()
            .route("/cert.pem", get(|| async { TEST_CERT_PEM }))
            .route(
                "/redirect.pem",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/cert.pem")]).into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        address
    }

    fn trusted_config(address: SocketAddr) -> SnsConfig {
        SnsConfig {
            topic_arns: vec![TOPIC.to_string()],
            trusted_cert_hosts: Some(vec![address.to_string()]),
        }
    }

    #[test]
    fn string_to_sign_notification() {
        let envelope =
            parse_envelope(notification_fields("{\"a\":1}").to_string().as_bytes()).unwrap();

        let expected = "Message\n{\"a\":1}\n\
            MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
            Subject\nAmazon SES Email Event Notification\n\
            Timestamp\n2024-05-01T12:00:00.123Z\n\
            TopicArn\narn:aws:sns:us-east-1:123456789012:ses-bounces\n\
            Type\nNotification\n";
        assert_eq!(string_to_sign(&envelope), expected);
    }

    #[test]
    fn string_to_sign_notification_without_subject() {
        let mut fields = notification_fields("hello");
        fields.as_object_mut().unwrap().remove("Subject");
        let envelope = parse_envelope(fields.to_string().as_bytes()).unwrap();

        let expected = "Message\nhello\n\
            MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
            Timestamp\n2024-05-01T12:00:00.123Z\n\
            TopicArn\narn:aws:sns:us-east-1:123456789012:ses-bounces\n\
            Type\nNotification\n";
        assert_eq!(string_to_sign(&envelope), expected);
    }

    #[test]
    fn string_to_sign_confirmations() {
        for message_type in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let envelope =
                parse_envelope(confirmation_fields(message_type).to_string().as_bytes()).unwrap();

            // The JSON escape `\n` in Message is signed as a real newline.
            let expected = format!(
                "Message\nYou have chosen to subscribe to the topic.\nTo confirm, visit the SubscribeURL.\n\
                 MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
                 SubscribeURL\n{SUBSCRIBE_URL}\n\
                 Timestamp\n2024-05-01T12:00:00.123Z\n\
                 Token\n2336412f37fb687f5d51e6e2425c464d\n\
                 TopicArn\n{TOPIC}\n\
                 Type\n{message_type}\n"
            );
            assert_eq!(string_to_sign(&envelope), expected, "{message_type}");
        }
    }

    #[test]
    fn parse_envelope_reports_missing_key() {
        let common = [
            "Message",
            "MessageId",
            "Timestamp",
            "TopicArn",
            "Type",
            "Signature",
            "SigningCertURL",
            "SignatureVersion",
        ];
        for key in common {
            let mut fields = notification_fields("x");
            fields.as_object_mut().unwrap().remove(key);
            let error = parse_envelope(fields.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(error, SnsError::MissingKey(missing) if missing == key),
                "{key}: {error}"
            );
            assert!(error.to_string().contains(key), "{error}");
            assert!(!error.is_forbidden());
        }

        for key in ["Token", "SubscribeURL"] {
            for message_type in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
                let mut fields = confirmation_fields(message_type);
                fields.as_object_mut().unwrap().remove(key);
                let error = parse_envelope(fields.to_string().as_bytes()).unwrap_err();
                assert!(
                    matches!(error, SnsError::MissingKey(missing) if missing == key),
                    "{message_type} {key}: {error}"
                );
            }
        }
    }

    #[test]
    fn parse_envelope_rejects_bad_bodies() {
        let not_json = parse_envelope(b"Action=ConfirmSubscription").unwrap_err();
        assert!(matches!(not_json, SnsError::InvalidBody(_)), "{not_json}");

        // Raw message delivery posts the bare SES object, which has no envelope keys.
        let raw_delivery = parse_envelope(br#"{"notificationType":"Bounce"}"#).unwrap_err();
        assert!(
            matches!(raw_delivery, SnsError::MissingKey("Type")),
            "{raw_delivery}"
        );

        let mut unknown_type = notification_fields("x");
        unknown_type["Type"] = json!("Other");
        let error = parse_envelope(unknown_type.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(error, SnsError::InvalidKey { key: "Type", .. }),
            "{error}"
        );

        let mut number_message = notification_fields("x");
        number_message["Message"] = json!(5);
        let error = parse_envelope(number_message.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(error, SnsError::InvalidKey { key: "Message", .. }),
            "{error}"
        );
    }

    #[test]
    fn signature_v1_and_v2_verify() {
        for version in ["1", "2"] {
            let body = sign(with_version(notification_fields("{\"a\":1}"), version));
            let envelope = parse_envelope(&body).unwrap();
            let result = verify_signature(&envelope, TEST_CERT_PEM.as_bytes());
            assert!(result.is_ok(), "notification v{version}: {result:?}");

            for message_type in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
                let body = sign(with_version(confirmation_fields(message_type), version));
                let envelope = parse_envelope(&body).unwrap();
                let result = verify_signature(&envelope, TEST_CERT_PEM.as_bytes());
                assert!(result.is_ok(), "{message_type} v{version}: {result:?}");
            }
        }
    }

    #[test]
    fn tampered_message_fails_verification() {
        let body = sign(notification_fields("{\"a\":1}"));
        let mut envelope = parse_envelope(&body).unwrap();
        envelope.message = "{\"a\":2}".to_string();

        let error = verify_signature(&envelope, TEST_CERT_PEM.as_bytes()).unwrap_err();
        assert!(matches!(error, SnsError::SignatureMismatch), "{error}");
    }

    #[test]
    fn signature_version_mismatch_fails() {
        let body = sign(with_version(notification_fields("x"), "1"));
        let mut envelope = parse_envelope(&body).unwrap();
        envelope.signature_version = "2".to_string();

        let error = verify_signature(&envelope, TEST_CERT_PEM.as_bytes()).unwrap_err();
        assert!(matches!(error, SnsError::SignatureMismatch), "{error}");
    }

    #[test]
    fn unknown_signature_version_fails() {
        for version in ["3", "", "0"] {
            let body = sign(notification_fields("x"));
            let mut envelope = parse_envelope(&body).unwrap();
            envelope.signature_version = version.to_string();

            let error = verify_signature(&envelope, TEST_CERT_PEM.as_bytes()).unwrap_err();
            assert!(
                matches!(error, SnsError::UnsupportedSignatureVersion(_)),
                "{version}: {error}"
            );
        }
    }

    #[test]
    fn invalid_signature_encoding_fails() {
        let mut envelope = parse_envelope(&sign(notification_fields("x"))).unwrap();
        envelope.signature = "not base64!".to_string();

        let error = verify_signature(&envelope, TEST_CERT_PEM.as_bytes()).unwrap_err();
        assert!(
            matches!(error, SnsError::InvalidSignatureEncoding(_)),
            "{error}"
        );
    }

    #[test]
    fn invalid_certificate_fails() {
        let envelope = parse_envelope(&sign(notification_fields("x"))).unwrap();

        let error = verify_signature(&envelope, TEST_KEY_PEM.as_bytes()).unwrap_err();
        assert!(matches!(error, SnsError::InvalidCertificate(_)), "{error}");
    }

    #[test]
    fn cert_url_accepts_sns_hosts() {
        let accepted = [
            CERT_URL,
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123abcdef.pem",
            "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-ab12.pem",
        ];
        for url in accepted {
            let result = validate_cert_url(url, &config());
            assert!(result.is_ok(), "{url}: {result:?}");
        }
    }

    #[test]
    fn cert_url_rejects_unsafe_urls() {
        let rejected = [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://evil.example/SimpleNotificationService-abc123.pem",
            "https://s3.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.s3.amazonaws.com.evil.example/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc123.pem",
            "https://sns.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.us_east.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://xsns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.amazonaws.com@evil.example/SimpleNotificationService-abc123.pem",
            "https://user:pass@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ABC123.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem.txt",
            "https://sns.us-east-1.amazonaws.com/bucket/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem#x",
            "/SimpleNotificationService-abc123.pem",
            "",
        ];
        for url in rejected {
            let result = validate_cert_url(url, &config());
            assert!(
                matches!(result, Err(SnsError::InvalidCertUrl { .. })),
                "{url} was accepted: {result:?}"
            );
        }
    }

    #[test]
    fn cert_url_trusted_test_host() {
        let config = SnsConfig {
            topic_arns: vec![TOPIC.to_string()],
            trusted_cert_hosts: Some(vec!["127.0.0.1:8080".to_string(), "localhost".to_string()]),
        };

        for url in [
            "http://127.0.0.1:8080/cert.pem",
            "https://127.0.0.1:8080/certs/test.pem",
            "http://localhost:9999/cert.pem",
        ] {
            let result = validate_cert_url(url, &config);
            assert!(result.is_ok(), "{url}: {result:?}");
        }
        for url in [
            "http://127.0.0.1:8081/cert.pem",
            "http://127.0.0.1:8080/cert.txt",
            "http://user@127.0.0.1:8080/cert.pem",
            "http://evil.example/cert.pem",
        ] {
            let result = validate_cert_url(url, &config);
            assert!(result.is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn subscribe_url_accepts_confirm_subscription() {
        let result = validate_subscribe_url(SUBSCRIBE_URL, TOPIC, &config());
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn subscribe_url_rejects_unsafe_urls() {
        let topic = "TopicArn=arn:aws:sns:us-east-1:123456789012:ses-bounces";
        let rejected = [
            format!("http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://169.254.169.254/?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://sns.amazonaws.com@evil.example/?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://sns.us-east-1.amazonaws.com/other?Action=ConfirmSubscription&{topic}&Token=t"),
            format!("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&{topic}&Token=t"),
            format!("https://sns.us-east-1.amazonaws.com/?{topic}&Token=t"),
            format!(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Action=Unsubscribe&{topic}&Token=t"
            ),
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:other&Token=t".to_string(),
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t".to_string(),
            format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&{topic}"),
            format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&{topic}&Token="),
            format!("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&{topic}&Token=t#f"),
        ];
        for url in &rejected {
            let result = validate_subscribe_url(url, TOPIC, &config());
            assert!(
                matches!(result, Err(SnsError::InvalidSubscribeUrl { .. })),
                "{url} was accepted: {result:?}"
            );
        }
    }

    #[test]
    fn wrong_topic_is_forbidden() {
        let mut fields = notification_fields("x");
        fields["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:other");
        let envelope = parse_envelope(&sign(fields)).unwrap();

        let error = check_topic(&envelope, &config()).unwrap_err();
        assert!(error.is_forbidden(), "{error}");
        assert!(
            error
                .to_string()
                .contains("arn:aws:sns:us-east-1:999999999999:other"),
            "{error}"
        );

        let no_topics = SnsConfig::default();
        let allowed = parse_envelope(&sign(notification_fields("x"))).unwrap();
        assert!(
            check_topic(&allowed, &no_topics)
                .unwrap_err()
                .is_forbidden()
        );
    }

    #[test]
    fn ses_object_decoding() {
        let object = json!({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}});
        let once = object.to_string();
        let twice = Value::String(once.clone()).to_string();
        let three_times = Value::String(twice.clone()).to_string();

        assert_eq!(decode_ses_object(&once), Some(object.clone()));
        assert_eq!(decode_ses_object(&twice), Some(object));
        assert_eq!(decode_ses_object(&three_times), None);
        assert_eq!(decode_ses_object("not json"), None);
        assert_eq!(decode_ses_object("[1, 2]"), None);
        assert_eq!(decode_ses_object("\"just text\""), None);
    }

    #[tokio::test]
    async fn rejected_urls_are_never_fetched() {
        let certs = CertCache::new().unwrap();
        let config = config();

        let mut wrong_topic = notification_fields("x");
        wrong_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:other");
        let error = verify(&sign(wrong_topic), &config, &certs)
            .await
            .unwrap_err();
        assert!(error.is_forbidden(), "{error}");

        for cert_url in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://s3.amazonaws.com/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc123.pem",
            "https://sns.amazonaws.com@evil.example/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com:4443/SimpleNotificationService-abc123.pem",
            "https://sns.us-east-1.amazonaws.com/evil.pem",
        ] {
            let mut fields = notification_fields("x");
            fields["SigningCertURL"] = json!(cert_url);
            let error = verify(&sign(fields), &config, &certs).await.unwrap_err();
            assert!(
                matches!(error, SnsError::InvalidCertUrl { .. }),
                "{cert_url}: {error}"
            );
        }

        assert_eq!(certs.fetch_count(), 0);
    }

    #[tokio::test]
    async fn verify_end_to_end_with_local_cert_server() {
        let address = serve_test_cert().await;
        let config = trusted_config(address);
        let certs = CertCache::new().unwrap();
        let cert_url = format!("http://{address}/cert.pem");

        let ses = json!({"notificationType": "Bounce", "mail": {"messageId": "0100018f"}});
        let mut fields = notification_fields(&Value::String(ses.to_string()).to_string());
        fields["SigningCertURL"] = json!(cert_url);
        let message = verify(&sign(fields), &config, &certs).await.unwrap();
        match message {
            SnsMessage::Notification {
                message_id,
                topic_arn,
                ses: decoded,
                ..
            } => {
                assert_eq!(message_id, "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324");
                assert_eq!(topic_arn, TOPIC);
                assert_eq!(decoded, Some(ses));
            }
            other => panic!("expected a notification, got {other:?}"),
        }

        let mut not_json = with_version(notification_fields("plain text, not JSON"), "1");
        not_json["SigningCertURL"] = json!(cert_url);
        let message = verify(&sign(not_json), &config, &certs).await.unwrap();
        match message {
            SnsMessage::Notification {
                ses, raw_message, ..
            } => {
                assert_eq!(ses, None);
                assert_eq!(raw_message, "plain text, not JSON");
            }
            other => panic!("expected a notification, got {other:?}"),
        }

        let mut tampered = notification_fields("{}");
        tampered["SigningCertURL"] = json!(cert_url);
        let mut tampered: Value = serde_json::from_slice(&sign(tampered)).unwrap();
        tampered["Message"] = json!("{\"forged\":true}");
        let error = verify(tampered.to_string().as_bytes(), &config, &certs)
            .await
            .unwrap_err();
        assert!(matches!(error, SnsError::SignatureMismatch), "{error}");

        // Three verifications, one download: the certificate is cached per URL.
        assert_eq!(certs.fetch_count(), 1);
    }

    #[tokio::test]
    async fn verify_confirmations_end_to_end() {
        let address = serve_test_cert().await;
        let config = trusted_config(address);
        let certs = CertCache::new().unwrap();
        let cert_url = format!("http://{address}/cert.pem");

        let mut subscription = confirmation_fields("SubscriptionConfirmation");
        subscription["SigningCertURL"] = json!(cert_url);
        let message = verify(&sign(subscription), &config, &certs).await.unwrap();
        let expected = SnsMessage::SubscriptionConfirmation {
            message_id: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b".to_string(),
            topic_arn: TOPIC.to_string(),
            subscribe_url: Url::parse(SUBSCRIBE_URL).unwrap(),
        };
        assert_eq!(message, expected);

        let mut unsubscribe = confirmation_fields("UnsubscribeConfirmation");
        unsubscribe["SigningCertURL"] = json!(cert_url);
        let message = verify(&sign(unsubscribe), &config, &certs).await.unwrap();
        let expected = SnsMessage::UnsubscribeConfirmation {
            message_id: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b".to_string(),
            topic_arn: TOPIC.to_string(),
        };
        assert_eq!(message, expected);

        // A correctly signed confirmation whose SubscribeURL points elsewhere is still rejected.
        let mut ssrf = confirmation_fields("SubscriptionConfirmation");
        ssrf["SigningCertURL"] = json!(cert_url);
        ssrf["SubscribeURL"] = json!("https://169.254.169.254/latest/meta-data/");
        let error = verify(&sign(ssrf), &config, &certs).await.unwrap_err();
        assert!(
            matches!(error, SnsError::InvalidSubscribeUrl { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn cert_cache_fetch_failures() {
        let address = serve_test_cert().await;
        let certs = CertCache::new().unwrap();

        let redirect = Url::parse(&format!("http://{address}/redirect.pem")).unwrap();
        let error = certs.get(&redirect).await.unwrap_err();
        assert!(
            matches!(
                error,
                SnsError::CertFetch {
                    transient: false,
                    ..
                }
            ),
            "{error}"
        );

        let missing = Url::parse(&format!("http://{address}/missing.pem")).unwrap();
        let error = certs.get(&missing).await.unwrap_err();
        assert!(
            matches!(
                error,
                SnsError::CertFetch {
                    transient: false,
                    ..
                }
            ),
            "{error}"
        );

        // Failures are not cached, so each attempt downloads again.
        assert!(certs.get(&missing).await.is_err());
        assert_eq!(certs.fetch_count(), 3);
    }
}
