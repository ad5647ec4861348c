//! Bulk insert and drain of no-op jobs in the `bench` queue, with a short or a large backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use duespark_queue::{EngineConfig, JobFailure, JobStore, NewJob, PgBackend};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::progress::{Phase, Progress};
use super::{BenchArgs, Figure, seconds_since};

/// The benchmark's own queue.
pub const BENCH_QUEUE: &str = "bench";
/// Jobs per enqueue statement.
const INSERT_CHUNK: usize = 5_000;

/// Inserts `args.jobs` no-op jobs, then drains them; returns the `insert` and `drain` figures.
pub async fn insert_and_drain(
    pool: &PgPool,
    args: &BenchArgs,
    progress: &Progress,
) -> Result<(Figure, Figure)> {
    let started = Instant::now();
    insert(pool, args.jobs, progress.phase("insert", args.jobs as u64)).await?;
    let insert_seconds = seconds_since(started);
    analyze(pool).await?;
    let insert = Figure::new(
        "insert",
        json!({
            "jobs": args.jobs,
            "seconds": insert_seconds,
            "jobs_per_second": args.jobs as f64 / insert_seconds,
        }),
    );

    let drain_seconds = drain(
        pool,
        args,
        args.jobs,
        progress.phase("drain", args.jobs as u64),
    )
    .await?;
    let drained = Figure::new(
        "drain",
        json!({
            "jobs": args.jobs,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "batch": batch(args),
            "seconds": drain_seconds,
            "jobs_per_second": args.jobs as f64 / drain_seconds,
        }),
    );
    Ok((insert, drained))
}

/// Fills the queue with `args.backlog` jobs, then times the drain of the first
/// `args.backlog_drain` of them while the rest wait.
pub async fn backlog(pool: &PgPool, args: &BenchArgs, progress: &Progress) -> Result<Figure> {
    clear(pool).await?;
    let filling = progress.phase("backlog insert", args.backlog as u64);
    insert(pool, args.backlog, filling).await?;
    analyze(pool).await?;
    let draining = progress.phase("backlog drain", args.backlog_drain as u64);
    let seconds = drain(pool, args, args.backlog_drain, draining).await?;
    clear(pool).await?;
    Ok(Figure::new(
        "backlog",
        json!({
            "waiting": args.backlog,
            "jobs": args.backlog_drain,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "batch": batch(args),
            "seconds": seconds,
            "jobs_per_second": args.backlog_drain as f64 / seconds,
        }),
    ))
}

fn batch(args: &BenchArgs) -> usize {
    args.batch.unwrap_or(args.concurrency)
}

async fn insert(pool: &PgPool, jobs: usize, phase: Phase) -> Result<()> {
    let store = JobStore::new(pool.clone());
    for chunk_start in (0..jobs).step_by(INSERT_CHUNK) {
        let count = INSERT_CHUNK.min(jobs - chunk_start);
        let batch = (0..count)
            .map(|_| NewJob::new(BENCH_QUEUE, "noop", Value::Null).max_attempts(3))
            .collect();
        store
            .enqueue_batch(batch)
            .await
            .context("failed to enqueue benchmark jobs")?;
        phase.set((chunk_start + count) as u64);
    }
    phase.done();
    Ok(())
}

/// Runs the workers until `count` jobs of the queue are done and returns the seconds it took.
///
/// The handlers count the jobs they ran, so progress costs no query. Once they have run `count`,
/// the database is checked until the results are written.
async fn drain(pool: &PgPool, args: &BenchArgs, count: usize, phase: Phase) -> Result<f64> {
    let done_before = done_jobs(pool).await?;
    let shutdown = CancellationToken::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..args.workers {
        workers.spawn(run_worker(
            pool.clone(),
            args.clone(),
            index,
            ran.clone(),
            shutdown.clone(),
        ));
    }
    let deadline = started + Duration::from_secs(900);
    let result = loop {
        let handled = ran.load(Ordering::Relaxed);
        phase.set(handled as u64);
        if handled >= count && done_jobs(pool).await? - done_before >= count as i64 {
            break Ok(seconds_since(started));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "only {handled} of {count} benchmark jobs ran within 900 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    shutdown.cancel();
    while workers.join_next().await.is_some() {}
    phase.done();
    result
}

async fn done_jobs(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM duespark_queue.jobs WHERE queue = $1 AND status = 'done'",
    )
    .bind(BENCH_QUEUE)
    .fetch_one(pool)
    .await?)
}

async fn run_worker(
    pool: PgPool,
    args: BenchArgs,
    index: usize,
    ran: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let name = format!("bench-{}-{index}", std::process::id());
    let mut config = EngineConfig::new(BENCH_QUEUE, args.concurrency);
    config.poll_interval = Duration::from_millis(100);
    config.claim_batch = batch(&args);
    let backend = PgBackend::<Value>::new(pool, config, name.clone());
    let result = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .data(ran)
        .concurrency(args.concurrency)
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

async fn noop(_payload: Value, ran: Data<Arc<AtomicUsize>>) -> Result<(), JobFailure> {
    ran.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Deletes every job of the benchmark queue, then vacuums the table so that the next figure does
/// not pay for this one's dead rows.
pub async fn clear(pool: &PgPool) -> Result<()> {
    sqlx::query("DELETE FROM duespark_queue.jobs WHERE queue = $1")
        .bind(BENCH_QUEUE)
        .execute(pool)
        .await?;
    sqlx::query("VACUUM (ANALYZE) duespark_queue.jobs")
        .execute(pool)
        .await?;
    Ok(())
}

/// Gathers planner statistics after a bulk insert, as autovacuum would soon after on a queue that
/// grew this much. The peers' scripts do the same before their drain.
async fn analyze(pool: &PgPool) -> Result<()> {
    sqlx::query("ANALYZE duespark_queue.jobs")
        .execute(pool)
        .await?;
    Ok(())
}

/// Describes a figure in one line of text.
pub fn describe(figure: &Figure) -> String {
    let value = |name: &str| figure.values.get(name).cloned().unwrap_or(Value::Null);
    let number = |name: &str| value(name).as_f64().unwrap_or(0.0);
    match figure.figure {
        "latency" => format!(
            "latency: {} single jobs: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            value("samples"),
            number("p50_ms"),
            number("p90_ms"),
            number("p99_ms"),
            number("max_ms")
        ),
        "http" => format!(
            "http: {} requests from {} clients in {:.2} s = {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
            value("requests"),
            value("clients"),
            number("seconds"),
            number("requests_per_second"),
            number("p50_ms"),
            number("p99_ms")
        ),
        "worker_memory" => format!(
            "worker memory: {:.1} MB resident ({:.1} MB peak) after {} jobs at concurrency {}",
            number("rss_mb"),
            number("peak_rss_mb"),
            value("jobs"),
            value("concurrency")
        ),
        "backlog" => format!(
            "backlog: {} of {} waiting jobs in {:.2} s = {:.0} jobs/s",
            value("jobs"),
            value("waiting"),
            number("seconds"),
            number("jobs_per_second")
        ),
        name => format!(
            "{name}: {} jobs in {:.2} s = {:.0} jobs/s",
            value("jobs"),
            number("seconds"),
            number("jobs_per_second")
        ),
    }
}
