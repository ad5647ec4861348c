//! Logging setup: tracing with JSON or text lines, filtered by `RUST_LOG` (default `info`), and
//! optional error tracking with Sentry (`SENTRY_DSN`).
//!
//! Error events go to Sentry with the preceding info and warning lines as breadcrumbs. Before an
//! event leaves the process, every configured secret is replaced by `[redacted]` wherever it
//! occurs in the event, and no request data or user information is attached.

use std::sync::Arc;

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// Error tracking settings: where to send events and the values that must never be sent.
pub struct ErrorTracking {
    pub dsn: String,
    /// `development` or `production`, shown with each event.
    pub environment: &'static str,
    /// Secrets of this process (keys, passwords, tokens) to redact from events.
    pub secrets: Vec<String>,
}

/// Keeps error tracking running; dropping it sends the events still queued.
#[must_use = "error tracking stops when the guard is dropped"]
pub struct LoggingGuard {
    _sentry: Option<sentry::ClientInitGuard>,
}

/// The log filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber, filtered by `RUST_LOG` or else by `default_filter`. Calling it
/// twice keeps the first one.
pub fn init(
    format: LogFormat,
    error_tracking: Option<ErrorTracking>,
    default_filter: &str,
) -> LoggingGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        // Logs go to stderr, so a command's output on stdout (a token, a report) stays clean.
        .with_writer(std::io::stderr)
        // Colours only on a terminal, so redirected logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };

    let sentry = error_tracking.map(start_sentry);
    // Errors become Sentry events; info and warning lines become breadcrumbs of the next one.
    let sentry_layers = sentry.as_ref().map(|_| {
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(sentry_layers)
        .with(filter)
        .try_init();
    LoggingGuard { _sentry: sentry }
}

fn start_sentry(settings: ErrorTracking) -> sentry::ClientInitGuard {
    let secrets: Arc<Vec<String>> = Arc::new(
        settings
            .secrets
            .into_iter()
            // Short values would redact ordinary words.
            .filter(|secret| secret.len() >= 6)
            .collect(),
    );
    sentry::init(
        sentry::ClientOptions::new()
            .dsn(&settings.dsn)
            .environment(settings.environment)
            .maybe_release(sentry::release_name!())
            .send_default_pii(false)
            .before_send(move |event| redact_event(event, &secrets)),
    )
}

/// Replaces each secret in every string of `event`, and drops the server name, which may be an
/// internal host name. Returns `None` (the event is not sent) if the event cannot be rewritten.
fn redact_event(
    event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> Option<sentry::protocol::Event<'static>> {
    let mut value = serde_json::to_value(&event).ok()?;
    redact_value(&mut value, secrets);
    let mut event: sentry::protocol::Event<'static> = serde_json::from_value(value).ok()?;
    event.server_name = None;
    event.user = None;
    event.request = None;
    Some(event)
}

fn redact_value(value: &mut serde_json::Value, secrets: &[String]) {
    match value {
        serde_json::Value::String(text) => {
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    *text = text.replace(secret.as_str(), "[redacted]");
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                redact_value(item, secrets);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                redact_value(item, secrets);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets_everywhere() {
        let mut event = sentry::protocol::Event {
            message: Some("SMTP login failed for hunter2-password".into()),
            server_name: Some("db-internal-7".into()),
            ..Default::default()
        };
        event.extra.insert(
            "url".into(),
            serde_json::json!({"nested": ["postgres://app:hunter2-password@db/x"]}),
        );

        let redacted = redact_event(event, &["hunter2-password".to_string()]).unwrap();

        let text = serde_json::to_string(&redacted).unwrap();
        assert!(!text.contains("hunter2-password"), "{text}");
        assert!(text.contains("SMTP login failed for [redacted]"), "{text}");
        assert!(redacted.server_name.is_none());
    }
}
