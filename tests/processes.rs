//! Worker processes under faults: `kill -9` while jobs run, SIGTERM while busy, and a chaos run with
//! a killed worker, a PostgreSQL restart and an SMTP server that fails some messages. Every test
//! starts the built `duespark worker` binary as child processes against a real database.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::process::{PostgresGuard, WorkerProcess, WorkerSettings};
use common::smtp::SmtpOptions;
use common::{SmtpServer, fresh_database, wait_until};
use duespark_jobs::domain::{
    AccountInput, ClientInput, InvoiceInput, upsert_account, upsert_client, upsert_invoice,
};
use duespark_jobs::reminders::Stage;
use duespark_jobs::reminders::store::request_reminder;
use duespark_queue::{JobStore, NewJob};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const MAINTENANCE: &str = "maintenance";
const REMINDERS_QUEUE: &str = "reminders";

/// How long a worker process may take to connect and send its first heartbeat.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The worker's default drain timeout: how long a stopping worker waits for its running jobs.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed after the drain timeout for writing results and exiting.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// The completion query of the engine (`complete` in queue/src/engine/claim.rs): it marks an
/// attempt done only while the job is still running under the same attempt and lease owner.
const FENCED_COMPLETION: &str = r#"
    UPDATE duespark_queue.jobs j
    SET status = 'done', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
    FROM unnest($1::bigint[], $2::int[]) AS done(id, attempt)
    WHERE j.id = done.id AND j.attempt = done.attempt AND j.lease_owner = $3 AND j.status = 'running'
"#;

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: i64,
    status: String,
    attempt: i32,
    lease_owner: Option<String>,
    errors: Value,
}

async fn job_rows(pool: &PgPool, ids: &[i64]) -> Vec<JobRow> {
    sqlx::query_as(
        "SELECT id, status, attempt, lease_owner, errors FROM duespark_queue.jobs WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .expect("job rows are readable")
}

/// Counts the jobs among `ids` that are running under a lease owner matching `owner_pattern`.
async fn running_under(pool: &PgPool, ids: &[i64], owner_pattern: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM duespark_queue.jobs WHERE id = ANY($1) AND status = 'running' AND lease_owner LIKE $2",
    )
    .bind(ids)
    .bind(owner_pattern)
    .fetch_one(pool)
    .await
    .expect("job rows are readable")
}

async fn enqueue_noops(pool: &PgPool, count: usize, sleep_ms: u64) -> Vec<i64> {
    let jobs = (0..count)
        .map(|_| NewJob::new(MAINTENANCE, "noop", json!({ "sleep_ms": sleep_ms })))
        .collect();
    JobStore::new(pool.clone())
        .enqueue_batch(jobs)
        .await
        .expect("noop jobs are enqueued")
        .into_iter()
        .map(|enqueued| enqueued.id.get())
        .collect()
}

/// Waits until the reminder scheduler run that a worker process enqueues at start-up is done, so
/// it no longer takes one of the maintenance slots that a test counts on.
async fn wait_for_startup_schedule(pool: &PgPool) {
    let done = wait_until(START_TIMEOUT, || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM duespark_queue.jobs WHERE kind = 'reminder.schedule' AND status = 'done'",
        )
        .fetch_one(pool)
        .await
        .expect("job rows are readable");
        (count > 0).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the start-up reminder scheduler run did not finish within {START_TIMEOUT:?}"
    );
}

/// Noop jobs of the kill test sleep this long, so they are still running when the worker is
/// killed and while the second worker runs them again.
const LONG_SLEEP_MS: u64 = 20_000;

