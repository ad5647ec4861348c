//! One job, all its attempts: record each attempt, run the handler under a timeout, and retry
//! retryable failures in process with exponential backoff and jitter.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use duespark_jobs::{Attempt, JobContext, JobError, kinds, run_job};
use duespark_queue::{JobEnvelope, attempt_state, finish_attempt, start_attempt};
use tracing::{Instrument, error, info, info_span, warn};

/// The end state of a job after all its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Failed permanently or used up its attempts; the message is the last error.
    Dead(String),
}

/// Runs a job until it succeeds, fails permanently or uses up its attempts. Attempts already made by
/// an earlier worker (recorded in the attempt history) count against the limit.
pub async fn execute_job(
    ctx: &JobContext,
    job_id: &str,
    queue: &str,
    job: &JobEnvelope,
    worker: &str,
    backoff_base_override: Option<Duration>,
) -> JobOutcome {
    let spec = kinds::spec(&job.kind);
    let timeout = spec.map_or(Duration::from_secs(60), |spec| spec.timeout);
    let (used, max) = match attempt_state(&ctx.pool, job_id).await {
        Ok(Some(state)) => state,
        Ok(None) => (0, spec.map_or(1, |spec| spec.max_attempts)),
        Err(error) => {
            error!(job.id = job_id, %error, "failed to read the job's attempt count; assuming none used");
            (0, spec.map_or(1, |spec| spec.max_attempts))
        }
    };
    let mut delays = backoff(spec, backoff_base_override);

    let mut number = used + 1;
    loop {
        let attempt = Attempt {
            number,
            max: max.max(number),
        };
        let span =
            info_span!("job", job.id = job_id, job.kind = %job.kind, queue, attempt = number);
        let result = run_attempt(ctx, job_id, job, worker, attempt, timeout)
            .instrument(span)
            .await;

        match result {
            Ok(()) => return JobOutcome::Done,
            Err(JobError::Permanent(message)) => {
                warn!(job.id = job_id, job.kind = %job.kind, attempt = number, %message, "job failed permanently");
                return JobOutcome::Dead(message);
            }
            Err(JobError::Retryable { message, .. }) if attempt.is_last() => {
                warn!(job.id = job_id, job.kind = %job.kind, attempt = number, %message, "job used up its attempts");
                return JobOutcome::Dead(message);
            }
            Err(JobError::Retryable {
                message,
                retry_after,
            }) => {
                let delay =
                    retry_after.unwrap_or_else(|| delays.next().unwrap_or(Duration::from_secs(60)));
                info!(job.id = job_id, job.kind = %job.kind, attempt = number, %message, delay_ms = delay.as_millis() as u64, "job will be retried");
                tokio::time::sleep(delay).await;
                number += 1;
            }
        }
    }
}

async fn run_attempt(
    ctx: &JobContext,
    job_id: &str,
    job: &JobEnvelope,
    worker: &str,
    attempt: Attempt,
    timeout: Duration,
) -> Result<(), JobError> {
    if let Err(error) = start_attempt(&ctx.pool, job_id, attempt.number, worker).await {
        error!(%error, "failed to record the start of an attempt");
    }

    let result = match tokio::time::timeout(timeout, run_job(ctx, job, attempt)).await {
        Ok(result) => result,
        Err(_) => Err(JobError::retryable(format!(
            "attempt timed out after {} s",
            timeout.as_secs()
        ))),
    };

    let error_text = result.as_ref().err().map(ToString::to_string);
    if let Err(error) =
        finish_attempt(&ctx.pool, job_id, attempt.number, error_text.as_deref()).await
    {
        error!(%error, "failed to record the end of an attempt");
    }
    result
}

/// Exponential backoff from the kind's base delay, doubling up to its cap, with jitter that adds up
/// to one more delay (so each wait lies in [d, 2d) and waits never shrink).
fn backoff(
    spec: Option<&kinds::KindSpec>,
    base_override: Option<Duration>,
) -> impl Iterator<Item = Duration> {
    let base = base_override
        .or(spec.map(|spec| spec.backoff_base))
        .unwrap_or(Duration::from_secs(1));
    let cap = spec
        .map_or(Duration::from_secs(600), |spec| spec.backoff_cap)
        .max(base);
    ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
}
