//! The supervised workers: one apalis worker per queue, restarted with backoff when it fails, and
//! stopped gracefully (in-flight jobs finish) when the shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use apalis_core::backend::ext::BackendExt;
use backon::{BackoffBuilder, ExponentialBuilder};
use duespark_jobs::JobContext;
use duespark_queue::{JobEnvelope, Storage, StorageConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::WorkerConfig;
use crate::execute::{JobOutcome, execute_job};

/// Everything the workers of one process share.
#[derive(Clone)]
pub struct Runtime {
    pub ctx: Arc<JobContext>,
    pub config: WorkerConfig,
}

/// State each handler call receives besides the job.
#[derive(Clone)]
struct HandlerState {
    runtime: Runtime,
    queue: String,
    worker_name: String,
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

/// Builds the apalis worker of one queue, short of its handler. A macro rather than a function
/// because the builder's type spells out every layer.
macro_rules! queue_worker_builder {
    ($runtime:expr, $queue:expr, $name:expr) => {{
        let concurrency = $runtime.config.concurrency_of(&$queue);
        // A batch no larger than the concurrency keeps fetched jobs from waiting in a buffer while
        // the worker's heartbeat lapses, which would let another worker run them a second time.
        let storage_config = StorageConfig::default()
            .queue(&$queue)
            .batch_size(concurrency)
            .heartbeat_interval($runtime.config.heartbeat_interval)
            .missed_heartbeats($runtime.config.missed_heartbeats);
        let backend = Storage::new(&$runtime.ctx.pool)
            .with_config(storage_config)
            .with_pubsub()
            .poll_with_interval($runtime.config.poll_interval);
        let state = HandlerState {
            runtime: $runtime.clone(),
            queue: $queue.clone(),
            worker_name: $name.clone(),
        };
        WorkerBuilder::new($name.as_str())
            .backend(backend)
            .data(state)
            .concurrency(concurrency)
    }};
}

/// Keeps one queue's worker running: when it ends with an error (the backend lost its database,
/// say) it is rebuilt after an exponential delay, and the delay resets after a healthy run.
async fn supervise(runtime: Runtime, queue: String, shutdown: CancellationToken) {
    let mut delays = restart_backoff();
    while !shutdown.is_cancelled() {
        let name = worker_name(&queue);
        let started = tokio::time::Instant::now();
        info!(%queue, worker = %name, concurrency = runtime.config.concurrency_of(&queue), "worker starting");

        let stop = shutdown.clone();
        let result = queue_worker_builder!(runtime, queue, name)
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
        if started.elapsed() > Duration::from_secs(60) {
            delays = restart_backoff();
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(30));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => break,
        }
    }
    info!(%queue, "worker stopped");
}

fn restart_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The apalis handler: runs all attempts of a job. A dead job is reported with `AbortError`, so
/// the backend marks it finished and never fetches it again.
async fn handle(
    job: JobEnvelope,
    task_id: TaskId,
    state: Data<HandlerState>,
) -> Result<(), BoxDynError> {
    let job_id = task_id.to_string();
    let state = (*state).clone();
    // Each job runs on its own tokio task, so one worker's jobs spread over all cores.
    let outcome = tokio::spawn(async move {
        let runtime = &state.runtime;
        execute_job(
            &runtime.ctx,
            &job_id,
            &state.queue,
            &job,
            &state.worker_name,
            runtime.config.backoff_base_override,
        )
        .await
    })
    .await;
    match outcome {
        Ok(JobOutcome::Done) => Ok(()),
        Ok(JobOutcome::Dead(message)) => Err(Box::new(AbortError::new(message))),
        Err(panic) => Err(Box::new(AbortError::new(format!(
            "the job handler panicked: {panic}"
        )))),
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
