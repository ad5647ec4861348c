//! The command-line interface: one binary, one subcommand per process role.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use duespark_api::{Scope, issue_token};
use duespark_worker::{Runtime, WorkerConfig, run_workers};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app;
use crate::config::Config;

/// DueSpark Jobs: the background-job platform behind DueSpark's invoice reminders.
#[derive(Debug, Parser)]
#[command(name = "duespark", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, the API, the workers and the scheduler in one process. Without DATABASE_URL
    /// a private PostgreSQL cluster is started under ./var/pg.
    Dev {
        /// Load demo data whose reminders are due, so emails appear within a minute.
        #[arg(long)]
        seed: bool,
        /// Address the API listens on (overrides DUESPARK_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the HTTP API.
    Api,
    /// Run the workers of every queue and the periodic schedules.
    Worker,
    /// Write a pg_dump backup into BACKUP_DIR, upload it to BACKUP_S3_URL when set, verify it in
    /// each location (checksum, header, listing, a restore into a scratch database) and delete
    /// backups past BACKUP_RETENTION_DAYS; fails naming the first problem.
    Backup,
    /// Verify a backup file or s3:// URL, or the newest backup in each location.
    VerifyBackup {
        /// The backup file, or its s3:// URL, to verify.
        path: Option<PathBuf>,
    },
    /// Measure the queue engine: bulk insert and drain of no-op jobs in a queue of its own.
    Bench(crate::bench::BenchArgs),
    /// Print a bearer token signed with SECRET_KEY.
    Token {
        /// A scope to grant: jobs:write, jobs:read, dashboard:read or dashboard:admin. Repeatable.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// How long the token is valid, such as 30m, 1h or 7d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// The token's subject (`sub` claim), which scopes idempotency keys.
        #[arg(long, default_value = "duespark-app")]
        subject: String,
    },
}

fn parse_scope(value: &str) -> Result<Scope, String> {
    value.parse()
}

/// Parses a duration such as `90s`, `30m`, `1h` or `7d`.
pub fn parse_ttl(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration such as 30m, 1h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{value:?} has an unknown unit: use s, m, h or d")),
    };
    if number == 0 {
        return Err("the TTL must be greater than 0".to_owned());
    }
    Ok(Duration::from_secs(number * seconds))
}

/// Folder for local state: the dev database, the outbox and the development key.
fn var_dir() -> PathBuf {
    PathBuf::from("var")
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    // Development reads a `.env` file from the working directory; variables already set win.
    if std::env::var("DUESPARK_ENV").as_deref() != Ok("production") {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => bail!("failed to read the .env file: {error}"),
        }
    }
    let config = Config::from_env()?;
    // The benchmark's own lines are the output; the platform's info lines (one per HTTP request
    // in the http figure) would bury them.
    let default_filter = match cli.command {
        Command::Bench(_) => "warn",
        _ => crate::logging::DEFAULT_FILTER,
    };
    let _logging = crate::logging::init(config.log_format, config.error_tracking(), default_filter);

    match cli.command {
        Command::Token {
            scopes,
            ttl,
            subject,
        } => {
            let key = app::secret_key(&config, &var_dir())?;
            println!("{}", issue_token(&key, &subject, &scopes, ttl)?);
            Ok(())
        }
        Command::Migrate => {
            let pool = app::connect(required_database_url(&config)?).await?;
            app::migrate(&pool).await?;
            info!("migrations applied");
            Ok(())
        }
        Command::Api => {
            let pool = app::connect(required_database_url(&config)?).await?;
            let state = app::api_state(&config, pool, &app::secret_key(&config, &var_dir())?);
            let listener = bind(config.bind).await?;
            app::serve_api(listener, state, app::shutdown_on_signals()).await
        }
        Command::Worker => {
            let pool = app::connect(required_database_url(&config)?).await?;
            run_worker_process(&config, pool, app::shutdown_on_signals()).await
        }
        Command::Dev {
            seed,
            bind: bind_override,
        } => run_dev(config, seed, bind_override).await,
        Command::Backup => {
            let url = required_database_url(&config)?.to_owned();
            let pool = app::connect(&url).await?;
            app::migrate(&pool).await?;
            crate::backup_cmd::backup(&config, &pool, &url).await
        }
        Command::VerifyBackup { path } => {
            let url = required_database_url(&config)?.to_owned();
            let pool = app::connect(&url).await?;
            app::migrate(&pool).await?;
            crate::backup_cmd::verify(&config, &pool, &url, path).await
        }
        Command::Bench(args) => {
            args.validate(&config.templates_dir)?;
            let url = required_database_url(&config)?.to_owned();
            let pool = app::connect(&url).await?;
            app::migrate(&pool).await?;
            crate::bench::run(pool, &url, args).await
        }
    }
}

