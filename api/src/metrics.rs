//! `/metrics` and `/metrics_prom`: gauges read from the database at scrape time, in the classic
//! Prometheus text format, or OpenMetrics when the `Accept` header requests it.
//!
//! Labels come from closed sets: the registered queues and the job statuses.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use duespark_jobs::kinds::queues;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `stripe`, `postmark` or `ses`.
    pub provider: &'static str,
    /// `stored`, `duplicate`, `livemode_mismatch`, `invalid_signature` or `invalid_event`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// Counters of this process; clones share the values.
#[derive(Clone, Default)]
pub struct Counters {
    webhooks: Family<WebhookLabels, Counter>,
}

impl Counters {
    /// Counts one webhook request by provider and outcome.
    pub fn webhook(&self, provider: &'static str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { provider, outcome })
            .inc();
    }
}

/// Serves the metrics of the job store and the reminders.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = collect(&state).await?;

    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let mut body = String::new();
    let content_type = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, &registry)
            .map_err(ApiError::internal)?;
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
            .map_err(ApiError::internal)?;
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

async fn collect(state: &AppState) -> Result<Registry, ApiError> {
    let mut registry = Registry::with_prefix("duespark");

    let jobs = Family::<QueueStateLabels, Gauge>::default();
    for count in state.store.counts().await? {
        if !queues::ALL.contains(&count.queue.as_str()) {
            continue;
        }
        let labels = QueueStateLabels {
            queue: count.queue,
            state: count.status.to_string(),
        };
        jobs.get_or_create(&labels).set(count.count);
    }
    registry.register(
        "jobs",
        "Jobs by queue and state: unfinished ones, and finished ones of the last 24 hours",
        jobs,
    );

    let oldest = Family::<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let ages: Vec<(String, f64)> = sqlx::query_as(
        r#"
        SELECT queue, extract(epoch FROM now() - min(run_at))::float8
        FROM duespark_queue.jobs
        WHERE status IN ('scheduled', 'pending', 'retrying') AND run_at <= now()
        GROUP BY queue
        "#,
    )
    .fetch_all(&state.pool)
    .await?;
    for (queue, age) in ages {
        if queues::ALL.contains(&queue.as_str()) {
            oldest.get_or_create(&QueueLabels { queue }).set(age);
        }
    }
    registry.register(
        "job_oldest_waiting_age_seconds",
        "Age of the oldest due job waiting for a worker, per queue",
        oldest,
    );

    registry.register(
        "webhooks",
        "Webhook requests by provider and outcome",
        state.counters.webhooks.clone(),
    );

    let stripe_events = Family::<StatusLabels, Gauge>::default();
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM stripe_events GROUP BY status")
            .fetch_all(&state.pool)
            .await?;
    for (status, count) in statuses {
        stripe_events
            .get_or_create(&StatusLabels { status })
            .set(count);
    }
    registry.register(
        "stripe_events",
        "Stored Stripe events by status (received, processed, ignored, unmatched, livemode_mismatch)",
        stripe_events,
    );

    collect_backups(state, &mut registry).await?;

    let uncertain: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reminders WHERE status = 'uncertain'")
            .fetch_one(&state.pool)
            .await?;
    let uncertain_gauge = Gauge::<i64>::default();
    uncertain_gauge.set(uncertain);
    registry.register(
        "reminders_uncertain",
        "Reminders whose delivery outcome is unknown and that are not sent again",
        uncertain_gauge,
    );
    Ok(registry)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LocationLabels {
    location: String,
}

/// Backup gauges per location: the last successful backup and verification (Unix seconds) and the
/// size of the newest backup.
async fn collect_backups(state: &AppState, registry: &mut Registry) -> Result<(), ApiError> {
    /// Location, newest backup time, newest verified time, newest size.
    type BackupRow = (String, Option<f64>, Option<f64>, Option<i64>);
    let rows: Vec<BackupRow> = sqlx::query_as(
        r#"
        SELECT b.location,
               extract(epoch FROM max(b.created_at))::float8,
               (SELECT extract(epoch FROM max(v.finished_at))::float8 FROM backup_verifications v
                 WHERE v.ok AND v.location = b.location),
               (SELECT nb.size_bytes FROM backups nb WHERE nb.location = b.location ORDER BY nb.created_at DESC LIMIT 1)
        FROM backups b
        GROUP BY b.location
        "#,
    )
    .fetch_all(&state.pool)
    .await?;

    let last_backup = Family::<LocationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let last_verified =
        Family::<LocationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let newest_size = Family::<LocationLabels, Gauge>::default();
    for (location, backup_at, verified_at, size) in rows {
        let labels = LocationLabels { location };
        if let Some(at) = backup_at {
            last_backup.get_or_create(&labels).set(at);
        }
        if let Some(at) = verified_at {
            last_verified.get_or_create(&labels).set(at);
        }
        if let Some(size) = size {
            newest_size.get_or_create(&labels).set(size);
        }
    }
    registry.register(
        "backup_last_success_timestamp_seconds",
        "Time of the newest backup per location",
        last_backup,
    );
    registry.register(
        "backup_last_verified_timestamp_seconds",
        "Time of the newest successful backup verification per location",
        last_verified,
    );
    registry.register(
        "backup_newest_size_bytes",
        "Size of the newest backup per location",
        newest_size,
    );
    Ok(())
}
