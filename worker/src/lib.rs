//! The worker runtime: one supervised apalis worker per queue, the in-process retry loop with
//! backoff, per-attempt timeouts, periodic schedules and graceful shutdown.
//!
//! Handlers live in `duespark-jobs`; this crate decides when and how often they run.

mod config;
mod execute;
mod runtime;
mod schedules;

pub use config::WorkerConfig;
pub use execute::execute_job;
pub use runtime::{Runtime, run_workers};
pub use schedules::enqueue_due_schedules;
