//! Admin actions: retry or cancel a job, retry a queue's dead jobs, pause or resume a queue.
//!
//! Every action is a form post that passes three checks in this order: a valid session (else
//! 401), the session's CSRF token in the form (else 403), and the `dashboard:admin` scope (else
//! 403). An applied action writes an audit entry and redirects to the page that shows its result.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::Redirect;
use duespark_jobs::kinds::queues;
use duespark_queue::JobId;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::DashboardState;
use crate::audit::{self, AuditAction, NewEntry};
use crate::error::DashboardError;
use crate::pages::job::parse_job_id;
use crate::session::Session;

/// Most dead jobs one "retry dead jobs" action retries; the overview still shows the rest, and
/// the action can be repeated.
pub const RETRY_DEAD_LIMIT: u32 = 10_000;

/// The fields every action form sends.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf_token: Option<String>,
}

/// Runs a dead, cancelled or retrying job again now.
pub async fn retry_job(
    State(state): State<DashboardState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    job_action(&state, &session, &id, form, AuditAction::Retry).await
}

/// Cancels a job ("discard" for a dead or retrying one).
pub async fn cancel_job(
    State(state): State<DashboardState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    job_action(&state, &session, &id, form, AuditAction::Cancel).await
}

/// Applies a retry or a cancel to one job, records it with the job's status before and after, and
/// redirects to the job's page with a notice.
async fn job_action(
    state: &DashboardState,
    session: &Session,
    id: &str,
    form: Result<Form<ActionForm>, FormRejection>,
    action: AuditAction,
) -> Result<Redirect, DashboardError> {
    authorize(session, form)?;
    let id = parse_job_id(id)?;

    let before = state.store().get(id).await?;
    let (job, notice) = match action {
        AuditAction::Cancel => (state.store().cancel(id).await?, "cancelled"),
        _ => (state.store().retry(id).await?, "retried"),
    };
    let detail = json!({
        "status_before": before.map(|job| job.status.as_str()),
        "status_after": job.status.as_str(),
    });
    record(state, session, action, Some(&job.queue), Some(id), detail).await?;
    Ok(Redirect::to(&format!(
        "/dashboard/jobs/{id}?notice={notice}"
    )))
}

/// Retries up to [`RETRY_DEAD_LIMIT`] dead jobs of a queue, oldest first.
pub async fn retry_dead(
    State(state): State<DashboardState>,
    session: Session,
    Path(queue): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    authorize(&session, form)?;
    let queue = known_queue(&queue)?;

    let retried = state
        .store()
        .retry_dead_in_queue(queue, RETRY_DEAD_LIMIT)
        .await?;
    let detail = json!({"retried": retried, "limit": RETRY_DEAD_LIMIT});
    record(
        &state,
        &session,
        AuditAction::RetryDead,
        Some(queue),
        None,
        detail,
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/dashboard?notice=retried_dead&queue={queue}&count={retried}"
    )))
}

/// Pauses a queue: workers claim none of its jobs until it is resumed.
pub async fn pause_queue(
    State(state): State<DashboardState>,
    session: Session,
    Path(queue): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    set_paused(state, session, &queue, form, true).await
}

/// Resumes a paused queue.
pub async fn resume_queue(
    State(state): State<DashboardState>,
    session: Session,
    Path(queue): Path<String>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, DashboardError> {
    set_paused(state, session, &queue, form, false).await
}

/// Pauses or resumes a registered queue and records the action in the audit log.
async fn set_paused(
    state: DashboardState,
    session: Session,
    queue: &str,
    form: Result<Form<ActionForm>, FormRejection>,
    paused: bool,
) -> Result<Redirect, DashboardError> {
    authorize(&session, form)?;
    let queue = known_queue(queue)?;

    let (action, notice) = if paused {
        state.store().pause_queue(queue).await?;
        (AuditAction::Pause, "paused")
    } else {
        state.store().resume_queue(queue).await?;
        (AuditAction::Resume, "resumed")
    };
    record(&state, &session, action, Some(queue), None, json!({})).await?;
    Ok(Redirect::to(&format!(
        "/dashboard?notice={notice}&queue={queue}"
    )))
}

/// Checks the form's CSRF token, then the admin scope. A form that cannot be read counts as one
/// without a token.
fn authorize(
    session: &Session,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<(), DashboardError> {
    let submitted = form.ok().and_then(|Form(form)| form.csrf_token);
    session.check_csrf(submitted.as_deref()).inspect_err(|_| {
        info!(subject = %session.subject, "dashboard action rejected: CSRF token missing or wrong");
    })?;
    session.require_admin().inspect_err(|_| {
        info!(subject = %session.subject, "dashboard action rejected: the session lacks dashboard:admin");
    })
}

/// Returns the registered queue named `name`; actions on other names are refused.
fn known_queue(name: &str) -> Result<&'static str, DashboardError> {
    queues::ALL
        .into_iter()
        .find(|queue| *queue == name)
        .ok_or_else(|| {
            DashboardError::NotFound(format!(
                "queue {name:?} not found; the queues are {}",
                queues::ALL.join(", ")
            ))
        })
}

/// Writes the audit entry of an applied action and logs it. A failed write is a server error
/// (logged once, by the error's response), because the action remains applied without its entry.
async fn record(
    state: &DashboardState,
    session: &Session,
    action: AuditAction,
    queue: Option<&str>,
    job_id: Option<JobId>,
    detail: Value,
) -> Result<(), DashboardError> {
    info!(
        subject = %session.subject,
        action = action.as_str(),
        queue,
        job.id = job_id.map(JobId::get),
        %detail,
        "dashboard action applied"
    );
    let entry = NewEntry {
        actor: &session.subject,
        action,
        queue,
        job_id,
        detail,
    };
    audit::record(state.pool(), entry).await.map_err(|cause| {
        let target = match (job_id, queue) {
            (Some(id), _) => format!("job {id}"),
            (None, Some(queue)) => format!("queue {queue}"),
            (None, None) => "the dashboard".to_owned(),
        };
        DashboardError::Internal(format!(
            "the {} action on {target} by {} was applied, but writing its audit entry failed: {cause}",
            action.as_str(),
            session.subject
        ))
    })
}
