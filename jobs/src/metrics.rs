//! Metrics of the job handlers in this process: waits for rate limits, final email outcomes and
//! payments applied. They live in one process-wide value, [`job_metrics`], because the rate limits
//! and the mail code that count them sit deep in clients that have no other shared state.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Waits shorter than this are not counted: they are the limiter's own bookkeeping.
const MIN_COUNTED_WAIT: Duration = Duration::from_millis(1);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterLabels {
    /// `smtp` or `stripe`.
    limiter: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EmailLabels {
    /// `sent`, `failed`, `uncertain` or `skipped`.
    outcome: &'static str,
}

/// Counters of the job handlers; clones share the values.
#[derive(Clone, Default)]
pub struct JobMetrics {
    rate_limit_waits: Family<LimiterLabels, Counter>,
    rate_limit_wait_seconds: Family<LimiterLabels, Counter<f64, AtomicU64>>,
    emails: Family<EmailLabels, Counter>,
    payments_applied: Counter,
}

static METRICS: LazyLock<JobMetrics> = LazyLock::new(JobMetrics::default);

/// Returns the job handlers' metrics of this process.
pub fn job_metrics() -> &'static JobMetrics {
    &METRICS
}

impl JobMetrics {
    /// Adds the metrics to `registry`, whose prefix is expected to be `duespark`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rate_limit_waits",
            "Calls that waited for a rate limit, by limiter (smtp, stripe)",
            self.rate_limit_waits.clone(),
        );
        registry.register(
            "rate_limit_wait_seconds",
            "Time spent waiting for rate limits, by limiter",
            self.rate_limit_wait_seconds.clone(),
        );
        registry.register(
            "emails",
            "Reminder emails by final outcome (sent, failed, uncertain, skipped)",
            self.emails.clone(),
        );
        registry.register(
            "payments_applied",
            "Stripe payment amounts recorded against invoices",
            self.payments_applied.clone(),
        );
    }

    /// Counts a wait for rate limit `limiter` that started at `started`, if it was a real wait.
    pub(crate) fn waited_since(&self, limiter: &'static str, started: Instant) {
        let waited = started.elapsed();
        if waited < MIN_COUNTED_WAIT {
            return;
        }
        let labels = LimiterLabels { limiter };
        self.rate_limit_waits.get_or_create(&labels).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&labels)
            .inc_by(waited.as_secs_f64());
    }

    /// Counts a reminder email's final outcome.
    pub(crate) fn email(&self, outcome: &'static str) {
        self.emails.get_or_create(&EmailLabels { outcome }).inc();
    }

    /// Counts one payment amount recorded against an invoice.
    pub(crate) fn payment_applied(&self) {
        self.payments_applied.inc();
    }
}
