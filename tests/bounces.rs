//! Postmark bounces and complaints, the suppression list, and reminders that respect it.

mod common;

use std::time::Duration;

use common::{
    POSTMARK_PASSWORD, POSTMARK_SERVER_ID, POSTMARK_USER, TestApp, TestOptions,
    settle_email_events as settle, suppressions,
};
use duespark_api::Scope;
use serde_json::{Value, json};

fn record(id: i64, record_type: &str, bounce_type: &str, email: &str) -> Value {
    json!({
        "RecordType": record_type, "MessageStream": "outbound", "ID": id, "Type": bounce_type, "TypeCode": 1,
        "Name": bounce_type, "Tag": "reminder", "MessageID": format!("883953f4-6105-42a2-a16a-77a8eac7{id:04}"),
        "Metadata": {"invoice_id": "inv-x", "account_id": "acct-x"}, "ServerID": POSTMARK_SERVER_ID,
        "Description": "", "Details": "smtp; 550 5.1.1 user unknown", "Email": email, "From": "reminders@duespark.test",
        "BouncedAt": chrono::Utc::now().to_rfc3339(), "DumpAvailable": false,
        "Inactive": matches!(bounce_type, "HardBounce" | "SpamComplaint"), "CanActivate": bounce_type != "SpamComplaint",
        "Subject": "Invoice INV-1 is past due"
    })
}

