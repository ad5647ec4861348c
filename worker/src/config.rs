//! Settings of the worker runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use duespark_queue::RetentionPolicy;

/// Settings of the workers of one process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues this process works on.
    pub queues: Vec<String>,
    /// Jobs run at the same time per queue; a queue missing here uses `default_concurrency`.
    pub concurrency: BTreeMap<String, usize>,
    pub default_concurrency: usize,
    /// Fallback poll interval for when no notification arrives.
    pub poll_interval: Duration,
    /// Listen for notifications of due jobs; turn off behind PgBouncer in transaction mode.
    pub listen: bool,
    /// A job's lease; a worker that misses heartbeats this long loses its jobs to the rescuer.
    pub lease_duration: Duration,
    pub heartbeat_interval: Duration,
    pub rescue_interval: Duration,
    /// How long a stopping worker waits for its running jobs.
    pub drain_timeout: Duration,
    /// How often the reminder scheduler runs; `None` leaves periodic schedules to other processes.
    pub scheduler_interval: Option<Duration>,
    /// How often open invoices with Stripe ids are synced; `None` turns the sweep off here.
    pub payment_sweep_interval: Option<Duration>,
    /// How often missed Stripe events are reconciled; `None` turns it off in this process.
    pub stripe_reconcile_interval: Option<Duration>,
    /// How often a database backup is taken and verified; `None` turns it off in this process.
    pub backup_interval: Option<Duration>,
    /// How often the newest backup in each location is verified, at half an interval after each
    /// backup slot; `None` turns it off in this process.
    pub backup_verify_interval: Option<Duration>,
    /// How long finished jobs are kept; `None` turns retention off in this process.
    pub retention: Option<RetentionPolicy>,
    /// Replaces every kind's first retry delay, for tests and local runs that cannot wait.
    pub backoff_base_override: Option<Duration>,
    /// The engine's metrics, shared by the workers of every queue in this process.
    pub metrics: duespark_queue::EngineMetrics,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            queues: duespark_jobs::kinds::queues::ALL
                .iter()
                .map(|queue| queue.to_string())
                .collect(),
            concurrency: BTreeMap::new(),
            default_concurrency: 4,
            poll_interval: Duration::from_secs(1),
            listen: true,
            // With a 30 s lease and a rescue every 10 s, a dead worker's jobs run again within 40 s.
            lease_duration: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            rescue_interval: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            scheduler_interval: Some(Duration::from_secs(300)),
            payment_sweep_interval: Some(Duration::from_secs(3600)),
            stripe_reconcile_interval: Some(Duration::from_secs(24 * 3600)),
            backup_interval: Some(Duration::from_secs(24 * 3600)),
            backup_verify_interval: Some(Duration::from_secs(24 * 3600)),
            retention: Some(RetentionPolicy::default()),
            backoff_base_override: None,
            metrics: duespark_queue::EngineMetrics::default(),
        }
    }
}

impl WorkerConfig {
    pub fn concurrency_of(&self, queue: &str) -> usize {
        self.concurrency
            .get(queue)
            .copied()
            .unwrap_or(self.default_concurrency)
            .max(1)
    }
}
