//! `duespark bench`: measures the platform on this machine and database, like River's benchmark.
//!
//! Figures, each one JSON line with `--json`:
//! - `insert`: bulk enqueue of no-op jobs, 5,000 per statement;
//! - `drain`: the same jobs drained by in-process workers whose handler does nothing;
//! - `latency`: pickup latency of single jobs on an idle queue, from the enqueue call to the start
//!   of the handler, in the same process;
//! - `http`: `POST /v1/jobs` of `noop` jobs through the API served in this process, by concurrent
//!   clients;
//! - `backlog`: the drain rate with a large backlog waiting (one million jobs by default);
//! - `worker_memory`: resident memory of a `duespark worker` process that drained jobs at the
//!   chosen concurrency.
//!
//! Queue figures use a queue of their own (`bench`), cleared before and after, so the command can
//! run beside real queues. The HTTP figure enqueues into `maintenance`, because the API accepts
//! registered queues only, and deletes those jobs afterwards. Run the benchmark on a database of
//! its own.

mod drain;
mod http;
mod latency;
mod memory;
mod progress;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use sqlx::PgPool;

pub use drain::BENCH_QUEUE;
use progress::Progress;

/// The figures `--measure` can select.
const FIGURES: [&str; 6] = [
    "insert",
    "drain",
    "latency",
    "http",
    "backlog",
    "worker_memory",
];

/// Settings of one benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// No-op jobs to insert and drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Worker backends draining the queue, each with its own claims and leases.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Most jobs a worker claims in one statement (default: the concurrency).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Figures to measure, comma-separated: insert, drain, latency, http, backlog, worker_memory.
    /// Insert and drain always run together, because the drain takes the inserted jobs.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "insert,drain,latency,http,backlog,worker_memory"
    )]
    pub measure: Vec<String>,
    /// Single jobs timed for the pickup latency.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
    /// Concurrency of the worker that picks up the latency samples; it waits on an idle queue,
    /// so the drain's large claims do not apply.
    #[arg(long, default_value_t = 10)]
    pub latency_concurrency: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 64)]
    pub http_clients: usize,
    /// Requests sent in the HTTP figure.
    #[arg(long, default_value_t = 20_000)]
    pub http_requests: usize,
    /// Jobs waiting in the backlog figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: usize,
    /// Jobs drained (and timed) out of that backlog.
    #[arg(long, default_value_t = 100_000)]
    pub backlog_drain: usize,
    /// Print one JSON object per figure instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One measured figure, printed as a JSON line.
#[derive(Debug, Serialize)]
pub struct Figure {
    pub system: &'static str,
    pub version: &'static str,
    pub figure: &'static str,
    #[serde(flatten)]
    pub values: serde_json::Value,
}

impl Figure {
    fn new(figure: &'static str, values: serde_json::Value) -> Self {
        Figure {
            system: "duespark",
            version: env!("CARGO_PKG_VERSION"),
            figure,
            values,
        }
    }

    fn print(&self, json: bool) -> Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!("{}", drain::describe(self));
        }
        Ok(())
    }
}

impl BenchArgs {
    /// Checks the options before anything connects or runs. `templates_dir` is where a
    /// `duespark worker` started from here looks for the email templates.
    pub fn validate(&self, templates_dir: &Path) -> Result<()> {
        if self.jobs == 0 || self.workers == 0 || self.concurrency == 0 {
            bail!("--jobs, --workers and --concurrency must be at least 1");
        }
        if let Some(unknown) = self
            .measure
            .iter()
            .find(|name| !FIGURES.contains(&name.as_str()))
        {
            bail!(
                "--measure: unknown figure {unknown:?}; expected some of {}",
                FIGURES.join(", ")
            );
        }
        if self.backlog_drain == 0 || self.backlog_drain > self.backlog {
            bail!(
                "--backlog-drain must be between 1 and --backlog ({}), got {}",
                self.backlog,
                self.backlog_drain
            );
        }
        if self.measure.iter().any(|figure| figure == "worker_memory") && !templates_dir.is_dir() {
            bail!(
                "worker_memory starts `duespark worker`, which loads the email templates from \
                 {}: no such directory. Run from the repository root or set TEMPLATES_DIR",
                templates_dir.display()
            );
        }
        Ok(())
    }
}

/// Runs the selected figures against `pool` and prints each as it completes. The arguments must
/// have passed [`BenchArgs::validate`].
pub async fn run(pool: PgPool, database_url: &str, args: BenchArgs) -> Result<()> {
    let selected = |name: &str| args.measure.iter().any(|figure| figure == name);
    let progress = Progress::new();

    drain::clear(&pool).await?;
    if selected("insert") || selected("drain") {
        let (insert, drained) = drain::insert_and_drain(&pool, &args, &progress).await?;
        if selected("insert") {
            insert.print(args.json)?;
        }
        if selected("drain") {
            drained.print(args.json)?;
        }
    }
    if selected("latency") {
        latency::measure(&pool, &args, &progress)
            .await?
            .print(args.json)?;
    }
    if selected("http") {
        http::measure(&pool, &args, &progress)
            .await?
            .print(args.json)?;
    }
    if selected("backlog") {
        drain::backlog(&pool, &args, &progress)
            .await?
            .print(args.json)?;
    }
    if selected("worker_memory") {
        memory::measure(&pool, database_url, &args, &progress)
            .await?
            .print(args.json)?;
    }
    drain::clear(&pool).await?;
    Ok(())
}

/// Returns the value at quantile `q` (0 to 1) of sorted `values`, by the nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds of `duration`, rounded to microseconds.
fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Seconds since `started`.
fn seconds_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
