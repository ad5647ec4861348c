//! The one error type of the dashboard's handlers and its mapping to HTML responses. Pages that
//! need a login redirect there, and every other error renders the error page with its status.
//! 5xx pages show nothing internal, and the cause is logged once here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use duespark_queue::{ActionError, QueueError};
use serde::Serialize;

use crate::render;

/// Every error a dashboard handler returns.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No valid session. A page request is redirected to the login page; a form post gets 401.
    #[error("log in to use the dashboard")]
    LoginRequired { redirect: bool },
    #[error(
        "the form's CSRF token is missing or does not match this session; reload the page and submit the form again"
    )]
    CsrfRejected,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DashboardError {
    pub fn internal(error: impl std::fmt::Display) -> Self {
        DashboardError::Internal(error.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            DashboardError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            DashboardError::CsrfRejected | DashboardError::Forbidden(_) => StatusCode::FORBIDDEN,
            DashboardError::NotFound(_) => StatusCode::NOT_FOUND,
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::Conflict(_) => StatusCode::CONFLICT,
            DashboardError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<QueueError> for DashboardError {
    fn from(error: QueueError) -> Self {
        DashboardError::internal(error)
    }
}

impl From<sqlx::Error> for DashboardError {
    fn from(error: sqlx::Error) -> Self {
        DashboardError::internal(error)
    }
}

impl From<ActionError> for DashboardError {
    fn from(error: ActionError) -> Self {
        match error {
            ActionError::NotFound(_) => DashboardError::NotFound(error.to_string()),
            ActionError::InvalidState { .. } => DashboardError::Conflict(error.to_string()),
            ActionError::Queue(error) => error.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorPage {
    layout: render::Layout,
    status: u16,
    reason: &'static str,
    message: String,
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        if let DashboardError::LoginRequired { redirect: true } = self {
            return Redirect::to("/dashboard/login").into_response();
        }

        let status = self.status();
        let message = match &self {
            DashboardError::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard request failed");
                "Something went wrong on the server; the error is in the server log. Try again, and if it persists, check the log.".to_owned()
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            layout: render::Layout::bare(status.canonical_reason().unwrap_or("Error")),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        match render::page("error", &page) {
            Ok(html) => (status, html).into_response(),
            Err(error) => {
                tracing::error!(%error, "failed to render the dashboard's error page");
                (status, page.message).into_response()
            }
        }
    }
}
