//! Metrics, health and logs as ops and Prometheus see them. The tests check metric values after
//! real jobs ran (and `promtool check metrics` on them), the metrics token, readiness during a
//! database outage, the detailed health report, request ids, and a worker process's own metrics
//! endpoint with JSON logs.

mod common;

use std::time::Duration;

use common::process::{WorkerProcess, WorkerSettings};
use common::proxy::{DatabaseProxy, Outage, database_address, url_through};
use common::smtp::{SmtpOptions, SmtpServer};
use common::{TestApp, TestOptions, wait_until};
use duespark_api::Scope;
use duespark_queue::{JobStore, NewJob};
use serde_json::{Value, json};

/// Returns the value of the sample `series` (name and labels exactly as printed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Runs `promtool check metrics` on `metrics` and returns its complaints.
fn promtool_check(metrics: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs; install Debian's prometheus package, as .ci/run does");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn metrics_after_real_jobs() {
    // The SMTP server replies 451 to every message, so reminder jobs retry.
    let smtp = SmtpServer::start(SmtpOptions {
        tempfail_ratio: Some(1.0),
        ..SmtpOptions::default()
    });
    let app = TestApp::spawn(TestOptions {
        smtp_port: Some(smtp.port),
        ..TestOptions::default()
    })
    .await;
    let writer = app.token(&[Scope::JobsWrite, Scope::JobsRead]);

    let mut done = Vec::new();
    for _ in 0..3 {
        let response = app
            .http
            .post(app.url("/v1/jobs"))
            .bearer_auth(&writer)
            .json(&json!({"queue": "maintenance", "kind": "noop", "payload": null}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        done.push(body["id"].as_str().unwrap().to_string());
    }
    // A reminder job for a reminder that does not exist fails permanently: dead at once.
    let dead = JobStore::new(app.pool.clone())
        .enqueue(NewJob::new(
            "reminders",
            "reminder.send",
            json!({"reminder_id": 987_654_321}),
        ))
        .await
        .unwrap()
        .id
        .to_string();
    let invoice_id = app
        .seed_invoice("metrics", 5_000, "usd", "2026-04-10", "UTC")
        .await;
    let (status, body) = app
        .post(
            "/v1/reminders",
            json!({"invoice_id": invoice_id, "stage": "upcoming"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    for id in &done {
        assert_eq!(
            app.wait_for_job(id, Duration::from_secs(20)).await["status"],
            "done"
        );
    }
    assert_eq!(
        app.wait_for_job(&dead, Duration::from_secs(20)).await["status"],
        "dead"
    );
    let metrics = wait_until(Duration::from_secs(20), || async {
        let metrics = app.metrics().await;
        sample(
            &metrics,
            "duespark_job_retries_total{queue=\"reminders\",kind=\"reminder.send\"}",
        )
        .is_some()
        .then_some(metrics)
    })
    .await
    .expect("the failed send is counted as a retry");

    let expect = |series: &str, value: f64| {
        assert_eq!(
            sample(&metrics, series),
            Some(value),
            "{series} in:\n{metrics}"
        );
    };
    expect(
        "duespark_jobs_finished_total{queue=\"maintenance\",kind=\"noop\",outcome=\"done\"}",
        3.0,
    );
    expect(
        "duespark_jobs_finished_total{queue=\"reminders\",kind=\"reminder.send\",outcome=\"dead\"}",
        1.0,
    );
    expect("duespark_jobs{queue=\"reminders\",state=\"dead\"}", 1.0);
    expect("duespark_jobs{queue=\"bounces\",state=\"pending\"}", 0.0);
    // Present before the first such event, so alert rules can see the first one.
    expect("duespark_stripe_events{status=\"livemode_mismatch\"}", 0.0);
    expect(
        "duespark_job_attempt_duration_seconds_count{queue=\"maintenance\",kind=\"noop\"}",
        3.0,
    );
    expect(
        "duespark_job_queue_wait_seconds_count{queue=\"maintenance\"}",
        3.0,
    );
    expect(
        "duespark_http_requests_total{route=\"/v1/jobs\",method=\"POST\",status=\"201\"}",
        3.0,
    );
    assert!(
        sample(&metrics, "duespark_workers_live{queue=\"maintenance\"}").unwrap() >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "duespark_job_oldest_waiting_age_seconds{queue=\"webhooks\"}"
        )
        .is_some(),
        "every queue has an oldest-age series"
    );
    promtool_check(&metrics);
}

#[tokio::test]
async fn metrics_token_protects_scrapes() {
    let token = "metrics-token-for-tests-0123456789";
    let app = TestApp::spawn(TestOptions {
        metrics_token: Some(token.to_string()),
        workers: false,
        ..TestOptions::default()
    })
    .await;
    for path in ["/metrics", "/metrics_prom", "/health/detailed"] {
        let rejected = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(rejected.status(), 401, "{path}");
        let body: Value = rejected.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("METRICS_TOKEN"),
            "{body}"
        );
        let wrong = app
            .http
            .get(app.url(path))
            .bearer_auth("metrics-token-for-tests-0123456788")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let allowed = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        // Without workers the detailed health is degraded, which is 503 but not a refusal.
        assert_ne!(allowed.status(), 401, "{path}");
    }
    // Liveness and readiness stay open for orchestrators.
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn ready_follows_database_outage() {
    let (_pool, url) = common::fresh_database().await;
    let mut proxy = DatabaseProxy::start(database_address().await).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect(&url_through(&url, proxy.address))
        .await
        .unwrap();
    let app = TestApp::spawn_on(
        pool,
        TestOptions {
            workers: false,
            ..TestOptions::default()
        },
    )
    .await;
    let ready = || async {
        app.http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 200);

    proxy.take_down(Outage::PortClosed).await;
    let down = wait_until(Duration::from_secs(10), || async {
        (ready().await == 503).then_some(())
    })
    .await;
    assert!(
        down.is_some(),
        "ready answers 503 while the database refuses connections"
    );
    let detailed = app
        .http
        .get(app.url("/health/detailed"))
        .send()
        .await
        .unwrap();
    assert_eq!(detailed.status(), 503);
    let body: Value = detailed.json().await.unwrap();
    assert_eq!(body["status"], "down", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "down", "{body}");

    proxy.bring_up();
    let up = wait_until(Duration::from_secs(15), || async {
        (ready().await == 200).then_some(())
    })
    .await;
    assert!(up.is_some(), "ready answers 200 once the database is back");
}

#[tokio::test]
async fn detailed_health_reports_components() {
    let app = TestApp::spawn(TestOptions::default()).await;
    let detailed = || async {
        let response = app
            .http
            .get(app.url("/health/detailed"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    // The workers register within a heartbeat.
    let (status, body) = wait_until(Duration::from_secs(20), || async {
        let (status, body) = detailed().await;
        (status == 200).then_some((status, body))
    })
    .await
    .unwrap_or_else(|| panic!("health never became ok"));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(
        body["checks"]["queues"]["reminders"]["objective_seconds"],
        900
    );
    assert!(
        body["checks"]["workers"]["bounces"]["live"]
            .as_i64()
            .unwrap()
            >= 1
    );
    assert!(body["checks"].get("last_email_sent").is_some());
    assert!(body["checks"].get("last_stripe_sync").is_some());
    assert!(
        body["checks"]["last_verified_backup"]["status"]
            .as_str()
            .unwrap()
            .starts_with("unknown"),
        "{body}"
    );

    // A job that has waited an hour in a paused queue breaks the webhooks objective of 5 minutes.
    sqlx::query("INSERT INTO duespark_queue.paused_queues (queue) VALUES ('webhooks')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut old = NewJob::new("webhooks", "noop", Value::Null);
    old.run_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    JobStore::new(app.pool.clone()).enqueue(old).await.unwrap();
    // The gauges are cached for 5 seconds.
    let (status, body) = wait_until(Duration::from_secs(10), || async {
        let (status, body) = detailed().await;
        (status == 503).then_some((status, body))
    })
    .await
    .expect("the old job degrades the health report");
    assert_eq!(status, 503);
    assert_eq!(body["status"], "degraded", "{body}");
    let webhooks = &body["checks"]["queues"]["webhooks"];
    assert_eq!(webhooks["status"], "degraded", "{body}");
    assert_eq!(webhooks["backlog"], 1, "{body}");
    assert!(webhooks["oldest_waiting_seconds"].as_f64().unwrap() >= 3600.0);
}

#[tokio::test]
async fn request_id_on_every_response() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..TestOptions::default()
    })
    .await;
    let response = app.http.get(app.url("/health")).send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let response = app
        .http
        .get(app.url("/v1/nowhere"))
        .header("x-request-id", "req-from-the-load-balancer")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["x-request-id"],
        "req-from-the-load-balancer"
    );

    // An id too long to log is replaced by a generated one.
    let response = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn worker_process_serves_metrics_and_json_logs() {
    let (pool, url) = common::fresh_database().await;
    let token = "worker-metrics-token-0123456789";
    let settings = WorkerSettings {
        env: vec![
            ("LOG_FORMAT".into(), "json".into()),
            ("METRICS_TOKEN".into(), token.into()),
            (
                "RUST_LOG".into(),
                "info,duespark_worker=debug,sqlx=warn".into(),
            ),
        ],
        ..WorkerSettings::new(&url, "maintenance=2")
    };
    let worker = WorkerProcess::start(&settings);
    let address = worker.metrics_address(Duration::from_secs(30)).await;

    let store = JobStore::new(pool.clone());
    for _ in 0..2 {
        store
            .enqueue(NewJob::new("maintenance", "noop", Value::Null))
            .await
            .unwrap();
    }
    let http = reqwest::Client::new();
    let scrape = format!("http://{address}/metrics");
    assert_eq!(http.get(&scrape).send().await.unwrap().status(), 401);
    let metrics = wait_until(Duration::from_secs(30), || async {
        let metrics = http
            .get(&scrape)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (sample(
            &metrics,
            "duespark_jobs_finished_total{queue=\"maintenance\",kind=\"noop\",outcome=\"done\"}",
        ) == Some(2.0))
        .then_some(metrics)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the worker's metrics never counted 2 jobs:\n{}",
            worker.log_tail(20)
        )
    });
    promtool_check(&metrics);

    // Every line is JSON; the lines logged inside a job carry its id, queue, kind and attempt.
    let log = std::fs::read_to_string(worker.log_path()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let job_line = lines
        .iter()
        .find(|line| line["span"]["job.kind"] == "noop")
        .unwrap_or_else(|| panic!("no log line inside a job:\n{log}"));
    for field in ["job.id", "queue", "attempt"] {
        assert!(
            job_line["span"].get(field).is_some(),
            "{field} in {job_line}"
        );
    }
    assert!(!log.contains(token), "the metrics token is never logged");
}
