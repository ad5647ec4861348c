//! The Stripe API client used by the payment-sync job: authenticated GET requests pinned to one
//! API version, paced by a rate limiter, with every failure classified as retryable or permanent.
//!
//! Objects come back as raw JSON (`serde_json::Value`), so a field that a newer API version adds,
//! renames or removes never breaks deserialisation. The caller reads the fields it needs. The
//! client never retries by itself. A `JobError::Retryable` goes back to the job engine, which
//! retries the job durably with its own backoff. Every call is a GET, which is safe to repeat when
//! no response arrived. A POST would need a deterministic `Idempotency-Key` first. This module does
//! not verify webhooks or decide payment state.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use url::Url;

use crate::outcome::JobError;

/// The Stripe API version sent in `Stripe-Version` with every request. Keep it equal to the
/// version of the webhook endpoint so that API objects and event payloads have the same shape.
pub const STRIPE_API_VERSION: &str = "2025-03-31.basil";

/// The Stripe API base URL, without the `/v1` prefix.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// Default requests per second for the whole deployment. It stays below the 25 requests per second
/// that Stripe allows per endpoint, and per account in a sandbox (docs.stripe.com/rate-limits).
pub const DEFAULT_RATE_PER_SECOND: f64 = 20.0;

/// Default limit on one request, from connecting to reading the whole body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of events requested per page by `list_events`, the maximum of Stripe's `limit`
/// parameter (1 to 100, docs.stripe.com/api/pagination).
pub const EVENTS_PAGE_LIMIT: u32 = 100;

const STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");
const STRIPE_SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// Maximum number of characters of an unexpected response body quoted in an error message.
const BODY_EXCERPT_CHARS: usize = 200;

/// A Stripe secret or restricted API key. `Debug` prints a placeholder, so logs and panic messages
/// never show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeApiKey(String);

impl StripeApiKey {
    pub fn new(key: impl Into<String>) -> StripeApiKey {
        StripeApiKey(key.into())
    }

    /// Returns the key in plain text, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StripeApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeApiKey([redacted])")
    }
}

/// Settings of a `StripeClient`.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Base URL of the API, without `/v1`. An `http` URL is accepted for a local stand-in.
    pub api_base: Url,
    /// Key sent as `Authorization: Bearer`, or `None` when `STRIPE_API_KEY` is not set. Without a
    /// key every call fails permanently.
    pub api_key: Option<StripeApiKey>,
    /// Requests per second for this process: the deployment's rate divided by `WORKER_REPLICAS`.
    pub rate_per_second: f64,
    /// Limit on one request, from connecting to reading the whole body.
    pub timeout: Duration,
}

impl Default for StripeConfig {
    fn default() -> StripeConfig {
        StripeConfig {
            api_base: Url::parse(DEFAULT_API_BASE).expect("the default Stripe API base is a URL"),
            api_key: None,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// An invalid `StripeConfig`, found when the client is built.
#[derive(Debug, thiserror::Error)]
pub enum StripeClientError {
    #[error(
        "invalid Stripe API base URL {0}: expected an http or https URL such as {DEFAULT_API_BASE}"
    )]
    InvalidApiBase(Url),

    #[error(
        "invalid STRIPE_API_KEY: it is empty or contains characters not allowed in an HTTP header"
    )]
    InvalidApiKey,

    #[error(
        "invalid Stripe request rate {0}: expected a finite number of requests per second above 0"
    )]
    InvalidRate(f64),

    #[error("invalid Stripe request timeout {0:?}: expected a duration above 0")]
    InvalidTimeout(Duration),

    #[error("failed to build the HTTP client for Stripe: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// A client for the Stripe API with one connection pool and one rate limiter.
