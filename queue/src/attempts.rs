//! The attempt history: one row per attempt, written by the worker around each handler call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::QueueError;

/// One attempt of a job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AttemptRecord {
    pub attempt: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// Records that `worker` started attempt number `attempt` (from 1) of a job.
pub async fn start_attempt(
    pool: &PgPool,
    job_id: &str,
    attempt: u32,
    worker: &str,
) -> Result<(), QueueError> {
    sqlx::query(
        r#"
        INSERT INTO duespark_queue.job_attempts (job_id, attempt, worker)
        VALUES ($1, $2, $3)
        ON CONFLICT (job_id, attempt) DO UPDATE
            SET worker = EXCLUDED.worker, started_at = clock_timestamp(), finished_at = NULL, error = NULL
        "#,
    )
    .bind(job_id)
    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records the end of an attempt, with its error when it failed.
pub async fn finish_attempt(
    pool: &PgPool,
    job_id: &str,
    attempt: u32,
    error: Option<&str>,
) -> Result<(), QueueError> {
    sqlx::query(
        r#"
        UPDATE duespark_queue.job_attempts
        SET finished_at = clock_timestamp(), error = $3
        WHERE job_id = $1 AND attempt = $2
        "#,
    )
    .bind(job_id)
    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lists a job's attempts, first to last.
pub async fn list(pool: &PgPool, job_id: &str) -> Result<Vec<AttemptRecord>, QueueError> {
    let rows = sqlx::query_as::<_, AttemptRecord>(
        r#"
        SELECT attempt, worker, started_at, finished_at, error
        FROM duespark_queue.job_attempts
        WHERE job_id = $1
        ORDER BY attempt
        "#,
    )
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

pub(crate) struct Summary {
    pub attempts: u32,
    pub last_error: Option<String>,
}

pub(crate) async fn summary(pool: &PgPool, job_id: &str) -> Result<Summary, QueueError> {
    let rows = list(pool, job_id).await?;
    let attempts = rows.len() as u32;
    let last_error = rows.iter().rev().find_map(|row| row.error.clone());
    Ok(Summary {
        attempts,
        last_error,
    })
}

/// How many attempts a job has used so far, and its limit, read before the next attempt starts.
pub async fn attempt_state(pool: &PgPool, job_id: &str) -> Result<Option<(u32, u32)>, QueueError> {
    let row: Option<(i64, i32)> = sqlx::query_as(
        r#"
        SELECT (SELECT count(*) FROM duespark_queue.job_attempts a WHERE a.job_id = j.id), j.max_attempts
        FROM apalis.jobs j
        WHERE j.id = $1
        "#,
    )
    .bind(job_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(used, max)| {
        (
            u32::try_from(used).unwrap_or(u32::MAX),
            u32::try_from(max).unwrap_or(1),
        )
    }))
}
