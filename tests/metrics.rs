//! `/metrics`: job backlog and uncertain reminders, in both text formats.

mod common;

use common::{TestApp, TestOptions};
use serde_json::json;

fn metric_value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[tokio::test]
async fn backlog_and_uncertain_reminders() {
    let app = TestApp::spawn(TestOptions {
        workers: false,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.post("/v1/jobs", json!({"queue": "maintenance", "kind": "noop"}))
                .await
                .0,
            201
        );
    }
    let invoice_id = app
        .seed_invoice("metrics", 10_000, "usd", "2026-04-10", "UTC")
        .await;
    sqlx::query("INSERT INTO reminders (invoice_id, stage, status, reason) VALUES ($1, 'due', 'uncertain', 'connection dropped after DATA')")
        .bind(&invoice_id)
        .execute(&app.pool)
        .await
        .unwrap();

    for path in ["/metrics", "/metrics_prom"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let body = response.text().await.unwrap();
        assert_eq!(
            metric_value(
                &body,
                "duespark_jobs{queue=\"maintenance\",state=\"pending\"}"
            ),
            Some(3.0),
            "{body}"
        );
        assert_eq!(
            metric_value(&body, "duespark_reminders_uncertain"),
            Some(1.0),
            "{body}"
        );
        assert!(
            metric_value(
                &body,
                "duespark_job_oldest_waiting_age_seconds{queue=\"maintenance\"}"
            )
            .is_some(),
            "{body}"
        );
        assert!(
            !body.contains("# EOF"),
            "the classic format has no EOF marker"
        );
    }

    let response = app
        .http
        .get(app.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
}
