//! DueSpark's domain and job handlers.
//!
//! This crate owns accounts, clients and invoices, the reminder policy (stages, send times,
//! eligibility), email rendering and delivery. It enqueues and reads jobs only through
//! `duespark-queue`; it knows nothing of HTTP or of the worker runtime.

pub mod email;
pub mod reminders;
