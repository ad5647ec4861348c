//! Classification of a failed attempt by its handler: retry, snooze or give up.

use std::time::Duration;

/// A failed attempt, classified by the handler. Any other error type counts as
/// `Retry { after: None }`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    /// Try again after the kind's backoff, or after `after` when given; uses an attempt.
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Run again after `after` without using an attempt, for waits such as rate limits.
    #[error("snoozed for {after:?}")]
    Snooze { after: Duration },
    /// Never retry: the job is dead.
    #[error("{message}")]
    Permanent { message: String },
}

impl JobFailure {
    pub fn retry(message: impl Into<String>) -> Self {
        JobFailure::Retry {
            message: message.into(),
            after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        JobFailure::Permanent {
            message: message.into(),
        }
    }

    /// Classifies any handler error: a `JobFailure` (also inside apalis's `AbortError`, which
    /// counts as permanent) keeps its meaning, anything else is retried.
    pub fn classify(error: &(dyn std::error::Error + 'static)) -> JobFailure {
        if let Some(failure) = error.downcast_ref::<JobFailure>() {
            return failure.clone();
        }
        if error
            .downcast_ref::<apalis_core::error::AbortError>()
            .is_some()
        {
            return JobFailure::permanent(error.to_string());
        }
        JobFailure::retry(error.to_string())
    }
}