///
/// Clones share the pool and the limiter, so build one client per process and clone it: the
/// limiter then paces every Stripe call of the process. A call over the rate waits for its turn
/// instead of failing.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    api_base: Url,
    api_key: Option<StripeApiKey>,
    /// `Bearer <key>`, marked sensitive so that HTTP libraries do not log or cache it.
    authorization: Option<HeaderValue>,
    timeout: Duration,
    limiter: Arc<StripeRateLimiter>,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base.as_str())
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Returns whether an API key is configured. Without one every call fails permanently.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Validates `config` and builds the client. No request is sent.
    pub fn new(config: StripeConfig) -> Result<StripeClient, StripeClientError> {
        let api_base = config.api_base;
        let is_http = matches!(api_base.scheme(), "http" | "https");
        if !is_http || api_base.cannot_be_a_base() {
            return Err(StripeClientError::InvalidApiBase(api_base));
        }

        let authorization = match &config.api_key {
            Some(key) => Some(bearer_header(key)?),
            None => None,
        };

        let limiter = StripeRateLimiter::per_second(config.rate_per_second)
            .ok_or(StripeClientError::InvalidRate(config.rate_per_second))?;

        if config.timeout.is_zero() {
            return Err(StripeClientError::InvalidTimeout(config.timeout));
        }

        // Stripe never redirects API calls, and following a redirect could send the key elsewhere.
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("duespark-jobs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StripeClientError::HttpClient)?;

        Ok(StripeClient {
            http,
            api_base,
            api_key: config.api_key,
            authorization,
            timeout: config.timeout,
            limiter: Arc::new(limiter),
        })
    }

    /// Fetches a PaymentIntent (`GET /v1/payment_intents/{id}`).
    pub async fn get_payment_intent(&self, id: &str) -> Result<Value, JobError> {
        self.get_object(&["payment_intents"], id).await
    }

    /// Fetches an Invoice (`GET /v1/invoices/{id}`).
    pub async fn get_invoice(&self, id: &str) -> Result<Value, JobError> {
        self.get_object(&["invoices"], id).await
    }

    /// Fetches a Checkout Session (`GET /v1/checkout/sessions/{id}`).
    pub async fn get_checkout_session(&self, id: &str) -> Result<Value, JobError> {
        self.get_object(&["checkout", "sessions"], id).await
    }

    /// Fetches a Charge (`GET /v1/charges/{id}`).
    pub async fn get_charge(&self, id: &str) -> Result<Value, JobError> {
        self.get_object(&["charges"], id).await
    }

    /// Fetches one page of up to 100 events created at or after `created_gte` (Unix seconds),
    /// newest first (`GET /v1/events`). Returns Stripe's list object with the events in `data`.
    /// When `has_more` is true, request the next page by passing the id of the last event as
    /// `starting_after`.
    pub async fn list_events(
        &self,
        created_gte: i64,
        starting_after: Option<&str>,
    ) -> Result<Value, JobError> {
        if let Some(id) = starting_after {
            validate_id(id)?;
        }

        let mut url = self.endpoint(&["events"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("created[gte]", &created_gte.to_string());
            query.append_pair("limit", &EVENTS_PAGE_LIMIT.to_string());
            if let Some(id) = starting_after {
                query.append_pair("starting_after", id);
            }
        }

        self.get(url).await
    }

    async fn get_object(&self, collection: &[&str], id: &str) -> Result<Value, JobError> {
        validate_id(id)?;

        let mut url = self.endpoint(collection);
        url.path_segments_mut()
            .expect("StripeClient::new rejects a base URL without a path")
            .push(id);

        self.get(url).await
    }

    /// Returns `{api_base}/v1/{segments}`, keeping any path prefix of the base URL.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("StripeClient::new rejects a base URL without a path")
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        url
    }

    /// Sends one rate-limited GET request and classifies its response.
    async fn get(&self, url: Url) -> Result<Value, JobError> {
        let Some(authorization) = &self.authorization else {
            return Err(missing_key_error());
        };
        let target = describe_target(&url);

        self.limiter.until_ready().await;

        let sent = self
            .http
            .get(url)
            .header(AUTHORIZATION, authorization.clone())
            .header(STRIPE_VERSION, STRIPE_API_VERSION)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Err(self.add_context(self.transport_error(&error), &target)),
        };

        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Err(self.add_context(self.transport_error(&error), &target)),
        };
        tracing::debug!(
            stripe.request = %target,
            http.status = status.as_u16(),
            stripe.request_id = header_text(&headers, &REQUEST_ID),
            "Stripe API response"
        );

        classify_response(status, &headers, &body).map_err(|error| self.add_context(error, &target))
    }

    fn transport_error(&self, error: &reqwest::Error) -> JobError {
        classify_transport_error(error, self.timeout)
    }

    /// Prefixes the message with the request and removes the API key from it, in case a response
    /// body or proxy echoed the key back.
    fn add_context(&self, error: JobError, target: &str) -> JobError {
        let rewrite = |message: String| {
            let message = format!("Stripe API request {target} failed: {message}");
            // `new` rejects an empty key, so `replace` always has a pattern to look for.
            match &self.api_key {
                Some(key) => message.replace(key.expose(), "[redacted]"),
                None => message,
            }
        };
        match error {
            JobError::Retryable {
                message,
                retry_after,
            } => JobError::Retryable {
                message: rewrite(message),
                retry_after,
            },
            JobError::Permanent(message) => JobError::Permanent(rewrite(message)),
        }
    }
}

