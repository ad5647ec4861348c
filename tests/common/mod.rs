//! Shared harness of the integration tests: a fresh PostgreSQL database per test, a real SMTP server
//! process, the API on port 0 and the workers, with helpers per endpoint.
//!
//! Needs `DATABASE_URL` (a role that may create databases), `DUESPARK_TEST_PYTHON` and
//! `DUESPARK_TEST_SMTP_SERVER`; `scripts/test.sh` sets all three.

#![allow(dead_code)]

pub mod process;
pub mod proxy;
pub mod s3;
pub mod smtp;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use duespark::config::Config;
use duespark_api::{AppState, Scope, issue_token};
use duespark_jobs::JobContext;
use duespark_jobs::reminders::schedule::{Clock, FixedClock};
use duespark_worker::{Runtime, WorkerConfig, run_workers};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

#[allow(unused_imports)]
pub use smtp::SmtpServer;

pub const SECRET_KEY: &str = "test-secret-key-that-is-long-enough-0123";
/// The SNS topic whose SES notifications the test app accepts.
pub const SES_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:duespark-ses";
/// Postmark webhook credentials and server of the test app.
pub const POSTMARK_USER: &str = "postmark-hook";
pub const POSTMARK_PASSWORD: &str = "hook-password-for-tests";
pub const POSTMARK_SERVER_ID: i64 = 4242;
/// Stripe webhook secrets of the test app: two, as during a secret roll.
pub const STRIPE_WEBHOOK_SECRETS: [&str; 2] = ["whsec_test_current", "whsec_test_previous"];

/// Creates a database with a random name and applies all migrations.
pub async fn fresh_database() -> (PgPool, String) {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a PostgreSQL server (run scripts/test.sh)");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .expect("failed to connect to DATABASE_URL");
    // The creation time in the name lets scripts/test.sh drop databases that earlier runs left.
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!(
        "duespark_test_{created}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("failed to create the test database");
    admin.close().await;

    let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .expect("failed to connect to the test database");
    duespark::app::migrate(&pool)
        .await
        .expect("migrations apply");
    (pool, url)
}

/// Options of a test app.
pub struct TestOptions {
    /// The SMTP server's port; `None` writes emails to an outbox folder.
    pub smtp_port: Option<u16>,
    /// Start workers that process the queues.
    pub workers: bool,
    /// Fixed time for the scheduler and rendering; `None` uses the system clock.
    pub now: Option<DateTime<Utc>>,
    pub templates_dir: Option<PathBuf>,
    pub concurrency: usize,
    /// Base URL of a Stripe stand-in; sets a test API key and `STRIPE_RATE_PER_SECOND` too.
    pub stripe_api_base: Option<String>,
    pub stripe_rate_per_second: f64,
    /// S3-compatible storage for backups, such as a bucket of [`s3::S3Server`].
    pub backup_s3: Option<duespark_jobs::backups::S3Location>,
    /// `METRICS_TOKEN` of the API.
    pub metrics_token: Option<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            smtp_port: None,
            workers: true,
            now: None,
            templates_dir: None,
            concurrency: 4,
            stripe_api_base: None,
            stripe_rate_per_second: 100.0,
            backup_s3: None,
            metrics_token: None,
        }
    }
}

/// A running app: API on a random port, optional workers, its own database.
pub struct TestApp {
    pub address: SocketAddr,
    pub pool: PgPool,
    pub ctx: Arc<JobContext>,
    pub clock: Option<Arc<FixedClock>>,
    pub http: reqwest::Client,
    pub outbox: tempfile::TempDir,
    shutdown: CancellationToken,
    workers: Option<tokio::task::JoinHandle<()>>,
}

pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn test_config(
    smtp_port: Option<u16>,
    outbox: &std::path::Path,
    templates_dir: Option<PathBuf>,
) -> Config {
    let mut vars = BTreeMap::new();
    vars.insert("SECRET_KEY", SECRET_KEY.to_owned());
    vars.insert("MAIL_FROM", "DueSpark <reminders@duespark.test>".to_owned());
    vars.insert("MAIL_RATE_PER_SECOND", "500".to_owned());
    vars.insert("OUTBOX_DIR", outbox.display().to_string());
    vars.insert(
        "TEMPLATES_DIR",
        templates_dir
            .unwrap_or_else(|| workspace_dir().join("templates"))
            .display()
            .to_string(),
    );
    if let Some(port) = smtp_port {
        vars.insert("SMTP_URL", format!("smtp://127.0.0.1:{port}"));
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid")
}

impl TestApp {
    pub async fn spawn(options: TestOptions) -> TestApp {
        let (pool, _url) = fresh_database().await;
        Self::spawn_on(pool, options).await
    }

    pub async fn spawn_on(pool: PgPool, options: TestOptions) -> TestApp {
        let outbox = tempfile::tempdir().expect("temp dir");
        let config = test_config(
            options.smtp_port,
            outbox.path(),
            options.templates_dir.clone(),
        );
        let mut config = config;
        config.backup_dir = std::env::temp_dir().join(format!(
            "duespark-test-backups-{}",
            uuid::Uuid::new_v4().simple()
        ));
        config.backup_s3 = options.backup_s3.clone();
        if let Some(base) = &options.stripe_api_base {
            config.stripe_api_base = url::Url::parse(base).expect("the stand-in URL parses");
            config.stripe_api_key = Some(secrecy::SecretString::from(
                "sk_test_stand_in_key".to_owned(),
            ));
            config.stripe_rate_per_second = options.stripe_rate_per_second;
        }

        let fixed = options.now.map(|now| Arc::new(FixedClock::new(now)));
        let clock: Arc<dyn Clock> = match &fixed {
            Some(clock) => clock.clone(),
            None => duespark::app::system_clock(),
        };
        let ctx = Arc::new(
            duespark::app::job_context(&config, pool.clone(), clock).expect("job context builds"),
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let state = AppState::new(pool.clone(), SECRET_KEY.as_bytes())
            .with_stripe(
                STRIPE_WEBHOOK_SECRETS
                    .iter()
                    .map(|secret| secret.to_string())
                    .collect(),
                false,
            )
            .with_ses(duespark_jobs::bounces::sns::SnsConfig {
                topic_arns: vec![SES_TOPIC_ARN.to_owned()],
                trusted_cert_hosts: Some(vec!["127.0.0.1".to_owned()]),
            })
            .with_postmark(duespark_api::PostmarkWebhooks {
                user: Some(POSTMARK_USER.to_owned()),
                password: Some(POSTMARK_PASSWORD.to_owned()),
                server_id: Some(POSTMARK_SERVER_ID),
            })
            .with_metrics_token(options.metrics_token.clone());

        let runtime = options.workers.then(|| {
            Runtime {
                ctx: ctx.clone(),
                config: WorkerConfig {
                    default_concurrency: options.concurrency,
                    poll_interval: Duration::from_millis(200),
                    // Tests run the scheduler themselves.
                    scheduler_interval: None,
                    backoff_base_override: Some(Duration::from_millis(300)),
                    retention: None,
                    payment_sweep_interval: None,
                    stripe_reconcile_interval: None,
                    backup_interval: None,
                    backup_verify_interval: None,
                    ..WorkerConfig::default()
                },
            }
        });
        // As in `duespark dev`, the API's `/metrics` shows the in-process workers' metrics too.
        let state = match &runtime {
            Some(runtime) => {
                let runtime = runtime.clone();
                state.with_metrics_sources(vec![Arc::new(
                    move |registry: &mut prometheus_client::registry::Registry| {
                        runtime.register_metrics(registry)
                    },
                )])
            }
            None => state,
        };
        tokio::spawn(duespark::app::serve_api(listener, state, shutdown.clone()));
        let workers = runtime.map(|runtime| tokio::spawn(run_workers(runtime, shutdown.clone())));

        TestApp {
            address,
            pool,
            ctx,
            clock: fixed,
            http: reqwest::Client::new(),
            outbox,
            shutdown,
            workers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Scrapes `/metrics` in the classic text format.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("the metrics route answers")
            .text()
            .await
            .expect("the metrics body is text")
    }

    pub fn token(&self, scopes: &[Scope]) -> String {
        issue_token(
            SECRET_KEY.as_bytes(),
            "test-app",
            scopes,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    pub fn write_token(&self) -> String {
        self.token(&[Scope::JobsWrite, Scope::JobsRead])
    }

    /// Sends a JSON request with a write token; returns the status and the JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.write_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is sent");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates an account, a client and an open invoice with the given amount, currency and due
    /// date; returns the invoice id.
    pub async fn seed_invoice(
        &self,
        prefix: &str,
        amount_due: i64,
        currency: &str,
        due_on: &str,
        timezone: &str,
    ) -> String {
        let account = json!({"name": format!("{prefix} Studio"), "sender_name": "Maya Lin", "reply_to": format!("maya@{prefix}.example"), "timezone": timezone});
        assert_eq!(
            self.put(&format!("/v1/accounts/{prefix}-acct"), account)
                .await
                .0,
            201
        );
        let client = json!({"account_id": format!("{prefix}-acct"), "name": "Acme Corp", "email": format!("ap+{prefix}@acme.example")});
        assert_eq!(
            self.put(&format!("/v1/clients/{prefix}-client"), client)
                .await
                .0,
            201
        );
        let invoice = json!({
            "account_id": format!("{prefix}-acct"), "client_id": format!("{prefix}-client"), "number": format!("INV-{prefix}-1"),
            "amount_due": amount_due, "currency": currency, "issued_on": "2026-01-01", "due_on": due_on,
            "pay_url": format!("https://pay.example.com/{prefix}"),
        });
        let (status, body) = self
            .put(&format!("/v1/invoices/{prefix}-inv"), invoice)
            .await;
        assert_eq!(status, 201, "invoice upsert failed: {body}");
        format!("{prefix}-inv")
    }

    /// Reads the status and reason of an invoice's reminder for a stage.
    pub async fn reminder_status(&self, invoice_id: &str, stage: &str) -> (String, Option<String>) {
        sqlx::query_as("SELECT status, reason FROM reminders WHERE invoice_id = $1 AND stage = $2")
            .bind(invoice_id)
            .bind(stage)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Reads a job through the API.
    pub async fn job(&self, job_id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/jobs/{job_id}")).await;
        assert_eq!(status, 200, "job lookup failed: {body}");
        body
    }

    /// Waits until the job reaches one of the final statuses and returns it.
    pub async fn wait_for_job(&self, job_id: &str, timeout: Duration) -> Value {
        wait_until(timeout, || async {
            let job = self.job(job_id).await;
            matches!(job["status"].as_str(), Some("done" | "dead" | "cancelled")).then_some(job)
        })
        .await
        .unwrap_or_else(|| panic!("job {job_id} did not finish within {timeout:?}"))
    }

    /// Counts jobs in the backend that have not finished.
    pub async fn unfinished_jobs(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM duespark_queue.jobs WHERE status NOT IN ('done', 'dead', 'cancelled')",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(workers) = self.workers.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), workers).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every stored email event is processed.
pub async fn settle_email_events(app: &TestApp) {
    let done = wait_until(Duration::from_secs(20), || async {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM email_events WHERE status = 'received'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (waiting == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "email events were not processed");
}

/// Lists the active suppressions of an address through the API.
pub async fn suppressions(app: &TestApp, email: &str) -> Vec<Value> {
    let token = app.token(&[Scope::DashboardAdmin]);
    let response = app
        .http
        .get(app.url("/v1/suppressions"))
        .query(&[("email", email)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["suppressions"].as_array().unwrap().clone()
}
