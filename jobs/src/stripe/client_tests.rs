//! Tests of the Stripe client: the pure classification, and whole calls against a local HTTP
//! server in place of Stripe that records every request it receives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

/// A made-up key; the stand-in never checks it.
const TEST_KEY: &str = "sk_test_stand_in_key_4242";

// ---- The stand-in server ----

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
struct RecordedRequest {
    arrived_at: Instant,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
}

impl RecordedRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The response the stand-in sends to every request.
#[derive(Debug, Clone)]
struct CannedResponse {
    status: StatusCode,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    delay: Duration,
}

impl CannedResponse {
    fn json(status: StatusCode, body: Value) -> CannedResponse {
        CannedResponse {
            status,
            headers: vec![("content-type", "application/json")],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> CannedResponse {
        self.headers.push((name, value));
        self
    }
}

#[derive(Clone)]
struct StandInState {
    response: CannedResponse,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

/// An HTTP server on 127.0.0.1 that returns one canned response to every request. It stops when
/// dropped.
struct StripeStandIn {
    api_base: Url,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    server: JoinHandle<()>,
}

impl StripeStandIn {
    async fn start(response: CannedResponse) -> StripeStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = StandInState {
            response,
            requests: Arc::clone(&requests),
        };
        let app = axum::Router::new().fallback(respond).with_state(state);

        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });

        StripeStandIn {
            api_base: Url::parse(&format!("http://{address}")).unwrap(),
            requests,
            server,
        }
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn client(&self) -> StripeClient {
        self.client_with(|_| {})
    }

    fn client_with(&self, adjust: impl FnOnce(&mut StripeConfig)) -> StripeClient {
        let mut config = StripeConfig {
            api_base: self.api_base.clone(),
            api_key: Some(StripeApiKey::new(TEST_KEY)),
            rate_per_second: 1000.0,
            timeout: Duration::from_secs(5),
        };
        adjust(&mut config);
        StripeClient::new(config).unwrap()
    }
}

impl Drop for StripeStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn respond(State(state): State<StandInState>, request: Request) -> Response {
    let query = request
        .uri()
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    state.requests.lock().unwrap().push(RecordedRequest {
        arrived_at: Instant::now(),
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query,
        headers: request.headers().clone(),
    });

    let canned = state.response;
    tokio::time::sleep(canned.delay).await;

    let mut headers = HeaderMap::new();
    for (name, value) in canned.headers {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    (canned.status, headers, canned.body).into_response()
}

fn paid_payment_intent() -> Value {
    json!({
        "id": "pi_3PaidIntent",
        "object": "payment_intent",
        "amount": 12500,
        "amount_received": 12500,
        "currency": "eur",
        "status": "succeeded",
        "latest_charge": "ch_3PaidCharge",
        "metadata": {"invoice_id": "INV-EXAMPLE-42"}
    })
}

fn stripe_error(kind: &str, code: Option<&str>, message: &str) -> Value {
    json!({"error": {"type": kind, "code": code, "message": message}})
}

/// Returns the retry delay of a retryable error, and panics with the error otherwise.
fn expect_retryable(result: Result<Value, JobError>) -> (String, Option<Duration>) {
    match result {
        Err(JobError::Retryable {
            message,
            retry_after,
        }) => (message, retry_after),
        other => panic!("expected a retryable error, got {other:?}"),
    }
}

fn expect_permanent(result: Result<Value, JobError>) -> String {
    match result {
        Err(JobError::Permanent(message)) => message,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

// ---- Calls through the stand-in ----

#[tokio::test]
async fn payment_intent_returned_as_json() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, paid_payment_intent())).await;

    let intent = stand_in
        .client()
        .get_payment_intent("pi_3PaidIntent")
        .await
        .unwrap();

