//! [`ResultLayer`]: records the outcome of every attempt once the handler returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use tower::{Layer, Service};
use tracing::{error, info, warn};

use super::JobFailure;
use super::backend::Shared;
use super::claim::{self, FailureOutcome};
use crate::JobMeta;

/// Tower layer that writes each attempt's result to the job table.
#[derive(Clone)]
pub struct ResultLayer {
    shared: Arc<Shared>,
}

impl ResultLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ResultLayer { shared }
    }
}

impl<S> Layer<S> for ResultLayer {
    type Service = ResultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResultService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`ResultLayer`].
#[derive(Clone)]
pub struct ResultService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, Args> Service<Task<Args>> for ResultService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxDynError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let meta = task.ctx().data().get::<JobMeta>().cloned();
        let shared = self.shared.clone();
        let future = self.inner.call(task);
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = future.await.map_err(Into::into);
            if let Some(meta) = meta {
                shared.config.metrics.attempt_took(
                    &meta.queue,
                    &meta.kind,
                    started.elapsed().as_secs_f64(),
                );
                record(&shared, &meta, result.as_ref().err()).await;
                shared.let_go(meta.id.0);
            }
            result
        })
    }
}

async fn record(shared: &Shared, meta: &JobMeta, error: Option<&BoxDynError>) {
    let attempt = i32::try_from(meta.attempt).unwrap_or(i32::MAX);
    let Some(error) = error else {
        shared.completer.done(meta.id.0, attempt);
        shared
            .config
            .metrics
            .finished(&meta.queue, &meta.kind, "done");
        return;
    };

    let failure = JobFailure::classify(error.as_ref());
    let delay = failure_delay(shared, meta, &failure);
    let mut wait = Duration::from_millis(50);
    for try_number in 1..=5 {
        match claim::record_failure(
            &shared.pool,
            &shared.owner,
            meta.id.0,
            attempt,
            &failure,
            delay,
            shared.config.max_snoozes,
        )
        .await
        {
            Ok(outcome) => {
                match outcome {
                    FailureOutcome::Retrying => {
                        shared.config.metrics.retried(&meta.queue, &meta.kind)
                    }
                    FailureOutcome::Dead => {
                        shared
                            .config
                            .metrics
                            .finished(&meta.queue, &meta.kind, "dead")
                    }
                    FailureOutcome::Snoozed | FailureOutcome::Cancelled | FailureOutcome::Stale => {
                    }
                }
                log_outcome(meta, &failure, outcome, delay);
                return;
            }
            Err(db_error) if try_number < 5 => {
                warn!(job.id = %meta.id, %db_error, "failed to record a failed attempt; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(db_error) => {
                error!(job.id = %meta.id, %db_error, "failed to record a failed attempt; the job is rescued when its lease expires");
            }
        }
    }
}

/// Computes the wait before the next run: the handler's delay (capped) or the kind's backoff.
fn failure_delay(shared: &Shared, meta: &JobMeta, failure: &JobFailure) -> Duration {
    match failure {
        JobFailure::Retry {
            after: Some(after), ..
        }
        | JobFailure::Snooze { after } => (*after).min(shared.config.max_delay),
        JobFailure::Retry { after: None, .. } => {
            (shared.config.backoff)(&meta.kind).delay(meta.attempt)
        }
        JobFailure::Permanent { .. } => Duration::ZERO,
    }
}

fn log_outcome(meta: &JobMeta, failure: &JobFailure, outcome: FailureOutcome, delay: Duration) {
    let message = failure.to_string();
    match outcome {
        FailureOutcome::Retrying => info!(
            job.id = %meta.id, job.kind = %meta.kind, queue = %meta.queue, attempt = meta.attempt,
            delay_ms = delay.as_millis() as u64, error = %message, "job failed; it will be retried"
        ),
        FailureOutcome::Snoozed => {
            info!(job.id = %meta.id, job.kind = %meta.kind, delay_ms = delay.as_millis() as u64, "job snoozed")
        }
        FailureOutcome::Dead => warn!(
            job.id = %meta.id, job.kind = %meta.kind, queue = %meta.queue, attempt = meta.attempt, error = %message, "job is dead"
        ),
        FailureOutcome::Cancelled => {
            info!(job.id = %meta.id, job.kind = %meta.kind, "job cancelled after its attempt")
        }
        FailureOutcome::Stale => warn!(
            job.id = %meta.id, attempt = meta.attempt, "rejected the result of an attempt whose lease this worker lost"
        ),
    }
}
