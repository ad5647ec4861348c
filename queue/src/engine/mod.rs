//! The worker side of the job store: an apalis-core backend over `duespark_queue.jobs`.
//!
//! A [`PgBackend`] serves one queue to one apalis worker. Behind it run four tokio tasks:
//! - the fetcher claims due jobs with `FOR UPDATE SKIP LOCKED`, never more than the worker's free
//!   capacity, and wakes on LISTEN/NOTIFY, on a timer for the next scheduled job and on polling;
//! - the heartbeat extends the leases of every job this worker holds, however long they run;
//! - the rescuer returns jobs whose lease expired (their worker died) to the queue;
//! - the completer writes successful results in batches.
//!
//! Results are written by [`ResultLayer`], the backend's middleware, fenced by job id, attempt and
//! lease owner, so the result of a worker that lost its lease is rejected. Failures become
//! durable retries with backoff, snoozes or dead jobs; nothing is retried in memory.

mod backend;
mod claim;
mod completer;
mod config;
mod failure;
mod fetcher;
mod lease;
mod metrics;
mod result;

pub use backend::PgBackend;
pub use config::{EngineConfig, RetryBackoff};
pub use failure::JobFailure;
pub use metrics::EngineMetrics;
pub use result::{ResultLayer, ResultService};