async fn post_record(
    app: &TestApp,
    body: &Value,
    credentials: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = app.http.post(app.url("/webhooks/postmark")).json(body);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn deliver(app: &TestApp, body: &Value) -> Value {
    let (status, response) = post_record(app, body, Some((POSTMARK_USER, POSTMARK_PASSWORD))).await;
    assert_eq!(status, 200, "{response}");
    response
}

async fn delete_suppression(app: &TestApp, id: i64) -> (u16, Value) {
    let token = app.token(&[Scope::DashboardAdmin]);
    let response = app
        .http
        .delete(app.url(&format!("/v1/suppressions/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hard_bounce_suppresses_for_every_account() {
    let app = TestApp::spawn(TestOptions::default()).await;
    // Two accounts' clients share an address, spelled differently.
    let first = app
        .seed_invoice("hardone", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    let second = app
        .seed_invoice("hardtwo", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    for (client, email) in [
        ("hardone-client", "AP@Acme.Example"),
        ("hardtwo-client", "ap@acme.example"),
    ] {
        let account = client.replace("client", "acct");
        let (status, body) = app
            .put(
                &format!("/v1/clients/{client}"),
                json!({"account_id": account, "name": "Acme", "email": email}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // A reminder waiting for its send time when the bounce arrives is skipped.
    sqlx::query("INSERT INTO reminders (invoice_id, stage, send_at) VALUES ($1, 'final', now() + interval '1 day')")
        .bind(&second)
        .execute(&app.pool)
        .await
        .unwrap();

    deliver(&app, &record(1, "Bounce", "HardBounce", "ap@ACME.example")).await;
    settle(&app).await;

    let entries = suppressions(&app, "Ap@acme.EXAMPLE").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["reason"], "hard_bounce");
    assert_eq!(
        app.reminder_status(&second, "final").await,
        (
            "skipped".to_owned(),
            Some("the client's address is undeliverable".to_owned())
        )
    );

    // A new reminder to the other account's client is skipped at send time, not sent.
    let (status, body) = app
        .post(
            "/v1/reminders",
            json!({"invoice_id": first, "stage": "due"}),
        )
        .await;
    assert_eq!(status, 202);
    app.wait_for_job(body["job_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(app.reminder_status(&first, "due").await.0, "skipped");
    assert_eq!(
        std::fs::read_dir(app.outbox.path())
            .map(|dir| dir.count())
            .unwrap_or(0),
        0,
        "no email was written"
    );

    // Support lifts the hard bounce, and the next reminder goes out.
    let id = entries[0]["id"].as_i64().unwrap();
    let (status, body) = delete_suppression(&app, id).await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = app
        .post(
            "/v1/reminders",
            json!({"invoice_id": first, "stage": "overdue_3"}),
        )
        .await;
    let job = app
        .wait_for_job(body["job_id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(job["status"], "done");
    assert_eq!(app.reminder_status(&first, "overdue_3").await.0, "sent");
}

#[tokio::test]
async fn soft_bounces_suppress_on_the_third() {
    let app = TestApp::spawn(TestOptions::default()).await;
    for id in 1..=2 {
        deliver(
            &app,
            &record(id, "Bounce", "SoftBounce", "full@mailbox.example"),
        )
        .await;
    }
    settle(&app).await;
    assert!(
        suppressions(&app, "full@mailbox.example").await.is_empty(),
        "two soft bounces do not suppress"
    );

    deliver(
        &app,
        &record(3, "Bounce", "SoftBounce", "full@mailbox.example"),
    )
    .await;
    settle(&app).await;
    let entries = suppressions(&app, "full@mailbox.example").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["reason"], "soft_bounces");
    let expires: chrono::DateTime<chrono::Utc> =
        entries[0]["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - chrono::Utc::now()).num_days();
    assert!(
        (29..=30).contains(&days),
        "suppressed for 30 days, not {days}"
    );

    // Soft bounces older than the window do not count.
    sqlx::query("UPDATE soft_bounces SET occurred_at = now() - interval '8 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM suppressions")
        .execute(&app.pool)
        .await
        .unwrap();
    deliver(
        &app,
        &record(4, "Bounce", "SoftBounce", "full@mailbox.example"),
    )
    .await;
    settle(&app).await;
    assert!(suppressions(&app, "full@mailbox.example").await.is_empty());
}

#[tokio::test]
async fn informational_types_change_nothing() {
    let app = TestApp::spawn(TestOptions::default()).await;
    for (id, bounce_type) in [(1, "Transient"), (2, "AutoResponder"), (3, "DMARCPolicy")] {
        deliver(
            &app,
            &record(id, "Bounce", bounce_type, "info@acme.example"),
        )
        .await;
    }
    settle(&app).await;
    assert!(suppressions(&app, "info@acme.example").await.is_empty());
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM email_events WHERE status = 'processed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 3, "each is recorded");
}

#[tokio::test]
async fn complaint_suppresses_and_cannot_be_deleted() {
    let app = TestApp::spawn(TestOptions::default()).await;
    deliver(
        &app,
        &record(7, "SpamComplaint", "SpamComplaint", "angry@acme.example"),
    )
    .await;
    settle(&app).await;
    let entries = suppressions(&app, "angry@acme.example").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["reason"], "complaint");
    let (status, body) = delete_suppression(&app, entries[0]["id"].as_i64().unwrap()).await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("complaint"),
        "{body}"
    );
    assert_eq!(suppressions(&app, "angry@acme.example").await.len(), 1);
}

#[tokio::test]
async fn test_payload_auth_server_and_duplicates() {
    let app = TestApp::spawn(TestOptions::default()).await;

    let mut test_payload = record(42, "Bounce", "HardBounce", "john@example.com");
    test_payload["MessageID"] = json!("00000000-0000-0000-0000-000000000000");
    test_payload["ServerID"] = json!(1234);
    assert_eq!(deliver(&app, &test_payload).await["outcome"], "test");

    let body = record(9, "Bounce", "HardBounce", "dup@acme.example");
    assert_eq!(post_record(&app, &body, None).await.0, 401);
    assert_eq!(
        post_record(&app, &body, Some((POSTMARK_USER, "wrong")))
            .await
            .0,
        401
    );

    let mut foreign = body.clone();
    foreign["ServerID"] = json!(999);
    assert_eq!(
        post_record(&app, &foreign, Some((POSTMARK_USER, POSTMARK_PASSWORD)))
            .await
            .0,
        403
    );

    assert_eq!(deliver(&app, &body).await["outcome"], "stored");
    assert_eq!(deliver(&app, &body).await["outcome"], "duplicate");
    settle(&app).await;

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM email_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "only the real record is stored, once");
    assert!(
        suppressions(&app, "john@example.com").await.is_empty(),
        "the test payload changed nothing"
    );
    assert_eq!(suppressions(&app, "dup@acme.example").await.len(), 1);
}

#[tokio::test]
async fn address_cases_match_by_policy() {
    let app = TestApp::spawn(TestOptions {
        workers: true,
        ..Default::default()
    })
    .await;
    deliver(
        &app,
        &record(1, "Bounce", "HardBounce", "Pay+Invoices@Bücher.Example"),
    )
    .await;
    deliver(
        &app,
        &record(2, "Bounce", "HardBounce", "\"john doe\"@example.org"),
    )
    .await;
    settle(&app).await;

    assert_eq!(
        suppressions(&app, "pay+invoices@xn--bcher-kva.example")
            .await
            .len(),
        1,
        "IDN domain and case match"
    );
    assert!(
        suppressions(&app, "pay@bücher.example").await.is_empty(),
        "the plus-tag is part of the address"
    );
    assert_eq!(
        suppressions(&app, "\"John Doe\"@EXAMPLE.org").await.len(),
        1,
        "quoted local part matches case-insensitively"
    );
}

#[tokio::test]
async fn scheduler_skips_suppressed_clients() {
    let app = TestApp::spawn(TestOptions {
        workers: true,
        now: Some(chrono::Utc::now()),
        ..Default::default()
    })
    .await;
    let overdue = (chrono::Utc::now() - chrono::Duration::days(20))
        .date_naive()
        .to_string();
    app.seed_invoice("sched", 10_000, "usd", &overdue, "UTC")
        .await;
    deliver(
        &app,
        &record(1, "Bounce", "HardBounce", "ap+sched@acme.example"),
    )
    .await;
    settle(&app).await;

    let run = duespark_jobs::reminders::scheduler::run_scheduler(&app.ctx)
        .await
        .unwrap();
    assert_eq!(
        run.reminders_enqueued, 0,
        "no reminder is recorded for a suppressed address"
    );
}
