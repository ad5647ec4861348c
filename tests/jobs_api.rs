//! The generic job endpoints: enqueue one or a batch, look up, list with keyset pages, retry,
//! cancel, and pause or resume a queue.

mod common;

use std::time::Duration;

use common::{TestApp, TestOptions};
use duespark_api::Scope;
use serde_json::{Value, json};

async fn admin_post(app: &TestApp, path: &str) -> (u16, Value) {
    let token = app.token(&[Scope::DashboardAdmin, Scope::JobsRead]);
    let response = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn noop_job_runs_to_done() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let (status, body) = app
        .post(
            "/v1/jobs",
            json!({"queue": "maintenance", "kind": "noop", "payload": {}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for field in [
        "id",
        "queue",
        "kind",
        "status",
        "attempts",
        "max_attempts",
        "last_error",
        "created_at",
        "run_at",
        "finished_at",
    ] {
        assert!(body.get(field).is_some(), "missing field {field}: {body}");
    }
    let job = app
        .wait_for_job(body["id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(job["status"], "done");
    assert_eq!(job["attempts"], 1);
    assert!(job["finished_at"].is_string());
}

#[tokio::test]
async fn scheduled_job_reports_scheduled() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let run_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, body) = app
        .post("/v1/jobs", json!({"queue": "maintenance", "kind": "noop", "run_at": run_at, "priority": 5, "max_attempts": 2}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "scheduled");
    assert_eq!(body["max_attempts"], 2);
}

#[tokio::test]
async fn bad_job_requests_name_the_field() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let cases = [
        (json!({"queue": "maintenance", "kind": "nope"}), "kind"),
        (json!({"queue": "nowhere", "kind": "noop"}), "queue"),
        (
            json!({"queue": "maintenance", "kind": "reminder.send"}),
            "queue",
        ),
        (
            json!({"queue": "maintenance", "kind": "noop", "max_attempts": 0}),
            "max_attempts",
        ),
        (
            json!({"queue": "maintenance", "kind": "noop", "run_at": "tomorrow"}),
            "run_at",
        ),
        (json!({"kind": "noop"}), "queue"),
    ];
    for (body, field) in cases {
        let (status, response) = app.post("/v1/jobs", body.clone()).await;
        assert_eq!(status, 422, "{body}: {response}");
        assert_eq!(response["error"]["field"], field, "{body}: {response}");
    }

    let batch =
        json!([{"queue": "maintenance", "kind": "noop"}, {"queue": "maintenance", "kind": "bad"}]);
    let (status, response) = app.post("/v1/jobs/batch", batch).await;
    assert_eq!(status, 422);
    assert_eq!(response["error"]["field"], "[1].kind");
    let (status, _) = app.post("/v1/jobs/batch", json!([])).await;
    assert_eq!(status, 422);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing is enqueued from a bad request");
}

#[tokio::test]
async fn batch_then_list_in_pages() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let jobs: Vec<Value> = (0..7)
        .map(|index| json!({"queue": "maintenance", "kind": "noop", "payload": {"n": index}}))
        .collect();
    let (status, body) = app.post("/v1/jobs/batch", Value::Array(jobs)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 7);

    let mut seen = Vec::new();
    let mut path = "/v1/jobs?queue=maintenance&status=pending&limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 3);
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/jobs?queue=maintenance&status=pending&limit=3&before={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        7,
        "every job appears once across pages: {seen:?}"
    );
    let mut sorted: Vec<i64> = seen.iter().map(|id| id.parse().unwrap()).collect();
    let newest_first = sorted.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(newest_first, sorted, "pages are newest first");

    let (status, page) = app.get("/v1/jobs?status=done").await;
    assert_eq!(status, 200);
    assert_eq!(page["jobs"], json!([]));
    let (status, response) = app.get("/v1/jobs?status=finished").await;
    assert_eq!(status, 422);
    assert_eq!(response["error"]["field"], "status");
}

#[tokio::test]
async fn cancel_retry_pause_resume() {
    let app = TestApp::spawn(TestOptions::default()).await;

    // Actions need the admin scope.
    let (_, job) = app
        .post(
            "/v1/jobs",
            json!({"queue": "maintenance", "kind": "noop", "run_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, _) = app.post(&format!("/v1/jobs/{id}/cancel"), json!({})).await;
    assert_eq!(status, 403);

    let (status, body) = admin_post(&app, &format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let (status, body) = admin_post(&app, &format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(status, 409, "cancelling twice: {body}");

    let (status, body) = admin_post(&app, &format!("/v1/jobs/{id}/retry")).await;
    assert_eq!(status, 200, "{body}");
    let job = app.wait_for_job(&id, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "done", "a retried job runs now: {job}");

    let (status, _) = admin_post(&app, "/v1/queues/maintenance/pause").await;
    assert_eq!(status, 200);
    let (_, paused_job) = app
        .post("/v1/jobs", json!({"queue": "maintenance", "kind": "noop"}))
        .await;
    let paused_id = paused_job["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.job(&paused_id).await["status"],
        "pending",
        "a paused queue runs nothing"
    );

    let (status, _) = admin_post(&app, "/v1/queues/maintenance/resume").await;
    assert_eq!(status, 200);
    let job = app.wait_for_job(&paused_id, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "done");

    let (status, _) = admin_post(&app, "/v1/queues/nowhere/pause").await;
    assert_eq!(status, 404);
    let (status, _) = admin_post(&app, "/v1/jobs/999999/retry").await;
    assert_eq!(status, 404);

    // The API's admin actions go to the dashboard's audit log; refused ones do not.
    let audited: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT action, job_id FROM dashboard_audit_log ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let job_id: i64 = id.parse().unwrap();
    assert_eq!(
        audited,
        [
            ("cancel".to_string(), Some(job_id)),
            ("retry".to_string(), Some(job_id)),
            ("pause".to_string(), None),
            ("resume".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn unknown_routes_answer_json() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let response = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let response = app
        .http
        .delete(app.url("/v1/jobs"))
        .bearer_auth(app.write_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn expired_token_is_rejected_with_reason() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "app", "exp": chrono::Utc::now().timestamp() - 60, "scope": "jobs:read"}),
        &jsonwebtoken::EncodingKey::from_secret(common::SECRET_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    let response = app
        .http
        .get(app.url("/v1/jobs"))
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_query_values_answer_json() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    let (status, body) = app.get("/v1/jobs?limit=abc").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "limit");

    let (status, body) = app
        .post(
            "/v1/jobs",
            json!({"queue": "reminders", "kind": "reminder.send", "payload": {}}),
        )
        .await;
    assert_eq!(
        status, 422,
        "a payload that cannot run is refused at enqueue: {body}"
    );
    assert_eq!(body["error"]["field"], "payload");

    let (status, body) = app
        .post(
            "/v1/jobs",
            json!({"queue": "maintenance", "kind": "noop", "run_at": "2030-01-01"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RFC 3339"),
        "{body}"
    );

    let admin = app.token(&[Scope::DashboardAdmin]);
    let response = app
        .http
        .get(app.url("/v1/suppressions"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "email");
    let response = app
        .http
        .delete(app.url("/v1/suppressions/abc"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_object());
}
