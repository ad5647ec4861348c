//! Gauges read from the database: one statement per refresh, cached for a few seconds so that
//! several scrapers (Prometheus replicas, the dashboard) cost one query. The statement counts only
//! unfinished and dead jobs, per registered queue and state, from the indexes alone (index-only
//! scans), and never reads the finished history.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duespark_jobs::kinds::queues;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio::sync::Mutex;

/// How long one reading of the database gauges is served.
pub const CACHE_FOR: Duration = Duration::from_secs(5);

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// One row of the snapshot statement: which gauge, up to two label values, the value.
type Row = (String, String, String, f64);

// Every job count names its status as a literal, so each subquery is planned against the partial
// index that contains that status (the running index or the list index).
const SNAPSHOT_SQL: &str = r#"
SELECT 'jobs', q.queue, s.state,
       (CASE s.state
            WHEN 'scheduled' THEN (SELECT count(*) FROM duespark_queue.jobs j
                                   WHERE j.queue = q.queue AND j.status IN ('scheduled', 'pending')
                                     AND j.run_at > now())
            WHEN 'pending' THEN (SELECT count(*) FROM duespark_queue.jobs j
                                 WHERE j.queue = q.queue AND j.status IN ('scheduled', 'pending')
                                   AND j.run_at <= now())
            WHEN 'running' THEN (SELECT count(*) FROM duespark_queue.jobs j
                                 WHERE j.queue = q.queue AND j.status = 'running')
            WHEN 'retrying' THEN (SELECT count(*) FROM duespark_queue.jobs j
                                  WHERE j.queue = q.queue AND j.status = 'retrying')
            WHEN 'dead' THEN (SELECT count(*) FROM duespark_queue.jobs j
                              WHERE j.queue = q.queue AND j.status = 'dead')
        END)::float8
FROM unnest($1::text[]) AS q(queue)
CROSS JOIN unnest(ARRAY['scheduled', 'pending', 'running', 'retrying', 'dead']) AS s(state)
UNION ALL
SELECT 'oldest_waiting', q.queue, '',
       coalesce(extract(epoch FROM now() - least(
           (SELECT min(j.run_at) FROM duespark_queue.jobs j
            WHERE j.queue = q.queue AND j.status IN ('scheduled', 'pending') AND j.run_at <= now()),
           (SELECT min(j.run_at) FROM duespark_queue.jobs j
            WHERE j.queue = q.queue AND j.status = 'retrying' AND j.run_at <= now())
       )), 0)::float8
FROM unnest($1::text[]) AS q(queue)
UNION ALL
SELECT 'workers_live', queue, '',
       (count(*) FILTER (WHERE last_heartbeat > now() - interval '30 seconds'))::float8
FROM duespark_queue.workers
GROUP BY 2
UNION ALL
SELECT 'oldest_heartbeat', queue, '', extract(epoch FROM now() - min(last_heartbeat))::float8
FROM duespark_queue.workers
GROUP BY 2
UNION ALL
SELECT 'stripe_events', status, '', count(*)::float8 FROM stripe_events GROUP BY 2
UNION ALL
SELECT 'reminders_uncertain', '', '', count(*)::float8 FROM reminders WHERE status = 'uncertain'
UNION ALL
SELECT 'suppressions', reason, '', count(*)::float8
FROM suppressions
WHERE expires_at IS NULL OR expires_at > now()
GROUP BY 2
UNION ALL
SELECT 'backup_last_success', location, '', extract(epoch FROM max(created_at))::float8
FROM backups GROUP BY 2
UNION ALL
SELECT 'backup_last_verified', location, '', extract(epoch FROM max(finished_at))::float8
FROM backup_verifications WHERE ok GROUP BY 2
UNION ALL
SELECT 'backup_newest_size', location, '', size_bytes::float8
FROM (SELECT DISTINCT ON (location) location, size_bytes FROM backups
      ORDER BY location, created_at DESC) newest
"#;

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
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LocationLabels {
    location: String,
}

/// The cached rows of the last reading.
#[derive(Default)]
pub struct DatabaseGauges {
    cached: Mutex<Option<(Instant, Arc<Vec<Row>>)>>,
}

/// The values `/health/detailed` needs from one reading.
#[derive(Debug, Default)]
pub(crate) struct HealthFigures {
    /// Pending and retrying jobs that are due, per queue.
    pub backlog: std::collections::BTreeMap<String, i64>,
    pub oldest_waiting_seconds: std::collections::BTreeMap<String, f64>,
    pub workers_live: std::collections::BTreeMap<String, i64>,
    /// Unix seconds of the newest successful verification, per location.
    pub last_verified: std::collections::BTreeMap<String, f64>,
    /// Unix seconds of the newest backup, per location.
    pub last_backup: std::collections::BTreeMap<String, f64>,
}

impl DatabaseGauges {
    /// Returns the queue and backup figures of the current reading.
    pub(crate) async fn health_figures(&self, pool: &PgPool) -> Result<HealthFigures, sqlx::Error> {
        let rows = self.rows(pool).await?;
        let mut figures = HealthFigures::default();
        for (metric, first, second, value) in rows.iter() {
            match metric.as_str() {
                "jobs" if matches!(second.as_str(), "pending" | "retrying") => {
                    *figures.backlog.entry(first.clone()).or_default() += *value as i64;
                }
                "oldest_waiting" => {
                    figures.oldest_waiting_seconds.insert(first.clone(), *value);
                }
                "workers_live" => {
                    figures.workers_live.insert(first.clone(), *value as i64);
                }
                "backup_last_verified" => {
                    figures.last_verified.insert(first.clone(), *value);
                }
                "backup_last_success" => {
                    figures.last_backup.insert(first.clone(), *value);
                }
                _ => {}
            }
        }
        Ok(figures)
    }

