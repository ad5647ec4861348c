//! `POST /v1/reminders`: ask for one reminder of an invoice now.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use duespark_jobs::reminders::Stage;
use duespark_jobs::reminders::store::request_reminder;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Scope;
use crate::extract::{Auth, parse_json};
use crate::idempotency::idempotent;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReminderRequest {
    invoice_id: String,
    stage: String,
}

/// 202 with the new job's id and status; 200 with the existing job when the stage already has a
/// reminder, whatever its status.
pub async fn post_reminder(
    State(state): State<AppState>,
    Auth(claims): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    claims.require(Scope::JobsWrite)?;
    idempotent(&state, &claims.sub, "/v1/reminders", &headers, &body, || async {
        let request: ReminderRequest = parse_json(&body)?;
        let stage: Stage = request
            .stage
            .parse()
            .map_err(|error: duespark_jobs::reminders::stage::UnknownStage| ApiError::invalid("stage", "unknown_stage", error.to_string()))?;
        duespark_jobs::domain::validate_id("invoice_id", &request.invoice_id)?;

        let requested = request_reminder(&state.pool, &request.invoice_id, stage).await.map_err(|error| match error {
            duespark_jobs::domain::DomainError::NotFound(what) => {
                ApiError::invalid("invoice_id", "unknown_invoice", format!("{what} does not exist"))
            }
            other => other.into(),
        })?;
        let job = state
            .store
            .get(requested.job_id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("job {} of reminder {} is missing", requested.job_id, requested.reminder_id)))?;

        let status = if requested.created { StatusCode::ACCEPTED } else { StatusCode::OK };
        Ok((status, Json(json!({ "job_id": job.id, "status": job.status, "reminder_id": requested.reminder_id }))).into_response())
    })
    .await
}