/// How long after the kill every job of the kill test must be running again: a 30 s lease and a
/// rescue every 10 s, plus a margin.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn killed_worker_jobs_run_again() {
    let (pool, url) = fresh_database().await;
    let settings = WorkerSettings::new(&url, "maintenance=5");

    let mut worker_a = WorkerProcess::start(&settings);
    worker_a
        .wait_until_ready(&pool, MAINTENANCE, START_TIMEOUT)
        .await;
    wait_for_startup_schedule(&pool).await;
    let ids = enqueue_noops(&pool, 5, LONG_SLEEP_MS).await;

    // All five jobs run in process A.
    let pattern_a = worker_a.owner_pattern(MAINTENANCE);
    let running = wait_until(Duration::from_secs(15), || async {
        (running_under(&pool, &ids, &pattern_a).await == 5).then_some(())
    })
    .await;
    assert!(
        running.is_some(),
        "the 5 jobs did not all run in process A: {:#?}\nlog of A:\n{}",
        job_rows(&pool, &ids).await,
        worker_a.log_tail(40)
    );
    let owners_a: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT lease_owner FROM duespark_queue.jobs WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(owners_a.len(), 1, "lease owners in A: {owners_a:?}");
    let owner_a = owners_a[0].clone();

    worker_a.kill();
    let killed_at = Instant::now();
    let mut worker_b = WorkerProcess::start(&settings);
    worker_b
        .wait_until_ready(&pool, MAINTENANCE, START_TIMEOUT)
        .await;

    // Once the lease of A expires, B runs every job again as attempt 2.
    let pattern_b = worker_b.owner_pattern(MAINTENANCE);
    let rerunning = wait_until(
        RECOVERY_LIMIT.saturating_sub(killed_at.elapsed()),
        || async {
            let rows = job_rows(&pool, &ids).await;
            rows.iter()
                .all(|row| row.status == "running" && row.attempt == 2)
                .then_some(())
        },
    )
    .await;
    assert!(
        rerunning.is_some(),
        "the jobs of the killed process were not all running again as attempt 2: {:#?}\nlog of B:\n{}",
        job_rows(&pool, &ids).await,
        worker_b.log_tail(40)
    );
    assert_eq!(
        running_under(&pool, &ids, &pattern_b).await,
        5,
        "process B holds the leases"
    );

    // A late result of A's attempt 1 is fenced off while B holds the lease of attempt 2.
    let stale = sqlx::query(FENCED_COMPLETION)
        .bind(&ids)
        .bind(vec![1_i32; ids.len()])
        .bind(&owner_a)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        stale.rows_affected(),
        0,
        "a completion fenced with the stale lease of A changed rows"
    );
    let owner_b: String = sqlx::query_scalar(
        "SELECT lease_owner FROM duespark_queue.jobs WHERE id = $1 AND status = 'running'",
    )
    .bind(ids[0])
    .fetch_one(&pool)
    .await
    .unwrap();
    // The same predicate with B's live lease matches, so the zero above comes from the fence.
    let live: i64 = sqlx::query_scalar(
        r#"
        SELECT count(*) FROM duespark_queue.jobs j
        JOIN unnest($1::bigint[], $2::int[]) AS done(id, attempt) ON j.id = done.id
        WHERE j.attempt = done.attempt AND j.lease_owner = $3 AND j.status = 'running'
        "#,
    )
    .bind(&ids)
    .bind(vec![2_i32; ids.len()])
    .bind(&owner_b)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(live, 5, "the fence predicate matches B's live leases");
    for row in job_rows(&pool, &ids).await {
        assert_eq!(
            row.status, "running",
            "job {} after the stale completion",
            row.id
        );
        assert_eq!(
            row.lease_owner.as_deref(),
            Some(owner_b.as_str()),
            "job {} lease owner",
            row.id
        );
    }

    // Every job is done once its second run has had time to finish, on its second attempt.
    let done_limit = RECOVERY_LIMIT + Duration::from_millis(LONG_SLEEP_MS);
    let done = wait_until(done_limit.saturating_sub(killed_at.elapsed()), || async {
        let rows = job_rows(&pool, &ids).await;
        rows.iter().all(|row| row.status == "done").then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the jobs were not all done within {done_limit:?} of the kill: {:#?}\nlog of B:\n{}",
        job_rows(&pool, &ids).await,
        worker_b.log_tail(40)
    );
    for row in job_rows(&pool, &ids).await {
        assert_eq!(row.attempt, 2, "job {} attempts: {row:?}", row.id);
        let errors = row.errors.as_array().expect("errors is an array");
        assert_eq!(errors.len(), 1, "job {} errors: {errors:?}", row.id);
        let message = errors[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("lease expired"),
            "job {} error message: {message}",
            row.id
        );
        assert_eq!(errors[0]["attempt"], 1, "job {} error attempt", row.id);
        assert_eq!(
            errors[0]["worker"].as_str(),
            Some(owner_a.as_str()),
            "job {} error worker",
            row.id
        );
    }
}

#[tokio::test]
async fn sigterm_drains_running_jobs() {
    let (pool, url) = fresh_database().await;
    let settings = WorkerSettings::new(&url, "maintenance=50");

    let mut worker = WorkerProcess::start(&settings);
    worker
        .wait_until_ready(&pool, MAINTENANCE, START_TIMEOUT)
        .await;
    wait_for_startup_schedule(&pool).await;
    let ids = enqueue_noops(&pool, 60, 3_000).await;

    // 50 jobs run at once, the concurrency limit.
    let pattern = worker.owner_pattern(MAINTENANCE);
    let full = wait_until(Duration::from_secs(10), || async {
        (running_under(&pool, &ids, &pattern).await == 50).then_some(())
    })
    .await;
    assert!(
        full.is_some(),
        "50 jobs were not running at once: {:#?}\nlog:\n{}",
        job_rows(&pool, &ids).await,
        worker.log_tail(40)
    );
    let running: HashSet<i64> = job_rows(&pool, &ids)
        .await
        .into_iter()
        .filter(|row| row.status == "running")
        .map(|row| row.id)
        .collect();
    assert_eq!(running.len(), 50);

    worker.terminate();
    let signalled_at = Instant::now();
    let status = worker.wait_for_exit(DRAIN_TIMEOUT + EXIT_GRACE).await;
    let Some(status) = status else {
        panic!(
            "the worker did not exit within {:?} of SIGTERM; log:\n{}",
            DRAIN_TIMEOUT + EXIT_GRACE,
            worker.log_tail(40)
        );
    };
    let exit_time = signalled_at.elapsed();
    assert!(
        status.success(),
        "the worker exited with {status}; log:\n{}",
        worker.log_tail(40)
    );
    assert!(
        exit_time < DRAIN_TIMEOUT,
        "the worker took {exit_time:?} to exit, longer than the drain timeout"
    );

    // The running jobs finished on their only attempt; the others were never started.
    let rows = job_rows(&pool, &ids).await;
    let log = worker.log_tail(30);
    assert_eq!(rows.len(), 60, "no job is lost");
    for row in &rows {
        assert_ne!(row.status, "dead", "job {} is dead: {row:?}", row.id);
        assert_eq!(
            row.errors.as_array().map(Vec::len),
            Some(0),
            "job {} errors: {row:?}",
            row.id
        );
        if running.contains(&row.id) {
            assert_eq!(
                row.status, "done",
                "job {} was running at SIGTERM: {row:?}",
                row.id
            );
            assert_eq!(
                row.attempt, 1,
                "job {} was running at SIGTERM: {row:?}",
                row.id
            );
        } else {
            assert!(
                matches!(row.status.as_str(), "pending" | "scheduled"),
                "job {} was waiting at SIGTERM: {row:?}\nlog:\n{log}",
                row.id
            );
            assert_eq!(
                row.attempt, 0,
                "job {} was waiting at SIGTERM: {row:?}\nlog:\n{log}",
                row.id
            );
            assert_eq!(
                row.lease_owner, None,
                "job {} was waiting at SIGTERM: {row:?}\nlog:\n{log}",
                row.id
            );
        }
    }

    // A new worker runs the jobs that were left waiting.
    let mut next = WorkerProcess::start(&settings);
    next.wait_until_ready(&pool, MAINTENANCE, START_TIMEOUT)
        .await;
    let all_done = wait_until(Duration::from_secs(30), || async {
        let rows = job_rows(&pool, &ids).await;
        rows.iter().all(|row| row.status == "done").then_some(())
    })
    .await;
    assert!(
        all_done.is_some(),
        "the new worker did not finish the waiting jobs: {:#?}\nlog:\n{}",
        job_rows(&pool, &ids).await,
        next.log_tail(40)
    );
    for row in job_rows(&pool, &ids).await {
        assert_eq!(row.attempt, 1, "job {} attempts: {row:?}", row.id);
    }
}

/// Reminders of the chaos run, one client and one invoice each.
const CHAOS_REMINDERS: usize = 2_000;
const CHAOS_ACCOUNTS: usize = 20;
const CHAOS_WORKERS: usize = 3;
const CHAOS_TEMPFAIL_RATIO: f64 = 0.3;

/// `reminder.send` allows 8 attempts with a backoff of 2 s doubling per attempt, so a job whose
/// message drew 451 seven times would wait more than four minutes. With 5 attempts the backoff
/// totals at most 60 s (2 + 4 + 8 + 16 s, each up to twice that with jitter). About
/// 0.3^5 × 2,000 ≈ 5 jobs are expected to draw 451 on every attempt and end dead.
const CHAOS_MAX_ATTEMPTS: i32 = 5;

/// Limit on the chaos run, from the start of the workers to the last finished job.
const CHAOS_DEADLINE: Duration = Duration::from_secs(170);

/// A reminder as the chaos test checks it.
#[derive(Debug, sqlx::FromRow)]
struct ReminderRow {
    id: i64,
    status: String,
    message_id: Option<String>,
    client_email: String,
    job_status: String,
}

#[tokio::test]
async fn chaos_run_sends_no_reminder_twice() {
    let test_started = Instant::now();

    // A private cluster, so the test can restart it. The postgres system user, which runs the
    // server when the tests run as root, must be able to enter the folder.
    let cluster_folder = tempfile::tempdir().expect("temp dir for the PostgreSQL cluster");
    std::fs::set_permissions(
        cluster_folder.path(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut cluster = duespark::local_pg::start(cluster_folder.path())
        .await
        .expect("the private PostgreSQL cluster starts");
    let _cluster_guard = PostgresGuard::new(&cluster.data_dir);
    let port = cluster.port;
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect(&cluster.url)
        .await
        .expect("the test connects to the private cluster");
    duespark::app::migrate(&pool)
        .await
        .expect("migrations apply");

    let seed = rand::random::<u64>();
    let smtp = SmtpServer::start(SmtpOptions {
        tempfail_ratio: Some(CHAOS_TEMPFAIL_RATIO),
        seed: Some(seed),
        ..Default::default()
    });

    seed_reminders(&pool).await;
    let shortened = sqlx::query(
        "UPDATE duespark_queue.jobs SET max_attempts = $1 WHERE kind = 'reminder.send'",
    )
    .bind(CHAOS_MAX_ATTEMPTS)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(shortened.rows_affected(), CHAOS_REMINDERS as u64);
    let seeded_in = test_started.elapsed();

    let settings = WorkerSettings {
        smtp_port: Some(smtp.port),
        mail_rate_per_second: 1000,
        ..WorkerSettings::new(&cluster.url, "reminders=10")
    };
    let mut workers: Vec<WorkerProcess> = (0..CHAOS_WORKERS)
        .map(|_| WorkerProcess::start(&settings))
        .collect();
    let run_started = Instant::now();
    for worker in &mut workers {
        worker
            .wait_until_ready(&pool, REMINDERS_QUEUE, START_TIMEOUT)
            .await;
    }

    // Kill one worker while it runs reminder jobs, a quarter of the way through.
    let victim_pattern = workers[0].owner_pattern(REMINDERS_QUEUE);
    let victim_busy = wait_until(CHAOS_DEADLINE, || async {
        let finished = finished_reminder_jobs(&pool).await?;
        let running = running_reminder_jobs(&pool, &victim_pattern).await?;
        (finished >= CHAOS_REMINDERS as i64 / 4 && running > 0).then_some(())
    })
    .await;
    assert!(
        victim_busy.is_some(),
        "worker {} never ran reminder jobs after a quarter of them finished; log:\n{}",
        workers[0].pid(),
        workers[0].log_tail(40)
    );
    workers[0].kill();
    let orphans: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, lease_owner FROM duespark_queue.jobs WHERE status = 'running' AND lease_owner LIKE $1",
    )
    .bind(&victim_pattern)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        !orphans.is_empty(),
        "the killed worker held no running jobs"
    );

    // Restart PostgreSQL on the same port halfway through.
    let halfway = wait_until(
        CHAOS_DEADLINE.saturating_sub(run_started.elapsed()),
        || async {
            let finished = finished_reminder_jobs(&pool).await?;
            (finished >= CHAOS_REMINDERS as i64 / 2).then_some(())
        },
    )
    .await;
    assert!(
        halfway.is_some(),
        "half of the reminder jobs did not finish within {CHAOS_DEADLINE:?}; log of worker {}:\n{}",
        workers[1].pid(),
        workers[1].log_tail(40)
    );
    cluster
        .stop()
        .await
        .expect("the private PostgreSQL cluster stops");
    cluster = duespark::local_pg::start(cluster_folder.path())
        .await
        .expect("the private PostgreSQL cluster starts again");
    assert_eq!(cluster.port, port, "the restarted cluster keeps its port");
    let restarted_at = run_started.elapsed();

    // Wait until no job waits or runs.
    let settled = wait_until(CHAOS_DEADLINE.saturating_sub(run_started.elapsed()), || async {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM duespark_queue.jobs WHERE status IN ('scheduled', 'pending', 'running', 'retrying')",
        )
        .fetch_one(&pool)
        .await
        .ok()?;
        (unfinished == 0).then_some(())
    })
    .await;
    let run_time = run_started.elapsed();
    let job_counts = count_by(
        &pool,
        "SELECT status, count(*) FROM duespark_queue.jobs GROUP BY status",
    )
    .await;
    let reminder_counts = count_by(
        &pool,
        "SELECT status, count(*) FROM reminders GROUP BY status",
    )
    .await;
    assert!(
        settled.is_some(),
        "jobs were still unfinished {CHAOS_DEADLINE:?} after the workers started: {job_counts:?}; log of worker {}:\n{}",
        workers[1].pid(),
        workers[1].log_tail(40)
    );

    // The surviving workers stop gracefully.
    for worker in &mut workers[1..] {
        worker.terminate();
    }
    for worker in &mut workers[1..] {
        let status = worker.wait_for_exit(DRAIN_TIMEOUT + EXIT_GRACE).await;
        assert!(
            status.is_some_and(|status| status.success()),
            "worker {} exited with {status:?} after SIGTERM; log:\n{}",
            worker.pid(),
            worker.log_tail(40)
        );
    }

    let messages = smtp.messages();
    println!(
        "chaos run: {CHAOS_REMINDERS} reminders, {CHAOS_WORKERS} workers, SMTP 451 ratio {CHAOS_TEMPFAIL_RATIO} (seed {seed}); \
         seeded in {seeded_in:?}, PostgreSQL restarted at {restarted_at:?}, settled after {run_time:?}; \
         {} jobs orphaned by the kill; jobs {job_counts:?}; reminders {reminder_counts:?}; {} messages received",
        orphans.len(),
        messages.len()
    );

    // Every job finished: done, or dead after its last attempt.
    for (status, count) in &job_counts {
        assert!(
            status == "done" || status == "dead",
            "{count} jobs ended {status}"
        );
    }

    // The jobs orphaned by the kill were rescued with a record of the expired lease.
    let orphan_ids: Vec<i64> = orphans.iter().map(|(id, _)| *id).collect();
    let orphan_owners: HashMap<i64, String> = orphans.into_iter().collect();
    for row in job_rows(&pool, &orphan_ids).await {
        let owner = &orphan_owners[&row.id];
        let rescued = row.errors.as_array().is_some_and(|errors| {
            errors.iter().any(|error| {
                error["worker"].as_str() == Some(owner.as_str())
                    && error["message"]
                        .as_str()
                        .is_some_and(|message| message.contains("lease expired"))
            })
        });
        assert!(
            rescued,
            "job {} of the killed worker has no lease-expired error: {row:?}",
            row.id
        );
    }

    // The SMTP server received no reminder twice.
    let mut per_message_id: HashMap<String, usize> = HashMap::new();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    let mut recipient_of: HashMap<String, Vec<String>> = HashMap::new();
    for message in &messages {
        let message_id = message
            .header("Message-ID")
            .map(|id| normalize_message_id(&id))
            .expect("every received message has a Message-ID");
        *per_message_id.entry(message_id.clone()).or_default() += 1;
        for recipient in &message.rcpt_tos {
            *per_recipient.entry(recipient.clone()).or_default() += 1;
        }
        recipient_of.insert(message_id, message.rcpt_tos.clone());
    }
    let repeated_ids: Vec<_> = per_message_id
        .iter()
        .filter(|(_, count)| **count > 1)
        .collect();
    assert!(
        repeated_ids.is_empty(),
        "Message-IDs received more than once: {repeated_ids:?}"
    );
    let repeated_recipients: Vec<_> = per_recipient
        .iter()
        .filter(|(_, count)| **count > 1)
        .collect();
    assert!(
        repeated_recipients.is_empty(),
        "recipients that received more than one message: {repeated_recipients:?}"
    );

    // Every reminder has a final status that matches what the SMTP server received.
    let reminders: Vec<ReminderRow> = sqlx::query_as(
        r#"
        SELECT r.id, r.status, r.message_id, c.email AS client_email, j.status AS job_status
        FROM reminders r
        JOIN invoices i ON i.id = r.invoice_id
        JOIN clients c ON c.id = i.client_id
        JOIN duespark_queue.jobs j ON j.id = r.job_id::bigint
        ORDER BY r.id
        "#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(reminders.len(), CHAOS_REMINDERS);
    let reminder_message_ids: HashSet<String> = reminders
        .iter()
        .filter_map(|reminder| reminder.message_id.as_deref().map(normalize_message_id))
        .collect();
    let unknown: Vec<_> = per_message_id
        .keys()
        .filter(|id| !reminder_message_ids.contains(*id))
        .collect();
    assert!(
        unknown.is_empty(),
        "received messages that no reminder recorded: {unknown:?}"
    );

    let mut outcomes: BTreeMap<(String, &str, String), usize> = BTreeMap::new();
    for reminder in &reminders {
        let message_id = reminder.message_id.as_deref().map(normalize_message_id);
        let arrived = message_id
            .as_ref()
            .is_some_and(|id| per_message_id.contains_key(id));
        *outcomes
            .entry((
                reminder.status.clone(),
                if arrived { "arrived" } else { "not arrived" },
                reminder.job_status.clone(),
            ))
            .or_default() += 1;

        assert!(
            matches!(reminder.status.as_str(), "sent" | "failed" | "uncertain"),
            "reminder {} ended {} (job {}): {reminder:?}",
            reminder.id,
            reminder.status,
            reminder.job_status
        );
        if reminder.status == "sent" {
            assert!(
                arrived,
                "reminder {} is sent, but its message never arrived: {reminder:?}",
                reminder.id
            );
            let recipients = &recipient_of[message_id.as_ref().unwrap()];
            assert_eq!(
                recipients,
                &vec![reminder.client_email.clone()],
                "recipients of reminder {}",
                reminder.id
            );
        }
        if !arrived {
            assert!(
                matches!(reminder.status.as_str(), "failed" | "uncertain"),
                "reminder {} did not arrive, but is recorded {}: {reminder:?}",
                reminder.id,
                reminder.status
            );
        }
        if reminder.status == "failed" {
            assert!(
                !arrived,
                "reminder {} is recorded failed, but its message arrived: {reminder:?}",
                reminder.id
            );
        }
    }
    println!("chaos run outcomes (reminder status, delivery, job status): {outcomes:?}");
}

/// Creates the accounts, one client with its own address and one open invoice per reminder, and
/// requests the `due` reminder of each invoice. Due dates lie 60 days ahead, so the reminder
/// scheduler that the workers run at start-up adds no reminders of its own.
async fn seed_reminders(pool: &PgPool) {
    for account in 0..CHAOS_ACCOUNTS {
        let input = AccountInput {
            name: format!("Chaos Studio {account}"),
            sender_name: format!("Owner {account}"),
            reply_to: format!("owner{account}@studio.example"),
            timezone: "UTC".to_owned(),
            reminders_paused: None,
        };
        upsert_account(pool, &format!("chaos-acct-{account}"), &input)
            .await
            .expect("account upsert");
    }

    let issued_on = Utc::now().date_naive();
    let due_on = issued_on + chrono::Duration::days(60);
    let requested: Vec<i64> = futures::stream::iter(0..CHAOS_REMINDERS)
        .map(|index| async move {
            let account_id = format!("chaos-acct-{}", index % CHAOS_ACCOUNTS);
            let client_id = format!("chaos-client-{index}");
            let invoice_id = format!("chaos-inv-{index}");
            let client = ClientInput {
                account_id: account_id.clone(),
                name: format!("Client {index}"),
                email: format!("client-{index}@chaos.example"),
                reminders_paused: None,
            };
            upsert_client(pool, &client_id, &client)
                .await
                .expect("client upsert");
            let invoice = InvoiceInput {
                account_id,
                client_id,
                number: format!("INV-{index}"),
                amount_due: 10_000 + index as i64,
                currency: "usd".to_owned(),
                issued_on: issued_on.to_string(),
                due_on: due_on.to_string(),
                pay_url: format!("https://pay.example.com/chaos/{index}"),
                status: None,
                reminders_paused: None,
                stripe_payment_intent_id: None,
                stripe_invoice_id: None,
                stripe_checkout_session_id: None,
            };
            upsert_invoice(pool, &invoice_id, &invoice)
                .await
                .expect("invoice upsert");
            request_reminder(pool, &invoice_id, Stage::Due)
                .await
                .expect("reminder request")
                .reminder_id
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(requested.len(), CHAOS_REMINDERS);
}

/// Counts finished reminder jobs, or returns `None` while the database is unreachable.
async fn finished_reminder_jobs(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM duespark_queue.jobs WHERE kind = 'reminder.send' AND status IN ('done', 'dead')",
    )
    .fetch_one(pool)
    .await
    .ok()
}

/// Counts reminder jobs running under a lease owner matching `owner_pattern`, or returns `None`
/// while the database is unreachable.
async fn running_reminder_jobs(pool: &PgPool, owner_pattern: &str) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM duespark_queue.jobs WHERE kind = 'reminder.send' AND status = 'running' AND lease_owner LIKE $1",
    )
    .bind(owner_pattern)
    .fetch_one(pool)
    .await
    .ok()
}

async fn count_by(pool: &PgPool, query: &'static str) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(query)
        .fetch_all(pool)
        .await
        .expect("counts are readable")
        .into_iter()
        .collect()
}

/// Strips the angle brackets and spaces around a Message-ID.
fn normalize_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}
