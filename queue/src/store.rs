//! Enqueue and lookup over the backend's job table.

use apalis_core::task::{builder::TaskBuilder, task_id::TaskId};
use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgPool};

use crate::attempts;
use crate::{JobEnvelope, JobId, JobInfo, JobStatus, NewJob, QueueError};

/// The result of an enqueue: the job's id and whether this call created it. `created` is false
/// when a job with the same idempotency key already existed in that queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    pub created: bool,
}

/// Handle to the job store, cheap to clone.
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: PgPool,
}

impl JobStore {
    pub fn new(pool: PgPool) -> Self {
        JobStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Enqueues one job in its own transaction.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut tx = self.pool.begin().await?;
        let enqueued = enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        Ok(enqueued)
    }

    /// Reads one job, or `None` when no job has that id.
    pub async fn get(&self, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let row = sqlx::query_as::<_, JobRow>(
            r#"
            SELECT id, job_type, job, status, attempts, max_attempts, run_at, done_at, last_result::text
            FROM apalis.jobs
            WHERE id = $1
            "#,
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };

        let history = attempts::summary(&self.pool, id).await?;
        Ok(Some(row.into_info(history, Utc::now())))
    }
}

/// Enqueues a job inside the caller's transaction or connection, so the job exists exactly when the
/// caller's rows do. A duplicate idempotency key returns the existing job and leaves the caller's
/// transaction usable (the insert runs under a savepoint).
pub async fn enqueue_in(conn: &mut PgConnection, job: NewJob) -> Result<Enqueued, QueueError> {
    validate(&job)?;

    if let Some(key) = &job.idempotency_key
        && let Some(id) = find_by_idempotency_key(conn, &job.queue, key).await?
    {
        return Ok(Enqueued { id, created: false });
    }

    let id = JobId::generate();
    let task = build_task(&id, &job)?;

    let mut savepoint = conn.begin().await?;
    let pushed =
        apalis_postgres::queries::push_tasks(&mut *savepoint, &job.queue, vec![task]).await;
    match pushed {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(Enqueued { id, created: true })
        }
        Err(error) if is_unique_violation(&error) && job.idempotency_key.is_some() => {
            savepoint.rollback().await?;
            let key = job.idempotency_key.as_deref().unwrap_or_default();
            let id = find_by_idempotency_key(conn, &job.queue, key)
                .await?
                .ok_or_else(|| {
                    QueueError::InvalidJob(format!(
                        "idempotency key {key:?} conflicted but no job has it"
                    ))
                })?;
            Ok(Enqueued { id, created: false })
        }
        Err(error) => Err(error.into()),
    }
}

fn validate(job: &NewJob) -> Result<(), QueueError> {
    if job.queue.is_empty() || job.kind.is_empty() {
        return Err(QueueError::InvalidJob(
            "queue and kind must not be empty".into(),
        ));
    }
    if job.max_attempts == 0 {
        return Err(QueueError::InvalidJob(
            "max_attempts must be at least 1".into(),
        ));
    }
    Ok(())
}

fn build_task(id: &JobId, job: &NewJob) -> Result<apalis_postgres::PgTask, QueueError> {
    let envelope = JobEnvelope {
        kind: job.kind.clone(),
        payload: job.payload.clone(),
    };
    let bytes = serde_json::to_vec(&envelope)
        .map_err(|error| QueueError::InvalidJob(format!("payload does not serialize: {error}")))?;

    let mut builder = TaskBuilder::new(bytes)
        .task_id(TaskId::from_string(id.as_str()))
        .priority(usize::from(job.priority))
        .max_attempts(job.max_attempts as usize);
    // NOTE: the backend stores run_at in whole seconds, so a job may start up to a second early.
    if let Some(run_at) = job.run_at {
        builder = builder.run_at_timestamp(u64::try_from(run_at.timestamp()).unwrap_or(0));
    }
    if let Some(key) = &job.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    Ok(builder.build())
}

async fn find_by_idempotency_key(
    conn: &mut PgConnection,
    queue: &str,
    key: &str,
) -> Result<Option<JobId>, QueueError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = $2",
    )
    .bind(queue)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(JobId))
}

fn is_unique_violation(error: &apalis_postgres::Error) -> bool {
    match error {
        apalis_postgres::Error::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
        _ => false,
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    job_type: String,
    job: Vec<u8>,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    done_at: Option<DateTime<Utc>>,
    last_result: Option<String>,
}

impl JobRow {
    fn into_info(self, history: attempts::Summary, now: DateTime<Utc>) -> JobInfo {
        let kind = serde_json::from_slice::<JobEnvelope>(&self.job)
            .map(|envelope| envelope.kind)
            .unwrap_or_else(|_| "unknown".to_owned());
        let attempts = history
            .attempts
            .max(u32::try_from(self.attempts).unwrap_or(0));
        let status = JobStatus::from_backend(
            &self.status,
            self.attempts,
            self.max_attempts,
            self.run_at,
            now,
        );
        let finished_at = match status {
            JobStatus::Done | JobStatus::Dead | JobStatus::Cancelled => self.done_at,
            _ => None,
        };
        let backend_error = match status {
            JobStatus::Dead | JobStatus::Retrying => self.last_result,
            _ => None,
        };
        let last_error = history.last_error.or(backend_error);
        let id = JobId(self.id);
        JobInfo {
            created_at: id.created_at(),
            id,
            queue: self.job_type,
            kind,
            status,
            attempts,
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(0),
            last_error,
            run_at: self.run_at,
            finished_at,
        }
    }
}
