//! The supervised workers: one apalis worker per queue, rebuilt with backoff when it fails, and
//! stopped gracefully when the shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use duespark_jobs::{JobContext, kinds, run_job};
use duespark_queue::{EngineConfig, JobFailure, JobMeta, PgBackend, RetryBackoff};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::WorkerConfig;

/// Everything the workers of one process share.
#[derive(Clone)]
pub struct Runtime {
    pub ctx: Arc<JobContext>,
    pub config: WorkerConfig,
}

impl Runtime {
    /// Adds this process's worker metrics to `registry`: the engine's (attempts, durations,
    /// waits, rescues) and the job handlers' (rate limits, emails, payments).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.config.metrics.register(registry);
        duespark_jobs::metrics::job_metrics().register(registry);
    }
}

/// Runs the workers of every configured queue and the periodic schedules until `shutdown` is
/// cancelled, then waits for in-flight jobs to finish.
pub async fn run_workers(runtime: Runtime, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    for queue in runtime.config.queues.clone() {
        tasks.spawn(supervise(runtime.clone(), queue, shutdown.clone()));
    }
    tasks.spawn(crate::schedules::run_schedules(
        runtime.clone(),
        shutdown.clone(),
    ));

    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result {
            error!(%error, "a worker task panicked");
        }
    }
    info!("all workers stopped");
}

/// Keeps one queue's worker running: when it ends with an error it is rebuilt after an exponential
/// delay, and the delay resets after a healthy run.
async fn supervise(runtime: Runtime, queue: String, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let name = worker_name(&queue);
        let started = tokio::time::Instant::now();
        let concurrency = runtime.config.concurrency_of(&queue);
        info!(%queue, worker = %name, concurrency, "worker starting");

        let backend = PgBackend::<Value>::new(
            runtime.ctx.pool.clone(),
            engine_config(&runtime.config, &queue),
            name.clone(),
        );
        let stop = shutdown.clone();
        let result = WorkerBuilder::new(name.as_str())
            .backend(backend)
            .data(runtime.clone())
            .concurrency(concurrency)
            .build(handle)
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await;

        match result {
            Ok(()) if shutdown.is_cancelled() => break,
            Ok(()) => warn!(%queue, worker = %name, "worker stopped on its own; restarting"),
            Err(error) => warn!(%queue, worker = %name, %error, "worker failed; restarting"),
        }
        failures = if started.elapsed() > Duration::from_secs(60) {
            1
        } else {
            failures + 1
        };
        let delay = restart_delay(failures);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => break,
        }
    }
    info!(%queue, "worker stopped");
}

/// 0.5 s doubling per consecutive failure up to 30 s.
fn restart_delay(failures: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(Duration::from_secs(30))
}

fn engine_config(config: &WorkerConfig, queue: &str) -> EngineConfig {
    let base_override = config.backoff_base_override;
    let mut engine = EngineConfig::new(queue, config.concurrency_of(queue));
    engine.poll_interval = config.poll_interval;
    engine.listen = config.listen;
    engine.lease_duration = config.lease_duration;
    engine.heartbeat_interval = config.heartbeat_interval;
    engine.rescue_interval = config.rescue_interval;
    engine.drain_timeout = config.drain_timeout;
    engine.metrics = config.metrics.clone();
    engine.backoff = Arc::new(move |kind: &str| {
        let spec = kinds::spec(kind);
        let base = base_override
            .or(spec.map(|spec| spec.backoff_base))
            .unwrap_or(Duration::from_secs(1));
        let cap = spec
            .map_or(Duration::from_secs(600), |spec| spec.backoff_cap)
            .max(base);
        RetryBackoff { base, cap }
    });
    engine
}

/// The apalis handler: runs one attempt of a job under its kind's timeout. The returned
/// [`JobFailure`] decides whether the backend retries, snoozes or gives up.
async fn handle(
    payload: Value,
    meta: Data<JobMeta>,
    runtime: Data<Runtime>,
) -> Result<(), JobFailure> {
    let meta = (*meta).clone();
    let ctx = runtime.ctx.clone();
    let timeout = kinds::spec(&meta.kind).map_or(Duration::from_secs(60), |spec| spec.timeout);
    let span = info_span!("job", job.id = %meta.id, job.kind = %meta.kind, queue = %meta.queue, attempt = meta.attempt);

    // Each job runs on its own tokio task, so one worker's jobs spread over all cores and a panic
    // fails only this attempt.
    let attempt = tokio::spawn(
        async move {
            let started = std::time::Instant::now();
            let result = match tokio::time::timeout(timeout, run_job(&ctx, &meta, &payload)).await {
                Ok(result) => result.map_err(JobFailure::from),
                Err(_) => Err(JobFailure::retry(format!(
                    "attempt timed out after {} s",
                    timeout.as_secs()
                ))),
            };
            debug!(
                duration_ms = started.elapsed().as_millis() as u64,
                ok = result.is_ok(),
                "job attempt finished"
            );
            result
        }
        .instrument(span),
    );
    match attempt.await {
        Ok(result) => result,
        Err(panic) => Err(JobFailure::retry(format!(
            "the job handler panicked: {panic}"
        ))),
    }
}

/// Builds a name unique across processes and restarts: host, process id, queue and a random suffix.
fn worker_name(queue: &str) -> String {
    let host = hostname::get()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{queue}-{}", std::process::id(), &suffix[..8])
}
