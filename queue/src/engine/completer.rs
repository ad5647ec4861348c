//! The completer: successful results are queued here and written in batches, one statement per
//! batch, which is what lets a worker finish many short jobs per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{error, warn};

use super::claim;

enum Message {
    Done {
        id: i64,
        attempt: i32,
    },
    /// Replies once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// Handle to the completer task.
#[derive(Clone)]
pub(crate) struct Completer {
    sender: mpsc::UnboundedSender<Message>,
    /// Results queued and not yet written. The fetcher counts them against the worker's
    /// capacity, so a slow database slows the claims instead of piling up running jobs.
    pending: Arc<AtomicUsize>,
}

impl Completer {
    /// Starts the completer task for `owner`'s results; `written` is notified after each batch.
    pub(crate) fn start(
        pool: sqlx::PgPool,
        owner: Arc<str>,
        batch: usize,
        written: Arc<Notify>,
    ) -> Completer {
        let (sender, receiver) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(
            pool,
            owner,
            batch.max(1),
            receiver,
            pending.clone(),
            written,
        ));
        Completer { sender, pending }
    }

    /// Returns the number of results queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues a successful attempt for writing.
    pub(crate) fn done(&self, id: i64, attempt: i32) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(Message::Done { id, attempt }).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            error!(
                job.id = id,
                "the completer stopped; the result is lost and the job will be rescued and run again"
            );
        }
    }

    /// Waits until every queued result is written.
    pub(crate) async fn flush(&self) {
        let (sender, receiver) = oneshot::channel();
        if self.sender.send(Message::Flush(sender)).is_ok() {
            let _ = receiver.await;
        }
    }
}

async fn run(
    pool: sqlx::PgPool,
    owner: Arc<str>,
    batch: usize,
    mut receiver: mpsc::UnboundedReceiver<Message>,
    pending: Arc<AtomicUsize>,
    written: Arc<Notify>,
) {
    let mut ids = Vec::with_capacity(batch);
    let mut attempts = Vec::with_capacity(batch);
    let mut waiters = Vec::new();

    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Done { id, attempt } => {
                    ids.push(id);
                    attempts.push(attempt);
                }
                Message::Flush(waiter) => waiters.push(waiter),
            }
            if ids.len() < batch {
                next = receiver.try_recv().ok();
            }
        }

        if !ids.is_empty() {
            write(&pool, &owner, &ids, &attempts).await;
            pending.fetch_sub(ids.len(), Ordering::Relaxed);
            written.notify_one();
            ids.clear();
            attempts.clear();
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Writes one batch, retrying database errors a few times. A result that still cannot be written
/// is logged, and its job is rescued and run again when its lease expires.
async fn write(pool: &sqlx::PgPool, owner: &str, ids: &[i64], attempts: &[i32]) {
    let mut delay = std::time::Duration::from_millis(50);
    for attempt in 1..=5 {
        match claim::complete(pool, owner, ids, attempts).await {
            Ok(accepted) => {
                if accepted.len() < ids.len() {
                    let stale: Vec<i64> = ids
                        .iter()
                        .copied()
                        .filter(|id| !accepted.contains(id))
                        .collect();
                    warn!(worker = owner, jobs = ?stale, "rejected results of jobs whose lease this worker lost");
                }
                return;
            }
            Err(error) if attempt < 5 => {
                warn!(worker = owner, %error, jobs = ids.len(), "failed to write job results; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(error) => {
                error!(worker = owner, %error, jobs = ?ids, "failed to write job results; the jobs will run again after their leases expire");
            }
        }
    }
}
