//! Job types shared by producers, workers and inspectors.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default number of attempts when a producer does not choose one.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// A job's id. Ids grow with creation order; JSON carries them as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct JobId(pub i64);

impl JobId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for JobId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for JobId {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        value
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(JobId)
            .ok_or_else(|| format!("{value:?} is not a job id (a positive whole number)"))
    }
}

/// Job details a worker receives besides the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMeta {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    /// The number of this attempt, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl JobMeta {
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
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
    pub priority: i16,
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

    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A job's status, with the same words in the code, the API and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Scheduled,
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Retrying,
        JobStatus::Done,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

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

    /// Whether the job will not run again unless a person retries it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Dead | JobStatus::Cancelled
        )
    }

    /// Reads a stored status. A stored `scheduled` or `pending` job is reported by its `run_at`,
    /// because a scheduled job becomes pending when its time comes without its row changing.
    pub(crate) fn from_row(status: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> JobStatus {
        match status {
            "scheduled" | "pending" if run_at > now => JobStatus::Scheduled,
            "scheduled" | "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "retrying" => JobStatus::Retrying,
            "done" => JobStatus::Done,
            "cancelled" => JobStatus::Cancelled,
            _ => JobStatus::Dead,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL.into_iter().find(|status| status.as_str() == value).ok_or_else(|| {
            format!("{value:?} is not a job status: use scheduled, pending, running, retrying, done, dead or cancelled")
        })
    }
}

/// The error of one failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub worker: String,
    pub message: String,
}

/// A job as the API and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobInfo {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub status: JobStatus,
    pub priority: i16,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub errors: Vec<AttemptError>,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_status_mapping() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(60);
        let cases = [
            ("scheduled", later, JobStatus::Scheduled),
            ("scheduled", now, JobStatus::Pending),
            ("pending", now, JobStatus::Pending),
            ("running", now, JobStatus::Running),
            ("retrying", later, JobStatus::Retrying),
            ("done", now, JobStatus::Done),
            ("dead", now, JobStatus::Dead),
            ("cancelled", now, JobStatus::Cancelled),
        ];
        for (stored, run_at, expected) in cases {
            assert_eq!(
                JobStatus::from_row(stored, run_at, now),
                expected,
                "stored status {stored}"
            );
        }
    }

    #[test]
    fn job_ids_parse_and_print_as_strings() {
        let id: JobId = "42".parse().unwrap();
        assert_eq!(id, JobId(42));
        assert_eq!(serde_json::to_value(id).unwrap(), "42");
        assert!("0".parse::<JobId>().is_err());
        assert!("abc".parse::<JobId>().is_err());
    }
}
