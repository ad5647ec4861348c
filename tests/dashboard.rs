//! The operations dashboard. Plain HTTP tests cover login and sessions, CSRF protection, the admin
//! scope, the audit log, masking and the job list. The acceptance run in headless Chromium logs in,
//! checks the overview's counts, retries a dead job until it completes, checks that forged and
//! read-only actions are rejected, and keeps a screenshot of the overview.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs
//! them); it starts chromedriver on a free 127.0.0.1 port and stops it when done.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{SECRET_KEY, TestApp, TestOptions, wait_until};
use duespark_api::{Scope, issue_token};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const SESSION_COOKIE: &str = "duespark_dashboard_session";
const LOGIN_COOKIE: &str = "duespark_dashboard_login";

// --- plain HTTP helpers ---------------------------------------------------------------------

/// Builds an HTTP client that returns redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn token_for(subject: &str, scopes: &[Scope]) -> String {
    issue_token(
        SECRET_KEY.as_bytes(),
        subject,
        scopes,
        Duration::from_secs(3600),
    )
    .unwrap()
}

/// Returns the value a `Set-Cookie` header of `response` gives cookie `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// Reads the value of the first hidden `csrf_token` field of a page.
fn csrf_field(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token field in the page: {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A logged-in dashboard session over plain HTTP.
struct DashboardSession {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

/// The outcome of a login attempt: the response status, its body, and the session when one
/// started.
struct LoginAttempt {
    status: StatusCode,
    body: String,
    session: Option<DashboardSession>,
}

/// Fills in and posts the login form with `token`.
async fn try_login(app: &TestApp, token: &str) -> LoginAttempt {
    let http = http();
    let form = http.get(app.url("/dashboard/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let login_cookie =
        set_cookie(&form, LOGIN_COOKIE).expect("the login page sets its CSRF cookie");
    let form_token = csrf_field(&form.text().await.unwrap());

    let response = http
        .post(app.url("/dashboard/login"))
        .header(
            COOKIE,
            format!("{LOGIN_COOKIE}={}", cookie_value(&login_cookie)),
        )
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf_token", &form_token), ("token", token)]))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let session_cookie = set_cookie(&response, SESSION_COOKIE);
    let body = response.text().await.unwrap();
    let Some(session_cookie) = session_cookie else {
        return LoginAttempt {
            status,
            body,
            session: None,
        };
    };

    let cookie = format!("{SESSION_COOKIE}={}", cookie_value(&session_cookie));
    let overview = http
        .get(app.url("/dashboard"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    let csrf = csrf_field(&overview.text().await.unwrap());
    LoginAttempt {
        status,
        body,
        session: Some(DashboardSession {
            http,
            base: app.url(""),
            cookie,
            csrf,
        }),
    }
}

async fn login(app: &TestApp, token: &str) -> DashboardSession {
    let attempt = try_login(app, token).await;
    assert_eq!(attempt.status, StatusCode::SEE_OTHER, "{}", attempt.body);
    attempt.session.expect("a session cookie is set")
}

impl DashboardSession {
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a form with the given fields; returns the status, the `Location` header and the body.
    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(fields))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    /// Posts an action form with this session's CSRF token.
    async fn act(&self, path: &str) -> (StatusCode, Option<String>, String) {
        let csrf = self.csrf.clone();
        self.post(path, &[("csrf_token", &csrf)]).await
    }
}

// --- seeding ----------------------------------------------------------------------------------

/// Inserts a job row directly in `status`; finished statuses get a finish time, and dead jobs an
/// error per attempt.
async fn insert_job(app: &TestApp, queue: &str, kind: &str, status: &str, payload: Value) -> i64 {
    let (attempt, errors, finished) = match status {
        "dead" => (
            3,
            json!([
                {"attempt": 1, "at": "2026-12-01T10:00:00Z", "worker": "worker-a", "message": "connection refused"},
                {"attempt": 2, "at": "2026-12-01T10:00:05Z", "worker": "worker-b", "message": "timed out"},
                {"attempt": 3, "at": "2026-12-01T10:00:30Z", "worker": "worker-a", "message": "boom: the last attempt failed"},
            ]),
            true,
        ),
        "done" | "cancelled" => (1, json!([]), true),
        _ => (0, json!([]), false),
    };
    let run_in_seconds: i32 = if status == "scheduled" { 3600 } else { 0 };

    sqlx::query_scalar(
        r#"
        INSERT INTO duespark_queue.jobs
            (queue, kind, payload, status, attempt, max_attempts, errors, run_at, started_at, finished_at)
        VALUES ($1, $2, $3, $4, $5, 3, $6, now() + make_interval(secs => $7),
                CASE WHEN $8 THEN now() END, CASE WHEN $8 THEN now() END)
        RETURNING id
        "#,
    )
    .bind(queue)
    .bind(kind)
    .bind(payload)
    .bind(status)
    .bind(attempt)
    .bind(errors)
    .bind(run_in_seconds)
    .bind(finished)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn job_status(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM duespark_queue.jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, Option<String>, Option<i64>)> {
    sqlx::query_as("SELECT actor, action, queue, job_id FROM dashboard_audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn quiet_app() -> TestOptions {
    TestOptions {
        workers: false,
        ..Default::default()
    }
}

// --- plain HTTP tests -------------------------------------------------------------------------

#[tokio::test]
async fn pages_redirect_to_login() {
    let app = TestApp::spawn(quiet_app()).await;
    for path in [
        "/dashboard",
        "/dashboard/jobs",
        "/dashboard/jobs/1",
        "/dashboard/audit",
    ] {
        let response = http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/dashboard/login", "{path}");
    }
    let response = http()
        .post(app.url("/dashboard/jobs/1/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_rejects_bad_tokens() {
    let app = TestApp::spawn(quiet_app()).await;

    let garbage = try_login(&app, "not-a-token").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert!(garbage.session.is_none());
    assert!(
        garbage.body.contains("The token is invalid"),
        "{}",
        garbage.body
    );

    let other_key = issue_token(
        b"another-secret-key-of-enough-length-42",
        "ops",
        &[Scope::DashboardAdmin],
        Duration::from_secs(60),
    )
    .unwrap();
    let forged = try_login(&app, &other_key).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert!(forged.session.is_none());

    let expired = issue_token(
        SECRET_KEY.as_bytes(),
        "ops",
        &[Scope::DashboardAdmin],
        Duration::ZERO,
    )
    .unwrap();
    // Past the 5 s leeway the API allows for clock differences.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let late = try_login(&app, &expired).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert!(late.body.contains("expired"), "{}", late.body);

    let jobs_only = try_login(
        &app,
        &token_for("app", &[Scope::JobsRead, Scope::JobsWrite]),
    )
    .await;
    assert_eq!(jobs_only.status, StatusCode::FORBIDDEN);
    assert!(jobs_only.session.is_none());
    assert!(
        jobs_only.body.contains("dashboard:read"),
        "{}",
        jobs_only.body
    );

    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn login_needs_form_csrf_token() {
    let app = TestApp::spawn(quiet_app()).await;
    let token = token_for("ops", &[Scope::DashboardAdmin]);

    // No login cookie, as when another site posts the form.
    let response = http()
        .post(app.url("/dashboard/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf_token", &"a".repeat(64)),
            ("token", &token),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn session_cookie_is_protected() {
    let app = TestApp::spawn(quiet_app()).await;
    let http = http();
    let form = http.get(app.url("/dashboard/login")).send().await.unwrap();
    let login_cookie = set_cookie(&form, LOGIN_COOKIE).unwrap();
    let form_token = csrf_field(&form.text().await.unwrap());
    let response = http
        .post(app.url("/dashboard/login"))
        .header(
            COOKIE,
            format!("{LOGIN_COOKIE}={}", cookie_value(&login_cookie)),
        )
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf_token", &form_token),
            ("token", &token_for("ops", &[Scope::DashboardRead])),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/dashboard");

    let cookie = set_cookie(&response, SESSION_COOKIE).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Secure"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let stored: String = sqlx::query_scalar("SELECT id_hash FROM dashboard_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(
        stored,
        cookie_value(&cookie),
        "the database stores only the id's hash"
    );
}

#[tokio::test]
async fn actions_without_csrf_token_are_forbidden() {
    let app = TestApp::spawn(quiet_app()).await;
    let dead = insert_job(&app, "maintenance", "noop", "dead", json!({})).await;
    let admin = login(&app, &token_for("ops", &[Scope::DashboardAdmin])).await;

    let paths = [
        format!("/dashboard/jobs/{dead}/retry"),
        format!("/dashboard/jobs/{dead}/cancel"),
        "/dashboard/queues/maintenance/retry-dead".to_owned(),
        "/dashboard/queues/maintenance/pause".to_owned(),
        "/dashboard/queues/maintenance/resume".to_owned(),
    ];
    for path in &paths {
        let (status, _, body) = admin.post(path, &[]).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{path} without a token: {body}"
        );
        assert!(body.contains("CSRF token"), "{path}: {body}");

        let wrong = "0".repeat(64);
        let (status, _, _) = admin.post(path, &[("csrf_token", &wrong)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with a wrong token");
    }

    assert_eq!(job_status(&app, dead).await, "dead");
    assert!(
        admin
            .get("/dashboard")
            .await
            .1
            .contains("data-queue=\"maintenance\"")
    );
    let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM duespark_queue.paused_queues")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(paused, 0);
    assert!(audit_actions(&app).await.is_empty());
}

#[tokio::test]
async fn read_only_session_cannot_act() {
    let app = TestApp::spawn(quiet_app()).await;
    let dead = insert_job(&app, "maintenance", "noop", "dead", json!({})).await;
    let reader = login(&app, &token_for("viewer", &[Scope::DashboardRead])).await;

    let (status, page) = reader.get(&format!("/dashboard/jobs/{dead}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("retry-form"), "a reader sees no retry form");

    for path in [
        format!("/dashboard/jobs/{dead}/retry"),
        format!("/dashboard/jobs/{dead}/cancel"),
        "/dashboard/queues/maintenance/retry-dead".to_owned(),
        "/dashboard/queues/maintenance/pause".to_owned(),
    ] {
        let (status, _, body) = reader.act(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.contains("dashboard:admin"), "{path}: {body}");
    }
    assert_eq!(job_status(&app, dead).await, "dead");
    assert!(audit_actions(&app).await.is_empty());
}

#[tokio::test]
async fn logout_invalidates_session() {
    let app = TestApp::spawn(quiet_app()).await;
    let admin = login(&app, &token_for("ops", &[Scope::DashboardAdmin])).await;

    let (status, _, _) = admin.post("/dashboard/logout", &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "logout needs the CSRF token too"
    );
    assert_eq!(admin.get("/dashboard").await.0, StatusCode::OK);

    let response = admin
        .http
        .post(app.url("/dashboard/logout"))
        .header(COOKIE, &admin.cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf_token", &admin.csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/dashboard/login");
    let cleared = set_cookie(&response, SESSION_COOKIE).expect("the cookie is deleted");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // The old cookie no longer opens a page or allows an action.
    let (status, _) = admin.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = admin.act("/dashboard/queues/maintenance/pause").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn actions_write_audit_entries() {
    let app = TestApp::spawn(quiet_app()).await;
    let dead = insert_job(&app, "maintenance", "noop", "dead", json!({})).await;
    let scheduled = insert_job(
        &app,
        "reminders",
        "reminder.send",
        "scheduled",
        json!({"reminder_id": 1}),
    )
    .await;
    let done = insert_job(
        &app,
        "reminders",
        "reminder.send",
        "done",
        json!({"reminder_id": 2}),
    )
    .await;
    let bulk: Vec<i64> = futures::future::join_all((0..3).map(|_| {
        insert_job(
            &app,
            "payments",
            "stripe.sync",
            "dead",
            json!({"invoice_id": "inv-9"}),
        )
    }))
    .await;
    let admin = login(&app, &token_for("ops-admin", &[Scope::DashboardAdmin])).await;

    let (status, location, body) = admin.act(&format!("/dashboard/jobs/{dead}/retry")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        location.unwrap(),
        format!("/dashboard/jobs/{dead}?notice=retried")
    );
    assert_eq!(job_status(&app, dead).await, "pending");

    let (status, _, _) = admin
        .act(&format!("/dashboard/jobs/{scheduled}/cancel"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(job_status(&app, scheduled).await, "cancelled");

    let (status, location, _) = admin.act("/dashboard/queues/payments/retry-dead").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.unwrap(),
        "/dashboard?notice=retried_dead&queue=payments&count=3"
    );
    for id in &bulk {
        assert_eq!(job_status(&app, *id).await, "pending");
    }

    assert_eq!(
        admin.act("/dashboard/queues/webhooks/pause").await.0,
        StatusCode::SEE_OTHER
    );
    let (_, page) = admin.get("/dashboard?notice=paused&queue=webhooks").await;
    assert!(page.contains("Queue webhooks is paused"), "{page}");
    assert_eq!(
        admin.act("/dashboard/queues/webhooks/resume").await.0,
        StatusCode::SEE_OTHER
    );

    // An action that does not apply is refused and not recorded.
    let (status, _, body) = admin.act(&format!("/dashboard/jobs/{done}/retry")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("cannot be retried"), "{body}");
    assert_eq!(
        admin.act("/dashboard/queues/nope/pause").await.0,
        StatusCode::NOT_FOUND
    );

    let entries = audit_actions(&app).await;
    let expected = vec![
        (
            "ops-admin".to_owned(),
            "retry".to_owned(),
            Some("maintenance".to_owned()),
            Some(dead),
        ),
        (
            "ops-admin".to_owned(),
            "cancel".to_owned(),
            Some("reminders".to_owned()),
            Some(scheduled),
        ),
        (
            "ops-admin".to_owned(),
            "retry_dead".to_owned(),
            Some("payments".to_owned()),
            None,
        ),
        (
            "ops-admin".to_owned(),
            "pause".to_owned(),
            Some("webhooks".to_owned()),
            None,
        ),
        (
            "ops-admin".to_owned(),
            "resume".to_owned(),
            Some("webhooks".to_owned()),
            None,
        ),
    ];
    assert_eq!(entries, expected);
    let detail: Value =
        sqlx::query_scalar("SELECT detail FROM dashboard_audit_log WHERE action = 'retry_dead'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(detail["retried"], 3);

    let (status, page) = admin.get("/dashboard/audit").await;
    assert_eq!(status, StatusCode::OK);
    for action in ["retry", "cancel", "retry_dead", "pause", "resume"] {
        assert!(
            page.contains(&format!("<td>{action}</td>")),
            "{action} missing from the audit page"
        );
    }
    let (_, job_page) = admin.get(&format!("/dashboard/jobs/{dead}")).await;
    assert!(
        job_page.contains("ops-admin"),
        "the job page lists its audit entries"
    );
}

#[tokio::test]
async fn job_page_masks_secrets() {
    let app = TestApp::spawn(quiet_app()).await;
    let payload = json!({
        "invoice_id": "inv-secret-1",
        "api_key": "plain-api-key-value",
        "smtp": {"user": "mailer", "Password": "hunter2-password"},
        "note": "sk_live_0123456789abcdefghij",
    });
    let id = insert_job(&app, "payments", "stripe.sync", "dead", payload).await;
    let reader = login(&app, &token_for("viewer", &[Scope::DashboardRead])).await;

    let (status, page) = reader.get(&format!("/dashboard/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for secret in [
        "plain-api-key-value",
        "hunter2-password",
        "sk_live_0123456789abcdefghij",
    ] {
        assert!(!page.contains(secret), "{secret} is shown");
    }
    assert!(page.contains("********"));
    assert!(page.contains("inv-secret-1"));
    assert!(page.contains("mailer"));
    for message in [
        "connection refused",
        "timed out",
        "boom: the last attempt failed",
    ] {
        assert!(page.contains(message), "attempt error {message:?} missing");
    }
    assert!(page.contains("worker-b"));
}

#[tokio::test]
async fn job_list_filters_searches_and_pages() {
    let app = TestApp::spawn(quiet_app()).await;
    let mut dead_reminders = Vec::new();
    for _ in 0..60 {
        dead_reminders.push(
            insert_job(
                &app,
                "reminders",
                "reminder.send",
                "dead",
                json!({"reminder_id": 1}),
            )
            .await,
        );
    }
    let done = insert_job(
        &app,
        "reminders",
        "reminder.send",
        "done",
        json!({"reminder_id": 2}),
    )
    .await;
    let sync = insert_job(
        &app,
        "payments",
        "stripe.sync",
        "pending",
        json!({"invoice_id": "inv-77"}),
    )
    .await;
    let reader = login(&app, &token_for("viewer", &[Scope::DashboardRead])).await;

    let (status, page) = reader
        .get("/dashboard/jobs?queue=reminders&state=dead")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("60 jobs match"), "{page}");
    assert_eq!(page.matches("data-job-id=").count(), 50);
    assert!(!page.contains(&format!("data-job-id=\"{done}\"")));
    let newest_first = format!("data-job-id=\"{}\"", dead_reminders[59]);
    assert!(page.contains(&newest_first));

    let older = format!(
        "/dashboard/jobs?queue=reminders&amp;state=dead&amp;before={}",
        dead_reminders[10]
    );
    assert!(page.contains(&older), "the page links to the older page");
    let (_, second) = reader
        .get(&format!(
            "/dashboard/jobs?queue=reminders&state=dead&before={}",
            dead_reminders[10]
        ))
        .await;
    assert_eq!(second.matches("data-job-id=").count(), 10);

    let (_, by_kind) = reader.get("/dashboard/jobs?kind=stripe.sync").await;
    assert!(by_kind.contains("1 jobs match"), "{by_kind}");

    let (_, by_invoice) = reader.get("/dashboard/jobs?q=inv-77").await;
    assert!(
        by_invoice.contains(&format!("data-job-id=\"{sync}\"")),
        "{by_invoice}"
    );
    assert_eq!(by_invoice.matches("data-job-id=").count(), 1);

    let (_, by_id) = reader.get(&format!("/dashboard/jobs?q={done}")).await;
    assert!(by_id.contains(&format!("data-job-id=\"{done}\"")));

    let (status, _) = reader.get("/dashboard/jobs?state=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = reader.get("/dashboard/jobs/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn overview_caps_large_counts() {
    let app = TestApp::spawn(quiet_app()).await;
    sqlx::query(
        r#"
        INSERT INTO duespark_queue.jobs (queue, kind, payload, status, attempt, max_attempts, run_at, finished_at)
        SELECT 'webhooks', 'stripe.event', '{}', 'done', 1, 3, now(), now() - (g % 50) * interval '1 minute'
        FROM generate_series(1, 10050) AS g
        "#,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    for _ in 0..2 {
        insert_job(
            &app,
            "bounces",
            "bounce.process",
            "pending",
            json!({"email_event_id": 1}),
        )
        .await;
    }
    insert_job(
        &app,
        "bounces",
        "bounce.process",
        "scheduled",
        json!({"email_event_id": 2}),
    )
    .await;
    let reader = login(&app, &token_for("viewer", &[Scope::DashboardRead])).await;

    let (status, page) = reader.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(">10,000+</a>"), "the done count is capped");
    assert!(
        page.contains("10050 done, 0 dead"),
        "the chart counts every finished job of the hour"
    );
    assert!(
        page.contains(r#"queue=bounces&amp;state=pending">2<"#),
        "{page}"
    );
    assert!(
        page.contains(r#"queue=bounces&amp;state=scheduled">1<"#),
        "{page}"
    );
    let (_, list) = reader.get("/dashboard/jobs?queue=webhooks").await;
    assert!(list.contains("10,000+ jobs match"));
}

// --- headless Chromium ------------------------------------------------------------------------

/// A chromedriver process on a free 127.0.0.1 port, killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: install Debian's chromium and chromium-driver packages (.ci/run does)");
        let driver = ChromeDriver { child, port };

        let status_url = format!("http://127.0.0.1:{port}/status");
        let ready = wait_until(Duration::from_secs(20), || async {
            let response = reqwest::get(&status_url).await.ok()?;
            let body: Value = response.json().await.ok()?;
            body["value"]["ready"].as_bool().filter(|ready| *ready)
        })
        .await;
        assert!(
            ready.is_some(),
            "chromedriver did not become ready on port {port}"
        );
        driver
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": "/usr/bin/chromium",
                // --no-sandbox: Chromium's sandbox cannot start as root, as in CI.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1700"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session starts")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no element {css}: {error}"))
        .text()
        .await
        .unwrap()
}

async fn browser_login(browser: &Client, app: &TestApp, token: &str) {
    browser.goto(&app.url("/dashboard/login")).await.unwrap();
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#login-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("queues"))
        .await
        .expect("the overview opens after login");
}

/// Submits a form built by script, as a page on another tab or a tampered one would: to
/// `action`, with a CSRF field only when `csrf_token` is given.
async fn forge_post(browser: &Client, action: &str, csrf_token: Option<&str>) {
    let script = r#"
        const [action, token] = arguments;
        const form = document.createElement("form");
        form.method = "post";
        form.action = action;
        if (token !== null) {
            const field = document.createElement("input");
            field.type = "hidden";
            field.name = "csrf_token";
            field.value = token;
            form.appendChild(field);
        }
        document.body.appendChild(form);
        form.submit();
    "#;
    browser
        .execute(script, vec![json!(action), json!(csrf_token)])
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("error-message"))
        .await
        .expect("the forged post lands on an error page");
}

#[tokio::test]
async fn browser_acceptance() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let to_retry = insert_job(&app, "maintenance", "noop", "dead", json!({})).await;
    let forged_target = insert_job(&app, "maintenance", "noop", "dead", json!({})).await;
    for _ in 0..4 {
        insert_job(
            &app,
            "payments",
            "stripe.sync",
            "cancelled",
            json!({"invoice_id": "inv-1"}),
        )
        .await;
    }
    for _ in 0..5 {
        insert_job(
            &app,
            "reminders",
            "reminder.send",
            "scheduled",
            json!({"reminder_id": 1}),
        )
        .await;
    }
    for _ in 0..7 {
        insert_job(
            &app,
            "webhooks",
            "stripe.event",
            "done",
            json!({"event_id": "evt_1"}),
        )
        .await;
    }

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    let admin_token = token_for("ops-admin", &[Scope::DashboardAdmin]);
    browser_login(&browser, &app, &admin_token).await;

    // The overview shows the seeded counts.
    let cell =
        |queue: &str, status: &str| format!("tr[data-queue={queue}] td[data-status={status}]");
    assert_eq!(text_of(&browser, &cell("maintenance", "dead")).await, "2");
    assert_eq!(text_of(&browser, &cell("payments", "cancelled")).await, "4");
    assert_eq!(
        text_of(&browser, &cell("reminders", "scheduled")).await,
        "5"
    );
    assert_eq!(text_of(&browser, &cell("webhooks", "done")).await, "7");
    assert_eq!(text_of(&browser, &cell("webhooks", "dead")).await, "0");
    assert!(text_of(&browser, "#subject").await.contains("ops-admin"));

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("var/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = browser.screenshot().await.unwrap();
    assert!(
        screenshot.starts_with(b"\x89PNG"),
        "the screenshot is a PNG"
    );
    std::fs::write(artifacts.join("dashboard-overview.png"), screenshot).unwrap();

    // A dead job is retried and then completes.
    browser
        .goto(&app.url(&format!("/dashboard/jobs/{to_retry}")))
        .await
        .unwrap();
    assert_eq!(text_of(&browser, "#job-status").await, "dead");
    browser
        .find(Locator::Css("#retry-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css(".notice"))
        .await
        .expect("the job page shows the retry notice");
    let completed = wait_until(Duration::from_secs(30), || async {
        browser.refresh().await.ok()?;
        let status = text_of(&browser, "#job-status").await;
        (status == "done").then_some(status)
    })
    .await;
    assert!(completed.is_some(), "the retried job did not complete");
    assert!(text_of(&browser, "#job-audit").await.contains("ops-admin"));

    // An action posted without the CSRF token is refused.
    forge_post(
        &browser,
        &format!("/dashboard/jobs/{forged_target}/retry"),
        None,
    )
    .await;
    assert!(text_of(&browser, "h1").await.starts_with("403"));
    assert!(
        text_of(&browser, "#error-message")
            .await
            .contains("CSRF token")
    );
    assert_eq!(job_status(&app, forged_target).await, "dead");

    // A read-only user sees no action and is refused one even with a valid CSRF token.
    browser.goto(&app.url("/dashboard")).await.unwrap();
    browser
        .find(Locator::Css("#logout-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("login-form"))
        .await
        .expect("logout returns to the login page");
    browser_login(
        &browser,
        &app,
        &token_for("viewer", &[Scope::DashboardRead]),
    )
    .await;
    browser
        .goto(&app.url(&format!("/dashboard/jobs/{forged_target}")))
        .await
        .unwrap();
    assert!(browser.find(Locator::Id("retry-form")).await.is_err());
    let csrf_token = browser
        .find(Locator::Css("#logout-form input[name=csrf_token]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .expect("the logout form carries the CSRF token");
    forge_post(
        &browser,
        &format!("/dashboard/jobs/{forged_target}/retry"),
        Some(&csrf_token),
    )
    .await;
    assert!(text_of(&browser, "h1").await.starts_with("403"));
    assert!(
        text_of(&browser, "#error-message")
            .await
            .contains("dashboard:admin")
    );
    assert_eq!(job_status(&app, forged_target).await, "dead");

    browser.close().await.unwrap();
    app.stop().await;
}
