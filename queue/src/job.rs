//! Job types shared by producers, workers and inspectors.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default number of attempts when a producer does not choose one.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// A job's id: a ULID string, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// Creates a fresh id.
    pub fn generate() -> Self {
        JobId(ulid::Ulid::new().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The creation time encoded in the id, when it is a ULID.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let ulid = ulid::Ulid::from_string(&self.0).ok()?;
        DateTime::from_timestamp_millis(i64::try_from(ulid.timestamp_ms()).ok()?)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a queue row carries: the job kind, which selects the handler, and its JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    pub kind: String,
    pub payload: Value,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    /// When the job may start; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// Higher runs first among jobs that are due.
    pub priority: u16,
    pub max_attempts: u32,
    /// A key unique per queue: enqueueing it again returns the existing job.
    pub idempotency_key: Option<String>,
}

impl NewJob {
    /// Creates a job due now with the default priority and attempt limit.
    pub fn new(queue: impl Into<String>, kind: impl Into<String>, payload: Value) -> Self {
        NewJob {
            queue: queue.into(),
            kind: kind.into(),
            payload,
            run_at: None,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            idempotency_key: None,
        }
    }

    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    pub fn priority(mut self, priority: u16) -> Self {
        self.priority = priority;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A job's status, with the same words in the code, the API and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its `run_at`, which is in the future.
    Scheduled,
    /// Due and waiting for a worker.
    Pending,
    /// Claimed by a worker.
    Running,
    /// Failed and waiting for its next attempt.
    Retrying,
    Done,
    /// Failed permanently or used up its attempts.
    Dead,
    /// Cancelled by a person.
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "scheduled",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Retrying => "retrying",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Maps a backend row to our status. apalis-postgres has no dead or scheduled state of its own:
    /// a Pending row due later is scheduled, and a Failed row at its attempt limit is dead.
    pub(crate) fn from_backend(
        status: &str,
        attempts: i32,
        max_attempts: i32,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> JobStatus {
        match status {
            "Pending" if run_at > now => JobStatus::Scheduled,
            "Pending" => JobStatus::Pending,
            "Queued" | "Running" => JobStatus::Running,
            "Failed" if attempts < max_attempts => JobStatus::Retrying,
            "Failed" | "Killed" => JobStatus::Dead,
            "Done" => JobStatus::Done,
            _ => JobStatus::Dead,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the API and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobInfo {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub run_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_status_mapping() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(60);
        let cases = [
            ("Pending", 0, 5, later, JobStatus::Scheduled),
            ("Pending", 0, 5, now, JobStatus::Pending),
            ("Queued", 0, 5, now, JobStatus::Running),
            ("Running", 1, 5, now, JobStatus::Running),
            ("Failed", 2, 5, now, JobStatus::Retrying),
            ("Failed", 5, 5, now, JobStatus::Dead),
            ("Killed", 1, 5, now, JobStatus::Dead),
            ("Done", 1, 5, now, JobStatus::Done),
        ];
        for (backend, attempts, max, run_at, expected) in cases {
            let status = JobStatus::from_backend(backend, attempts, max, run_at, now);
            assert_eq!(
                status, expected,
                "backend status {backend} attempts {attempts}"
            );
        }
    }

    #[test]
    fn job_id_carries_creation_time() {
        let id = JobId::generate();
        let created = id.created_at().expect("a generated id is a ULID");
        assert!((Utc::now() - created).num_seconds().abs() < 5);
    }
}
