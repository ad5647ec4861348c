//! Payment sync against a real local HTTP server standing in for the Stripe API.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use common::{TestApp, TestOptions};
use serde_json::{Value, json};

/// A scripted reply of the stand-in.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Value,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body,
    }
}

/// The stand-in's state: scripted replies per path (the last one repeats) and every request seen.
#[derive(Clone, Default)]
struct StandIn {
    replies: Arc<Mutex<HashMap<String, VecDeque<Reply>>>>,
    requests: Arc<Mutex<Vec<(String, Instant, HeaderMap)>>>,
}

impl StandIn {
    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.replies
            .lock()
            .unwrap()
            .insert(path.to_owned(), replies.into());
    }

    fn requests_to(&self, path: &str) -> Vec<(Instant, HeaderMap)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(seen, _, _)| seen == path)
            .map(|(_, at, headers)| (*at, headers.clone()))
            .collect()
    }

    /// Records a request to `path` and returns its next scripted reply.
    fn answer(&self, path: String, headers: HeaderMap) -> Option<Reply> {
        self.requests
            .lock()
            .unwrap()
            .push((path.clone(), Instant::now(), headers));
        let mut replies = self.replies.lock().unwrap();
        let queue = replies.entry(path).or_default();
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    }

    async fn start(&self) -> String {
        async fn payment_intent(
            State(stand_in): State<StandIn>,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> impl IntoResponse {
            let missing = Reply {
                status: 404,
                headers: vec![],
                body: json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}}),
            };
            let reply = stand_in
                .answer(format!("/v1/payment_intents/{id}"), headers)
                .unwrap_or(missing);
            let mut response = (
                StatusCode::from_u16(reply.status).unwrap(),
                axum::Json(reply.body),
            )
                .into_response();
            for (name, value) in reply.headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        async fn events(State(stand_in): State<StandIn>, headers: HeaderMap) -> impl IntoResponse {
            let reply = stand_in.answer("/v1/events".to_owned(), headers);
            axum::Json(reply.map_or(
                json!({"object": "list", "has_more": false, "data": []}),
                |reply| reply.body,
            ))
        }
        let router = axum::Router::new()
            .route("/v1/payment_intents/{id}", get(payment_intent))
            .route("/v1/events", get(events))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{address}")
    }
}

fn intent(id: &str, status: &str, amount: i64, received: i64) -> Value {
    let mut intent = json!({"id": id, "object": "payment_intent", "status": status, "amount": amount, "amount_received": received, "currency": "usd"});
    if status == "requires_payment_method" {
        intent["last_payment_error"] = json!({"type": "card_error", "code": "card_declined"});
    }
    intent
}

async fn app_with(stand_in: &StandIn, rate: f64) -> TestApp {
    let base = stand_in.start().await;
    TestApp::spawn(TestOptions {
        stripe_api_base: Some(base),
        stripe_rate_per_second: rate,
        ..Default::default()
    })
    .await
}

/// Creates an invoice with a Stripe payment intent id; returns its id.
async fn invoice_with_intent(app: &TestApp, prefix: &str, intent_id: &str, amount: i64) -> String {
    let invoice_id = app
        .seed_invoice(prefix, amount, "usd", "2026-04-10", "UTC")
        .await;
    sqlx::query("UPDATE invoices SET stripe_payment_intent_id = $2 WHERE id = $1")
        .bind(&invoice_id)
        .bind(intent_id)
        .execute(&app.pool)
        .await
        .unwrap();
    invoice_id
}

async fn sync(app: &TestApp, invoice_id: &str) -> Value {
    let (status, body) = app
        .post("/v1/payment-syncs", json!({"invoice_id": invoice_id}))
        .await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_job(body["job_id"].as_str().unwrap(), Duration::from_secs(30))
        .await
}

