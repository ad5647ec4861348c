//! The job store: DueSpark's PostgreSQL queues.
//!
//! This crate owns the job table and every query on it. Producers enqueue through [`JobStore`] or
//! [`enqueue_in`] (inside their own transaction). The API and the dashboard inspect and act on
//! jobs through [`JobStore`]. Workers consume a queue through [`PgBackend`], an apalis-core
//! backend. The crate has no notion of invoices or emails.
//!
//! Job lifecycle (the same words in the API and the dashboard):
//!
//! ```text
//!  enqueue ──► scheduled ──(run_at)──► pending ──claim──► running ──ok──► done
//!                  ▲                                   │   │
//!                  └───────────── snooze ──────────────┘   ├─retryable──► retrying ──(run_at)──► running
//!                                                          ├─permanent / last attempt──► dead
//!                                                          └─cancel requested──► cancelled
//! ```
//! A person may cancel scheduled, pending, retrying and dead jobs, and retry dead, cancelled and
//! retrying ones. A job whose worker stops sending heartbeats is rescued to `retrying` (or `dead`
//! on its last attempt).

mod engine;
mod error;
mod job;
mod migrate;
mod store;

pub use engine::{
    EngineConfig, EngineMetrics, JobFailure, PgBackend, ResultLayer, ResultService, RetryBackoff,
};
pub use error::QueueError;
pub use job::{AttemptError, DEFAULT_MAX_ATTEMPTS, JobId, JobInfo, JobMeta, JobStatus, NewJob};
pub use migrate::migrate;
pub use store::{
    ActionError, CappedCount, Enqueued, FinishedPerMinute, GroupedEnqueuer, JobFilter, JobLease,
    JobPage, JobStore, QueueCounts, QueueStatusCount, RetentionPolicy, WorkerInfo,
    enqueue_batch_in, enqueue_in,
};
