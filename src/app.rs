//! Wiring: database pool, migrations, the job context, the API server and shutdown signals.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use duespark_api::AppState;
use duespark_api::metrics::MetricsSource;
use duespark_jobs::JobContext;
use duespark_jobs::email::{Mailer, SendRateLimiter, Templates};
use duespark_jobs::reminders::schedule::{Clock, SystemClock};
use duespark_jobs::stripe::client::{StripeApiKey, StripeClient, StripeConfig};
use duespark_queue::JobStore;
use secrecy::ExposeSecret;
use sqlx::postgres::PgPoolOptions;
use sqlx::{ConnectOptions, PgPool};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;

/// Opens a connection pool and checks that the database accepts connections.
///
/// Its sessions plan every statement for its parameters (`plan_cache_mode=force_custom_plan`).
/// After five runs PostgreSQL may switch a prepared statement to a generic plan. For the queue's
/// claim and completion statements that plan made some runs of `duespark bench` on 100,000 jobs
/// four times slower (8,800 against 39,000 jobs/s).
pub async fn connect(database_url: &str) -> Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(database_url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .options([("plan_cache_mode", "force_custom_plan")]);
    // One connection first, because the pool reports any failure as a timeout after 10 s and
    // drops the cause (connection refused, unknown database, bad password).
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "timed out after {} s connecting to the database given by DATABASE_URL",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .context(
            "failed to connect to the database given by DATABASE_URL; check that PostgreSQL runs \
             at that address and that the database exists (createdb NAME)",
        )?;
    let _ = sqlx::Connection::close(probe).await;
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .context("failed to connect to the database given by DATABASE_URL")
}

/// How long a start-up waits for its first database connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies the application's migrations, then the job store's. Migrations applied by a newer
/// release are accepted, so the previous binary still starts after an expand migration
/// (rollback; see docs/runbook.md).
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(pool)
        .await
        .context("failed to apply the application migrations")?;
    duespark_queue::migrate(pool)
        .await
        .context("failed to apply the job store migrations")?;
    Ok(())
}

/// Builds what job handlers share. Templates are loaded and checked here, so a broken template
/// stops the process at start-up.
pub fn job_context(config: &Config, pool: PgPool, clock: Arc<dyn Clock>) -> Result<JobContext> {
    let templates = Templates::load(&config.templates_dir).with_context(|| {
        format!(
            "failed to load the email templates from {}",
            config.templates_dir.display()
        )
    })?;
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(url.expose_secret()).context("invalid SMTP_URL")?,
        None => {
            info!(outbox = %config.outbox_dir.display(), "SMTP_URL is not set; emails are written to the outbox folder");
            Mailer::outbox(config.outbox_dir.clone())
        }
    };
    let stripe = StripeClient::new(StripeConfig {
        api_base: config.stripe_api_base.clone(),
        api_key: config
            .stripe_api_key
            .as_ref()
            .map(|key| StripeApiKey::new(key.expose_secret())),
        rate_per_second: config.stripe_rate_per_process(),
        ..StripeConfig::default()
    })
    .context("invalid Stripe API settings")?;
    Ok(JobContext {
        store: JobStore::new(pool.clone()),
        pool,
        templates,
        mailer,
        mail_limiter: SendRateLimiter::per_second(config.mail_rate_per_process()),
        mail_from: config.mail_from.clone(),
        clock,
        stripe,
        stripe_livemode: config.stripe_livemode,
        backups: config.backup_settings(),
    })
}

/// Returns the system clock, for production processes.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Returns the token-signing key: `SECRET_KEY`, or in development a random key kept in
/// `<var_dir>/secret_key` so tokens stay valid across restarts.
pub fn secret_key(config: &Config, var_dir: &Path) -> Result<Vec<u8>> {
    if let Some(key) = &config.secret_key {
        return Ok(key.expose_secret().as_bytes().to_vec());
    }
    let path = var_dir.join("secret_key");
    if let Ok(key) = std::fs::read_to_string(&path)
        && key.trim().len() >= crate::config::MIN_SECRET_KEY_LEN
    {
        return Ok(key.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(var_dir)
        .with_context(|| format!("failed to create {}", var_dir.display()))?;
    let key = hex::encode(rand::random::<[u8; 32]>());
    std::fs::write(&path, &key).with_context(|| format!("failed to write {}", path.display()))?;
    warn!(path = %path.display(), "SECRET_KEY is not set; using a development key stored in this file");
    Ok(key.into_bytes())
}

/// Serves the API on `listener` until `shutdown` is cancelled. While draining, `/health/ready`
/// reports not ready and in-flight requests finish.
pub async fn serve_api(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<()> {
    if let Some(hosts) = &state.ses.config.trusted_cert_hosts {
        warn!(
            ?hosts,
            "SES_TRUSTED_CERT_HOSTS is set: SNS certificates and confirmations from these hosts are trusted; never set it outside tests"
        );
    }
    let draining = state.draining.clone();
    let router = duespark_api::router(state);
    info!(address = %listener.local_addr()?, "API listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            draining.store(true, Ordering::Relaxed);
        })
        .await
        .context("the API server failed")?;
    info!("API stopped");
    Ok(())
}

/// Returns a token that is cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown signal received; finishing in-flight work");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves a worker process's `/health`, `/health/live`, `/health/ready` and `/metrics` (also at
/// `/metrics_prom`) on its metrics address until `shutdown` is cancelled.
pub async fn serve_worker_endpoints(
    listener: TcpListener,
    pool: PgPool,
    metrics: MetricsSource,
    metrics_token: Option<Arc<str>>,
    shutdown: CancellationToken,
) -> Result<()> {
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    async fn live() -> &'static str {
        "ok"
    }
    let ready = move || {
        let pool = pool.clone();
        async move {
            let ping = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&pool),
            )
            .await;
            match ping {
                Ok(Ok(_)) => (StatusCode::OK, "ok"),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
            }
        }
    };
    let scrape = move |headers: HeaderMap| {
        let metrics = metrics.clone();
        let token = metrics_token.clone();
        async move {
            if let Some(refused) = duespark_api::metrics::check_token(token.as_deref(), &headers) {
                return refused;
            }
            let mut registry = prometheus_client::registry::Registry::with_prefix("duespark");
            metrics(&mut registry);
            duespark_api::metrics::encode(&registry, &headers)
                .unwrap_or_else(IntoResponse::into_response)
        }
    };
    let router = Router::new()
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(scrape.clone()))
        .route("/metrics_prom", get(scrape));
    info!(address = %listener.local_addr()?, "worker health and metrics endpoint listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// Builds the API's state from the configuration: webhook settings, the metrics token and the
/// dashboard's cookie policy.
pub fn api_state(config: &Config, pool: PgPool, secret_key: &[u8]) -> AppState {
    AppState::new(pool, secret_key)
        .with_stripe(config.stripe_webhook_secrets(), config.stripe_livemode)
        .with_postmark(config.postmark_webhooks())
        .with_ses(config.sns_config())
        .with_metrics_token(
            config
                .metrics_token
                .as_ref()
                .map(|token| token.expose_secret().to_string()),
        )
        // Browsers keep Secure cookies only over HTTPS, which local development does not use.
        .with_secure_cookies(config.environment == crate::config::Environment::Production)
}