async fn invoice_state(app: &TestApp, invoice_id: &str) -> (String, i64) {
    sqlx::query_as("SELECT status, amount_paid FROM invoices WHERE id = $1")
        .bind(invoice_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sync_applies_payment_intent_states() {
    let stand_in = StandIn::default();
    let app = app_with(&stand_in, 100.0).await;
    let cases = [
        ("paid", "succeeded", 10_000, "paid", 10_000),
        ("failed", "requires_payment_method", 0, "open", 0),
        ("canceled", "canceled", 0, "open", 0),
        ("partial", "succeeded", 4_000, "open", 4_000),
    ];
    for (prefix, status, received, expected_status, expected_paid) in cases {
        let intent_id = format!("pi_{prefix}");
        stand_in.script(
            &format!("/v1/payment_intents/{intent_id}"),
            vec![ok(intent(&intent_id, status, 10_000, received))],
        );
        let invoice_id = invoice_with_intent(&app, prefix, &intent_id, 10_000).await;

        let job = sync(&app, &invoice_id).await;
        assert_eq!(job["status"], "done", "{prefix}: {job}");
        assert_eq!(
            invoice_state(&app, &invoice_id).await,
            (expected_status.to_owned(), expected_paid),
            "{prefix}"
        );
    }

    let requests = stand_in.requests_to("/v1/payment_intents/pi_paid");
    let headers = &requests[0].1;
    assert_eq!(headers["authorization"], "Bearer sk_test_stand_in_key");
    assert!(
        headers.get("stripe-version").is_some(),
        "Stripe-Version is pinned"
    );
}

#[tokio::test]
async fn rate_limited_sync_is_retried() {
    let stand_in = StandIn::default();
    let app = app_with(&stand_in, 100.0).await;
    let limited = Reply {
        status: 429,
        headers: vec![],
        body: json!({"error": {"type": "invalid_request_error", "code": "lock_timeout"}}),
    };
    stand_in.script(
        "/v1/payment_intents/pi_busy",
        vec![limited, ok(intent("pi_busy", "succeeded", 7_000, 7_000))],
    );
    let invoice_id = invoice_with_intent(&app, "busy", "pi_busy", 7_000).await;

    let job = sync(&app, &invoice_id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 2);
    assert!(
        job["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{job}"
    );
    let requests = stand_in.requests_to("/v1/payment_intents/pi_busy");
    assert_eq!(requests.len(), 2);
    let gap = requests[1].0 - requests[0].0;
    assert!(
        gap >= Duration::from_millis(300),
        "the retry waited for the backoff: {gap:?}"
    );
    assert_eq!(invoice_state(&app, &invoice_id).await.0, "paid");
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let stand_in = StandIn::default();
    let app = app_with(&stand_in, 100.0).await;
    let unauthorized = Reply {
        status: 401,
        headers: vec![("request-id", "req_401")],
        body: json!({"error": {"type": "authentication_error", "message": "Invalid API Key provided"}}),
    };
    let no_retry = Reply {
        status: 500,
        headers: vec![("stripe-should-retry", "false")],
        body: json!({"error": {"type": "api_error"}}),
    };
    stand_in.script("/v1/payment_intents/pi_401", vec![unauthorized]);
    stand_in.script("/v1/payment_intents/pi_500", vec![no_retry]);

    for (prefix, intent_id, expected) in [
        ("unauth", "pi_401", "authentication_error"),
        ("noretry", "pi_500", "500"),
    ] {
        let invoice_id = invoice_with_intent(&app, prefix, intent_id, 1_000).await;
        let job = sync(&app, &invoice_id).await;
        assert_eq!(job["status"], "dead", "{prefix}: {job}");
        assert_eq!(job["attempts"], 1, "{prefix}");
        assert!(
            job["last_error"].as_str().unwrap().contains(expected),
            "{prefix}: {job}"
        );
        assert_eq!(
            stand_in
                .requests_to(&format!("/v1/payment_intents/{intent_id}"))
                .len(),
            1
        );
    }
    let unauth = sync(&app, "unauth-inv").await;
    assert!(
        unauth["last_error"].as_str().unwrap().contains("req_401"),
        "the Request-Id is kept: {unauth}"
    );
    assert!(
        !unauth["last_error"]
            .as_str()
            .unwrap()
            .contains("sk_test_stand_in_key")
    );
}

#[tokio::test]
async fn sync_calls_are_paced() {
    let stand_in = StandIn::default();
    let app = app_with(&stand_in, 5.0).await;
    let mut invoices = Vec::new();
    for index in 0..10 {
        let intent_id = format!("pi_pace{index}");
        stand_in.script(
            &format!("/v1/payment_intents/{intent_id}"),
            vec![ok(intent(&intent_id, "processing", 1_000, 0))],
        );
        invoices.push(invoice_with_intent(&app, &format!("pace{index}"), &intent_id, 1_000).await);
    }
    let mut jobs = Vec::new();
    for invoice_id in &invoices {
        let (status, body) = app
            .post("/v1/payment-syncs", json!({"invoice_id": invoice_id}))
            .await;
        assert_eq!(status, 202);
        jobs.push(body["job_id"].as_str().unwrap().to_owned());
    }
    for job in &jobs {
        assert_eq!(
            app.wait_for_job(job, Duration::from_secs(30)).await["status"],
            "done"
        );
    }

    let mut arrivals: Vec<Instant> = stand_in
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at, _)| *at)
        .collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 10);
    let span = *arrivals.last().unwrap() - arrivals[0];
    // Nine intervals at 5 requests per second take 1.8 s; allow for timer granularity.
    assert!(
        span >= Duration::from_millis(1_600),
        "10 calls at 5/s arrived within {span:?}"
    );
    assert_eq!(invoice_state(&app, &invoices[0]).await.0, "payment_pending");
}

