//! `POST /v1/payment-syncs`: ask for a payment sync of one invoice now.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use duespark_jobs::stripe::sync::request_sync;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Scope;
use crate::extract::{Auth, parse_json};
use crate::idempotency::idempotent;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    invoice_id: String,
}

/// 202 with the sync job's id and status.
pub async fn post_payment_sync(
    State(state): State<AppState>,
    Auth(claims): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    claims.require(Scope::JobsWrite)?;
    idempotent(
        &state,
        &claims.sub,
        "/v1/payment-syncs",
        &headers,
        &body,
        || async {
            let request: SyncRequest = parse_json(&body)?;
            duespark_jobs::domain::validate_id("invoice_id", &request.invoice_id)?;
            let job_id = request_sync(&state.pool, &request.invoice_id).await?;
            let job = state.store.get(job_id).await?.ok_or_else(|| {
                ApiError::internal(format!("job {job_id} vanished after enqueue"))
            })?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "job_id": job.id, "status": job.status })),
            )
                .into_response())
        },
    )
    .await
}

/// `POST /v1/backups` (admin): 202 with the job that takes and verifies a database backup.
pub async fn post_backup(
    State(state): State<AppState>,
    Auth(claims): Auth,
) -> Result<Response, ApiError> {
    claims.require(Scope::DashboardAdmin)?;
    let spec = duespark_jobs::kinds::spec(duespark_jobs::kinds::BACKUP_DATABASE)
        .expect("the backup kind is registered");
    let job = duespark_queue::NewJob::new(spec.queue, spec.name, serde_json::Value::Null)
        .max_attempts(spec.max_attempts);
    let enqueued = state.store.enqueue(job).await?;
    let job =
        state.store.get(enqueued.id).await?.ok_or_else(|| {
            ApiError::internal(format!("job {} vanished after enqueue", enqueued.id))
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job_id": job.id, "status": job.status })),
    )
        .into_response())
}
