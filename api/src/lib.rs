//! DueSpark's HTTP API: authentication, validation and translation between HTTP and the `jobs` and
//! `queue` crates. Handlers hold no domain logic: they parse, call, and map results to responses.
//! It never depends on the worker runtime.

mod auth;
mod dashboard;
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
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use auth::{Claims, Scope, TokenError, issue_token};
pub use error::ApiError;

/// Largest request body the JSON routes accept.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Shared state of the API's handlers.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: JobStore,
    /// Single enqueues of `POST /v1/jobs`, written with group commit.
    pub enqueuer: duespark_queue::GroupedEnqueuer,
    /// The HS256 key that signs and verifies bearer tokens.
    pub secret_key: Arc<[u8]>,
    /// Set when the process is shutting down, so `/health/ready` reports not ready.
    pub draining: Arc<AtomicBool>,
    pub stripe: StripeWebhooks,
    pub postmark: PostmarkWebhooks,
    pub ses: SesWebhooks,
    /// Counters kept by this process, encoded on every scrape next to the database gauges.
    pub counters: metrics::Counters,
    /// The database gauges of `/metrics`, cached for a few seconds.
    pub database_gauges: Arc<metrics::database::DatabaseGauges>,
    /// Other metrics of this process, such as the workers' in `duespark dev`.
    pub metrics_sources: Arc<Vec<metrics::MetricsSource>>,
    /// `METRICS_TOKEN`: the bearer token a scrape needs, if set.
    pub metrics_token: Option<Arc<str>>,
    /// Adds `Secure` to the dashboard's cookies; turned off only in development, where the API
    /// serves plain HTTP.
    pub secure_cookies: bool,
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
            enqueuer: duespark_queue::GroupedEnqueuer::start(JobStore::new(pool.clone())),
            pool,
            secret_key: Arc::from(secret_key),
            draining: Arc::new(AtomicBool::new(false)),
            stripe: StripeWebhooks::default(),
            postmark: PostmarkWebhooks::default(),
            ses: SesWebhooks::new(duespark_jobs::bounces::sns::SnsConfig::default()),
            counters: metrics::Counters::default(),
            database_gauges: Arc::default(),
            metrics_sources: Arc::default(),
            metrics_token: None,
            secure_cookies: true,
        }
    }

    /// Sets whether the dashboard's cookies are `Secure` (HTTPS only).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Requires `token` as the bearer token of metrics scrapes.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.map(Arc::from);
        self
    }

    /// Adds sources of metrics that `/metrics` encodes next to the API's own.
    pub fn with_metrics_sources(mut self, sources: Vec<metrics::MetricsSource>) -> Self {
        self.metrics_sources = Arc::new(sources);
        self
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
        .merge(duespark_dashboard::router(dashboard::state(&state)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::http::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The request id is set first (or kept from the caller), so the request's log span and the
        // response carry it.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(drop_long_request_id))
        .with_state(state)
}

/// Maximum length of a caller's request id. A longer one is replaced by a generated id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Removes a caller's `x-request-id` that is too long to log, so a new one is generated.
async fn drop_long_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let too_long = request
        .headers()
        .get("x-request-id")
        .is_some_and(|value| value.len() > MAX_REQUEST_ID_LEN);
    if too_long {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// Builds the log span of one request: method, path (never the query, which may carry an email
/// address) and request id.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
