//! The registered job kinds: which queue each runs on, its attempt limit, timeout and backoff.

use std::time::Duration;

/// Queue names. Each kind belongs to exactly one.
pub mod queues {
    pub const REMINDERS: &str = "reminders";
    pub const PAYMENTS: &str = "payments";
    pub const WEBHOOKS: &str = "webhooks";
    pub const BOUNCES: &str = "bounces";
    pub const BACKUPS: &str = "backups";
    pub const MAINTENANCE: &str = "maintenance";

    pub const ALL: [&str; 6] = [REMINDERS, PAYMENTS, WEBHOOKS, BOUNCES, BACKUPS, MAINTENANCE];

    /// Returns the longest a due job of `queue` should wait for a worker: the health check and
    /// the alert rules (deploy/prometheus/alerts.yml) use the same objectives.
    pub fn wait_objective(queue: &str) -> std::time::Duration {
        let minutes = match queue {
            WEBHOOKS => 5,
            BOUNCES => 10,
            PAYMENTS => 30,
            BACKUPS => 120,
            _ => 15,
        };
        std::time::Duration::from_secs(minutes * 60)
    }
}

/// Settings of one job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    pub name: &'static str,
    /// The kind's home queue; the API rejects a job of this kind on another queue.
    pub queue: &'static str,
    pub max_attempts: u32,
    /// Maximum run time of one attempt; a longer attempt counts as failed and retryable.
    pub timeout: Duration,
    /// First retry delay; each further retry doubles it, with full jitter, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Sends one reminder email.
pub const SEND_REMINDER: &str = "reminder.send";
/// Finds the reminders that are due and enqueues them.
pub const SCHEDULE_REMINDERS: &str = "reminder.schedule";
/// Applies one stored Stripe webhook event to its invoice.
pub const PROCESS_STRIPE_EVENT: &str = "stripe.event";
/// Reads one invoice's payment objects from the Stripe API and applies them.
pub const SYNC_PAYMENT: &str = "stripe.sync";
/// Enqueues payment syncs of open invoices with Stripe ids, stalest first.
pub const SWEEP_PAYMENTS: &str = "stripe.sweep";
/// Feeds Stripe events our endpoint missed through the webhook intake.
pub const RECONCILE_STRIPE_EVENTS: &str = "stripe.reconcile";
/// Applies one stored bounce or complaint notification.
pub const PROCESS_BOUNCE: &str = "bounce.process";
/// Takes a database backup, uploads it, verifies it in each location and applies retention.
pub const BACKUP_DATABASE: &str = "backup.run";
/// Verifies the newest backup in each location.
pub const VERIFY_BACKUPS: &str = "backup.verify";
/// Does nothing: for benchmarks and smoke tests.
pub const NOOP: &str = "noop";

const KINDS: [KindSpec; 10] = [
    KindSpec {
        name: SEND_REMINDER,
        queue: queues::REMINDERS,
        max_attempts: 8,
        timeout: Duration::from_secs(120),
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(600),
    },
    KindSpec {
        name: SCHEDULE_REMINDERS,
        queue: queues::MAINTENANCE,
        max_attempts: 3,
        timeout: Duration::from_secs(300),
        backoff_base: Duration::from_secs(5),
        backoff_cap: Duration::from_secs(60),
    },
    KindSpec {
        name: PROCESS_STRIPE_EVENT,
        queue: queues::WEBHOOKS,
        max_attempts: 10,
        timeout: Duration::from_secs(60),
        backoff_base: Duration::from_secs(5),
        backoff_cap: Duration::from_secs(600),
    },
    KindSpec {
        name: SYNC_PAYMENT,
        queue: queues::PAYMENTS,
        max_attempts: 8,
        timeout: Duration::from_secs(120),
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(600),
    },
    KindSpec {
        name: SWEEP_PAYMENTS,
        queue: queues::MAINTENANCE,
        max_attempts: 3,
        timeout: Duration::from_secs(120),
        backoff_base: Duration::from_secs(10),
        backoff_cap: Duration::from_secs(300),
    },
    KindSpec {
        name: RECONCILE_STRIPE_EVENTS,
        queue: queues::MAINTENANCE,
        max_attempts: 5,
        timeout: Duration::from_secs(600),
        backoff_base: Duration::from_secs(30),
        backoff_cap: Duration::from_secs(1800),
    },
    KindSpec {
        name: PROCESS_BOUNCE,
        queue: queues::BOUNCES,
        max_attempts: 10,
        timeout: Duration::from_secs(60),
        backoff_base: Duration::from_secs(5),
        backoff_cap: Duration::from_secs(600),
    },
    KindSpec {
        name: BACKUP_DATABASE,
        queue: queues::BACKUPS,
        max_attempts: 3,
        timeout: Duration::from_secs(4 * 3600),
        backoff_base: Duration::from_secs(60),
        backoff_cap: Duration::from_secs(1800),
    },
    KindSpec {
        name: VERIFY_BACKUPS,
        queue: queues::BACKUPS,
        max_attempts: 3,
        timeout: Duration::from_secs(4 * 3600),
        backoff_base: Duration::from_secs(60),
        backoff_cap: Duration::from_secs(1800),
    },
    KindSpec {
        name: NOOP,
        queue: queues::MAINTENANCE,
        max_attempts: 3,
        // Above the longest sleep a noop payload may ask for (60 s).
        timeout: Duration::from_secs(90),
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(10),
    },
];

/// Returns the settings of a registered kind.
pub fn spec(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|spec| spec.name == kind)
}

/// Returns every registered kind.
pub fn all() -> &'static [KindSpec] {
    &KINDS
}
