//! The `duespark` binary's library: configuration, logging, the wiring of the crates into
//! processes (API, workers, both in `dev`), the local PostgreSQL helper and demo data.
//!
//! Layout of the workspace:
//! - `queue/`: the job store (schema, enqueue, lookup, attempt history).
//! - `jobs/`: the domain and job handlers (invoices, reminders, email delivery).
//! - `worker/`: the runtime that runs the queues.
//! - `api/`: the HTTP API; `dashboard/`: the ops web UI mounted by the API.

pub mod app;
pub mod backup_cmd;
pub mod bench;
pub mod cli;
pub mod config;
pub mod local_pg;
pub mod logging;
pub mod seed;
