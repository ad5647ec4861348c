//! Generic jobs: enqueue one or a batch, look up, list with keyset pages, retry and cancel; and
//! pause or resume a queue.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use duespark_dashboard::audit::{AuditAction, NewEntry};
use duespark_jobs::kinds;
use duespark_queue::{ActionError, JobFilter, JobId, JobInfo, JobStatus, NewJob};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Claims, Scope};
use crate::extract::{Auth, ValidQuery, parse_json};
use crate::idempotency::idempotent;
use crate::{ApiError, AppState};

/// Maximum number of jobs in one batch request.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    queue: String,
    kind: String,
    #[serde(default)]
    payload: Value,
    run_at: Option<String>,
    priority: Option<i16>,
    max_attempts: Option<u32>,
}

impl JobRequest {
    /// Checks the request against the registered kinds; `prefix` names the batch element.
    fn into_new_job(self, prefix: &str) -> Result<NewJob, ApiError> {
        let field = |name: &str| format!("{prefix}{name}");
        let Some(spec) = kinds::spec(&self.kind) else {
            let known: Vec<&str> = kinds::all().iter().map(|spec| spec.name).collect();
            return Err(ApiError::invalid(
                &field("kind"),
                "unknown_kind",
                format!(
                    "{:?} is not a registered job kind: use one of {}",
                    self.kind,
                    known.join(", ")
                ),
            ));
        };
        if !kinds::queues::ALL.contains(&self.queue.as_str()) {
            return Err(ApiError::invalid(
                &field("queue"),
                "unknown_queue",
                format!(
                    "{:?} is not a queue: use one of {}",
                    self.queue,
                    kinds::queues::ALL.join(", ")
                ),
            ));
        }
        if spec.name != kinds::NOOP && spec.queue != self.queue {
            return Err(ApiError::invalid(
                &field("queue"),
                "wrong_queue",
                format!("jobs of kind {} run on the {} queue", spec.name, spec.queue),
            ));
        }
        let max_attempts = self.max_attempts.unwrap_or(spec.max_attempts);
        if !(1..=100).contains(&max_attempts) {
            return Err(ApiError::invalid(
                &field("max_attempts"),
                "out_of_range",
                "must be from 1 to 100",
            ));
        }

        let run_at = self
            .run_at
            .as_deref()
            .map(|value| {
                DateTime::parse_from_rfc3339(value).map(|at| at.with_timezone(&Utc)).map_err(|_| {
                    ApiError::invalid(&field("run_at"), "invalid_timestamp", format!("{value:?} is not an RFC 3339 timestamp such as 2026-12-04T09:00:00Z"))
                })
            })
            .transpose()?;
        if let Err(message) = duespark_jobs::check_payload(&self.kind, &self.payload) {
            return Err(ApiError::invalid(
                &field("payload"),
                "invalid_payload",
                message,
            ));
        }
        let mut job = NewJob::new(self.queue, self.kind, self.payload)
            .max_attempts(max_attempts)
            .priority(self.priority.unwrap_or(0));
        job.run_at = run_at;
        Ok(job)
    }
}

fn require_write(claims: &Claims) -> Result<(), ApiError> {
    claims.require(Scope::JobsWrite)
}

/// Reading jobs takes `jobs:read`; `jobs:write` includes it.
fn require_read(claims: &Claims) -> Result<(), ApiError> {
    if claims.has_scope(Scope::JobsWrite) {
        return Ok(());
    }
    claims.require(Scope::JobsRead)
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("job {id:?} not found")))
}

/// `POST /v1/jobs`: 201 with the new job.
pub async fn post_job(
    State(state): State<AppState>,
    Auth(claims): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&claims)?;
    idempotent(&state, &claims.sub, "/v1/jobs", &headers, &body, || async {
        let request: JobRequest = parse_json(&body)?;
        let job = request.into_new_job("")?;
        // Concurrent requests share one statement and commit. Each responds after its commit.
        let job = state.enqueuer.enqueue(job).await?;
        Ok((StatusCode::CREATED, Json(job_body(&job))).into_response())
    })
    .await
}

/// `POST /v1/jobs/batch`: a JSON list of jobs, enqueued in one statement; 201 with their ids.
pub async fn post_batch(
    State(state): State<AppState>,
    Auth(claims): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_write(&claims)?;
    idempotent(
        &state,
        &claims.sub,
        "/v1/jobs/batch",
        &headers,
        &body,
        || async {
            let requests: Vec<JobRequest> = parse_json(&body)?;
            if requests.is_empty() || requests.len() > MAX_BATCH {
                return Err(ApiError::Validation {
                    field: None,
                    code: "invalid_batch".to_owned(),
                    message: format!(
                        "a batch holds 1 to {MAX_BATCH} jobs, not {}",
                        requests.len()
                    ),
                });
            }
            let jobs = requests
                .into_iter()
                .enumerate()
                .map(|(index, request)| request.into_new_job(&format!("[{index}].")))
                .collect::<Result<Vec<_>, _>>()?;
            let enqueued = state.store.enqueue_batch(jobs).await?;
            let items: Vec<Value> = enqueued
                .iter()
                .map(|job| json!({ "id": job.id, "created": job.created }))
                .collect();
            Ok((StatusCode::CREATED, Json(json!({ "jobs": items }))).into_response())
        },
    )
    .await
}

