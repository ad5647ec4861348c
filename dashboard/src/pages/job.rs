//! The job page: status, timestamps, lease, the payload with secrets masked, the error of every
//! failed attempt, the audit entries about the job, and for admins the retry and cancel forms.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use duespark_queue::{JobId, JobStatus};
use serde::Serialize;

use super::NoticeQuery;
use super::audit::AuditRow;
use crate::error::DashboardError;
use crate::format;
use crate::mask::{mask_secrets, mask_text};
use crate::render::{self, Layout};
use crate::session::Session;
use crate::{DashboardState, audit};

/// Most audit entries the page lists.
const AUDIT_ENTRIES: i64 = 20;

#[derive(Serialize)]
struct JobPage {
    layout: Layout,
    id: String,
    queue: String,
    kind: String,
    status: &'static str,
    priority: i16,
    attempts: u32,
    max_attempts: u32,
    created_at: String,
    run_at: String,
    started_at: String,
    finished_at: String,
    lease_owner: String,
    lease_expires_at: String,
    cancel_requested: bool,
    idempotency_key: String,
    payload: String,
    errors: Vec<AttemptRow>,
    audit: Vec<AuditRow>,
    can_retry: bool,
    can_cancel: bool,
}

#[derive(Serialize)]
struct AttemptRow {
    attempt: u32,
    at: String,
    worker: String,
    message: String,
}

/// Shows one job.
pub async fn show(
    State(state): State<DashboardState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> Result<Html<String>, DashboardError> {
    let id = parse_job_id(&id)?;
    let (job, lease, entries) = tokio::try_join!(
        async { Ok::<_, DashboardError>(state.store().get(id).await?) },
        async { Ok(state.store().lease(id).await?) },
        async { Ok(audit::for_job(state.pool(), id, AUDIT_ENTRIES).await?) },
    )?;
    let (Some(job), Some(lease)) = (job, lease) else {
        return Err(DashboardError::NotFound(format!("job {id} not found")));
    };

    let payload = serde_json::to_string_pretty(&mask_secrets(&job.payload))
        .map_err(DashboardError::internal)?;
    let page = JobPage {
        layout: Layout::new(format!("Job {id}"), "jobs", &session).with_notice(notice.message()),
        id: id.to_string(),
        status: job.status.as_str(),
        priority: job.priority,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: format::timestamp(job.created_at),
        run_at: format::timestamp(job.run_at),
        started_at: format::optional_timestamp(job.started_at),
        finished_at: format::optional_timestamp(job.finished_at),
        lease_owner: lease.lease_owner.unwrap_or_default(),
        lease_expires_at: format::optional_timestamp(lease.lease_expires_at),
        cancel_requested: lease.cancel_requested,
        idempotency_key: lease.idempotency_key.unwrap_or_default(),
        payload,
        errors: job
            .errors
            .iter()
            .map(|error| AttemptRow {
                attempt: error.attempt,
                at: format::timestamp(error.at),
                worker: error.worker.clone(),
                message: mask_text(&error.message),
            })
            .collect(),
        audit: entries.into_iter().map(AuditRow::new).collect(),
        can_retry: can_retry(job.status),
        can_cancel: can_cancel(job.status) && !lease.cancel_requested,
        queue: job.queue,
        kind: job.kind,
    };
    render::page("job", &page)
}

/// Parses a job id from the path; a malformed id is a job that does not exist.
pub fn parse_job_id(value: &str) -> Result<JobId, DashboardError> {
    value.parse::<JobId>().map_err(|_| {
        DashboardError::NotFound(format!(
            "job {value:?} not found: job ids are positive whole numbers"
        ))
    })
}

/// Returns whether the job store's retry applies to a job in this status.
fn can_retry(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Dead | JobStatus::Cancelled | JobStatus::Retrying
    )
}

/// Returns whether the job store's cancel applies to a job in this status.
fn can_cancel(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Scheduled
            | JobStatus::Pending
            | JobStatus::Retrying
            | JobStatus::Dead
            | JobStatus::Running
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_lifecycle() {
        assert!(can_retry(JobStatus::Dead));
        assert!(!can_retry(JobStatus::Done));
        assert!(!can_retry(JobStatus::Running));
        assert!(can_cancel(JobStatus::Running));
        assert!(!can_cancel(JobStatus::Done));
        assert!(!can_cancel(JobStatus::Cancelled));
    }

    #[test]
    fn malformed_ids_are_not_found() {
        assert!(parse_job_id("17").is_ok());
        assert!(matches!(
            parse_job_id("0"),
            Err(DashboardError::NotFound(_))
        ));
        assert!(matches!(
            parse_job_id("abc"),
            Err(DashboardError::NotFound(_))
        ));
    }
}