    assert_eq!(intent, paid_payment_intent());
    let requests = stand_in.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v1/payment_intents/pi_3PaidIntent");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(request.header("stripe-version"), Some(STRIPE_API_VERSION));
}

#[tokio::test]
async fn each_getter_requests_its_path() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, json!({"id": "x"}))).await;
    let client = stand_in.client();

    client.get_payment_intent("pi_1").await.unwrap();
    client.get_invoice("in_1").await.unwrap();
    client.get_checkout_session("cs_test_1").await.unwrap();
    client.get_charge("ch_1").await.unwrap();

    let paths: Vec<String> = stand_in.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/payment_intents/pi_1",
            "/v1/invoices/in_1",
            "/v1/checkout/sessions/cs_test_1",
            "/v1/charges/ch_1",
        ]
    );
}

#[tokio::test]
async fn api_base_path_prefix_is_kept() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, json!({"id": "in_1"}))).await;

    for prefix in ["stripe", "stripe/"] {
        let api_base = stand_in.api_base.join(prefix).unwrap();
        let client = stand_in.client_with(|config| config.api_base = api_base);
        client.get_invoice("in_1").await.unwrap();
    }

    for request in stand_in.requests() {
        assert_eq!(request.path, "/stripe/v1/invoices/in_1");
    }
}

#[tokio::test]
async fn list_events_sends_query_parameters() {
    let page = json!({"object": "list", "data": [], "has_more": false, "url": "/v1/events"});
    let stand_in = StripeStandIn::start(CannedResponse::json(StatusCode::OK, page.clone())).await;
    let client = stand_in.client();

    let first = client.list_events(1_767_225_600, None).await.unwrap();
    let next = client
        .list_events(1_767_225_600, Some("evt_1QxLastOfPage"))
        .await
        .unwrap();

    assert_eq!(first, page);
    assert_eq!(next, page);
    let requests = stand_in.requests();
    assert_eq!(requests.len(), 2);

    assert_eq!(requests[0].path, "/v1/events");
    assert_eq!(requests[0].query_value("created[gte]"), Some("1767225600"));
    assert_eq!(requests[0].query_value("limit"), Some("100"));
    assert_eq!(requests[0].query_value("starting_after"), None);

    assert_eq!(requests[1].path, "/v1/events");
    assert_eq!(requests[1].query_value("created[gte]"), Some("1767225600"));
    assert_eq!(requests[1].query_value("limit"), Some("100"));
    assert_eq!(
        requests[1].query_value("starting_after"),
        Some("evt_1QxLastOfPage")
    );
}

#[tokio::test]
async fn lock_timeout_429_is_retryable() {
    let body = stripe_error(
        "invalid_request_error",
        Some("lock_timeout"),
        "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.",
    );
    let response = CannedResponse::json(StatusCode::TOO_MANY_REQUESTS, body)
        .with_header("request-id", "req_LockTimeout1");
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_payment_intent("pi_locked").await;

    let (message, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, None);
    assert!(message.contains("429"), "{message}");
    assert!(message.contains("lock_timeout"), "{message}");
    assert!(message.contains("req_LockTimeout1"), "{message}");
    assert!(
        message.contains("GET /v1/payment_intents/pi_locked"),
        "{message}"
    );
}

#[tokio::test]
async fn unauthorized_is_permanent_without_key() {
    // The message echoes the key to prove that the client removes it from its own messages.
    let body = stripe_error(
        "invalid_request_error",
        None,
        "Invalid API Key provided: sk_test_stand_in_key_4242",
    );
    let response = CannedResponse::json(StatusCode::UNAUTHORIZED, body)
        .with_header("request-id", "req_BadKey401");
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_invoice("in_1").await;

    let message = expect_permanent(result);
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("invalid_request_error"), "{message}");
    assert!(message.contains("req_BadKey401"), "{message}");
    assert!(message.contains("STRIPE_API_KEY"), "{message}");
    assert!(!message.contains(TEST_KEY), "{message}");
}

#[tokio::test]
async fn should_retry_false_makes_500_permanent() {
    let body = stripe_error("api_error", None, "Something went wrong on Stripe's end.");
    let response = CannedResponse::json(StatusCode::INTERNAL_SERVER_ERROR, body)
        .with_header("stripe-should-retry", "false");
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_charge("ch_1").await;

    let message = expect_permanent(result);
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("Stripe-Should-Retry: false"), "{message}");
}

