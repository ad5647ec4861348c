//! `/metrics` and `/metrics_prom`: the database gauges (cached, [`database`]), this process's
//! request and webhook counters ([`http`]) and any other sources the process adds, such as the
//! workers' metrics in `duespark dev`. Classic Prometheus text, or OpenMetrics when the `Accept`
//! header requests it. With `METRICS_TOKEN` set, a scrape needs that bearer token.
//!
//! Labels come from closed sets: the registered queues, job kinds and statuses, route patterns.

pub mod database;
pub mod http;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::{ApiError, AppState};

/// A source of metrics that adds its own to each scrape's registry.
pub type MetricsSource = Arc<dyn Fn(&mut Registry) + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `stripe`, `postmark` or `ses`.
    pub provider: &'static str,
    /// The intake's result, such as `stored`, `duplicate`, `livemode_mismatch`,
    /// `invalid_signature`, `invalid_event`, `unauthorized` or `forbidden_topic`.
    pub outcome: &'static str,
}

/// Counters of this process; clones share the values.
#[derive(Clone, Default)]
pub struct Counters {
    webhooks: Family<WebhookLabels, Counter>,
    pub(crate) http: http::HttpMetrics,
}

impl Counters {
    /// Counts one webhook request by provider and outcome.
    pub fn webhook(&self, provider: &'static str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { provider, outcome })
            .inc();
    }
}

/// Serves the metrics of this process and the database.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(refused) = check_token(state.metrics_token.as_deref(), &headers) {
        return Ok(refused);
    }
    let mut registry = Registry::with_prefix("duespark");
    state
        .database_gauges
        .register(&state.pool, &mut registry)
        .await?;
    registry.register(
        "webhooks",
        "Webhook requests by provider and outcome",
        state.counters.webhooks.clone(),
    );
    state.counters.http.register(&mut registry);
    for source in state.metrics_sources.iter() {
        source(&mut registry);
    }
    encode(&registry, &headers)
}

/// Returns a 401 response unless `headers` carry `Authorization: Bearer <token>`; `None` when the
/// request may read the metrics (also when no token is configured).
pub fn check_token(token: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    let expected = token?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if crate::auth::secrets_equal(presented.as_bytes(), expected.as_bytes()) {
        return None;
    }
    let mut response = ApiError::Unauthorized(
        "the metrics need the bearer token set in METRICS_TOKEN".to_string(),
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    Some(response)
}

/// Encodes `registry` in the format the `Accept` header requests: OpenMetrics or the classic text.
pub fn encode(registry: &Registry, headers: &HeaderMap) -> Result<Response, ApiError> {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let mut body = String::new();
    let content_type = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, registry)
            .map_err(ApiError::internal)?;
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
            .map_err(ApiError::internal)?;
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
