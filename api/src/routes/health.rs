//! Health probes: liveness (the process responds), readiness (database reachable, not draining)
//! and the detailed report of every component for people and uptime checks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::AppState;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok" })),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "down", "database": "unreachable" })),
        ),
    }
}

/// Status of one component or of the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Degraded,
    Down,
}

/// Backups verified longer ago than this make the backup check degraded: the daily verification
/// plus two hours of slack.
const VERIFICATION_STALE_AFTER: Duration = Duration::from_secs(26 * 3600);

/// `GET /health/detailed`: each component's status and figures, and the worst of them as the
/// overall status; 503 unless everything is ok. Needs the metrics token when one is set.
pub async fn detailed(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = crate::metrics::check_token(state.metrics_token.as_deref(), &headers) {
        return refused;
    }
    let started = Instant::now();
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    if !matches!(ping, Ok(Ok(_))) {
        let body = json!({
            "status": Status::Down,
            "checks": { "database": { "status": Status::Down, "error": "unreachable" } },
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let database = json!({
        "status": Status::Ok,
        "latency_ms": started.elapsed().as_millis() as u64,
    });

    match detailed_checks(&state).await {
        Ok((status, mut checks)) => {
            checks.insert("database".to_string(), database);
            let code = if status == Status::Ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, Json(json!({ "status": status, "checks": checks }))).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "health check queries failed");
            let body = json!({
                "status": Status::Degraded,
                "checks": {
                    "database": database,
                    "queries": { "status": Status::Degraded, "error": "the health queries failed" },
                },
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Builds every check but the database ping and returns them with the worst status.
async fn detailed_checks(
    state: &AppState,
) -> Result<(Status, serde_json::Map<String, Value>), sqlx::Error> {
    let figures = state.database_gauges.health_figures(&state.pool).await?;
    let mut worst = Status::Ok;
    let mut checks = serde_json::Map::new();

    let mut queues = serde_json::Map::new();
    let mut workers = serde_json::Map::new();
    for queue in duespark_jobs::kinds::queues::ALL {
        let oldest = figures
            .oldest_waiting_seconds
            .get(queue)
            .copied()
            .unwrap_or(0.0);
        let objective = duespark_jobs::kinds::queues::wait_objective(queue);
        let status = if oldest > objective.as_secs_f64() {
            Status::Degraded
        } else {
            Status::Ok
        };
        worst = worst.max(status);
        queues.insert(
            queue.to_string(),
            json!({
                "status": status,
                "backlog": figures.backlog.get(queue).copied().unwrap_or(0),
                "oldest_waiting_seconds": oldest.round(),
                "objective_seconds": objective.as_secs(),
            }),
        );

        let live = figures.workers_live.get(queue).copied().unwrap_or(0);
        let status = if live > 0 {
            Status::Ok
        } else {
            Status::Degraded
        };
        worst = worst.max(status);
        workers.insert(queue.to_string(), json!({ "status": status, "live": live }));
    }
    checks.insert("queues".to_string(), Value::Object(queues));
    checks.insert("workers".to_string(), Value::Object(workers));

    let (last_email, last_sync): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT (SELECT max(sent_at) FROM reminders), (SELECT max(stripe_synced_at) FROM invoices)",
    )
    .fetch_one(&state.pool)
    .await?;
    checks.insert(
        "last_email_sent".to_string(),
        json!({ "status": Status::Ok, "at": last_email }),
    );
    checks.insert(
        "last_stripe_sync".to_string(),
        json!({ "status": Status::Ok, "at": last_sync }),
    );

    // Every location that has a backup or a verification; one whose backups never passed is
    // degraded. Without any backup yet (backups not set up), the check reads "unknown".
    let now = Utc::now().timestamp() as f64;
    let mut backups = serde_json::Map::new();
    let locations: std::collections::BTreeSet<&String> = figures
        .last_backup
        .keys()
        .chain(figures.last_verified.keys())
        .collect();
    for location in locations {
        let entry = match figures.last_verified.get(location) {
            Some(verified_at) => {
                let status = if now - verified_at > VERIFICATION_STALE_AFTER.as_secs_f64() {
                    Status::Degraded
                } else {
                    Status::Ok
                };
                worst = worst.max(status);
                json!({
                    "status": status,
                    "at": DateTime::<Utc>::from_timestamp(*verified_at as i64, 0),
                })
            }
            None => {
                worst = worst.max(Status::Degraded);
                json!({
                    "status": Status::Degraded,
                    "at": null,
                    "error": "no backup of this location has passed verification",
                })
            }
        };
        backups.insert(location.clone(), entry);
    }
    if backups.is_empty() {
        backups.insert(
            "status".to_string(),
            json!("unknown: no backup has been taken"),
        );
    }
    checks.insert("last_verified_backup".to_string(), Value::Object(backups));
    Ok((worst, checks))
}
