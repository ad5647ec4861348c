//! Job lists: filtered keyset pages, newest first.
//!
//! The list index (`jobs_list_idx`) orders each queue's jobs of one status by id, and the running
//! index contains the running jobs. A page is therefore read as one small ordered scan per queue
//! and status, and the scans are merged. The statuses are written into the statement as literals,
//! so the planner can match each branch to the partial index that contains that status.

use chrono::Utc;
use serde::Serialize;

use super::JobStore;
use super::inspect::{JOB_COLUMNS, JobRow};
use crate::{JobId, JobInfo, JobStatus, QueueError};

/// Filters of a job list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub queue: Option<String>,
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    /// Return jobs older than this one (the previous page's `next_cursor`).
    pub before: Option<JobId>,
    pub limit: u32,
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct JobPage {
    pub jobs: Vec<JobInfo>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<JobId>,
}

impl JobStore {
    /// Lists jobs newest first, one page at a time. A `scheduled` or `pending` filter matches by
    /// `run_at`, the same way statuses are reported.
    pub async fn list(&self, filter: &JobFilter) -> Result<JobPage, QueueError> {
        let limit = i64::from(filter.limit.clamp(1, 500));
        let (stored, due): (Vec<JobStatus>, Option<bool>) = match filter.status {
            None => (JobStatus::ALL.to_vec(), None),
            Some(JobStatus::Scheduled) => {
                (vec![JobStatus::Scheduled, JobStatus::Pending], Some(false))
            }
            Some(JobStatus::Pending) => {
                (vec![JobStatus::Scheduled, JobStatus::Pending], Some(true))
            }
            Some(status) => (vec![status], None),
        };
        let sql = list_sql(&stored);
        let rows = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
            .bind(filter.queue.as_deref())
            .bind(filter.kind.as_deref())
            .bind(due)
            .bind(filter.before.map(JobId::get))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;

        let now = Utc::now();
        let has_more = rows.len() as i64 > limit;
        let jobs: Vec<JobInfo> = rows
            .into_iter()
            .take(limit as usize)
            .map(|row| row.into_info(now))
            .collect();
        let next_cursor = if has_more {
            jobs.last().map(|job| job.id)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }
}

/// Builds the list statement for jobs stored with one of `statuses`. Parameters: $1 queue, $2 kind,
/// $3 due (whether `run_at` has passed), $4 the `before` cursor, $5 the page size; each may be
/// NULL except the page size.
///
/// Without a queue filter, the queues are found by a skip scan of the list index (one probe per
/// queue) plus the queues of running jobs.
fn list_sql(statuses: &[JobStatus]) -> String {
    let branches: Vec<String> = statuses
        .iter()
        .map(|status| {
            format!(
                "(SELECT j.id FROM duespark_queue.jobs j
                  WHERE j.queue = q.queue AND j.status = '{status}'
                    AND ($2::text IS NULL OR j.kind = $2)
                    AND ($3::boolean IS NULL OR (j.run_at <= now()) = $3)
                    AND ($4::bigint IS NULL OR j.id < $4)
                  ORDER BY j.id DESC
                  LIMIT $5)",
                status = status.as_str()
            )
        })
        .collect();
    format!(
        r#"
        WITH RECURSIVE listed_queues(queue) AS (
            SELECT min(queue) FROM duespark_queue.jobs WHERE $1::text IS NULL AND status <> 'running'
            UNION ALL
            SELECT (SELECT min(j.queue) FROM duespark_queue.jobs j
                    WHERE j.status <> 'running' AND j.queue > l.queue)
            FROM listed_queues l
            WHERE l.queue IS NOT NULL
        ),
        queues AS (
            SELECT queue FROM listed_queues WHERE queue IS NOT NULL
            UNION
            SELECT queue FROM duespark_queue.jobs WHERE $1::text IS NULL AND status = 'running'
            UNION
            SELECT $1::text WHERE $1::text IS NOT NULL
        ),
        page AS (
            SELECT picked.id
            FROM queues q
            CROSS JOIN LATERAL ({branches}) AS picked
            ORDER BY picked.id DESC
            LIMIT $5
        )
        SELECT {JOB_COLUMNS}
        FROM duespark_queue.jobs
        WHERE id IN (SELECT id FROM page)
        ORDER BY id DESC
        "#,
        branches = branches.join("\n UNION ALL \n")
    )
}