/// Classifies a response from the Stripe API: a 2xx response whose body is a JSON object is the
/// result, and anything else becomes a `JobError`.
///
/// | Response                                              | Result                         |
/// |-------------------------------------------------------|--------------------------------|
/// | 2xx with a JSON object                                | `Ok(object)`                   |
/// | 2xx with any other body                               | retryable                      |
/// | `Stripe-Should-Retry: false`, non-2xx                 | permanent, whatever the status |
/// | `Stripe-Should-Retry: true`, non-2xx                  | retryable, whatever the status |
/// | 409, 429 (also `lock_timeout`), 5xx                   | retryable                      |
/// | any other status (400, 401, 402, 403, 404, 424, 3xx)  | permanent                      |
///
/// A retryable error takes `retry_after` from a `Retry-After` header in whole seconds, and is
/// `None` without one so that the engine's backoff applies. The message names the HTTP status
/// and, when present, Stripe's `error.type`, `error.code`, `error.message` and the `Request-Id`
/// header.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, JobError> {
    if status.is_success() {
        return parse_object(status, headers, body);
    }

    let should_retry = stripe_should_retry(headers);
    let retryable = should_retry.unwrap_or_else(|| is_retryable_status(status));
    let message = describe_failure(status, headers, body, should_retry);

    if retryable {
        Err(JobError::Retryable {
            message,
            retry_after: retry_after(headers),
        })
    } else {
        Err(JobError::Permanent(message))
    }
}

/// Classifies a request that got no complete response: a timeout, a refused or reset connection,
/// or a body cut short are retryable, and a request that could not be built is permanent.
pub fn classify_transport_error(error: &reqwest::Error, timeout: Duration) -> JobError {
    let cause = error_chain(error);
    if error.is_timeout() {
        JobError::retryable(format!("timed out after {timeout:?}: {cause}"))
    } else if error.is_connect() {
        JobError::retryable(format!("failed to connect to Stripe: {cause}"))
    } else if error.is_builder() {
        JobError::permanent(format!("failed to build the request: {cause}"))
    } else {
        JobError::retryable(format!("no complete response from Stripe: {cause}"))
    }
}

/// Stripe returns 409 when a request with the same idempotency key is still running, 429 for rate
/// limits and for lock contention on one object (`error.code = lock_timeout`), and 5xx for its own
/// failures. Other statuses mean that repeating the same request gets the same response.
fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Reads `Stripe-Should-Retry`. Stripe's Python library (`stripe/_http_client.py`) obeys it before
/// it looks at the status code.
fn stripe_should_retry(headers: &HeaderMap) -> Option<bool> {
    let value = header_text(headers, &STRIPE_SHOULD_RETRY)?.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Reads `Retry-After` as a whole number of seconds, the form that Stripe's Python library reads.
// NOTE: the HTTP-date form of Retry-After is ignored, so such a response gets the engine's backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = header_text(headers, &RETRY_AFTER)?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn parse_object(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Value, JobError> {
    let problem = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => return Ok(value),
        Ok(_) => "a body that is JSON but not an object".to_owned(),
        Err(error) => format!("a body that is not JSON ({error})"),
    };

    let mut message = format!("Stripe returned HTTP {status} with {problem}");
    if let Some(request_id) = header_text(headers, &REQUEST_ID) {
        message.push_str(&format!(", request id {request_id}"));
    }
    message.push_str(&format!(": {}", body_excerpt(body)));
    Err(JobError::retryable(message))
}

