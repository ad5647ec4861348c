//! The fetcher: claims due jobs up to the worker's free capacity and hands them to the worker.

use std::sync::Arc;
use std::time::Duration;

use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, warn};

use super::backend::Shared;
use super::claim::{self, ClaimedRow};
use crate::{JobId, JobMeta};

/// The NOTIFY channel of the job table's trigger; the payload is the queue name.
pub(crate) const CHANNEL: &str = "duespark_queue_jobs";

/// Maximum wait for more free slots before a small claim.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

/// Free slots below which a busy worker waits briefly before claiming.
fn min_claim(concurrency: usize) -> usize {
    (concurrency / 4).max(1)
}

/// Claims and dispatches jobs until shutdown. Database errors never end it: it retries with
/// exponential backoff up to 30 s.
pub(crate) async fn run_fetcher<Args: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Task<Args>>,
    worker: WorkerContext,
) {
    let notified = Arc::new(Notify::new());
    if shared.config.listen {
        tokio::spawn(listen(shared.clone(), notified.clone()));
    }
    let mut error_delay = ErrorDelay::default();

    while !shared.stop_claiming.is_cancelled() {
        // A stopping worker claims nothing more; what it holds is released or finished.
        if worker.is_shutting_down() {
            shared.stop_claiming.cancel();
            return;
        }
        // Results waiting for the completer count as busy slots.
        let busy = || shared.held_count() + shared.completer.pending();
        let free = shared.config.concurrency.saturating_sub(busy());
        if free == 0 {
            tokio::select! {
                () = shared.capacity_freed.notified() => {}
                () = shared.stop_claiming.cancelled() => return,
            }
            continue;
        }
        // While most slots are busy, let a few more free up before claiming, so a busy worker
        // claims in batches rather than one job per round trip.
        let free = if free < min_claim(shared.config.concurrency) && busy() > 0 {
            tokio::select! {
                () = tokio::time::sleep(CLAIM_GATHER) => {}
                () = shared.stop_claiming.cancelled() => return,
            }
            shared.config.concurrency.saturating_sub(busy())
        } else {
            free
        };

        let limit = free.min(shared.config.claim_batch.max(1));
        let rows = match claim::claim(
            &shared.pool,
            &shared.config.queue,
            &shared.owner,
            limit,
            shared.config.lease_duration,
        )
        .await
        {
            Ok(rows) => rows,
            Err(error) => {
                let delay = error_delay.next();
                warn!(worker = %shared.owner, %error, delay_ms = delay.as_millis() as u64, "claiming jobs failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.stop_claiming.cancelled() => return,
                }
                continue;
            }
        };
        error_delay = ErrorDelay::default();

        let claimed = rows.len();
        shared.hold(rows.iter().map(|row| row.id));
        for row in rows {
            dispatch(&shared, &sender, row).await;
        }
        if claimed == limit {
            // A full batch: more jobs are probably due, so claim again as soon as there is room.
            continue;
        }

        let wait = next_wait(&shared).await;
        tokio::select! {
            () = notified.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = shared.stop_claiming.cancelled() => return,
        }
    }
}

