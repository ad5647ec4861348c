//! The `Idempotency-Key` header on POST routes: the first response to a (token subject, route, key)
//! is stored and replayed for 24 hours; the same key with a different body is rejected.

use std::future::Future;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// Runs `handler` unless the request carries an `Idempotency-Key` that was seen before, in which
/// case the stored response is replayed. Server errors are not stored, so the client can retry.
pub async fn idempotent<F, Fut>(
    state: &AppState,
    subject: &str,
    route: &str,
    headers: &HeaderMap,
    body: &[u8],
    handler: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return handler().await;
    };
    let key = key
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= 255)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "invalid_idempotency_key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?;
    let request_hash = hex::encode(Sha256::digest(body));

    sqlx::query(
        "DELETE FROM idempotency_keys WHERE subject = $1 AND route = $2 AND key = $3 AND created_at < now() - interval '24 hours'",
    )
    .bind(subject)
    .bind(route)
    .bind(key)
    .execute(&state.pool)
    .await?;

    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (subject, route, key, request_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(subject)
    .bind(route)
    .bind(key)
    .bind(&request_hash)
    .execute(&state.pool)
    .await?
    .rows_affected()
        == 1;

    if !claimed {
        return replay(state, subject, route, key, &request_hash).await;
    }

    let response = match handler().await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    store(state, subject, route, key, response).await
}

async fn replay(
    state: &AppState,
    subject: &str,
    route: &str,
    key: &str,
    request_hash: &str,
) -> Result<Response, ApiError> {
    let (stored_hash, status_code, body): (String, Option<i16>, Option<Value>) = sqlx::query_as(
        "SELECT request_hash, status_code, body FROM idempotency_keys WHERE subject = $1 AND route = $2 AND key = $3",
    )
    .bind(subject)
    .bind(route)
    .bind(key)
    .fetch_one(&state.pool)
    .await?;

    if stored_hash != request_hash {
        return Err(ApiError::IdempotencyKeyReused(format!(
            "the Idempotency-Key {key:?} was already used with a different request body; use a new key for a new request"
        )));
    }
    let (Some(status_code), Some(body)) = (status_code, body) else {
        return Err(ApiError::Conflict(format!(
            "a request with the Idempotency-Key {key:?} is still in progress; retry later"
        )));
    };

    let status = StatusCode::from_u16(u16::try_from(status_code).unwrap_or(500))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// Stores a response for replay, or releases the key when the response was a server error.
async fn store(
    state: &AppState,
    subject: &str,
    route: &str,
    key: &str,
    response: Response,
) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(ApiError::internal)?.to_bytes();

    if parts.status.is_server_error() {
        sqlx::query("DELETE FROM idempotency_keys WHERE subject = $1 AND route = $2 AND key = $3")
            .bind(subject)
            .bind(route)
            .bind(key)
            .execute(&state.pool)
            .await?;
    } else {
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        sqlx::query("UPDATE idempotency_keys SET status_code = $4, body = $5 WHERE subject = $1 AND route = $2 AND key = $3")
            .bind(subject)
            .bind(route)
            .bind(key)
            .bind(i16::try_from(parts.status.as_u16()).unwrap_or(500))
            .bind(body)
            .execute(&state.pool)
            .await?;
    }
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}
