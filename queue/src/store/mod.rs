//! The job table's queries for producers, the API and the dashboard: enqueue, inspection, actions
//! and retention. The worker side (claim, heartbeat, completion) lives in `engine`.

mod actions;
mod bulk;
mod enqueue;
mod grouped;
mod inspect;
mod list;
mod overview;
mod retention;

use sqlx::PgPool;

pub use actions::ActionError;
pub use enqueue::{Enqueued, enqueue_batch_in, enqueue_in};
pub use grouped::GroupedEnqueuer;
pub use inspect::QueueCounts;
pub use list::{JobFilter, JobPage};
pub use overview::{CappedCount, FinishedPerMinute, JobLease, QueueStatusCount, WorkerInfo};
pub use retention::RetentionPolicy;

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
}