/// Decodes a claimed job and hands it to the worker; an undecodable payload makes the job dead.
async fn dispatch<Args: DeserializeOwned>(
    shared: &Shared,
    sender: &mpsc::UnboundedSender<Task<Args>>,
    row: ClaimedRow,
) {
    let id = row.id;
    shared
        .config
        .metrics
        .waited(&shared.config.queue, row.wait_seconds);
    let args = match serde_path_to_error::deserialize::<_, Args>(row.payload) {
        Ok(args) => args,
        Err(error) => {
            let message = format!("the payload does not decode as a {} job: {error}", row.kind);
            warn!(job.id = id, job.kind = %row.kind, %message, "job is dead");
            match claim::mark_undecodable(&shared.pool, &shared.owner, id, row.attempt, &message)
                .await
            {
                Ok(()) => shared
                    .config
                    .metrics
                    .finished(&shared.config.queue, &row.kind, "dead"),
                Err(error) => {
                    warn!(job.id = id, %error, "failed to mark an undecodable job dead; it is rescued when its lease expires")
                }
            }
            shared.let_go(id);
            return;
        }
    };

    let meta = JobMeta {
        id: JobId(id),
        queue: shared.config.queue.clone(),
        kind: row.kind,
        attempt: u32::try_from(row.attempt).unwrap_or(1),
        max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
    };
    let task = TaskBuilder::new(args)
        .task_id(TaskId::from_int(u64::try_from(id).unwrap_or_default()))
        .attempt(usize::try_from(row.attempt).unwrap_or(1))
        .max_attempts(usize::try_from(row.max_attempts).unwrap_or(1))
        .data(meta)
        .build();
    if sender.send(task).is_err() {
        // The worker is gone: give the job back without using its attempt.
        let _ = claim::release(&shared.pool, &shared.owner, &[id]).await;
        shared.let_go(id);
    }
}

/// Computes the sleep when nothing is due: until the next scheduled job, at most the poll interval.
async fn next_wait(shared: &Shared) -> Duration {
    let poll = shared.config.poll_interval;
    match claim::seconds_until_next(&shared.pool, &shared.config.queue).await {
        Ok(Some(seconds)) if seconds.is_finite() => {
            Duration::from_secs_f64(seconds.max(0.0)).min(poll)
        }
        Ok(_) => poll,
        Err(error) => {
            debug!(%error, "reading the next run time failed; polling instead");
            poll
        }
    }
}

/// Forwards notifications for this queue to the fetcher, reconnecting with backoff.
async fn listen(shared: Arc<Shared>, notified: Arc<Notify>) {
    let mut error_delay = ErrorDelay::default();
    while !shared.stop_claiming.is_cancelled() {
        let mut listener = match PgListener::connect_with(&shared.pool).await {
            Ok(listener) => listener,
            Err(error) => {
                wait_after_error(&shared, &mut error_delay, &error).await;
                continue;
            }
        };
        // sqlx would otherwise reconnect inside `recv` in a loop without any delay, which turns a
        // server that accepts and drops connections into a connection storm. Reconnecting here
        // goes through the backoff instead.
        listener.eager_reconnect(false);
        if let Err(error) = listener.listen(CHANNEL).await {
            wait_after_error(&shared, &mut error_delay, &error).await;
            continue;
        }
        // Jobs may have become due while no listener was connected.
        notified.notify_one();

        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        // The backoff resets only once the connection has proven itself.
                        error_delay = ErrorDelay::default();
                        if notification.payload() == shared.config.queue {
                            notified.notify_one();
                        }
                    }
                    Ok(None) => {
                        wait_after_error(&shared, &mut error_delay, &"the connection was closed").await;
                        break;
                    }
                    Err(error) => {
                        wait_after_error(&shared, &mut error_delay, &error).await;
                        break;
                    }
                },
                () = shared.stop_claiming.cancelled() => return,
            }
        }
    }
}

async fn wait_after_error(
    shared: &Shared,
    error_delay: &mut ErrorDelay,
    error: &(dyn std::fmt::Display + Sync),
) {
    let delay = error_delay.next();
    warn!(worker = %shared.owner, %error, delay_ms = delay.as_millis() as u64, "job notifications unavailable; polling until reconnected");
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shared.stop_claiming.cancelled() => {}
    }
}

/// Exponential delay after consecutive database errors: 100 ms doubling to 30 s, with jitter.
struct ErrorDelay {
    next: Duration,
}

impl Default for ErrorDelay {
    fn default() -> Self {
        ErrorDelay {
            next: Duration::from_millis(100),
        }
    }
}

impl ErrorDelay {
    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        delay + delay.mul_f64(rand::random::<f64>() / 2.0)
    }
}
