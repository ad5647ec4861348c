//! Periodic schedules: each worker process enqueues the due runs of periodic jobs. An idempotency
//! key per time slot makes the enqueue happen once per slot however many processes run.

use chrono::{DateTime, Utc};
use duespark_jobs::kinds;
use duespark_queue::{JobStore, NewJob, QueueError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::Runtime;

/// Enqueues the reminder scheduler's run for the time slot that contains `now`. Returns whether
/// this call created the job.
pub async fn enqueue_due_schedules(
    store: &JobStore,
    now: DateTime<Utc>,
    interval: std::time::Duration,
) -> Result<bool, QueueError> {
    enqueue_slot_job(store, kinds::SCHEDULE_REMINDERS, now, interval).await
}

/// Enqueues one run of a periodic kind per time slot: the slot's start is in the idempotency key,
/// so every process may try and only the first creates the job.
async fn enqueue_slot_job(
    store: &JobStore,
    kind: &str,
    now: DateTime<Utc>,
    interval: std::time::Duration,
) -> Result<bool, QueueError> {
    let interval_secs = i64::try_from(interval.as_secs().max(1)).unwrap_or(300);
    let slot = now.timestamp() / interval_secs * interval_secs;
    let spec = kinds::spec(kind).expect("periodic kinds are registered");
    let job = NewJob::new(spec.queue, spec.name, serde_json::json!({}))
        .max_attempts(spec.max_attempts)
        .idempotency_key(format!("{}:{slot}", spec.name));
    Ok(store.enqueue(job).await?.created)
}

/// Runs the periodic schedules until shutdown, each starting at once: the reminder scheduler,
/// the payment sync sweep, Stripe reconciliation and the database backup (each enqueued once per
/// time slot across processes), and retention every hour.
pub(crate) async fn run_schedules(runtime: Runtime, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    let periodic = [
        (runtime.config.scheduler_interval, kinds::SCHEDULE_REMINDERS),
        (runtime.config.payment_sweep_interval, kinds::SWEEP_PAYMENTS),
        (
            runtime.config.stripe_reconcile_interval,
            kinds::RECONCILE_STRIPE_EVENTS,
        ),
        (runtime.config.backup_interval, kinds::BACKUP_DATABASE),
    ];
    for (interval, kind) in periodic {
        let Some(interval) = interval else {
            continue;
        };
        let store = runtime.ctx.store.clone();
        let clock = runtime.ctx.clock.clone();
        tasks.spawn(every(interval, shutdown.clone(), move || {
            let store = store.clone();
            let now = clock.now();
            async move {
                match enqueue_slot_job(&store, kind, now, interval).await {
                    Ok(true) => info!(job.kind = kind, "periodic job enqueued"),
                    Ok(false) => {}
                    Err(error) => {
                        error!(job.kind = kind, %error, "failed to enqueue a periodic job")
                    }
                }
            }
        }));
    }
    if let Some(policy) = runtime.config.retention {
        let store = runtime.ctx.store.clone();
        tasks.spawn(every(
            std::time::Duration::from_secs(3600),
            shutdown.clone(),
            move || {
                let store = store.clone();
                async move {
                    match store.delete_expired(&policy).await {
                        Ok(0) => {}
                        Ok(deleted) => {
                            info!(deleted, "deleted finished jobs past their retention period")
                        }
                        Err(error) => error!(%error, "retention of finished jobs failed"),
                    }
                }
            },
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Calls `action` at once and then at every `interval` until shutdown.
async fn every<F, Fut>(interval: std::time::Duration, shutdown: CancellationToken, mut action: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        action().await;
    }
}
