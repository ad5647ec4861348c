//! Periodic schedules: each worker process enqueues the due runs of periodic jobs. An idempotency
//! key per time slot makes the enqueue happen once per slot however many processes run.

use std::time::Duration;

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
    interval: Duration,
) -> Result<bool, QueueError> {
    enqueue_slot_job(
        store,
        kinds::SCHEDULE_REMINDERS,
        now,
        interval,
        Duration::ZERO,
    )
    .await
}

/// Enqueues one run of a periodic kind per time slot: the slot's start is in the idempotency key,
/// so every process may try and only the first creates the job. Slots start `offset` after the
/// multiples of `interval` since the Unix epoch.
async fn enqueue_slot_job(
    store: &JobStore,
    kind: &str,
    now: DateTime<Utc>,
    interval: Duration,
    offset: Duration,
) -> Result<bool, QueueError> {
    let slot = slot_start(now.timestamp(), interval, offset);
    let spec = kinds::spec(kind).expect("periodic kinds are registered");
    let job = NewJob::new(spec.queue, spec.name, serde_json::json!({}))
        .max_attempts(spec.max_attempts)
        .idempotency_key(format!("{}:{slot}", spec.name));
    Ok(store.enqueue(job).await?.created)
}

/// Maximum pause between two checks for a periodic job's current slot.
const SLOT_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// Start (Unix seconds) of the slot that contains `now`.
fn slot_start(now: i64, interval: Duration, offset: Duration) -> i64 {
    let interval = i64::try_from(interval.as_secs().max(1)).unwrap_or(300);
    let offset = i64::try_from(offset.as_secs()).unwrap_or(0) % interval;
    (now - offset).div_euclid(interval) * interval + offset
}

/// Runs the periodic schedules until shutdown, each starting at once: the reminder scheduler,
/// the payment sync sweep, Stripe reconciliation, the database backup and the backup verification
/// (each enqueued once per time slot across processes), and retention every hour. The verification
/// slots start half an interval after the backup slots, so it checks a backup some hours old and
/// finds a day without a new backup.
pub(crate) async fn run_schedules(runtime: Runtime, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    let config = &runtime.config;
    let periodic = [
        (config.scheduler_interval, kinds::SCHEDULE_REMINDERS, false),
        (config.payment_sweep_interval, kinds::SWEEP_PAYMENTS, false),
        (
            config.stripe_reconcile_interval,
            kinds::RECONCILE_STRIPE_EVENTS,
            false,
        ),
        (config.backup_interval, kinds::BACKUP_DATABASE, false),
        (config.backup_verify_interval, kinds::VERIFY_BACKUPS, true),
    ];
    for (interval, kind, half_offset) in periodic {
        let Some(interval) = interval else {
            continue;
        };
        let offset = if half_offset {
            interval / 2
        } else {
            Duration::ZERO
        };
        let store = runtime.ctx.store.clone();
        let clock = runtime.ctx.clock.clone();
        // Long intervals are checked every few minutes: the slot's key makes the extra tries free,
        // and a process started late in a slot still runs the next slot as soon as it begins.
        let check_every = interval.min(SLOT_CHECK_INTERVAL);
        tasks.spawn(every(check_every, shutdown.clone(), move || {
            let store = store.clone();
            let now = clock.now();
            async move {
                match enqueue_slot_job(&store, kind, now, interval, offset).await {
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
            Duration::from_secs(3600),
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
async fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut action: F)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_start_with_offset() {
        let day = Duration::from_secs(86_400);
        // 2026-12-04T00:00:00Z and 08:00.
        let midnight = 1_796_342_400;
        let now = midnight + 8 * 3600;
        assert_eq!(slot_start(now, day, Duration::ZERO), midnight);
        // Before noon, the verification slot is the one that started at noon the day before.
        assert_eq!(slot_start(now, day, day / 2), midnight - 12 * 3600);
        assert_eq!(
            slot_start(now + 5 * 3600, day, day / 2),
            midnight + 12 * 3600
        );
    }
}
