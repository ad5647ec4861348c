//! DueSpark's domain and job handlers.
//!
//! This crate owns accounts, clients and invoices, the reminder policy (stages, send times,
//! eligibility), email rendering and delivery, and the registry of job kinds. It enqueues and reads
//! jobs only through `duespark-queue`; it does not depend on HTTP or on the worker runtime.

pub mod backups;
pub mod bounces;
pub mod context;
pub mod dispatch;
pub mod domain;
pub mod email;
pub mod kinds;
pub mod metrics;
pub mod outcome;
pub mod reminders;
pub mod stripe;

pub use context::JobContext;
pub use dispatch::{check_payload, run_job};
pub use outcome::JobError;
