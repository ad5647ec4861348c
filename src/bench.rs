//! `duespark bench`: measures the queue engine on this machine and database: bulk insert of no-op
//! jobs, then the drain of them by workers.
//!
//! It uses its own queue (`bench`), cleared before and after, so it can run beside real queues.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use duespark_queue::{EngineConfig, JobFailure, JobStore, NewJob, PgBackend};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const BENCH_QUEUE: &str = "bench";
/// Jobs per enqueue statement.
const INSERT_CHUNK: usize = 5_000;

/// Settings of one benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// No-op jobs to insert and drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Worker backends draining the queue, each with its own claims and leases.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Jobs each worker runs at once (also its largest claim).
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Measured figures of one run.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub jobs: usize,
    pub workers: usize,
    pub concurrency: usize,
    pub insert_seconds: f64,
    pub insert_jobs_per_second: f64,
    pub drain_seconds: f64,
    pub drain_jobs_per_second: f64,
}

/// Runs the benchmark against `pool` and prints the report.
pub async fn run(pool: PgPool, args: BenchArgs) -> Result<()> {
    if args.jobs == 0 || args.workers == 0 || args.concurrency == 0 {
        bail!("--jobs, --workers and --concurrency must be at least 1");
    }
    clear(&pool).await?;
    let report = measure(&pool, &args).await;
    clear(&pool).await?;
    let report = report?;

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "insert: {} jobs in {:.2} s = {:.0} jobs/s",
            report.jobs, report.insert_seconds, report.insert_jobs_per_second
        );
        println!(
            "drain:  {} jobs in {:.2} s = {:.0} jobs/s ({} workers x concurrency {})",
            report.jobs,
            report.drain_seconds,
            report.drain_jobs_per_second,
            report.workers,
            report.concurrency
        );
    }
    Ok(())
}

async fn measure(pool: &PgPool, args: &BenchArgs) -> Result<BenchReport> {
    let store = JobStore::new(pool.clone());
    let started = Instant::now();
    for chunk_start in (0..args.jobs).step_by(INSERT_CHUNK) {
        let count = INSERT_CHUNK.min(args.jobs - chunk_start);
        let jobs = (0..count)
            .map(|_| NewJob::new(BENCH_QUEUE, "noop", Value::Null).max_attempts(3))
            .collect();
        store
            .enqueue_batch(jobs)
            .await
            .context("failed to enqueue benchmark jobs")?;
    }
    let insert_seconds = started.elapsed().as_secs_f64();

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..args.workers {
        workers.spawn(run_worker(
            pool.clone(),
            args.concurrency,
            index,
            shutdown.clone(),
        ));
    }
    let drained = wait_until_drained(pool, Duration::from_secs(600)).await;
    let drain_seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    while workers.join_next().await.is_some() {}
    drained?;

    Ok(BenchReport {
        jobs: args.jobs,
        workers: args.workers,
        concurrency: args.concurrency,
        insert_seconds,
        insert_jobs_per_second: args.jobs as f64 / insert_seconds,
        drain_seconds,
        drain_jobs_per_second: args.jobs as f64 / drain_seconds,
    })
}

async fn run_worker(pool: PgPool, concurrency: usize, index: usize, shutdown: CancellationToken) {
    let name = format!("bench-{}-{index}", std::process::id());
    let mut config = EngineConfig::new(BENCH_QUEUE, concurrency);
    config.poll_interval = Duration::from_millis(100);
    let backend = PgBackend::<Value>::new(pool, config, name.clone());
    let result = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .concurrency(concurrency)
        .build(noop)
        .run_until(async move {
            shutdown.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "benchmark worker failed");
    }
}

async fn noop(_payload: Value) -> Result<(), JobFailure> {
    Ok(())
}

/// Waits until no benchmark job is left unfinished, checking every 20 ms.
async fn wait_until_drained(pool: &PgPool, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM duespark_queue.jobs WHERE queue = $1 AND status <> 'done'",
        )
        .bind(BENCH_QUEUE)
        .fetch_one(pool)
        .await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{left} benchmark jobs were still unfinished after {} s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn clear(pool: &PgPool) -> Result<()> {
    sqlx::query("DELETE FROM duespark_queue.jobs WHERE queue = $1")
        .bind(BENCH_QUEUE)
        .execute(pool)
        .await?;
    Ok(())
}
