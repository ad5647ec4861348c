//! Metrics of the engine in one worker process: attempts by outcome, their durations, the wait
//! between a job coming due and its start, and rescued jobs. Labels are the queue, the job kind
//! and the outcome, all from closed sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of attempt durations, in seconds: 5 ms to 10 minutes.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

/// Buckets of queue waits, in seconds: 5 ms to 1 hour.
const WAIT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    queue: String,
    kind: String,
    /// `done` or `dead`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    queue: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

#[derive(Clone)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The engine's metrics; clones share the values. Register them once per process with
/// [`EngineMetrics::register`] and give the same value to every queue's engine.
#[derive(Clone)]
pub struct EngineMetrics {
    finished: Family<OutcomeLabels, Counter>,
    retries: Family<KindLabels, Counter>,
    attempt_duration: Family<KindLabels, Histogram, Buckets>,
    queue_wait: Family<QueueLabels, Histogram, Buckets>,
    rescued: Family<QueueLabels, Counter>,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineMetrics")
    }
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            finished: Family::default(),
            retries: Family::default(),
            attempt_duration: Family::new_with_constructor(Buckets(&DURATION_BUCKETS)),
            queue_wait: Family::new_with_constructor(Buckets(&WAIT_BUCKETS)),
            rescued: Family::default(),
        }
    }
}

impl EngineMetrics {
    /// Adds the metrics to `registry`, whose prefix is expected to be `duespark`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "jobs_finished",
            "Jobs that finished in this process, by queue, kind and outcome (done or dead)",
            self.finished.clone(),
        );
        registry.register(
            "job_retries",
            "Failed attempts that will be retried, by queue and kind",
            self.retries.clone(),
        );
        registry.register(
            "job_attempt_duration_seconds",
            "Duration of job attempts, by queue and kind",
            self.attempt_duration.clone(),
        );
        registry.register(
            "job_queue_wait_seconds",
            "Time from a job coming due to the start of its attempt, by queue",
            self.queue_wait.clone(),
        );
        registry.register(
            "jobs_rescued",
            "Jobs taken back from workers that stopped sending heartbeats, by queue",
            self.rescued.clone(),
        );
    }

    pub(crate) fn finished(&self, queue: &str, kind: &str, outcome: &'static str) {
        self.finished
            .get_or_create(&OutcomeLabels {
                queue: queue.to_string(),
                kind: kind.to_string(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn retried(&self, queue: &str, kind: &str) {
        self.retries.get_or_create(&kind_labels(queue, kind)).inc();
    }

    pub(crate) fn attempt_took(&self, queue: &str, kind: &str, seconds: f64) {
        self.attempt_duration
            .get_or_create(&kind_labels(queue, kind))
            .observe(seconds);
    }

    pub(crate) fn waited(&self, queue: &str, seconds: f64) {
        self.queue_wait
            .get_or_create(&QueueLabels {
                queue: queue.to_string(),
            })
            .observe(seconds.max(0.0));
    }

    pub(crate) fn rescued(&self, queue: &str, count: u64) {
        self.rescued
            .get_or_create(&QueueLabels {
                queue: queue.to_string(),
            })
            .inc_by(count);
    }
}

fn kind_labels(queue: &str, kind: &str) -> KindLabels {
    KindLabels {
        queue: queue.to_string(),
        kind: kind.to_string(),
    }
}
