//! Group commit of single enqueues: requests that arrive while a commit is in flight are written
//! together by the next statement and commit, so many concurrent producers (HTTP requests, say)
//! share one WAL flush with `synchronous_commit` on. Each caller gets its job only after the
//! commit that made it durable.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::JobStore;
use super::enqueue::{enqueue_batch_in, validate};
use super::inspect::{JOB_COLUMNS, JobRow};
use crate::{JobInfo, NewJob, QueueError};

/// Most jobs written by one statement.
const MAX_GROUP: usize = 500;

type Reply = oneshot::Sender<Result<JobInfo, Arc<QueueError>>>;

/// Enqueues single jobs with group commit; cheap to clone. The writer task ends when every
/// clone is dropped.
#[derive(Clone)]
pub struct GroupedEnqueuer {
    sender: mpsc::Sender<(NewJob, Reply)>,
}

impl std::fmt::Debug for GroupedEnqueuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupedEnqueuer")
    }
}

impl GroupedEnqueuer {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: JobStore) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_GROUP * 4);
        tokio::spawn(write_groups(store, receiver));
        GroupedEnqueuer { sender }
    }

    /// Enqueues `job` and returns it as stored, after its commit. A job with an existing
    /// idempotency key returns the existing job. An invalid job fails alone; a database error
    /// fails every job of its group.
    pub async fn enqueue(&self, job: NewJob) -> Result<JobInfo, QueueError> {
        validate(&job)?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((job, reply))
            .await
            .map_err(|_| QueueError::InvalidJob("the enqueue writer has stopped".into()))?;
        match answer.await {
            Ok(Ok(job)) => Ok(job),
            Ok(Err(error)) => Err(QueueError::Grouped(error)),
            Err(_) => Err(QueueError::InvalidJob(
                "the enqueue writer stopped before it returned the job".into(),
            )),
        }
    }
}

async fn write_groups(store: JobStore, mut receiver: mpsc::Receiver<(NewJob, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (jobs, replies): (Vec<NewJob>, Vec<Reply>) = group.drain(..).unzip();
        match write(&store, jobs).await {
            Ok(written) => {
                for (reply, job) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(job));
                }
            }
            Err(error) => {
                tracing::warn!(%error, jobs = replies.len(), "a group of enqueues failed");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Inserts `jobs` in one statement and reads them back, in one transaction.
async fn write(store: &JobStore, jobs: Vec<NewJob>) -> Result<Vec<JobInfo>, QueueError> {
    let mut tx = store.pool().begin().await?;
    let enqueued = enqueue_batch_in(&mut tx, jobs).await?;
    let ids: Vec<i64> = enqueued.iter().map(|job| job.id.0).collect();
    let sql = format!("SELECT {JOB_COLUMNS} FROM duespark_queue.jobs WHERE id = ANY($1)");
    let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    let now = Utc::now();
    // Two requests with the same idempotency key in one group share the job.
    let by_id: std::collections::HashMap<i64, JobInfo> = rows
        .into_iter()
        .map(|row| (row.id, row.into_info(now)))
        .collect();
    ids.iter()
        .map(|id| {
            by_id.get(id).cloned().ok_or_else(|| {
                QueueError::InvalidJob(format!("job {id} was not found after its insert"))
            })
        })
        .collect()
}
