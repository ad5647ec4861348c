//! Route table of the API.

mod accounts;
mod health;
mod invoices;
mod jobs;
mod reminders;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

/// The `/v1` routes.
pub fn v1(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{id}", put(accounts::put_account))
        .route("/v1/clients/{id}", put(accounts::put_client))
        .route(
            "/v1/invoices/{id}",
            put(invoices::put_invoice).get(invoices::get_invoice),
        )
        .route("/v1/reminders", post(reminders::post_reminder))
        .route("/v1/jobs/{id}", get(jobs::get_job))
}

/// Health routes, without authentication.
pub fn health() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
}
