//! The job store's bulk insert and job lists against a real database: the insert without
//! idempotency keys returns ids in input order, and every combination of list filters returns the
//! same pages as a plain query over the whole table.

mod common;

use chrono::{Duration, Utc};
use common::fresh_database;
use duespark_queue::{JobFilter, JobId, JobStatus, JobStore, NewJob};
use serde_json::json;
use sqlx::PgPool;

#[tokio::test]
async fn unkeyed_batch_keeps_input_order() {
    let (pool, _) = fresh_database().await;
    let store = JobStore::new(pool.clone());
    let later = Utc::now() + Duration::hours(1);
    let jobs: Vec<NewJob> = (0..2_500)
        .map(|n| {
            let queue = ["lists-a", "lists-b", "lists-c"][n % 3];
            let job =
                NewJob::new(queue, "test.ordered", json!({ "n": n })).priority((n % 5) as i16);
            if n.is_multiple_of(7) {
                job.run_at(later)
            } else {
                job
            }
        })
        .collect();
    let enqueued = store.enqueue_batch(jobs).await.expect("enqueue failed");
    assert_eq!(enqueued.len(), 2_500);
    assert!(enqueued.iter().all(|job| job.created));

    let ids: Vec<i64> = enqueued.iter().map(|job| job.id.get()).collect();
    let stored: Vec<(i64, i64, String, String)> = sqlx::query_as(
        r#"
        SELECT given.ord - 1, (j.payload ->> 'n')::bigint, j.queue, j.status
        FROM unnest($1::bigint[]) WITH ORDINALITY AS given(id, ord)
        JOIN duespark_queue.jobs j ON j.id = given.id
        ORDER BY given.ord
        "#,
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 2_500, "every returned id names a stored job");
    for (position, n, queue, status) in stored {
        assert_eq!(position, n, "result {position} names the job of input {n}");
        let n = n as usize;
        assert_eq!(queue, ["lists-a", "lists-b", "lists-c"][n % 3]);
        let expected = if n.is_multiple_of(7) {
            "scheduled"
        } else {
            "pending"
        };
        assert_eq!(status, expected, "job {n}");
    }
}

/// Stores jobs of three queues and two kinds in every status, with some scheduled jobs already
/// due and some pending jobs not yet due (as a snooze or a clock change leaves them).
async fn seed(pool: &PgPool) {
    let store = JobStore::new(pool.clone());
    let jobs: Vec<NewJob> = (0..210)
        .map(|n| {
            let queue = ["lists-a", "lists-b", "lists-c"][n % 3];
            let kind = ["test.first", "test.second"][(n / 3) % 2];
            NewJob::new(queue, kind, json!({ "n": n }))
        })
        .collect();
    store.enqueue_batch(jobs).await.expect("enqueue failed");

    sqlx::query(
        r#"
        UPDATE duespark_queue.jobs
        SET status = (ARRAY['scheduled', 'pending', 'running', 'retrying', 'done', 'dead', 'cancelled'])[(id * 7919) % 7 + 1],
            run_at = CASE WHEN id % 2 = 0 THEN now() + interval '1 hour' ELSE now() - interval '1 minute' END,
            lease_owner = 'lists-test-worker',
            lease_expires_at = now() + interval '30 seconds',
            finished_at = now() - make_interval(mins => (id % 50)::int)
        "#,
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE duespark_queue.jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE status <> 'running'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE duespark_queue.jobs SET finished_at = NULL WHERE status NOT IN ('done', 'dead', 'cancelled')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Returns every id the filter matches, newest first, from a plain query over the table.
async fn expected_ids(pool: &PgPool, filter: &JobFilter) -> Vec<i64> {
    let (stored, due) = match filter.status {
        None => (None, None),
        Some(JobStatus::Scheduled) => (Some(vec!["scheduled", "pending"]), Some(false)),
        Some(JobStatus::Pending) => (Some(vec!["scheduled", "pending"]), Some(true)),
        Some(status) => (Some(vec![status.as_str()]), None),
    };
    sqlx::query_scalar(
        r#"
        SELECT id FROM duespark_queue.jobs
        WHERE ($1::text IS NULL OR queue = $1)
          AND ($2::text[] IS NULL OR status = ANY($2))
          AND ($3::boolean IS NULL OR (run_at <= now()) = $3)
          AND ($4::text IS NULL OR kind = $4)
        ORDER BY id DESC
        "#,
    )
    .bind(filter.queue.as_deref())
    .bind(stored)
    .bind(due)
    .bind(filter.kind.as_deref())
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Returns every id the store lists for the filter, following the cursor page by page.
async fn listed_ids(store: &JobStore, filter: &JobFilter) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut page_filter = filter.clone();
    for _ in 0..500 {
        let page = store.list(&page_filter).await.expect("list failed");
        assert!(page.jobs.len() <= filter.limit as usize);
        for job in &page.jobs {
            if let Some(queue) = &filter.queue {
                assert_eq!(&job.queue, queue);
            }
            if let Some(status) = filter.status {
                assert_eq!(
                    job.status,
                    status,
                    "job {} listed as {status:?}",
                    job.id.get()
                );
            }
        }
        ids.extend(page.jobs.iter().map(|job| job.id.get()));
        match page.next_cursor {
            Some(cursor) => page_filter.before = Some(cursor),
            None => return ids,
        }
    }
    panic!("the pages of {filter:?} never ended");
}

#[tokio::test]
async fn list_filters_match_table_scan() {
    let (pool, _) = fresh_database().await;
    seed(&pool).await;
    let store = JobStore::new(pool.clone());

    let queues = [None, Some("lists-a"), Some("lists-c"), Some("lists-none")];
    let statuses = std::iter::once(None).chain(JobStatus::ALL.into_iter().map(Some));
    let kinds = [None, Some("test.second")];
    let mut checked = 0;
    let mut matched = 0;
    for status in statuses {
        for queue in queues {
            for kind in kinds {
                let filter = JobFilter {
                    queue: queue.map(str::to_owned),
                    status,
                    kind: kind.map(str::to_owned),
                    before: None,
                    limit: 7,
                };
                let expected = expected_ids(&pool, &filter).await;
                let listed = listed_ids(&store, &filter).await;
                assert_eq!(listed, expected, "{filter:?}");
                checked += 1;
                matched += listed.len();
            }
        }
    }
    assert_eq!(checked, 8 * 4 * 2);
    assert!(
        matched > 500,
        "the seed covers the filters: {matched} matches"
    );

    // A cursor in the middle starts after that job.
    let all = expected_ids(&pool, &JobFilter::default()).await;
    let page = store
        .list(&JobFilter {
            before: Some(JobId(all[9])),
            limit: 5,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<i64> = page.jobs.iter().map(|job| job.id.get()).collect();
    assert_eq!(ids, all[10..15].to_vec());
    assert_eq!(page.next_cursor, Some(JobId(all[14])));
}

#[tokio::test]
async fn counts_match_table_scan() {
    let (pool, _) = fresh_database().await;
    seed(&pool).await;
    let store = JobStore::new(pool.clone());
    let counts = store.counts().await.expect("counts failed");
    for count in &counts {
        let filter = JobFilter {
            queue: Some(count.queue.clone()),
            status: Some(count.status),
            ..JobFilter::default()
        };
        // The seed finished every finished job within the last hour, so all of them count.
        let expected = expected_ids(&pool, &filter).await.len() as i64;
        assert_eq!(count.count, expected, "{count:?}");
    }
    let total: i64 = counts.iter().map(|count| count.count).sum();
    assert_eq!(total, 210, "{counts:?}");
}