/// `GET /v1/jobs/{id}`.
pub async fn get_job(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_read(&claims)?;
    let id = parse_id(&id)?;
    let job = state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    Ok(Json(job_body(&job)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    queue: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    /// The previous page's `next_cursor`.
    before: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/jobs?queue=&status=&kind=&before=&limit=`: newest first, with `next_cursor` for the
/// next page.
pub async fn list_jobs(
    State(state): State<AppState>,
    Auth(claims): Auth,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_read(&claims)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(|message| ApiError::invalid("status", "invalid_status", message))?;
    let before = query
        .before
        .as_deref()
        .map(str::parse::<JobId>)
        .transpose()
        .map_err(|message| ApiError::invalid("before", "invalid_cursor", message))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "out_of_range",
            "must be from 1 to 500",
        ));
    }

    let filter = JobFilter {
        queue: query.queue,
        status,
        kind: query.kind,
        before,
        limit,
    };
    let page = state.store.list(&filter).await?;
    let jobs: Vec<Value> = page.jobs.iter().map(job_body).collect();
    Ok(Json(
        json!({ "jobs": jobs, "next_cursor": page.next_cursor }),
    ))
}

/// `POST /v1/jobs/{id}/retry` (admin).
pub async fn retry_job(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    let job = state
        .store
        .retry(parse_id(&id)?)
        .await
        .map_err(action_error)?;
    audit(
        &state,
        &claims,
        AuditAction::Retry,
        &job.queue,
        Some(job.id),
    )
    .await;
    Ok(Json(job_body(&job)))
}

/// `POST /v1/jobs/{id}/cancel` (admin); also discards a dead or retrying job.
pub async fn cancel_job(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    let job = state
        .store
        .cancel(parse_id(&id)?)
        .await
        .map_err(action_error)?;
    audit(
        &state,
        &claims,
        AuditAction::Cancel,
        &job.queue,
        Some(job.id),
    )
    .await;
    Ok(Json(job_body(&job)))
}

/// `POST /v1/queues/{queue}/pause` (admin).
pub async fn pause_queue(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    check_queue(&queue)?;
    state.store.pause_queue(&queue).await?;
    audit(&state, &claims, AuditAction::Pause, &queue, None).await;
    Ok(Json(json!({ "queue": queue, "paused": true })))
}

/// `POST /v1/queues/{queue}/resume` (admin).
pub async fn resume_queue(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(queue): Path<String>,
) -> Result<Json<Value>, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    check_queue(&queue)?;
    state.store.resume_queue(&queue).await?;
    audit(&state, &claims, AuditAction::Resume, &queue, None).await;
    Ok(Json(json!({ "queue": queue, "paused": false })))
}

/// Records an admin action taken through the API in the dashboard's audit log, next to the
/// dashboard's own actions. A failed write is logged; the action has already happened.
async fn audit(
    state: &AppState,
    claims: &Claims,
    action: AuditAction,
    queue: &str,
    job_id: Option<JobId>,
) {
    let entry = NewEntry {
        actor: &claims.sub,
        action,
        queue: Some(queue),
        job_id,
        detail: json!({ "via": "api" }),
    };
    if let Err(error) = duespark_dashboard::audit::record(&state.pool, entry).await {
        tracing::error!(%error, actor = %claims.sub, action = action.as_str(), "failed to write the audit log entry");
    }
}

fn check_queue(queue: &str) -> Result<(), ApiError> {
    if kinds::queues::ALL.contains(&queue) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("queue {queue:?} not found")))
    }
}

fn action_error(error: ActionError) -> ApiError {
    match error {
        ActionError::NotFound(id) => ApiError::NotFound(format!("job {id} not found")),
        ActionError::InvalidState { .. } => ApiError::Conflict(error.to_string()),
        ActionError::Queue(error) => error.into(),
    }
}

/// Builds the job as the API shows it: the fields of `GET /v1/jobs/{id}` plus its priority, payload and
/// the error of every attempt.
pub(crate) fn job_body(job: &JobInfo) -> Value {
    json!({
        "id": job.id,
        "queue": job.queue,
        "kind": job.kind,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "finished_at": job.finished_at,
        "started_at": job.started_at,
        "priority": job.priority,
        "payload": job.payload,
        "errors": job.errors,
    })
}