#[tokio::test]
async fn sync_request_needs_stripe_ids() {
    let stand_in = StandIn::default();
    let app = app_with(&stand_in, 100.0).await;
    let invoice_id = app
        .seed_invoice("noids", 1_000, "usd", "2026-04-10", "UTC")
        .await;
    let (status, body) = app
        .post("/v1/payment-syncs", json!({"invoice_id": invoice_id}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "invoice_id");
    let (status, body) = app
        .post("/v1/payment-syncs", json!({"invoice_id": "missing"}))
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn sync_without_api_key_names_the_variable() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = invoice_with_intent(&app, "nokey", "pi_nokey", 1_000).await;
    let job = sync(&app, &invoice_id).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("STRIPE_API_KEY"),
        "{job}"
    );
}

#[tokio::test]
async fn reconciliation_feeds_missed_events() {
    let stand_in = StandIn::default();
    let base = stand_in.start().await;
    let app = TestApp::spawn(TestOptions {
        stripe_api_base: Some(base),
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("recon", 3_000, "usd", "2026-04-10", "UTC")
        .await;

    let event = |id: &str, object: Value| {
        json!({"id": id, "object": "event", "type": "payment_intent.succeeded", "created": chrono::Utc::now().timestamp() - 60,
               "livemode": false, "data": {"object": object}})
    };
    let paid = json!({"id": "pi_recon", "object": "payment_intent", "status": "succeeded", "amount_received": 3_000, "metadata": {"invoice_id": invoice_id}});
    let other = json!({"id": "pi_other", "object": "payment_intent", "status": "succeeded", "amount_received": 10, "metadata": {}});
    // Two pages, newest first, as Stripe lists them.
    stand_in.script("/v1/events", vec![
        ok(json!({"object": "list", "has_more": true, "data": [event("evt_recon_2", paid.clone())]})),
        ok(json!({"object": "list", "has_more": false, "data": [event("evt_recon_1", other)]})),
    ]);

    let store = duespark_queue::JobStore::new(app.pool.clone());
    let job = store
        .enqueue(duespark_queue::NewJob::new(
            "maintenance",
            "stripe.reconcile",
            json!({}),
        ))
        .await
        .unwrap();
    let job = app
        .wait_for_job(&job.id.to_string(), Duration::from_secs(30))
        .await;
    assert_eq!(job["status"], "done", "{job}");

    let requests = stand_in.requests_to("/v1/events");
    assert_eq!(requests.len(), 2, "both pages are read");
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM stripe_events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, vec!["evt_recon_1", "evt_recon_2"]);
    let paid_in_time = common::wait_until(Duration::from_secs(20), || async {
        (invoice_state(&app, &invoice_id).await.0 == "paid").then_some(())
    })
    .await;
    assert!(paid_in_time.is_some(), "the missed payment is applied");
}
