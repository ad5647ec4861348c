//! Job handler failures, classified where they happen.

use std::time::Duration;

/// A failed attempt of a job. The worker retries a `Retryable` error with backoff (or after the
/// given delay) while attempts are left, and makes the job dead on a `Permanent` one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> Self {
        JobError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        JobError::Permanent(message.into())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable { .. })
    }
}

impl From<sqlx::Error> for JobError {
    /// Database errors are retried: the connection or the server may come back.
    fn from(error: sqlx::Error) -> Self {
        JobError::retryable(format!("database error: {error}"))
    }
}

impl From<duespark_queue::QueueError> for JobError {
    fn from(error: duespark_queue::QueueError) -> Self {
        JobError::retryable(format!("job store error: {error}"))
    }
}

impl From<crate::domain::DomainError> for JobError {
    /// Invalid input and conflicts cannot be fixed by retrying; database failures can.
    fn from(error: crate::domain::DomainError) -> Self {
        use crate::domain::DomainError;
        match error {
            DomainError::Database(_) | DomainError::Queue(_) => {
                JobError::retryable(error.to_string())
            }
            DomainError::Invalid(_) | DomainError::Conflict(_) | DomainError::NotFound(_) => {
                JobError::permanent(error.to_string())
            }
        }
    }
}

impl From<JobError> for duespark_queue::JobFailure {
    fn from(error: JobError) -> Self {
        match error {
            JobError::Retryable {
                message,
                retry_after,
            } => duespark_queue::JobFailure::Retry {
                message,
                after: retry_after,
            },
            JobError::Permanent(message) => duespark_queue::JobFailure::Permanent { message },
        }
    }
}
