//! The HTTP API: upserts, validation errors naming the field, authentication and scopes.

mod common;

use common::{TestApp, TestOptions};
use duespark_api::Scope;
use serde_json::{Value, json};

async fn app() -> TestApp {
    TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await
}

fn account() -> Value {
    json!({"name": "Brightside", "sender_name": "Maya Lin", "reply_to": "maya@brightside.example", "timezone": "Europe/Berlin"})
}

fn invoice() -> Value {
    json!({
        "account_id": "acct-1", "client_id": "client-1", "number": "INV-1", "amount_due": 125000,
        "currency": "usd", "issued_on": "2026-03-01", "due_on": "2026-03-31", "pay_url": "https://pay.example.com/1"
    })
}

async fn seed_owner(app: &TestApp) {
    assert_eq!(app.put("/v1/accounts/acct-1", account()).await.0, 201);
    let client = json!({"account_id": "acct-1", "name": "Acme", "email": "ap@acme.example"});
    assert_eq!(app.put("/v1/clients/client-1", client).await.0, 201);
}

#[tokio::test]
async fn upserts_create_then_update() {
    let app = app().await;
    seed_owner(&app).await;

    let mut updated = account();
    updated["name"] = json!("Brightside Studio");
    let (status, body) = app.put("/v1/accounts/acct-1", updated).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Brightside Studio");

    let (status, body) = app.put("/v1/invoices/inv-1", invoice()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["status"], "open",
        "a new invoice without a status is open"
    );

    let mut paid = invoice();
    paid["status"] = json!("paid");
    assert_eq!(app.put("/v1/invoices/inv-1", paid).await.0, 200);
    let (status, body) = app.put("/v1/invoices/inv-1", invoice()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["status"], "paid",
        "an update without a status keeps it"
    );

    let (status, body) = app.get("/v1/invoices/inv-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["amount_due"], 125000);
    assert_eq!(body["due_on"], "2026-03-31");
    assert_eq!(body["reminders"], json!([]));

    let stored: (String, i64, String) =
        sqlx::query_as("SELECT client_id, amount_due, currency FROM invoices WHERE id = 'inv-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, ("client-1".to_owned(), 125000, "usd".to_owned()));
}

#[tokio::test]
async fn bad_invoice_input_names_the_field() {
    let app = app().await;
    seed_owner(&app).await;

    let cases: Vec<(&str, Value, &str)> = vec![
        ("currency", json!("xyz"), "currency"),
        ("amount_due", json!(-5), "amount_due"),
        ("amount_due", json!("100"), "amount_due"),
        ("issued_on", json!("2026-02-30"), "issued_on"),
        ("due_on", json!("2026-02-01"), "due_on"),
        ("account_id", json!("no-such-account"), "account_id"),
        ("client_id", json!("no-such-client"), "client_id"),
        ("account_id", json!("bad id!"), "account_id"),
        ("pay_url", json!("not a url"), "pay_url"),
        ("status", json!("settled"), "status"),
    ];
    for (field, value, expected_field) in cases {
        let mut body = invoice();
        body[field] = value.clone();
        let (status, response) = app.put("/v1/invoices/inv-1", body).await;
        assert_eq!(status, 422, "{field} = {value}: {response}");
        assert_eq!(
            response["error"]["field"], expected_field,
            "{field} = {value}: {response}"
        );
        assert!(
            response["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
    }

    let mut missing = invoice();
    missing.as_object_mut().unwrap().remove("number");
    let (status, response) = app.put("/v1/invoices/inv-1", missing).await;
    assert_eq!(status, 422);
    assert_eq!(response["error"]["field"], "number");

    let (status, response) = app.put("/v1/invoices/bad id", invoice()).await;
    assert_eq!(status, 422, "{response}");
    assert_eq!(response["error"]["field"], "id");

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "no invalid invoice is stored");
}

#[tokio::test]
async fn bad_account_and_client_input_names_the_field() {
    let app = app().await;
    seed_owner(&app).await;

    let mut bad_zone = account();
    bad_zone["timezone"] = json!("Mars/Olympus");
    let (status, body) = app.put("/v1/accounts/acct-2", bad_zone).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "timezone");

    let mut bad_reply_to = account();
    bad_reply_to["reply_to"] = json!("Maya <maya@example.com>");
    let (status, body) = app.put("/v1/accounts/acct-2", bad_reply_to).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "reply_to");

    let client = json!({"account_id": "acct-1", "name": "Acme", "email": "not-an-address"});
    let (status, body) = app.put("/v1/clients/client-2", client).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "email");

    let client = json!({"account_id": "missing", "name": "Acme", "email": "ap@acme.example"});
    let (status, body) = app.put("/v1/clients/client-2", client).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "account_id");

    let (status, body) = app
        .post(
            "/v1/reminders",
            json!({"invoice_id": "inv-1", "stage": "overdue_5"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "stage");
}

#[tokio::test]
async fn body_that_is_not_json_or_too_large() {
    let app = app().await;
    let response = app
        .http
        .put(app.url("/v1/accounts/acct-1"))
        .bearer_auth(app.write_token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");

    let huge = json!({"name": "x".repeat(400 * 1024), "sender_name": "a", "reply_to": "a@b.example", "timezone": "UTC"});
    let response = app
        .http
        .put(app.url("/v1/accounts/acct-1"))
        .bearer_auth(app.write_token())
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn tokens_and_scopes_are_enforced() {
    let app = app().await;

    let response = app
        .http
        .put(app.url("/v1/accounts/acct-1"))
        .json(&account())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let response = app
        .http
        .put(app.url("/v1/accounts/acct-1"))
        .bearer_auth("not.a.token")
        .json(&account())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let read_only = app.token(&[Scope::JobsRead]);
    let response = app
        .http
        .put(app.url("/v1/accounts/acct-1"))
        .bearer_auth(read_only)
        .json(&account())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let dashboard = app.token(&[Scope::DashboardRead]);
    let response = app
        .http
        .get(app.url("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        .bearer_auth(dashboard)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn health_routes() {
    let app = app().await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let (status, body) = app.get("/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(status, 404, "{body}");
}
