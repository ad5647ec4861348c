//! DueSpark's HTTP API: authentication, validation and translation between HTTP and the `jobs` and
//! `queue` crates. Handlers hold no domain logic: they parse, call, and map results to responses.
//! It never depends on the worker runtime.

mod auth;
mod error;
mod extract;
mod idempotency;
pub mod metrics;
mod routes;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use duespark_queue::JobStore;
use sqlx::PgPool;
use tower_http::trace::TraceLayer;

pub use auth::{Claims, Scope, TokenError, issue_token};
pub use error::ApiError;

/// Largest request body the JSON routes accept.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Shared state of the API's handlers.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: JobStore,
    /// The HS256 key that signs and verifies bearer tokens.
    pub secret_key: Arc<[u8]>,
    /// Set when the process is shutting down, so `/health/ready` reports not ready.
    pub draining: Arc<AtomicBool>,
    pub stripe: StripeWebhooks,
    pub postmark: PostmarkWebhooks,
    pub ses: SesWebhooks,
    /// Counters kept by this process, encoded on every scrape next to the database gauges.
    pub counters: metrics::Counters,
}

/// Settings of the SES (SNS) webhook endpoint.
#[derive(Clone)]
pub struct SesWebhooks {
    pub config: duespark_jobs::bounces::sns::SnsConfig,
    /// Signing certificates, cached per URL.
    pub certs: Arc<duespark_jobs::bounces::sns::CertCache>,
    /// Client for subscription confirmations: short timeout, no redirects.
    pub http: reqwest::Client,
}

impl SesWebhooks {
    pub fn new(config: duespark_jobs::bounces::sns::SnsConfig) -> Self {
        let certs = duespark_jobs::bounces::sns::CertCache::new()
            .expect("the HTTP client for SNS certificates builds");
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client for SNS confirmations builds");
        SesWebhooks {
            config,
            certs: Arc::new(certs),
            http,
        }
    }
}

/// Settings of the Postmark webhook endpoint.
#[derive(Clone, Default)]
pub struct PostmarkWebhooks {
    pub user: Option<String>,
    pub password: Option<String>,
    /// `POSTMARK_SERVER_ID`: records of other servers are refused with 403.
    pub server_id: Option<i64>,
}

/// Settings of the Stripe webhook endpoint.
#[derive(Clone, Default)]
pub struct StripeWebhooks {
    /// Endpoint secrets (`whsec_...`); two while a secret is being rolled.
    pub webhook_secrets: Arc<Vec<String>>,
    /// Whether this deployment takes live-mode events; events of the other mode are stored as ignored.
    pub livemode: bool,
}

impl AppState {
    pub fn new(pool: PgPool, secret_key: &[u8]) -> Self {
        AppState {
            store: JobStore::new(pool.clone()),
            pool,
            secret_key: Arc::from(secret_key),
            draining: Arc::new(AtomicBool::new(false)),
            stripe: StripeWebhooks::default(),
            postmark: PostmarkWebhooks::default(),
            ses: SesWebhooks::new(duespark_jobs::bounces::sns::SnsConfig::default()),
            counters: metrics::Counters::default(),
        }
    }

    /// Sets the SES (SNS) topics and certificate hosts.
    pub fn with_ses(mut self, config: duespark_jobs::bounces::sns::SnsConfig) -> Self {
        self.ses = SesWebhooks::new(config);
        self
    }

    /// Sets the Postmark webhook credentials and server.
    pub fn with_postmark(mut self, postmark: PostmarkWebhooks) -> Self {
        self.postmark = postmark;
        self
    }

    /// Sets the Stripe webhook secrets and mode.
    pub fn with_stripe(mut self, webhook_secrets: Vec<String>, livemode: bool) -> Self {
        self.stripe = StripeWebhooks {
            webhook_secrets: Arc::new(webhook_secrets),
            livemode,
        };
        self
    }
}

/// Builds the complete router: `/v1`, health routes and the dashboard.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(routes::v1(state.clone()))
        .merge(routes::health())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/metrics_prom", axum::routing::get(metrics::metrics))
        .merge(duespark_dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