#[tokio::test]
async fn should_retry_true_makes_400_retryable() {
    let body = stripe_error("invalid_request_error", None, "Try again later.");
    let response = CannedResponse::json(StatusCode::BAD_REQUEST, body)
        .with_header("stripe-should-retry", "true");
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_checkout_session("cs_1").await;

    let (message, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, None);
    assert!(message.contains("400"), "{message}");
    assert!(message.contains("Stripe-Should-Retry: true"), "{message}");
}

#[tokio::test]
async fn retry_after_header_sets_delay() {
    let body = stripe_error("rate_limit_error", Some("rate_limit"), "Too many requests.");
    let response =
        CannedResponse::json(StatusCode::TOO_MANY_REQUESTS, body).with_header("retry-after", "2");
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_payment_intent("pi_1").await;

    let (_, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn closed_port_is_retryable() {
    // Binding and dropping a listener gives a local port that nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = StripeClient::new(StripeConfig {
        api_base: Url::parse(&format!("http://{address}")).unwrap(),
        api_key: Some(StripeApiKey::new(TEST_KEY)),
        ..StripeConfig::default()
    })
    .unwrap();

    let result = client.get_payment_intent("pi_1").await;

    let (message, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, None);
    assert!(message.contains("failed to connect"), "{message}");
    assert!(!message.contains(TEST_KEY), "{message}");
}

#[tokio::test]
async fn slow_response_times_out_as_retryable() {
    let mut response = CannedResponse::json(StatusCode::OK, paid_payment_intent());
    response.delay = Duration::from_secs(5);
    let stand_in = StripeStandIn::start(response).await;
    let client = stand_in.client_with(|config| config.timeout = Duration::from_millis(200));

    let result = client.get_payment_intent("pi_1").await;

    let (message, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, None);
    assert!(message.contains("timed out after 200ms"), "{message}");
}

#[tokio::test]
async fn non_json_success_is_retryable() {
    let response = CannedResponse {
        status: StatusCode::OK,
        headers: vec![("content-type", "text/html"), ("request-id", "req_Html")],
        body: "<html><body>Bad gateway</body></html>".to_owned(),
        delay: Duration::ZERO,
    };
    let stand_in = StripeStandIn::start(response).await;

    let result = stand_in.client().get_invoice("in_1").await;

    let (message, retry_after) = expect_retryable(result);
    assert_eq!(retry_after, None);
    assert!(message.contains("not JSON"), "{message}");
    assert!(message.contains("req_Html"), "{message}");
}

#[tokio::test]
async fn missing_key_is_permanent_without_request() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, paid_payment_intent())).await;
    let client = stand_in.client_with(|config| config.api_key = None);

    let results = [
        client.get_payment_intent("pi_1").await,
        client.get_invoice("in_1").await,
        client.get_checkout_session("cs_1").await,
        client.get_charge("ch_1").await,
        client.list_events(0, None).await,
    ];

    for result in results {
        let message = expect_permanent(result);
        assert!(message.contains("STRIPE_API_KEY"), "{message}");
    }
    assert!(stand_in.requests().is_empty());
}

