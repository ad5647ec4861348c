//! Actions on many jobs at once, by people: retry the dead jobs of a queue.

use super::JobStore;
use crate::QueueError;

impl JobStore {
    /// Runs up to `limit` dead jobs of `queue` again now, oldest first, the way
    /// [`JobStore::retry`] does for one job. Returns how many jobs it retried; a result equal to
    /// `limit` means more dead jobs may remain.
    pub async fn retry_dead_in_queue(&self, queue: &str, limit: u32) -> Result<u64, QueueError> {
        let retried = sqlx::query(
            r#"
            WITH picked AS (
                SELECT id FROM duespark_queue.jobs
                WHERE queue = $1 AND status = 'dead'
                ORDER BY id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE duespark_queue.jobs j
            SET status = 'pending', run_at = now(), finished_at = NULL, cancel_requested = false,
                max_attempts = greatest(j.max_attempts, j.attempt + 1)
            FROM picked
            WHERE j.id = picked.id
            "#,
        )
        .bind(queue)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(retried)
    }
}
