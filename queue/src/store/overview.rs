//! Summaries for the operations dashboard: capped counts per queue and status, the age of the
//! oldest due job, finished jobs per minute, live workers, lease details and lookups by a payload
//! field. Counts stop at a cap, so that a page stays fast with millions of jobs in the table.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Postgres, QueryBuilder};

use super::JobStore;
use crate::{JobFilter, JobId, JobStatus, QueueError};

/// A count that stops at a cap: `count` is exact when `capped` is false, and a lower bound (the
/// cap) when more rows exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CappedCount {
    pub count: i64,
    pub capped: bool,
}

impl CappedCount {
    /// Builds the count from the rows found with `LIMIT cap + 1`.
    fn from_found(found: i64, cap: i64) -> Self {
        CappedCount {
            count: found.min(cap),
            capped: found > cap,
        }
    }
}

/// The number of jobs of one queue in one status, capped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatusCount {
    pub queue: String,
    pub status: JobStatus,
    pub count: CappedCount,
}

/// Jobs of one queue that finished in one status during one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinishedPerMinute {
    pub queue: String,
    /// `Done` or `Dead`.
    pub status: JobStatus,
    /// Whole minutes between the finish and now: 0 for the current minute.
    pub minutes_ago: u32,
    pub count: i64,
}

/// A worker that sent a heartbeat in the last 10 minutes; stopped workers remove themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkerInfo {
    pub id: String,
    pub queue: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
}

/// A job's lease and the columns that `JobInfo` leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct JobLease {
    /// The worker running the job; `None` unless the job is running.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Set by a cancel while the job runs: it ends `cancelled` after the current attempt.
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
}

/// Counts of each queue in `$1` per reported status, in the order of `JobStatus::ALL`, each
/// stopping at `$2` rows. A stored `scheduled` or `pending` job is reported by its `run_at`. Each
/// status has its own subquery with literal values, so the planner picks an index per status:
/// `jobs_running_idx` for running jobs and the partial `jobs_list_idx` for the others. A correlated
/// subquery over a list of statuses would be planned once, as a scan of the table. The ORDER BY
/// follows the list index, which keeps the planner from a sequential scan that it expects to stop
/// early (a queue with few done jobs took 67 ms of a 1,000,000-job table that way).
const CAPPED_COUNTS_SQL: &str = r#"
    SELECT q.queue,
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status IN ('scheduled', 'pending') AND j.run_at > now() LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status IN ('scheduled', 'pending') AND j.run_at <= now() LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status = 'running' LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status = 'retrying' ORDER BY j.id DESC LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status = 'done' ORDER BY j.id DESC LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status = 'dead' ORDER BY j.id DESC LIMIT $2) AS found),
        (SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs j WHERE j.queue = q.queue
            AND j.status = 'cancelled' ORDER BY j.id DESC LIMIT $2) AS found)
    FROM unnest($1::text[]) WITH ORDINALITY AS q(queue, ord)
    ORDER BY q.ord
"#;

/// One row of [`CAPPED_COUNTS_SQL`]: the queue and the rows found per status.
type CountsRow = (String, i64, i64, i64, i64, i64, i64, i64);

impl JobStore {
    /// Counts the jobs of each queue in `queues` per reported status, each count stopping at
    /// `cap`. Every count reads at most `cap + 1` entries of an index.
    pub async fn capped_counts(
        &self,
        queues: &[&str],
        cap: u32,
    ) -> Result<Vec<QueueStatusCount>, QueueError> {
        let cap = i64::from(cap);
        let rows: Vec<CountsRow> = sqlx::query_as(CAPPED_COUNTS_SQL)
            .bind(queues)
            .bind(cap + 1)
            .fetch_all(&self.pool)
            .await?;

        let mut counts = Vec::with_capacity(rows.len() * JobStatus::ALL.len());
        for (queue, scheduled, pending, running, retrying, done, dead, cancelled) in rows {
            let found = [scheduled, pending, running, retrying, done, dead, cancelled];
            for (status, found) in JobStatus::ALL.into_iter().zip(found) {
                counts.push(QueueStatusCount {
                    queue: queue.clone(),
                    status,
                    count: CappedCount::from_found(found, cap),
                });
            }
        }
        Ok(counts)
    }

