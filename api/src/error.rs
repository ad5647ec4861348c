//! The one API error type and its mapping to HTTP responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use duespark_jobs::domain::{DomainError, FieldError};
use serde_json::json;

/// Every error an API handler returns. The body is always
/// `{"error": {"code", "message", "field"?}}`; 5xx bodies contain nothing internal.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation {
        field: Option<String>,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("the token lacks the scope {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A request that is not valid as a whole (a webhook's signature, say).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.to_owned()),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation {
            field: Some(error.field),
            code: error.code.to_owned(),
            message: error.message,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid(field) => field.into(),
            DomainError::Conflict(message) => ApiError::Conflict(message),
            DomainError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            DomainError::Database(error) => ApiError::internal(error),
            DomainError::Queue(error) => ApiError::internal(error),
        }
    }
}

impl From<duespark_queue::QueueError> for ApiError {
    fn from(error: duespark_queue::QueueError) -> Self {
        ApiError::internal(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field, message) = match &self {
            ApiError::Validation {
                field,
                code,
                message,
            } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code.as_str(),
                field.clone(),
                message.clone(),
            ),
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                None,
                self.to_string(),
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None, self.to_string()),
            ApiError::NotFound(message) => {
                (StatusCode::NOT_FOUND, "not_found", None, message.clone())
            }
            ApiError::Conflict(message) => {
                (StatusCode::CONFLICT, "conflict", None, message.clone())
            }
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, *code, None, message.clone())
            }
            ApiError::MethodNotAllowed(message) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                None,
                message.clone(),
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                None,
                self.to_string(),
            ),
            ApiError::IdempotencyKeyReused(message) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                None,
                message.clone(),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed with an internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    None,
                    "internal server error".to_owned(),
                )
            }
        };

        let mut error = json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}
