//! `PUT /v1/accounts/{id}` and `PUT /v1/clients/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use duespark_jobs::domain::{self, AccountInput, ClientInput, Upserted};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::extract::{Auth, ValidJson};
use crate::{ApiError, AppState};

/// 201 when the upsert created the row, 200 when it updated one.
pub(super) fn upsert_status(upserted: Upserted) -> StatusCode {
    match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    }
}

pub async fn put_account(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<AccountInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    claims.require(Scope::JobsWrite)?;
    let (account, upserted) = domain::upsert_account(&state.pool, &id, &input).await?;
    Ok((upsert_status(upserted), Json(json!(account))))
}

pub async fn put_client(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<ClientInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    claims.require(Scope::JobsWrite)?;
    let (client, upserted) = domain::upsert_client(&state.pool, &id, &input).await?;
    Ok((upsert_status(upserted), Json(json!(client))))
}