    /// Counts the jobs that match `filter` (its `before` and `limit` are ignored), stopping at
    /// `cap`.
    pub async fn count_matching(
        &self,
        filter: &JobFilter,
        cap: u32,
    ) -> Result<CappedCount, QueueError> {
        // Only the filter's conditions go into the statement. A statement with `$1 IS NULL OR`
        // conditions would be planned as a scan of the whole table once PostgreSQL switches the
        // prepared statement to a generic plan.
        let cap = i64::from(cap);
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT count(*) FROM (SELECT 1 FROM duespark_queue.jobs WHERE true",
        );
        if let Some(queue) = &filter.queue {
            query.push(" AND queue = ").push_bind(queue);
        }
        match filter.status {
            None => {}
            Some(JobStatus::Scheduled) => {
                query.push(" AND status IN ('scheduled', 'pending') AND run_at > now()");
            }
            Some(JobStatus::Pending) => {
                query.push(" AND status IN ('scheduled', 'pending') AND run_at <= now()");
            }
            Some(status) => {
                query.push(" AND status = ").push_bind(status.as_str());
            }
        }
        if let Some(kind) = &filter.kind {
            query.push(" AND kind = ").push_bind(kind);
        }
        query.push(" LIMIT ").push_bind(cap + 1).push(") AS found");

        let found: i64 = query.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(CappedCount::from_found(found, cap))
    }

    /// Returns, per queue, the age in seconds of the oldest job that is due and waiting for a
    /// worker. Queues with no such job are left out.
    pub async fn oldest_waiting_ages(&self) -> Result<Vec<(String, f64)>, QueueError> {
        Ok(sqlx::query_as(
            r#"
            SELECT queue, extract(epoch FROM now() - min(run_at))::float8
            FROM duespark_queue.jobs
            WHERE status IN ('scheduled', 'pending', 'retrying') AND run_at <= now()
            GROUP BY queue
            "#,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts the jobs that finished `done` or `dead` per queue and minute over the last
    /// `minutes` minutes.
    ///
    /// NOTE: this reads every job that finished in the window through the `(status, finished_at)`
    /// index, so its cost grows with the throughput of that window, not with the table's size.
    pub async fn finished_per_minute(
        &self,
        minutes: u32,
    ) -> Result<Vec<FinishedPerMinute>, QueueError> {
        let rows: Vec<(String, String, i32, i64)> = sqlx::query_as(
            r#"
            SELECT queue, status, floor(extract(epoch FROM now() - finished_at) / 60)::int4, count(*)
            FROM duespark_queue.jobs
            WHERE status IN ('done', 'dead')
              AND finished_at > now() - make_interval(mins => $1)
            GROUP BY 1, 2, 3
            "#,
        )
        .bind(i32::try_from(minutes).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(queue, status, minutes_ago, count)| {
                Some(FinishedPerMinute {
                    queue,
                    status: status.parse().ok()?,
                    minutes_ago: u32::try_from(minutes_ago).ok()?,
                    count,
                })
            })
            .collect())
    }

    /// Lists the registered workers by queue, with their last heartbeat.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        Ok(sqlx::query_as(
            r#"
            SELECT id, queue, started_at, last_heartbeat
            FROM duespark_queue.workers
            ORDER BY queue, id
            "#,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Reads a job's lease and cancel flag, or `None` when no job has that id.
    pub async fn lease(&self, id: JobId) -> Result<Option<JobLease>, QueueError> {
        Ok(sqlx::query_as(
            r#"
            SELECT lease_owner, lease_expires_at, cancel_requested, idempotency_key
            FROM duespark_queue.jobs
            WHERE id = $1
            "#,
        )
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Returns the ids of jobs whose payload has the string `value` under the top-level key
    /// `invoice_id`, newest first. The partial index `jobs_payload_invoice_id_idx` serves it.
    pub async fn find_by_payload_invoice_id(
        &self,
        value: &str,
        limit: u32,
    ) -> Result<Vec<JobId>, QueueError> {
        // The `?` condition repeats the partial index's predicate, so the planner can use it.
        let ids: Vec<i64> = sqlx::query_scalar(
            r#"
            SELECT id FROM duespark_queue.jobs
            WHERE payload ? 'invoice_id' AND payload ->> 'invoice_id' = $1
            ORDER BY id DESC
            LIMIT $2
            "#,
        )
        .bind(value)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(JobId).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_count_marks_lower_bounds() {
        assert_eq!(
            CappedCount::from_found(3, 10),
            CappedCount {
                count: 3,
                capped: false
            }
        );
        assert_eq!(
            CappedCount::from_found(10, 10),
            CappedCount {
                count: 10,
                capped: false
            }
        );
        assert_eq!(
            CappedCount::from_found(11, 10),
            CappedCount {
                count: 10,
                capped: true
            }
        );
    }
}
