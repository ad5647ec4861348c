//! Reading jobs: one by id, and counts by queue and status.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::JobStore;
use crate::{AttemptError, JobId, JobInfo, JobStatus, QueueError};

/// Number of jobs per queue and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub queue: String,
    pub status: JobStatus,
    pub count: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    pub(super) id: i64,
    queue: String,
    kind: String,
    payload: Value,
    status: String,
    priority: i16,
    attempt: i32,
    max_attempts: i32,
    errors: Value,
    created_at: DateTime<Utc>,
    run_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

pub(super) const JOB_COLUMNS: &str = "id, queue, kind, payload, status, priority, attempt, max_attempts, errors, created_at, run_at, started_at, finished_at";

impl JobRow {
    pub(super) fn into_info(self, now: DateTime<Utc>) -> JobInfo {
        let errors: Vec<AttemptError> = serde_json::from_value(self.errors).unwrap_or_default();
        JobInfo {
            id: JobId(self.id),
            status: JobStatus::from_row(&self.status, self.run_at, now),
            queue: self.queue,
            kind: self.kind,
            priority: self.priority,
            attempts: u32::try_from(self.attempt).unwrap_or(0),
            max_attempts: u32::try_from(self.max_attempts).unwrap_or(0),
            last_error: errors.last().map(|error| error.message.clone()),
            errors,
            payload: self.payload,
            created_at: self.created_at,
            run_at: self.run_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

impl JobStore {
    /// Reads one job, or `None` when no job has that id.
    pub async fn get(&self, id: JobId) -> Result<Option<JobInfo>, QueueError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM duespark_queue.jobs WHERE id = $1");
        let row = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.into_info(Utc::now())))
    }

    /// Counts unfinished jobs per queue and status, plus finished ones of the last 24 hours.
    pub async fn counts(&self) -> Result<Vec<QueueCounts>, QueueError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            r#"
            SELECT queue, reported, count(*)
            FROM (
                SELECT queue,
                       CASE WHEN status IN ('scheduled', 'pending') AND run_at > now() THEN 'scheduled'
                            WHEN status IN ('scheduled', 'pending') THEN 'pending'
                            ELSE status END AS reported
                FROM duespark_queue.jobs
                WHERE status IN ('scheduled', 'pending', 'retrying')
                UNION ALL
                SELECT queue, status FROM duespark_queue.jobs WHERE status = 'running'
                UNION ALL
                SELECT queue, status FROM duespark_queue.jobs
                WHERE status IN ('done', 'dead', 'cancelled') AND finished_at > now() - interval '24 hours'
            ) AS jobs
            GROUP BY 1, 2
            ORDER BY 1, 2
            "#,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(queue, status, count)| {
                Some(QueueCounts {
                    queue,
                    status: status.parse().ok()?,
                    count,
                })
            })
            .collect())
    }
}
