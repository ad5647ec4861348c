//! `GET /v1/jobs/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use duespark_queue::JobInfo;

use crate::auth::Scope;
use crate::extract::Auth;
use crate::{ApiError, AppState};

pub async fn get_job(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<JobInfo>, ApiError> {
    if !claims.has_scope(Scope::JobsRead) {
        claims.require(Scope::JobsWrite)?;
    }
    let job = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id:?} not found")))?;
    Ok(Json(job))
}
