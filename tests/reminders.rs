//! Reminder delivery end to end: API request, worker, real SMTP server, recorded outcome.

mod common;

use std::time::Duration;

use common::smtp::SmtpOptions;
use common::{SmtpServer, TestApp, TestOptions, wait_until};
use serde_json::{Value, json};

const JOB_TIMEOUT: Duration = Duration::from_secs(30);

async fn request_reminder(
    app: &TestApp,
    invoice_id: &str,
    stage: &str,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/v1/reminders"))
        .bearer_auth(app.write_token())
        .json(&json!({ "invoice_id": invoice_id, "stage": stage }));
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn reminder_row(
    app: &TestApp,
    invoice_id: &str,
    stage: &str,
) -> (String, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT status, reason, message_id FROM reminders WHERE invoice_id = $1 AND stage = $2",
    )
    .bind(invoice_id)
    .bind(stage)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn reminder_is_delivered_once_per_currency() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..Default::default()
    })
    .await;

    let cases = [
        ("usd", 125_000, "$1,250.00"),
        ("eur", 9_990, "€99.90"),
        ("jpy", 5_000, "¥5,000"),
    ];
    for (index, (currency, amount, formatted)) in cases.into_iter().enumerate() {
        let prefix = format!("deliver{currency}");
        let invoice_id = app
            .seed_invoice(&prefix, amount, currency, "2026-03-05", "America/New_York")
            .await;

        let (status, body) = request_reminder(&app, &invoice_id, "due", None).await;
        assert_eq!(status, 202, "reminder request: {body}");
        let job_id = body["job_id"]
            .as_str()
            .expect("job_id in the response")
            .to_owned();
        assert!(body["status"].is_string());

        let job = app.wait_for_job(&job_id, JOB_TIMEOUT).await;
        assert_eq!(job["status"], "done", "job: {job}");
        assert_eq!(job["attempts"], 1);

        let messages = smtp.wait_for_messages(index + 1, JOB_TIMEOUT).await;
        assert_eq!(messages.len(), index + 1);
        let message = &messages[index];
        assert_eq!(message.rcpt_tos, vec![format!("ap+{prefix}@acme.example")]);
        let to = message.header("To").unwrap();
        assert!(
            to.contains(&format!("ap+{prefix}@acme.example")),
            "To: {to}"
        );
        let reply_to = message.header("Reply-To").unwrap();
        assert!(
            reply_to.contains(&format!("maya@{prefix}.example")),
            "Reply-To: {reply_to}"
        );
        let from = message.header("From").unwrap();
        assert!(from.contains("reminders@duespark.test"), "From: {from}");

        let text = message.all_text();
        assert!(
            text.contains(&format!("INV-{prefix}-1")),
            "invoice number missing:\n{text}"
        );
        assert!(
            text.contains(formatted),
            "amount {formatted} missing:\n{text}"
        );
        assert!(text.contains("March 5, 2026"), "due date missing:\n{text}");

        let (status, _, message_id) = reminder_row(&app, &invoice_id, "due").await;
        assert_eq!(status, "sent");
        let header_id = message.header("Message-ID").unwrap();
        assert_eq!(
            Some(header_id),
            message_id,
            "stored Message-ID differs from the header"
        );
    }
}

