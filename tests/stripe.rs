//! Stripe webhooks end to end: real HMAC signatures on the raw body, intake, the processing job
//! and the invoice state machine.

mod common;

use std::time::Duration;

use common::{STRIPE_WEBHOOK_SECRETS, TestApp, TestOptions, wait_until};
use duespark_jobs::stripe::signature::sign;
use serde_json::{Value, json};

const SECRET: &str = STRIPE_WEBHOOK_SECRETS[0];

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Builds a Stripe event body, pretty-printed as Stripe sends it.
fn event_body(id: &str, event_type: &str, created: i64, object: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "id": id, "object": "event", "type": event_type, "created": created, "livemode": false,
        "api_version": "2025-03-31.basil", "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": object}
    }))
    .unwrap()
}

async fn post_raw(app: &TestApp, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn deliver(app: &TestApp, body: &str) -> (u16, Value) {
    post_raw(app, body, Some(sign(SECRET, now(), body.as_bytes()))).await
}

async fn stored_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits until the event has a final status and returns it with its reason.
async fn event_outcome(app: &TestApp, event_id: &str) -> (String, Option<String>) {
    wait_until(Duration::from_secs(20), || async {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, reason FROM stripe_events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        row.filter(|(status, _)| status != "received")
    })
    .await
    .unwrap_or_else(|| panic!("event {event_id} was not processed"))
}

async fn invoice(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/invoices/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn payment_intent(id: &str, invoice_id: &str, amount: i64, currency: &str) -> Value {
    json!({"id": id, "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": currency,
           "status": "succeeded", "metadata": {"invoice_id": invoice_id}, "latest_charge": format!("ch_{id}")})
}

#[tokio::test]
async fn bad_signatures_store_nothing() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let body = event_body(
        "evt_bad",
        "payment_intent.succeeded",
        now(),
        json!({"id": "pi_1"}),
    );
    let t = now();
    let good = sign(SECRET, t, body.as_bytes());
    let v1 = good.split("v1=").nth(1).unwrap().to_owned();

    let reserialised =
        serde_json::to_string(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let cases: Vec<(&str, String, Option<String>)> = vec![
        (
            "tampered body",
            body.replace("pi_1", "pi_2"),
            Some(good.clone()),
        ),
        ("re-serialised body", reserialised, Some(good.clone())),
        (
            "wrong secret",
            body.clone(),
            Some(sign("whsec_wrong", t, body.as_bytes())),
        ),
        (
            "expired timestamp",
            body.clone(),
            Some(sign(SECRET, t - 301, body.as_bytes())),
        ),
        (
            "future timestamp",
            body.clone(),
            Some(sign(SECRET, t + 301, body.as_bytes())),
        ),
        ("only v0", body.clone(), Some(format!("t={t},v0={v1}"))),
        ("missing header", body.clone(), None),
    ];
    for (case, body, signature) in cases {
        let (status, response) = post_raw(&app, &body, signature).await;
        assert_eq!(status, 400, "{case}: {response}");
        assert_eq!(
            response["error"]["code"], "invalid_signature",
            "{case}: {response}"
        );
    }
    assert_eq!(stored_events(&app).await, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "duespark_webhooks_total{provider=\"stripe\",outcome=\"invalid_signature\"} 7"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn rotation_accepts_either_secret() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let body = event_body(
        "evt_rotation",
        "customer.created",
        now(),
        json!({"id": "cus_1"}),
    );
    let t = now();
    let new = sign("whsec_not_configured_yet", t, body.as_bytes());
    let old = sign(STRIPE_WEBHOOK_SECRETS[1], t, body.as_bytes());
    let header = format!("{},{}", new, old.split(',').nth(1).unwrap());
    let (status, response) = post_raw(&app, &body, Some(header)).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(stored_events(&app).await, 1);
}

#[tokio::test]
async fn duplicates_have_one_effect() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("dup", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    let body = event_body(
        "evt_dup",
        "payment_intent.succeeded",
        now(),
        payment_intent("pi_dup", &invoice_id, 10_000, "usd"),
    );

    let (first, second) = tokio::join!(deliver(&app, &body), deliver(&app, &body));
    assert_eq!(first.0, 200);
    assert_eq!(second.0, 200);
    let (status, third) = deliver(&app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(third["outcome"], "duplicate");

    assert_eq!(event_outcome(&app, "evt_dup").await.0, "processed");
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs WHERE kind = 'stripe.event'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 1, "one processing job");
    let invoice = invoice(&app, &invoice_id).await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 10_000);
    assert_eq!(invoice["payment_events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn late_failure_does_not_downgrade_paid() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("order", 5_000, "jpy", "2026-04-10", "Asia/Tokyo")
        .await;
    let t = now();
    let succeeded = event_body(
        "evt_ok",
        "payment_intent.succeeded",
        t,
        payment_intent("pi_order", &invoice_id, 5_000, "jpy"),
    );
    let failed_object = json!({"id": "pi_order", "object": "payment_intent", "status": "requires_payment_method",
                               "metadata": {"invoice_id": invoice_id}, "last_payment_error": {"code": "card_declined"}});
    let failed = event_body(
        "evt_failed",
        "payment_intent.payment_failed",
        t - 60,
        failed_object,
    );

    assert_eq!(deliver(&app, &succeeded).await.0, 200);
    assert_eq!(event_outcome(&app, "evt_ok").await.0, "processed");
    assert_eq!(deliver(&app, &failed).await.0, 200);
    assert_eq!(event_outcome(&app, "evt_failed").await.0, "processed");

    let invoice = invoice(&app, &invoice_id).await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(
        invoice["amount_paid"], 5_000,
        "JPY amounts stay in whole yen"
    );
}

#[tokio::test]
async fn refunds_are_cumulative() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("refund", 10_000, "eur", "2026-04-10", "Europe/Berlin")
        .await;
    deliver(
        &app,
        &event_body(
            "evt_pay",
            "payment_intent.succeeded",
            now(),
            payment_intent("pi_r", &invoice_id, 10_000, "eur"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_pay").await.0, "processed");

    let charge = |refunded: i64| {
        json!({"id": "ch_pi_r", "object": "charge", "amount": 10_000, "amount_captured": 10_000,
                                        "amount_refunded": refunded, "refunded": refunded == 10_000, "payment_intent": "pi_r", "currency": "eur"})
    };
    deliver(
        &app,
        &event_body("evt_refund_1", "charge.refunded", now(), charge(3_000)),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_refund_1").await.0, "processed");
    let after_first = invoice(&app, &invoice_id).await;
    assert_eq!(after_first["amount_refunded"], 3_000);
    assert_eq!(after_first["status"], "paid", "a partial refund keeps paid");

    deliver(
        &app,
        &event_body("evt_refund_2", "charge.refunded", now(), charge(10_000)),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_refund_2").await.0, "processed");
    let after_second = invoice(&app, &invoice_id).await;
    assert_eq!(
        after_second["amount_refunded"], 10_000,
        "cumulative, not 13,000"
    );
    assert_eq!(after_second["status"], "refunded");
}

#[tokio::test]
async fn unknown_type_and_invoice_are_recorded() {
    let app = TestApp::spawn(TestOptions::default()).await;
    deliver(
        &app,
        &event_body(
            "evt_unknown_type",
            "customer.created",
            now(),
            json!({"id": "cus_1"}),
        ),
    )
    .await;
    let (status, reason) = event_outcome(&app, "evt_unknown_type").await;
    assert_eq!(status, "ignored");
    assert!(reason.unwrap().contains("customer.created"));

    let stranger = json!({"id": "pi_stranger", "object": "payment_intent", "amount_received": 100, "metadata": {}});
    deliver(
        &app,
        &event_body("evt_stranger", "payment_intent.succeeded", now(), stranger),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_stranger").await.0, "unmatched");

    let attempts: Vec<i32> = sqlx::query_scalar(
        "SELECT attempt FROM duespark_queue.jobs WHERE kind = 'stripe.event' AND status = 'done'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, vec![1, 1], "neither is retried");
}

#[tokio::test]
async fn livemode_mismatch_is_stored_as_ignored() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let body = event_body(
        "evt_live",
        "payment_intent.succeeded",
        now(),
        json!({"id": "pi_live"}),
    )
    .replace("\"livemode\": false", "\"livemode\": true");
    let (status, response) = deliver(&app, &body).await;
    assert_eq!(status, 200);
    assert_eq!(response["outcome"], "livemode_mismatch");
    let status: String =
        sqlx::query_scalar("SELECT status FROM stripe_events WHERE id = 'evt_live'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status, "livemode_mismatch");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("duespark_stripe_events{status=\"livemode_mismatch\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "duespark_webhooks_total{provider=\"stripe\",outcome=\"livemode_mismatch\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn large_events_accepted_up_to_the_limit() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let padding = "x".repeat(1024 * 1024);
    let big = event_body(
        "evt_big",
        "customer.created",
        now(),
        json!({"id": "cus_big", "description": padding}),
    );
    assert!(big.len() > 1024 * 1024);
    let (status, response) = deliver(&app, &big).await;
    assert_eq!(status, 200, "{response}");

    let huge = event_body(
        "evt_huge",
        "customer.created",
        now(),
        json!({"id": "cus_huge", "description": "x".repeat(3 * 1024 * 1024)}),
    );
    let (status, _) = deliver(&app, &huge).await;
    assert_eq!(status, 413);
    assert_eq!(stored_events(&app).await, 1);
}

#[tokio::test]
async fn paid_invoice_gets_no_reminder() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("paidrem", 25_000, "gbp", "2026-04-10", "Europe/London")
        .await;
    // A reminder waiting for a worker when the payment arrives is skipped.
    sqlx::query("INSERT INTO reminders (invoice_id, stage, send_at) VALUES ($1, 'overdue_3', now() + interval '1 day')")
        .bind(&invoice_id)
        .execute(&app.pool)
        .await
        .unwrap();

    deliver(
        &app,
        &event_body(
            "evt_paid",
            "payment_intent.succeeded",
            now(),
            payment_intent("pi_paid", &invoice_id, 25_000, "gbp"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_paid").await.0, "processed");
    let (status, reason): (String, Option<String>) = sqlx::query_as(
        "SELECT status, reason FROM reminders WHERE invoice_id = $1 AND stage = 'overdue_3'",
    )
    .bind(&invoice_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "skipped");
    assert_eq!(reason.as_deref(), Some("invoice is paid"));

    let (status, body) = app
        .post(
            "/v1/reminders",
            json!({"invoice_id": invoice_id, "stage": "overdue_7"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_job(body["job_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    let status: String = sqlx::query_scalar(
        "SELECT status FROM reminders WHERE invoice_id = $1 AND stage = 'overdue_7'",
    )
    .bind(&invoice_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "skipped", "the API's reminder is skipped too");

    let run = duespark_jobs::reminders::scheduler::run_scheduler(&app.ctx)
        .await
        .unwrap();
    assert_eq!(
        run.reminders_enqueued, 0,
        "the scheduler leaves a paid invoice alone"
    );
}

#[tokio::test]
async fn checkout_and_dispute_lifecycle() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("checkout", 1_500, "kwd", "2026-04-10", "Asia/Kuwait")
        .await;

    // A bank debit: the session completes unpaid, then the async payment succeeds. The session
    // finds the invoice through client_reference_id only.
    let session = |payment_status: &str| {
        json!({"id": "cs_1", "object": "checkout.session", "status": "complete", "payment_status": payment_status,
               "amount_total": 1_500, "currency": "kwd", "client_reference_id": invoice_id, "metadata": {}, "payment_intent": "pi_cs_1"})
    };
    deliver(
        &app,
        &event_body(
            "evt_cs_completed",
            "checkout.session.completed",
            now(),
            session("unpaid"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_cs_completed").await.0, "processed");
    assert_eq!(
        invoice(&app, &invoice_id).await["status"],
        "payment_pending"
    );

    deliver(
        &app,
        &event_body(
            "evt_cs_async",
            "checkout.session.async_payment_succeeded",
            now(),
            session("paid"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_cs_async").await.0, "processed");
    let paid = invoice(&app, &invoice_id).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_paid"], 1_500, "KWD stays in fils");

    // The charge event carries no metadata; it finds the invoice through the payment intent
    // learnt from the session.
    let charge = json!({"id": "ch_cs_1", "object": "charge", "amount": 1_500, "amount_refunded": 0, "payment_intent": "pi_cs_1"});
    deliver(
        &app,
        &event_body("evt_charge", "charge.succeeded", now(), charge),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_charge").await.0, "ignored");

    let dispute = |status: &str| json!({"id": "dp_1", "object": "dispute", "amount": 1_500, "charge": "ch_cs_1", "payment_intent": "pi_cs_1", "status": status});
    deliver(
        &app,
        &event_body(
            "evt_dispute",
            "charge.dispute.created",
            now(),
            dispute("needs_response"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_dispute").await.0, "processed");
    assert_eq!(invoice(&app, &invoice_id).await["status"], "disputed");

    deliver(
        &app,
        &event_body(
            "evt_dispute_lost",
            "charge.dispute.closed",
            now(),
            dispute("lost"),
        ),
    )
    .await;
    assert_eq!(event_outcome(&app, "evt_dispute_lost").await.0, "processed");
    let lost = invoice(&app, &invoice_id).await;
    assert_eq!(lost["status"], "refunded");
    let types: Vec<String> = lost["payment_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        vec![
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "charge.dispute.created",
            "charge.dispute.closed"
        ]
    );

    // The app cannot reopen what Stripe confirmed.
    let (status, body) = app.get(&format!("/v1/invoices/{invoice_id}")).await;
    assert_eq!(status, 200);
    let mut reopen = json!({});
    for field in [
        "account_id",
        "client_id",
        "number",
        "amount_due",
        "currency",
        "issued_on",
        "due_on",
        "pay_url",
    ] {
        reopen[field] = body[field].clone();
    }
    reopen["status"] = json!("open");
    let (status, response) = app.put(&format!("/v1/invoices/{invoice_id}"), reopen).await;
    assert_eq!(status, 409, "{response}");
}

#[tokio::test]
async fn concurrent_partial_payments_add_up() {
    let app = TestApp::spawn(TestOptions {
        concurrency: 8,
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("parts", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    let parts: Vec<String> = (0..5)
        .map(|index| {
            event_body(
                &format!("evt_part_{index}"),
                "payment_intent.succeeded",
                now(),
                payment_intent(&format!("pi_part_{index}"), &invoice_id, 2_000, "usd"),
            )
        })
        .collect();
    let deliveries = parts.iter().map(|body| deliver(&app, body));
    for (status, _) in futures::future::join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    for index in 0..5 {
        assert_eq!(
            event_outcome(&app, &format!("evt_part_{index}")).await.0,
            "processed"
        );
    }
    // Events of one invoice wait for each other instead of deadlocking and retrying.
    let failed_attempts: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(jsonb_array_length(errors)), 0) FROM duespark_queue.jobs WHERE kind = 'stripe.event'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(failed_attempts, 0);
    let paid = invoice(&app, &invoice_id).await;
    assert_eq!(
        paid["amount_paid"], 10_000,
        "five payments of 2,000: {paid}"
    );
    assert_eq!(paid["status"], "paid");
}

#[tokio::test]
async fn payment_in_another_currency_is_not_applied() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let invoice_id = app
        .seed_invoice("fx", 5_000, "jpy", "2026-04-10", "Asia/Tokyo")
        .await;
    deliver(
        &app,
        &event_body(
            "evt_fx",
            "payment_intent.succeeded",
            now(),
            payment_intent("pi_fx", &invoice_id, 5_000, "usd"),
        ),
    )
    .await;
    let (status, reason) = event_outcome(&app, "evt_fx").await;
    assert_eq!(status, "unmatched");
    assert!(reason.unwrap().contains("currency"));
    let invoice = invoice(&app, &invoice_id).await;
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["amount_paid"], 0);
}
