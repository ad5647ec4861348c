//! State shared by job handlers: the database, the job store, templates, the mailer and the clock.

use std::sync::Arc;

use duespark_queue::JobStore;
use sqlx::PgPool;

use crate::email::{Mailer, SendRateLimiter, Templates};
use crate::reminders::schedule::Clock;

/// Shared state of all job handlers in one process.
pub struct JobContext {
    pub pool: PgPool,
    pub store: JobStore,
    pub templates: Templates,
    pub mailer: Mailer,
    pub mail_limiter: SendRateLimiter,
    /// The address part of `MAIL_FROM`; the display name is the account's sender name.
    pub mail_from: String,
    pub clock: Arc<dyn Clock>,
    /// The Stripe API client of payment sync; without a key its calls fail permanently.
    pub stripe: crate::stripe::client::StripeClient,
    /// The Stripe mode this deployment applies (`STRIPE_LIVEMODE`).
    pub stripe_livemode: bool,
    /// Backup locations, retention and the PostgreSQL tools' folder.
    pub backups: crate::backups::BackupSettings,
}