#[tokio::test]
async fn invalid_id_is_rejected_without_request() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, paid_payment_intent())).await;
    let client = stand_in.client();

    for id in [
        "",
        "pi_1/../../v1/charges",
        "pi_1?expand[]=x",
        "pi 1",
        "pi_é",
    ] {
        let message = expect_permanent(client.get_payment_intent(id).await);
        assert!(message.contains("invalid Stripe id"), "{id:?}: {message}");
    }
    let message = expect_permanent(client.list_events(0, Some("evt_1&limit=1")).await);
    assert!(message.contains("invalid Stripe id"), "{message}");

    assert!(stand_in.requests().is_empty());
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let stand_in =
        StripeStandIn::start(CannedResponse::json(StatusCode::OK, paid_payment_intent())).await;
    let client = stand_in.client_with(|config| config.rate_per_second = 5.0);
    let clone = client.clone();

    // Alternating between the client and its clone shows that clones share one limiter.
    for call in 0..11 {
        let caller = if call % 2 == 0 { &client } else { &clone };
        caller.get_payment_intent("pi_1").await.unwrap();
    }

    let requests = stand_in.requests();
    assert_eq!(requests.len(), 11);
    let span = requests[10].arrived_at - requests[0].arrived_at;
    // At 5 requests per second with a burst of 1, 10 intervals of 200 ms separate the 11 requests.
    assert!(
        span >= Duration::from_millis(1_800),
        "11 requests arrived within {span:?}"
    );
}

// ---- Building the client ----

#[test]
fn new_rejects_invalid_config() {
    let cases: Vec<(&str, StripeConfig)> = vec![
        (
            "zero rate",
            StripeConfig {
                rate_per_second: 0.0,
                ..StripeConfig::default()
            },
        ),
        (
            "NaN rate",
            StripeConfig {
                rate_per_second: f64::NAN,
                ..StripeConfig::default()
            },
        ),
        (
            "zero timeout",
            StripeConfig {
                timeout: Duration::ZERO,
                ..StripeConfig::default()
            },
        ),
        (
            "mailto base",
            StripeConfig {
                api_base: Url::parse("mailto:billing@example.com").unwrap(),
                ..StripeConfig::default()
            },
        ),
        (
            "ftp base",
            StripeConfig {
                api_base: Url::parse("ftp://api.stripe.com").unwrap(),
                ..StripeConfig::default()
            },
        ),
        (
            "empty key",
            StripeConfig {
                api_key: Some(StripeApiKey::new("")),
                ..StripeConfig::default()
            },
        ),
        (
            "key with a line break",
            StripeConfig {
                api_key: Some(StripeApiKey::new("sk_test_1\r\nX-Injected: 1")),
                ..StripeConfig::default()
            },
        ),
    ];

    for (case, config) in cases {
        assert!(StripeClient::new(config).is_err(), "{case}");
    }
}

#[test]
fn default_config_builds_a_client() {
    let config = StripeConfig::default();

    assert_eq!(config.api_base.as_str(), "https://api.stripe.com/");
    assert_eq!(config.rate_per_second, 20.0);
    assert_eq!(config.timeout, Duration::from_secs(30));
    assert!(StripeClient::new(config).is_ok());
}