fn required_database_url(config: &Config) -> Result<&str> {
    config.database_url().context(
        "DATABASE_URL is not set: give the database as postgres://user:password@host:5432/database",
    )
}

async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))
}

async fn run_worker_process(
    config: &Config,
    pool: PgPool,
    shutdown: CancellationToken,
) -> Result<()> {
    let ctx = app::job_context(config, pool.clone(), app::system_clock())?;
    let runtime = Runtime {
        ctx: std::sync::Arc::new(ctx),
        config: worker_config(config),
    };

    let listener = bind(config.worker_metrics_bind).await?;
    let metrics_runtime = runtime.clone();
    let health = tokio::spawn(crate::app::serve_worker_endpoints(
        listener,
        pool,
        std::sync::Arc::new(
            move |registry: &mut prometheus_client::registry::Registry| {
                metrics_runtime.register_metrics(registry)
            },
        ),
        config
            .metrics_token
            .as_ref()
            .map(|token| std::sync::Arc::from(token.expose_secret())),
        shutdown.clone(),
    ));
    run_workers(runtime, shutdown).await;
    health.abort();
    Ok(())
}

fn worker_config(config: &Config) -> WorkerConfig {
    WorkerConfig {
        concurrency: config.worker_concurrency.clone(),
        default_concurrency: config.default_concurrency,
        listen: config.worker_listen,
        backup_interval: config
            .backups_scheduled
            .then(|| Duration::from_secs(24 * 3600)),
        backup_verify_interval: config
            .backups_scheduled
            .then(|| Duration::from_secs(24 * 3600)),
        ..WorkerConfig::default()
    }
}

async fn run_dev(mut config: Config, seed: bool, bind_override: Option<SocketAddr>) -> Result<()> {
    if let Some(address) = bind_override {
        config.bind = address;
    }
    let var_dir = var_dir();
    let mut local_pg = None;
    let database_url = match config.database_url() {
        Some(url) => url.to_owned(),
        None => {
            let cluster = crate::local_pg::start(&var_dir)
                .await
                .context("failed to start the private PostgreSQL cluster")?;
            let url = cluster.url.clone();
            local_pg = Some(cluster);
            url
        }
    };

    let result = run_dev_with_database(&config, &database_url, &var_dir, seed).await;
    if let Some(cluster) = local_pg
        && let Err(error) = cluster.stop().await
    {
        tracing::warn!(%error, "failed to stop the private PostgreSQL cluster");
    }
    result
}

async fn run_dev_with_database(
    config: &Config,
    database_url: &str,
    var_dir: &Path,
    seed: bool,
) -> Result<()> {
    let pool = app::connect(database_url).await?;
    app::migrate(&pool).await?;
    if seed {
        crate::seed::load_demo_data(&pool).await?;
        info!("demo data loaded");
    }

    let key = app::secret_key(config, var_dir)?;
    let listener = bind(config.bind).await?;
    let token = issue_token(
        &key,
        "duespark-dev",
        &Scope::ALL,
        Duration::from_secs(30 * 86_400),
    )?;
    println!("DueSpark Jobs is running.");
    println!("  API:    http://{}/v1", listener.local_addr()?);
    println!(
        "  Dashboard: http://{}/dashboard (sign in with the token)",
        listener.local_addr()?
    );
    println!("  Token:  {token}");
    if config.smtp_url.is_none() {
        println!("  Emails: {}", config.outbox_dir.display());
    }
    println!("Press Ctrl-C to stop.");

    let shutdown = app::shutdown_on_signals();
    let ctx = app::job_context(config, pool.clone(), app::system_clock())?;
    let runtime = Runtime {
        ctx: std::sync::Arc::new(ctx),
        config: worker_config(config),
    };
    // One process: `/metrics` shows the workers' metrics next to the API's.
    let metrics_runtime = runtime.clone();
    let state = app::api_state(config, pool, &key).with_metrics_sources(vec![std::sync::Arc::new(
        move |registry: &mut prometheus_client::registry::Registry| {
            metrics_runtime.register_metrics(registry)
        },
    )]);

    let api = app::serve_api(listener, state, shutdown.clone());
    let workers = run_workers(runtime, shutdown.clone());
    let (api_result, ()) = tokio::join!(api, workers);
    if shutdown.is_cancelled() {
        api_result
    } else {
        bail!("the API stopped unexpectedly")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_parses_units() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("0m").is_err());
    }
}
