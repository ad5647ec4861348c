//! Worker memory: a `duespark worker` process drains no-op jobs in the `maintenance` queue at the
//! chosen concurrency, then its resident memory is read from `/proc`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use duespark_queue::{JobStore, NewJob};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::progress::Progress;
use super::{BenchArgs, Figure};

pub async fn measure(
    pool: &PgPool,
    database_url: &str,
    args: &BenchArgs,
    progress: &Progress,
) -> Result<Figure> {
    let since = Utc::now();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("worker")
        .env("DATABASE_URL", database_url)
        .env(
            "WORKER_CONCURRENCY",
            format!("maintenance={}", args.concurrency),
        )
        .env("WORKER_DEFAULT_CONCURRENCY", "1")
        .env("WORKER_METRICS_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env_remove("BACKUP_DIR")
        .kill_on_drop(true)
        .spawn()
        .context("failed to start `duespark worker`")?;
    let pid = child.id().context("the worker exited at once")?;

    let store = JobStore::new(pool.clone());
    for chunk_start in (0..args.jobs).step_by(5_000) {
        let count = 5_000.min(args.jobs - chunk_start);
        store
            .enqueue_batch(
                (0..count)
                    .map(|_| NewJob::new("maintenance", "noop", Value::Null))
                    .collect(),
            )
            .await?;
    }

    let phase = progress.phase("worker memory", args.jobs as u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM duespark_queue.jobs WHERE queue = 'maintenance' AND kind = 'noop' AND status = 'done' AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(pool)
        .await?;
        phase.set(done as u64);
        if done >= args.jobs as i64 {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("the worker exited with {status} before draining its jobs");
        }
        if Instant::now() > deadline {
            bail!("the worker drained {done} of {} jobs in 600 s", args.jobs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phase.done();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("failed to read the worker's /proc status")?;
    let _ = child.kill().await;
    // Also the periodic jobs the worker enqueued when it started.
    sqlx::query("DELETE FROM duespark_queue.jobs WHERE created_at >= $1 AND queue <> $2")
        .bind(since)
        .bind(super::BENCH_QUEUE)
        .execute(pool)
        .await?;
    sqlx::query(
        "DELETE FROM duespark_queue.jobs WHERE queue = 'maintenance' AND kind = 'noop' AND created_at >= $1",
    )
    .bind(since)
    .execute(pool)
    .await?;

    Ok(Figure::new(
        "worker_memory",
        json!({
            "jobs": args.jobs,
            "concurrency": args.concurrency,
            "rss_mb": status_megabytes(&status, "VmRSS:"),
            "peak_rss_mb": status_megabytes(&status, "VmHWM:"),
        }),
    ))
}

/// Reads a `kB` field of `/proc/<pid>/status` in megabytes (MiB).
fn status_megabytes(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_resident_memory() {
        let status = "Name:\tduespark\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\n";
        assert_eq!(super::status_megabytes(status, "VmRSS:"), 30.0);
        assert_eq!(super::status_megabytes(status, "VmHWM:"), 40.0);
        assert_eq!(super::status_megabytes(status, "VmSwap:"), 0.0);
    }
}
