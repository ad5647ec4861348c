//! Actions on jobs and queues by people: retry, cancel, pause and resume.

use super::JobStore;
use crate::{JobId, JobInfo, QueueError};

/// The reason an action was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {id} is {status}, so it cannot be {action}")]
    InvalidState {
        id: JobId,
        status: String,
        action: &'static str,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for ActionError {
    fn from(error: sqlx::Error) -> Self {
        ActionError::Queue(error.into())
    }
}

impl JobStore {
    /// Runs a dead, cancelled or retrying job again now. A job that used up its attempts gets one
    /// more.
    pub async fn retry(&self, id: JobId) -> Result<JobInfo, ActionError> {
        let updated = sqlx::query(
            r#"
            UPDATE duespark_queue.jobs
            SET status = 'pending', run_at = now(), finished_at = NULL, cancel_requested = false,
                max_attempts = greatest(max_attempts, attempt + 1)
            WHERE id = $1 AND status IN ('dead', 'cancelled', 'retrying')
            "#,
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.after_action(id, updated, "retried").await
    }

    /// Cancels a job. A scheduled, pending, retrying or dead job is cancelled at once ("discard"
    /// for a dead or retrying one). A running job is marked so that it ends `cancelled` after its
    /// current attempt instead of being retried.
    pub async fn cancel(&self, id: JobId) -> Result<JobInfo, ActionError> {
        let updated = sqlx::query(
            r#"
            UPDATE duespark_queue.jobs
            SET status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
                finished_at = CASE WHEN status = 'running' THEN finished_at ELSE now() END,
                cancel_requested = true
            WHERE id = $1 AND status IN ('scheduled', 'pending', 'retrying', 'dead', 'running')
            "#,
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.after_action(id, updated, "cancelled").await
    }

    async fn after_action(
        &self,
        id: JobId,
        updated: u64,
        action: &'static str,
    ) -> Result<JobInfo, ActionError> {
        let job = self.get(id).await?.ok_or(ActionError::NotFound(id))?;
        if updated == 0 {
            return Err(ActionError::InvalidState {
                id,
                status: job.status.to_string(),
                action,
            });
        }
        Ok(job)
    }

    /// Pauses a queue: its jobs wait, and workers claim none until it is resumed.
    pub async fn pause_queue(&self, queue: &str) -> Result<(), QueueError> {
        sqlx::query(
            "INSERT INTO duespark_queue.paused_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(queue)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Resumes a paused queue and wakes its workers.
    pub async fn resume_queue(&self, queue: &str) -> Result<(), QueueError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM duespark_queue.paused_queues WHERE queue = $1")
            .bind(queue)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify('duespark_queue_jobs', $1)")
            .bind(queue)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lists the paused queues.
    pub async fn paused_queues(&self) -> Result<Vec<String>, QueueError> {
        Ok(
            sqlx::query_scalar("SELECT queue FROM duespark_queue.paused_queues ORDER BY queue")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
