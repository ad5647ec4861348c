//! The worker runtime: one supervised apalis worker per queue over the job store's backend,
//! per-attempt timeouts, periodic schedules (the reminder scheduler, retention) and graceful
//! shutdown.
//!
//! Handlers live in `duespark-jobs`; retries, leases and results are the backend's business.

mod config;
mod runtime;
mod schedules;

pub use config::WorkerConfig;
pub use runtime::{Runtime, run_workers};
pub use schedules::enqueue_due_schedules;
