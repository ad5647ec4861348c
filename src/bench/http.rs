//! Enqueue through the HTTP API: the API is served in this process on 127.0.0.1, and concurrent
//! clients post `noop` jobs to `POST /v1/jobs`. Each request commits its job before the 201, with
//! `synchronous_commit` as the server has it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use duespark_api::{AppState, Scope, issue_token};
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::{BenchArgs, Figure, millis, quantile, seconds_since};

pub async fn measure(pool: &PgPool, args: &BenchArgs, progress: &Progress) -> Result<Figure> {
    let key: [u8; 32] = rand::random();
    let token = issue_token(
        &key,
        "bench",
        &[Scope::JobsWrite],
        Duration::from_secs(3600),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::app::serve_api(
        listener,
        AppState::new(pool.clone(), &key),
        shutdown.clone(),
    ));
    let since = Utc::now();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.http_clients)
        .build()?;
    let url = format!("http://{address}/v1/jobs");
    let body = json!({"queue": "maintenance", "kind": "noop", "payload": null}).to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let phase = Arc::new(progress.phase("http", args.http_requests as u64));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.http_clients.max(1) {
        let (client, url, body, token, next, phase) = (
            client.clone(),
            url.clone(),
            body.clone(),
            token.clone(),
            next.clone(),
            phase.clone(),
        );
        let total = args.http_requests;
        clients.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if response.status() != reqwest::StatusCode::CREATED {
                    bail!("POST /v1/jobs returned {}, expected 201", response.status());
                }
                latencies.push(millis(sent.elapsed()));
                phase.set(next.load(Ordering::Relaxed) as u64);
            }
            Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(args.http_requests);
    while let Some(result) = clients.join_next().await {
        latencies.extend(result.context("an HTTP client panicked")??);
    }
    let seconds = seconds_since(started);
    if let Ok(phase) = Arc::try_unwrap(phase) {
        phase.done();
    }
    shutdown.cancel();
    let _ = server.await;

    sqlx::query(
        "DELETE FROM duespark_queue.jobs WHERE queue = 'maintenance' AND kind = 'noop' AND created_at >= $1",
    )
    .bind(since)
    .execute(pool)
    .await?;

    latencies.sort_by(f64::total_cmp);
    Ok(Figure::new(
        "http",
        json!({
            "requests": latencies.len(),
            "clients": args.http_clients,
            "seconds": seconds,
            "requests_per_second": latencies.len() as f64 / seconds,
            "p50_ms": quantile(&latencies, 0.5),
            "p99_ms": quantile(&latencies, 0.99),
            "max_ms": quantile(&latencies, 1.0),
        }),
    ))
}