    /// Returns rows read at most [`CACHE_FOR`] ago, reading them again when older. Concurrent
    /// scrapes wait for one reading instead of each running the statement.
    async fn rows(&self, pool: &PgPool) -> Result<Arc<Vec<Row>>, sqlx::Error> {
        let mut cached = self.cached.lock().await;
        if let Some((read_at, rows)) = cached.as_ref()
            && read_at.elapsed() < CACHE_FOR
        {
            return Ok(rows.clone());
        }
        let rows: Arc<Vec<Row>> = Arc::new(
            sqlx::query_as(SNAPSHOT_SQL)
                .bind(queues::ALL.as_slice())
                .fetch_all(pool)
                .await?,
        );
        *cached = Some((Instant::now(), rows.clone()));
        Ok(rows)
    }

    /// Reads (or reuses) the gauges and adds them to `registry`.
    pub async fn register(
        &self,
        pool: &PgPool,
        registry: &mut Registry,
    ) -> Result<(), sqlx::Error> {
        let rows = self.rows(pool).await?;
        let jobs = Family::<QueueStateLabels, Gauge>::default();
        let oldest = Family::<QueueLabels, FloatGauge>::default();
        let workers_live = Family::<QueueLabels, Gauge>::default();
        let oldest_heartbeat = Family::<QueueLabels, FloatGauge>::default();
        let stripe_events = Family::<StatusLabels, Gauge>::default();
        let uncertain = Gauge::<i64>::default();
        let suppressions = Family::<ReasonLabels, Gauge>::default();
        let last_backup = Family::<LocationLabels, FloatGauge>::default();
        let last_verified = Family::<LocationLabels, FloatGauge>::default();
        let newest_size = Family::<LocationLabels, Gauge>::default();

        // Every registered queue shows up, so an empty queue reads 0 and alerts can tell a quiet
        // queue from a missing series.
        for queue in queues::ALL {
            let labels = QueueLabels {
                queue: queue.to_string(),
            };
            oldest.get_or_create(&labels).set(0.0);
            workers_live.get_or_create(&labels).set(0);
            for state in ["scheduled", "pending", "running", "retrying", "dead"] {
                jobs.get_or_create(&QueueStateLabels {
                    queue: queue.to_string(),
                    state: state.to_string(),
                })
                .set(0);
            }
        }

        // Statuses and reasons read 0 before their first row, so alert rules see the first one.
        for status in [
            "received",
            "processed",
            "ignored",
            "unmatched",
            "livemode_mismatch",
        ] {
            stripe_events
                .get_or_create(&StatusLabels {
                    status: status.to_string(),
                })
                .set(0);
        }
        for reason in ["hard_bounce", "complaint", "soft_bounces", "unsubscribe"] {
            suppressions
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .set(0);
        }

        for (metric, first, second, value) in rows.iter() {
            let count = *value as i64;
            match metric.as_str() {
                "jobs" if is_queue(first) => {
                    jobs.get_or_create(&QueueStateLabels {
                        queue: first.clone(),
                        state: second.clone(),
                    })
                    .inc_by(count);
                }
                "oldest_waiting" if is_queue(first) => {
                    oldest.get_or_create(&queue_labels(first)).set(*value);
                }
                "workers_live" if is_queue(first) => {
                    workers_live.get_or_create(&queue_labels(first)).set(count);
                }
                "oldest_heartbeat" if is_queue(first) => {
                    oldest_heartbeat
                        .get_or_create(&queue_labels(first))
                        .set(*value);
                }
                "stripe_events" => {
                    stripe_events
                        .get_or_create(&StatusLabels {
                            status: first.clone(),
                        })
                        .set(count);
                }
                "reminders_uncertain" => {
                    uncertain.set(count);
                }
                "suppressions" => {
                    suppressions
                        .get_or_create(&ReasonLabels {
                            reason: first.clone(),
                        })
                        .set(count);
                }
                "backup_last_success" => {
                    last_backup
                        .get_or_create(&location_labels(first))
                        .set(*value);
                }
                "backup_last_verified" => {
                    last_verified
                        .get_or_create(&location_labels(first))
                        .set(*value);
                }
                "backup_newest_size" => {
                    newest_size
                        .get_or_create(&location_labels(first))
                        .set(count);
                }
                _ => {}
            }
        }

        registry.register(
            "jobs",
            "Jobs by queue and state: scheduled, pending, running, retrying and dead",
            jobs,
        );
        registry.register(
            "job_oldest_waiting_age_seconds",
            "Age of the oldest due job waiting for a worker, per queue (0 when none waits)",
            oldest,
        );
        registry.register(
            "workers_live",
            "Workers per queue whose heartbeat is at most 30 seconds old",
            workers_live,
        );
        registry.register(
            "worker_oldest_heartbeat_age_seconds",
            "Age of the stalest heartbeat among the registered workers of a queue",
            oldest_heartbeat,
        );
        registry.register(
            "stripe_events",
            "Stored Stripe events by status (received, processed, ignored, unmatched, livemode_mismatch)",
            stripe_events,
        );
        registry.register(
            "reminders_uncertain",
            "Reminders whose delivery outcome is unknown and that are not sent again",
            uncertain,
        );
        registry.register(
            "suppressions",
            "Active email suppressions by reason",
            suppressions,
        );
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
}

fn is_queue(name: &str) -> bool {
    queues::ALL.contains(&name)
}

fn queue_labels(queue: &str) -> QueueLabels {
    QueueLabels {
        queue: queue.to_string(),
    }
}

fn location_labels(location: &str) -> LocationLabels {
    LocationLabels {
        location: location.to_string(),
    }
}
