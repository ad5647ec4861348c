//! The job store: DueSpark's PostgreSQL queues.
//!
//! This crate owns the job tables and every query on them: enqueue (alone or inside a caller's
//! transaction), lookup, and the attempt history. It knows nothing of invoices or emails. The rows
//! are stored by apalis-postgres for now; callers only see the types here, so the backend can be
//! replaced without touching them.

mod attempts;
mod error;
mod job;
mod migrate;
mod store;

pub use attempts::{
    AttemptRecord, attempt_state, finish_attempt, list as list_attempts, start_attempt,
};
pub use error::QueueError;
pub use job::{JobEnvelope, JobId, JobInfo, JobStatus, NewJob};
pub use migrate::migrate;
pub use store::{Enqueued, JobStore, enqueue_in};

/// The apalis-postgres storage type that workers consume, re-exported so that the worker runtime
/// does not name the backend crate's types on its own.
pub type Storage = apalis_postgres::PostgresStorage<JobEnvelope>;
pub use apalis_postgres::Config as StorageConfig;
