//! Settings of the engine.

use std::sync::Arc;
use std::time::Duration;

/// Exponential backoff of one job kind: the wait before retry `n` is `base × 2^(n-1)`, capped at
/// `cap`, plus random jitter of up to the same amount again. Each wait therefore lies in
/// `[d, 2d)`, which spreads retries out while keeping consecutive waits from shrinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    pub base: Duration,
    pub cap: Duration,
}

impl RetryBackoff {
    /// Computes the wait after failed attempt number `attempt` (from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let nominal = self.base.saturating_mul(1 << exponent).min(self.cap);
        nominal + nominal.mul_f64(rand::random::<f64>())
    }
}

impl Default for RetryBackoff {
    fn default() -> Self {
        RetryBackoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
        }
    }
}

/// Looks up the backoff of a job kind.
pub type BackoffLookup = Arc<dyn Fn(&str) -> RetryBackoff + Send + Sync>;

/// Settings of one queue's backend.
#[derive(Clone)]
pub struct EngineConfig {
    pub queue: String,
    /// Jobs this worker runs at once; the fetcher never claims more.
    pub concurrency: usize,
    /// Fallback wake-up when no notification arrives, also behind PgBouncer in transaction mode.
    pub poll_interval: Duration,
    /// Listen for notifications of new due jobs (turn off behind PgBouncer in transaction mode).
    pub listen: bool,
    /// How long a claimed job stays leased without a heartbeat.
    pub lease_duration: Duration,
    pub heartbeat_interval: Duration,
    /// How often this worker looks for expired leases to rescue.
    pub rescue_interval: Duration,
    /// Backoff per job kind.
    pub backoff: BackoffLookup,
    /// Maximum delay a handler may request with retry-after or snooze.
    pub max_delay: Duration,
    /// Snoozes after which a job is dead, so a job cannot wait forever.
    pub max_snoozes: u32,
    /// Successful results written per statement.
    pub completer_batch: usize,
    /// Most jobs claimed in one statement; the fetcher also never claims more than the free
    /// capacity.
    pub claim_batch: usize,
    /// How long a worker waits for its running jobs when it stops.
    pub drain_timeout: Duration,
    /// Metrics of this process, shared by the engines of all its queues.
    pub metrics: super::EngineMetrics,
}

impl EngineConfig {
    /// Settings for `queue` with the defaults: leases of 30 s renewed every 5 s and rescued within
    /// about 40 s of a worker's death, a 1 s poll interval.
    pub fn new(queue: impl Into<String>, concurrency: usize) -> Self {
        EngineConfig {
            queue: queue.into(),
            concurrency: concurrency.max(1),
            poll_interval: Duration::from_secs(1),
            listen: true,
            lease_duration: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            rescue_interval: Duration::from_secs(10),
            backoff: Arc::new(|_| RetryBackoff::default()),
            max_delay: Duration::from_secs(24 * 3600),
            max_snoozes: 100,
            completer_batch: 1000,
            claim_batch: concurrency.max(1),
            drain_timeout: Duration::from_secs(30),
            metrics: super::EngineMetrics::default(),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("queue", &self.queue)
            .field("concurrency", &self.concurrency)
            .field("poll_interval", &self.poll_interval)
            .field("listen", &self.listen)
            .field("lease_duration", &self.lease_duration)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let backoff = RetryBackoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
        };
        for (attempt, nominal) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (40, 8)] {
            let delay = backoff.delay(attempt);
            assert!(
                delay >= Duration::from_secs(nominal),
                "attempt {attempt}: {delay:?}"
            );
            assert!(
                delay < Duration::from_secs(2 * nominal),
                "attempt {attempt}: {delay:?}"
            );
        }
    }
}