#[test]
fn debug_output_hides_key() {
    let config = StripeConfig {
        api_key: Some(StripeApiKey::new(TEST_KEY)),
        ..StripeConfig::default()
    };
    let client = StripeClient::new(config.clone()).unwrap();

    for text in [format!("{config:?}"), format!("{client:?}")] {
        assert!(!text.contains(TEST_KEY), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

#[test]
fn rate_limiter_rejects_invalid_rates() {
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e12] {
        assert!(StripeRateLimiter::per_second(rate).is_none(), "{rate}");
    }
    assert!(StripeRateLimiter::per_second(0.5).is_some());
}

// ---- Classification without a server ----

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
}

fn error_body(kind: &str, code: Option<&str>) -> Vec<u8> {
    stripe_error(kind, code, "Stripe's explanation.")
        .to_string()
        .into_bytes()
}

#[test]
fn classify_response_table() {
    struct Case {
        name: &'static str,
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        retryable: bool,
        retry_after: Option<Duration>,
    }
    let cases = [
        Case {
            name: "400 invalid request",
            status: 400,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "401 bad key",
            status: 401,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "402 request failed",
            status: 402,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "403 forbidden",
            status: 403,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "404 not found",
            status: 404,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "409 conflict",
            status: 409,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "424 external dependency",
            status: 424,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "429 rate limit",
            status: 429,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "429 with Retry-After",
            status: 429,
            headers: &[("retry-after", "7")],
            retryable: true,
            retry_after: Some(Duration::from_secs(7)),
        },
        Case {
            name: "Retry-After as an HTTP date",
            status: 503,
            headers: &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "Retry-After on a permanent error",
            status: 400,
            headers: &[("retry-after", "7")],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "500",
            status: 500,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "502",
            status: 502,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "503",
            status: 503,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "504",
            status: 504,
            headers: &[],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "302 redirect",
            status: 302,
            headers: &[],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "503 with Stripe-Should-Retry: false",
            status: 503,
            headers: &[("stripe-should-retry", "false")],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "429 with Stripe-Should-Retry: false",
            status: 429,
            headers: &[("stripe-should-retry", "false")],
            retryable: false,
            retry_after: None,
        },
        Case {
            name: "404 with Stripe-Should-Retry: true",
            status: 404,
            headers: &[("stripe-should-retry", "true")],
            retryable: true,
            retry_after: None,
        },
        Case {
            name: "402 with Stripe-Should-Retry: TRUE and Retry-After",
            status: 402,
            headers: &[("stripe-should-retry", "TRUE"), ("retry-after", "3")],
            retryable: true,
            retry_after: Some(Duration::from_secs(3)),
        },
        Case {
            name: "unknown Stripe-Should-Retry value",
            status: 400,
            headers: &[("stripe-should-retry", "maybe")],
            retryable: false,
            retry_after: None,
        },
    ];

    for case in cases {
        let status = StatusCode::from_u16(case.status).unwrap();
        let body = error_body("invalid_request_error", None);

        let error = classify_response(status, &headers(case.headers), &body).unwrap_err();

        assert_eq!(error.is_retryable(), case.retryable, "{}", case.name);
        if let JobError::Retryable { retry_after, .. } = error {
            assert_eq!(retry_after, case.retry_after, "{}", case.name);
        }
    }
}

#[test]
fn classify_message_lists_error_details() {
    let body = error_body("card_error", Some("card_declined"));
    let headers = headers(&[("request-id", "req_Declined402")]);

    let error = classify_response(StatusCode::PAYMENT_REQUIRED, &headers, &body).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("HTTP 402 Payment Required"), "{message}");
    assert!(message.contains("error type card_error"), "{message}");
    assert!(message.contains("code card_declined"), "{message}");
    assert!(message.contains("request id req_Declined402"), "{message}");
    assert!(message.contains("Stripe's explanation."), "{message}");
}

#[test]
fn classify_message_quotes_non_stripe_body() {
    let body = b"<html>\n  <body>502 Bad Gateway</body>\n</html>";

    let error = classify_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), body).unwrap_err();

    let message = error.to_string();
    assert!(error.is_retryable());
    assert!(message.contains("not a Stripe error object"), "{message}");
    assert!(
        message.contains("<body>502 Bad Gateway</body>"),
        "{message}"
    );
}

#[test]
fn classify_message_shortens_long_body() {
    let body = "x".repeat(5_000);

    let error =
        classify_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), body.as_bytes()).unwrap_err();

    let message = error.to_string();
    assert!(message.len() < 400, "{message}");
    assert!(message.contains("5000 bytes in total"), "{message}");
}

#[test]
fn classify_success_returns_object() {
    let body = paid_payment_intent().to_string();

    let value = classify_response(StatusCode::OK, &HeaderMap::new(), body.as_bytes()).unwrap();

    assert_eq!(value, paid_payment_intent());
}

#[test]
fn classify_success_without_object_is_retryable() {
    for body in [&b""[..], b"<html></html>", b"[1, 2]", b"\"text\""] {
        let error = classify_response(StatusCode::OK, &HeaderMap::new(), body).unwrap_err();

        assert!(error.is_retryable(), "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn validate_id_accepts_stripe_ids() {
    for id in [
        "pi_3PaidIntent",
        "cs_test_a1B2c3",
        "evt_1QxLastOfPage",
        "in_1",
    ] {
        assert!(validate_id(id).is_ok(), "{id}");
    }
}
