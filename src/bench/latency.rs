//! Pickup latency: single jobs enqueued one at a time on an idle queue, timed from the start of the
//! enqueue call to the start of the handler in the same process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use duespark_queue::{EngineConfig, JobFailure, JobMeta, JobStore, NewJob, PgBackend};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::{BENCH_QUEUE, BenchArgs, Figure, millis, quantile};

/// Pause between samples, so each job finds the queue idle.
const PAUSE: Duration = Duration::from_millis(20);

type Starts = mpsc::UnboundedSender<(i64, Instant)>;

pub async fn measure(pool: &PgPool, args: &BenchArgs, progress: &Progress) -> Result<Figure> {
    let (starts, mut started) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(run_worker(
        pool.clone(),
        args.latency_concurrency.max(1),
        starts,
        shutdown.clone(),
    ));
    // Let the worker connect and start listening before the first sample.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let store = JobStore::new(pool.clone());
    let phase = progress.phase("latency", args.latency_samples as u64);
    let mut latencies = Vec::with_capacity(args.latency_samples);
    for sample in 0..args.latency_samples {
        let enqueued = Instant::now();
        let id = store
            .enqueue(NewJob::new(BENCH_QUEUE, "noop", Value::Null))
            .await
            .context("failed to enqueue a latency sample")?
            .id
            .0;
        let handler_start = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some((started_id, at)) = started.recv().await {
                if started_id == id {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .with_context(|| format!("job {id} did not start within 10 s"))?;
        latencies.push(millis(handler_start - enqueued));
        phase.set(sample as u64 + 1);
        tokio::time::sleep(PAUSE).await;
    }
    phase.done();
    shutdown.cancel();
    let _ = worker.await;

    latencies.sort_by(f64::total_cmp);
    Ok(Figure::new(
        "latency",
        json!({
            "samples": latencies.len(),
            "concurrency": args.latency_concurrency.max(1),
            "p50_ms": quantile(&latencies, 0.5),
            "p90_ms": quantile(&latencies, 0.9),
            "p99_ms": quantile(&latencies, 0.99),
            "max_ms": quantile(&latencies, 1.0),
        }),
    ))
}

async fn run_worker(pool: PgPool, concurrency: usize, starts: Starts, shutdown: CancellationToken) {
    let name = format!("bench-latency-{}", std::process::id());
    let backend = PgBackend::<Value>::new(
        pool,
        EngineConfig::new(BENCH_QUEUE, concurrency),
        name.clone(),
    );
    let result = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .data(starts)
        .concurrency(concurrency)
        .build(record_start)
        .run_until(async move {
            shutdown.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "latency worker failed");
    }
}

async fn record_start(
    _payload: Value,
    meta: Data<JobMeta>,
    starts: Data<Starts>,
) -> Result<(), JobFailure> {
    let _ = starts.send((meta.id.0, Instant::now()));
    Ok(())
}