#[tokio::test]
async fn repeated_request_sends_nothing_more() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("repeat", 50_000, "gbp", "2026-04-10", "Europe/London")
        .await;

    let (status, first) = request_reminder(&app, &invoice_id, "overdue_7", Some("key-1")).await;
    assert_eq!(status, 202);
    let job_id = first["job_id"].as_str().unwrap().to_owned();
    app.wait_for_job(&job_id, JOB_TIMEOUT).await;

    let (status, replayed) = request_reminder(&app, &invoice_id, "overdue_7", Some("key-1")).await;
    assert_eq!(status, 202, "a replayed key returns the first response");
    assert_eq!(replayed, first);

    let (status, again) = request_reminder(&app, &invoice_id, "overdue_7", None).await;
    assert_eq!(status, 200);
    assert_eq!(again["job_id"], first["job_id"]);

    let (status, other_key) = request_reminder(&app, &invoice_id, "overdue_7", Some("key-2")).await;
    assert_eq!(status, 200);
    assert_eq!(other_key["job_id"], first["job_id"]);

    let (status, reused) = request_reminder(&app, &invoice_id, "final", Some("key-1")).await;
    assert_eq!(status, 422);
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");

    // Let any stray job run before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn concurrent_requests_create_one_reminder() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("race", 10_000, "usd", "2026-04-10", "UTC")
        .await;

    let requests = (0..8).map(|_| request_reminder(&app, &invoice_id, "due", None));
    let responses = futures::future::join_all(requests).await;
    let created = responses
        .iter()
        .filter(|(status, _)| *status == 202)
        .count();
    assert_eq!(created, 1, "responses: {responses:?}");
    let job_ids: std::collections::BTreeSet<String> = responses
        .iter()
        .map(|(_, body)| body["job_id"].to_string())
        .collect();
    assert_eq!(job_ids.len(), 1);

    let job_id = responses[0].1["job_id"].as_str().unwrap().to_owned();
    app.wait_for_job(&job_id, JOB_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn ineligible_invoices_are_skipped() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..Default::default()
    })
    .await;

    let paid = app
        .seed_invoice("paid", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    let void = app
        .seed_invoice("void", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    let paused = app
        .seed_invoice("paused", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    for (id, status) in [(&paid, "paid"), (&void, "void")] {
        let (code, body) = app.get(&format!("/v1/invoices/{id}")).await;
        assert_eq!(code, 200);
        let mut update = body.clone();
        for field in [
            "id",
            "amount_paid",
            "amount_refunded",
            "created_at",
            "updated_at",
            "reminders",
            "payment_events",
        ] {
            update.as_object_mut().unwrap().remove(field);
        }
        update["status"] = json!(status);
        let (code, body) = app.put(&format!("/v1/invoices/{id}"), update).await;
        assert_eq!(code, 200, "status update: {body}");
    }
    let account = json!({"name": "paused Studio", "sender_name": "Maya Lin", "reply_to": "maya@paused.example", "timezone": "UTC", "reminders_paused": true});
    assert_eq!(app.put("/v1/accounts/paused-acct", account).await.0, 200);

    let expected = [
        (&paid, "invoice is paid"),
        (&void, "invoice is void"),
        (&paused, "reminders are paused for the account"),
    ];
    for (invoice_id, reason) in expected {
        let (status, body) = request_reminder(&app, invoice_id, "due", None).await;
        assert_eq!(status, 202);
        let job = app
            .wait_for_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
            .await;
        assert_eq!(job["status"], "done", "a skip is a finished job: {job}");
        assert_eq!(job["attempts"], 1, "a skip is not retried");

        let (status, stored_reason, _) = reminder_row(&app, invoice_id, "due").await;
        assert_eq!(status, "skipped");
        assert_eq!(stored_reason.as_deref(), Some(reason));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().len(), 0);
}

/// Returns a port with nothing listening on it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn smtp_outage_is_retried_with_growing_waits() {
    let port = free_port();
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(port),
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("outage", 20_000, "eur", "2026-04-10", "Europe/Berlin")
        .await;

    let (status, body) = request_reminder(&app, &invoice_id, "due", None).await;
    assert_eq!(status, 202);
    let job_id = body["job_id"].as_str().unwrap().to_owned();

    // Let three attempts fail against the closed port, then start the server there.
    let failed = wait_until(Duration::from_secs(30), || async {
        let count: i32 = sqlx::query_scalar(
            "SELECT jsonb_array_length(errors) FROM duespark_queue.jobs WHERE id = $1::bigint",
        )
        .bind(&job_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (count >= 3).then_some(count)
    })
    .await;
    assert!(failed.is_some(), "three attempts did not fail in time");
    let smtp = SmtpServer::start(SmtpOptions {
        port,
        ..Default::default()
    });

    let job = app.wait_for_job(&job_id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "done", "job: {job}");
    assert!(job["attempts"].as_u64().unwrap() > 1);
    let messages = smtp.wait_for_messages(1, JOB_TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().len(), 1, "the email arrives once");
    assert_eq!(messages.len(), 1);

    // A refused connection fails at once, so each failed attempt's error time is its start time;
    // the last attempt's start is the job's `started_at`.
    let starts: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        r#"
        SELECT at FROM (
            SELECT (error ->> 'at')::timestamptz AS at FROM duespark_queue.jobs, jsonb_array_elements(errors) AS error
            WHERE id = $1::bigint
            UNION ALL
            SELECT started_at FROM duespark_queue.jobs WHERE id = $1::bigint
        ) AS attempts
        ORDER BY at
        "#,
    )
    .bind(&job_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(starts.len() >= 4, "attempts: {starts:?}");
    let waits: Vec<i64> = starts
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).num_milliseconds())
        .collect();
    for pair in waits.windows(2).take(2) {
        assert!(
            pair[1] > pair[0],
            "waits between attempts do not grow: {waits:?}"
        );
    }
    let (status, _, _) = reminder_row(&app, &invoice_id, "due").await;
    assert_eq!(status, "sent");
}

#[tokio::test]
async fn rejected_recipient_makes_the_job_dead() {
    let smtp = SmtpServer::start(SmtpOptions {
        reject_rcpt: Some("^ap\\+rejected@".to_owned()),
        ..Default::default()
    });
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..Default::default()
    })
    .await;
    let invoice_id = app
        .seed_invoice("rejected", 20_000, "usd", "2026-04-10", "UTC")
        .await;

    let (_, body) = request_reminder(&app, &invoice_id, "due", None).await;
    let job = app
        .wait_for_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
        .await;
    assert_eq!(job["status"], "dead", "job: {job}");
    assert_eq!(job["attempts"], 1);
    let last_error = job["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains("550"), "last_error: {last_error}");

    let (status, reason, _) = reminder_row(&app, &invoice_id, "due").await;
    assert_eq!(status, "failed");
    assert!(reason.unwrap_or_default().contains("550"));
    assert_eq!(smtp.messages().len(), 0);
}
