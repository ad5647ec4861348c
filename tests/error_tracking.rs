//! Error tracking against a Sentry stand-in: a real HTTP server on 127.0.0.1 that receives the
//! envelopes the Sentry client sends. An error log line becomes an event, with the secrets of the
//! configuration redacted from its message, fields and breadcrumbs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use duespark::config::LogFormat;
use duespark::logging::{DEFAULT_FILTER, ErrorTracking, init};

const SECRET: &str = "sk_live_never-leaves-the-process";

#[tokio::test]
async fn error_event_is_sent_without_secrets() {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = axum::Router::new()
        .route(
            "/api/{project}/envelope/",
            post(
                |State(received): State<Arc<Mutex<Vec<String>>>>, body: Bytes| async move {
                    received
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    "{}"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let guard = init(
        LogFormat::Text,
        Some(ErrorTracking {
            dsn: format!("http://public0key@{address}/42"),
            environment: "development",
            secrets: vec![SECRET.to_string()],
        }),
        DEFAULT_FILTER,
    );
    tracing::info!(api_key = SECRET, "calling Stripe with {SECRET}");
    tracing::error!(stripe.key = SECRET, "Stripe rejected the key {SECRET}");
    // Dropping the guard flushes the queued events.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(body) = received.lock().unwrap().first().cloned() {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no event arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        body.contains("Stripe rejected the key [redacted]"),
        "{body}"
    );
    assert!(
        body.contains("calling Stripe with [redacted]"),
        "the breadcrumb: {body}"
    );
    assert!(!body.contains(SECRET), "{body}");
}
