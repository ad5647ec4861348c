//! Settings of the worker runtime.

use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of the workers of one process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues this process works on.
    pub queues: Vec<String>,
    /// Jobs run at the same time per queue; a queue missing here uses `default_concurrency`.
    pub concurrency: BTreeMap<String, usize>,
    pub default_concurrency: usize,
    /// Fallback poll interval for when LISTEN/NOTIFY is unavailable or a scheduled job comes due.
    pub poll_interval: Duration,
    /// Interval of the backend's heartbeat; a worker missing `missed_heartbeats` of them is
    /// considered dead and its jobs are picked up again.
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    /// How often the reminder scheduler runs; `None` leaves periodic schedules to other processes.
    pub scheduler_interval: Option<Duration>,
    /// Replaces every kind's first retry delay, for tests and local runs that cannot wait.
    pub backoff_base_override: Option<Duration>,
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
            heartbeat_interval: Duration::from_secs(5),
            // 5 s × 10 = 50 s, so a dead worker's jobs are picked up within 60 seconds.
            missed_heartbeats: 10,
            scheduler_interval: Some(Duration::from_secs(300)),
            backoff_base_override: None,
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
