//! Route table of the API.

mod accounts;
mod bounces;
mod health;
mod invoices;
mod jobs;
mod payments;
mod reminders;
mod webhooks;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

/// Builds the `/v1` routes.
pub fn v1(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{id}", put(accounts::put_account))
        .route("/v1/clients/{id}", put(accounts::put_client))
        .route(
            "/v1/invoices/{id}",
            put(invoices::put_invoice).get(invoices::get_invoice),
        )
        .route("/v1/reminders", post(reminders::post_reminder))
        .route("/v1/payment-syncs", post(payments::post_payment_sync))
        .route("/v1/backups", post(payments::post_backup))
        .route("/v1/suppressions", get(bounces::list_suppressions))
        .route(
            "/v1/suppressions/{id}",
            axum::routing::delete(bounces::delete_suppression),
        )
        .route("/webhooks/postmark", post(bounces::postmark))
        .route("/webhooks/ses", post(bounces::ses))
        .route(
            "/webhooks/stripe",
            post(webhooks::stripe).layer(axum::extract::DefaultBodyLimit::max(
                webhooks::MAX_STRIPE_BODY_BYTES,
            )),
        )
        .route("/v1/jobs", post(jobs::post_job).get(jobs::list_jobs))
        .route("/v1/jobs/batch", post(jobs::post_batch))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        .route("/v1/jobs/{id}/retry", post(jobs::retry_job))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/v1/queues/{queue}/pause", post(jobs::pause_queue))
        .route("/v1/queues/{queue}/resume", post(jobs::resume_queue))
}

/// Health routes, without authentication.
pub fn health() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::live))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/detailed", get(health::detailed))
}