/// Stripe's error envelope: `{"error": {"type": …, "code": …, "message": …}}`.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// Builds the message of a non-2xx response, for example `Stripe returned HTTP 429 Too Many
/// Requests (error type invalid_request_error, code lock_timeout, request id req_123): …`.
fn describe_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    should_retry: Option<bool>,
) -> String {
    let envelope = serde_json::from_slice::<ErrorEnvelope>(body).ok();

    let mut details = Vec::new();
    if let Some(error) = envelope.as_ref().map(|envelope| &envelope.error) {
        if let Some(kind) = &error.kind {
            details.push(format!("error type {kind}"));
        }
        if let Some(code) = &error.code {
            details.push(format!("code {code}"));
        }
    }
    if let Some(request_id) = header_text(headers, &REQUEST_ID) {
        details.push(format!("request id {request_id}"));
    }
    if let Some(should_retry) = should_retry {
        details.push(format!("Stripe-Should-Retry: {should_retry}"));
    }

    let mut message = format!("Stripe returned HTTP {status}");
    if !details.is_empty() {
        message.push_str(&format!(" ({})", details.join(", ")));
    }

    let stripe_message = envelope.and_then(|envelope| envelope.error.message);
    match stripe_message {
        Some(text) => message.push_str(&format!(": {text}")),
        None => message.push_str(&format!(
            ": the body is not a Stripe error object: {}",
            body_excerpt(body)
        )),
    }

    if let Some(hint) = status_hint(status) {
        message.push_str(". ");
        message.push_str(hint);
    }
    message
}

fn status_hint(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => {
            Some("Check that STRIPE_API_KEY is a valid secret or restricted key")
        }
        StatusCode::FORBIDDEN => {
            Some("Check that the key in STRIPE_API_KEY has read access to this resource")
        }
        StatusCode::NOT_FOUND => Some(
            "Check that the id belongs to this Stripe account and to the mode (live or test) of STRIPE_API_KEY",
        ),
        _ => None,
    }
}

/// Returns the start of `body` on one line, for messages about unexpected responses.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return "empty body".to_owned();
    }

    let line = words.join(" ");
    if line.chars().count() <= BODY_EXCERPT_CHARS {
        return format!("{line:?}");
    }
    let excerpt: String = line.chars().take(BODY_EXCERPT_CHARS).collect();
    format!("{excerpt:?}… ({} bytes in total)", body.len())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// Returns the error and its sources joined with `: `, because reqwest's own message leaves out
/// the cause, such as "Connection refused".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Returns `GET /v1/...?query`, the request as written in error messages and logs.
fn describe_target(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("GET {}?{query}", url.path()),
        None => format!("GET {}", url.path()),
    }
}

fn missing_key_error() -> JobError {
    JobError::permanent(
        "cannot call the Stripe API: no API key is configured. \
         Set STRIPE_API_KEY to a secret key or to a restricted key with read access",
    )
}

fn bearer_header(key: &StripeApiKey) -> Result<HeaderValue, StripeClientError> {
    if key.expose().trim().is_empty() {
        return Err(StripeClientError::InvalidApiKey);
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
        .map_err(|_| StripeClientError::InvalidApiKey)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Rejects an id that is empty or contains anything but ASCII letters, digits and `_`, so that an id
/// from a webhook or the database can never change the request path or query.
fn validate_id(id: &str) -> Result<(), JobError> {
    let is_valid = !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if is_valid {
        Ok(())
    } else {
        Err(JobError::permanent(format!(
            "invalid Stripe id {id:?}: expected only ASCII letters, digits and '_'"
        )))
    }
}

/// Paces Stripe requests evenly, one every `1 / rate` seconds, with a GCRA limiter from governor.
/// The burst is 1, so requests never bunch up at the start of a second.
#[derive(Debug)]
struct StripeRateLimiter {
    limiter: RateLimiter<NotKeyed, InMemoryState, DefaultClock>,
}

impl StripeRateLimiter {
    /// Returns `None` for a rate that is not a finite number above 0, or so large that one request
    /// would take less than a nanosecond.
    fn per_second(rate: f64) -> Option<StripeRateLimiter> {
        if !rate.is_finite() || rate <= 0.0 {
            return None;
        }
        let interval = Duration::try_from_secs_f64(1.0 / rate).ok()?;
        let quota = Quota::with_period(interval)?;
        Some(StripeRateLimiter {
            limiter: RateLimiter::direct(quota),
        })
    }

    /// Waits until a request is allowed and takes its permit.
    async fn until_ready(&self) {
        let started = std::time::Instant::now();
        self.limiter.until_ready().await;
        crate::metrics::job_metrics().waited_since("stripe", started);
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
