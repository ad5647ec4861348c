//! The operations dashboard at `/dashboard`: server-rendered pages over the job store for ops
//! people, mounted by the API's router.
//!
//! It owns the login sessions, CSRF protection, the pages (overview, job list, job detail, audit
//! log), the admin actions on jobs and queues, and the audit log those actions write. It does not
//! verify tokens itself: the API passes a [`TokenVerifier`], so the claims rules live in one place.
//! Queries on the job table go through [`JobStore`]; the business panel reads the domain tables.
//!
//! Layout: `session` and `csrf` keep the login state, `pages/` has one module per page, and
//! `actions` and `audit` apply and record the admin actions. `business` reads the overview's
//! business panel, and `render` contains the embedded handlebars templates and assets. `mask` hides
//! secrets in payloads, `chart` lays out the throughput chart, and `format` prints numbers, ages
//! and timestamps.

mod actions;
pub mod audit;
mod business;
mod chart;
mod csrf;
mod error;
mod format;
mod mask;
mod pages;
mod render;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use duespark_queue::JobStore;
use sqlx::PgPool;

pub use mask::mask_secrets;

/// The access a verified token grants in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `dashboard:read`: every page, no actions.
    Read,
    /// `dashboard:admin`: every page and the actions.
    Admin,
}

impl Access {
    /// Returns the scope that grants this access, as stored with a session.
    pub fn scope(self) -> &'static str {
        match self {
            Access::Read => "dashboard:read",
            Access::Admin => "dashboard:admin",
        }
    }

    fn from_scope(scope: &str) -> Option<Access> {
        match scope {
            "dashboard:read" => Some(Access::Read),
            "dashboard:admin" => Some(Access::Admin),
            _ => None,
        }
    }
}

/// The claims of a login token that the dashboard uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    pub expires_at: DateTime<Utc>,
    /// `None` when the token has neither `dashboard:read` nor `dashboard:admin`.
    pub access: Option<Access>,
}

/// Checks a bearer token's signature and expiry. The error is a message for the person logging
/// in, and must not contain the token.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<VerifiedToken, String>;
}

impl<F> TokenVerifier for F
where
    F: Fn(&str) -> Result<VerifiedToken, String> + Send + Sync + 'static,
{
    fn verify(&self, token: &str) -> Result<VerifiedToken, String> {
        self(token)
    }
}

/// Shared state of the dashboard's handlers; cheap to clone.
#[derive(Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    store: JobStore,
    verifier: Box<dyn TokenVerifier>,
    /// Adds `Secure` to the cookies; off only in development, where the API serves plain HTTP.
    secure_cookies: bool,
}

impl DashboardState {
    /// Builds the state. `secure_cookies` must be true wherever the dashboard is served over
    /// HTTPS, which is everywhere but development.
    pub fn new(
        pool: PgPool,
        store: JobStore,
        verifier: impl TokenVerifier,
        secure_cookies: bool,
    ) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                pool,
                store,
                verifier: Box::new(verifier),
                secure_cookies,
            }),
        }
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    fn store(&self) -> &JobStore {
        &self.inner.store
    }
}

/// Returns the dashboard's routes with their state applied, to be merged into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>(state: DashboardState) -> Router<S> {
    Router::new()
        .route("/dashboard", get(pages::overview::show))
        .route(
            "/dashboard/login",
            get(pages::login::show).post(pages::login::submit),
        )
        .route("/dashboard/logout", post(pages::login::logout))
        .route("/dashboard/jobs", get(pages::jobs::show))
        .route("/dashboard/jobs/{id}", get(pages::job::show))
        .route("/dashboard/jobs/{id}/retry", post(actions::retry_job))
        .route("/dashboard/jobs/{id}/cancel", post(actions::cancel_job))
        .route(
            "/dashboard/queues/{queue}/retry-dead",
            post(actions::retry_dead),
        )
        .route(
            "/dashboard/queues/{queue}/pause",
            post(actions::pause_queue),
        )
        .route(
            "/dashboard/queues/{queue}/resume",
            post(actions::resume_queue),
        )
        .route("/dashboard/audit", get(pages::audit::show))
        .route("/dashboard/assets/{file}", get(render::asset))
        .layer(axum::middleware::map_response(render::security_headers))
        .with_state(state)
}
