//! Retention: finished jobs are deleted in small batches once they are old enough.

use std::time::Duration;

use super::JobStore;
use crate::QueueError;

/// How long finished jobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// For done and cancelled jobs.
    pub finished: Duration,
    pub dead: Duration,
    /// Rows deleted per statement, so no statement holds many locks for long.
    pub batch_size: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            finished: Duration::from_secs(7 * 86_400),
            dead: Duration::from_secs(30 * 86_400),
            batch_size: 1000,
        }
    }
}

impl JobStore {
    /// Deletes finished jobs older than the policy allows; returns how many were deleted.
    pub async fn delete_expired(&self, policy: &RetentionPolicy) -> Result<u64, QueueError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                r#"
                DELETE FROM duespark_queue.jobs
                WHERE id IN (
                    SELECT id FROM duespark_queue.jobs
                    WHERE (status IN ('done', 'cancelled') AND finished_at < now() - make_interval(secs => $1))
                       OR (status = 'dead' AND finished_at < now() - make_interval(secs => $2))
                    LIMIT $3
                )
                "#,
            )
            .bind(policy.finished.as_secs_f64())
            .bind(policy.dead.as_secs_f64())
            .bind(i64::from(policy.batch_size.max(1)))
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < u64::from(policy.batch_size.max(1)) {
                return Ok(total);
            }
        }
    }
}
