//! Request extractors: a JSON body whose errors name the field, and the bearer token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::{Claims, verify_token};
use crate::{ApiError, AppState, MAX_BODY_BYTES};

/// A JSON body. A body that is not JSON, a missing field or a value of the wrong type gets 422
/// naming the field, and a body over the limit gets 413. The Content-Type is not checked.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(MAX_BODY_BYTES))?;
        parse_json(&bytes).map(ValidJson)
    }
}

/// Parses a JSON body, naming the field at fault in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(ApiError::Validation {
            field: None,
            code: "invalid_json".to_owned(),
            message: "the request body is not valid JSON".to_owned(),
        });
    }

    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // serde names a missing field only in its message: "missing field `name` at line 1 ...".
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (missing, path.as_str()) {
            (Some(name), "." | "") => name.to_owned(),
            (Some(name), prefix) => format!("{prefix}.{name}"),
            (None, "." | "") => String::new(),
            (None, path) => path.to_owned(),
        };
        let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
        ApiError::Validation {
            field: (!field.is_empty()).then_some(field),
            code: if missing.is_some() {
                "required"
            } else {
                "invalid_value"
            }
            .to_owned(),
            message,
        }
    })
}

/// The verified claims of the request's bearer token.
pub struct Auth(pub Claims);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing bearer token: send Authorization: Bearer <token>".to_owned(),
                )
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header is not a Bearer token".to_owned())
            })?;
        let claims = verify_token(&state.secret_key, token.trim())
            .map_err(|error| ApiError::Unauthorized(format!("invalid bearer token: {error}")))?;
        Ok(Auth(claims))
    }
}

/// A query string. A value of the wrong type gets 422 naming the parameter.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ValidQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner().to_string();
                let missing = inner
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned);
                let field = missing.clone().unwrap_or(path);
                ApiError::Validation {
                    field: (!field.is_empty() && field != ".").then_some(field),
                    code: if missing.is_some() {
                        "required"
                    } else {
                        "invalid_value"
                    }
                    .to_owned(),
                    message: inner,
                }
            })
    }
}
