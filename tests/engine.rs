//! The queue engine against a real PostgreSQL: workers built here with `PgBackend` and test
//! handlers that record every run in a table, so each test checks rows, statuses and timestamps.
//!
//! The handlers follow a plan carried in the job's payload (sleep, then succeed or fail in a given
//! way). Every run is one row of `engine_test_runs` with the database's `clock_timestamp()` as its
//! start, which the tests compare with the job's `run_at`, `created_at` and error times.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use chrono::{DateTime, Utc};
use common::proxy::{DatabaseProxy, Outage, database_address, url_through};
use common::{fresh_database, wait_until};
use duespark_queue::{
    EngineConfig, JobFailure, JobId, JobInfo, JobMeta, JobStatus, JobStore, NewJob, PgBackend,
    RetentionPolicy, RetryBackoff, enqueue_in,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "engine-test";
const KIND: &str = "test.planned";

/// The 20,000-job test takes this lock for writing, so no timing-sensitive test runs beside it on
/// a small machine. Every other test takes it for reading.
static LOAD_TEST_GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

// ---------------------------------------------------------------------------------------------
// Harness: database, recorded runs, planned handlers and workers.
// ---------------------------------------------------------------------------------------------

/// A fresh database with the run table, and a store on a pool that bypasses any proxy.
struct TestDatabase {
    pool: PgPool,
    url: String,
    store: JobStore,
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        init_logs();
        let (pool, url) = fresh_database().await;
        sqlx::query(
            r#"
            CREATE TABLE engine_test_runs (
                job_id       bigint NOT NULL,
                -- 1 for the first run of the job, 2 for the second and so on, snoozes included.
                run          integer NOT NULL,
                attempt      integer NOT NULL,
                worker       text NOT NULL,
                started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
                finished_at  timestamptz,
                PRIMARY KEY (job_id, run)
            )
            "#,
        )
        .execute(&pool)
        .await
        .expect("failed to create the run table");
        let store = JobStore::new(pool.clone());
        TestDatabase { pool, url, store }
    }

    /// Makes a second run of any job fail the handler's insert, for tests where each job must run
    /// exactly once.
    async fn allow_one_run_per_job(&self) {
        sqlx::query("CREATE UNIQUE INDEX engine_test_runs_once ON engine_test_runs (job_id)")
            .execute(&self.pool)
            .await
            .expect("failed to create the unique index on job_id");
    }

    /// Creates a separate pool for workers, with its own connection limit.
    fn worker_pool(&self, max_connections: u32) -> PgPool {
        worker_pool(&self.url, max_connections)
    }

    async fn runs_of(&self, id: JobId) -> Vec<Run> {
        sqlx::query_as::<_, Run>(
            "SELECT job_id, run, attempt, worker, started_at, finished_at FROM engine_test_runs WHERE job_id = $1 ORDER BY run",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .expect("failed to read runs")
    }

    async fn all_runs(&self) -> Vec<Run> {
        sqlx::query_as::<_, Run>(
            "SELECT job_id, run, attempt, worker, started_at, finished_at FROM engine_test_runs ORDER BY job_id, run",
        )
        .fetch_all(&self.pool)
        .await
        .expect("failed to read runs")
    }

    async fn run_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM engine_test_runs")
            .fetch_one(&self.pool)
            .await
            .expect("failed to count runs")
    }

    async fn job(&self, id: JobId) -> JobInfo {
        self.store
            .get(id)
            .await
            .expect("failed to read the job")
            .unwrap_or_else(|| panic!("job {id} not found"))
    }

    async fn enqueue(&self, job: NewJob) -> JobId {
        let enqueued = self.store.enqueue(job).await.expect("enqueue failed");
        assert!(enqueued.created, "job {} already existed", enqueued.id);
        enqueued.id
    }

    /// Waits until every job is done, dead or cancelled. On timeout it panics with their statuses.
    async fn wait_finished(&self, ids: &[JobId], timeout: Duration) -> Vec<JobInfo> {
        let store = &self.store;
        let finished = wait_until(timeout, || async move {
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                let job = store.get(*id).await.ok()??;
                if !job.status.is_finished() {
                    return None;
                }
                jobs.push(job);
            }
            Some(jobs)
        })
        .await;
        match finished {
            Some(jobs) => jobs,
            None => {
                let mut statuses = Vec::new();
                for id in ids {
                    statuses.push((id.0, self.job(*id).await.status));
                }
                panic!("jobs did not finish within {timeout:?}: {statuses:?}")
            }
        }
    }

    /// Waits until `count` workers have registered with their first heartbeat.
    async fn wait_for_workers(&self, count: i64) {
        let pool = &self.pool;
        let registered = wait_until(Duration::from_secs(10), || async move {
            let live: i64 = sqlx::query_scalar("SELECT count(*) FROM duespark_queue.workers")
                .fetch_one(pool)
                .await
                .ok()?;
            (live >= count).then_some(())
        })
        .await;
        assert!(
            registered.is_some(),
            "{count} workers did not register within 10 s"
        );
    }

    /// Reads the database's current time, the clock of every timestamp the tests compare.
    async fn now(&self) -> DateTime<Utc> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&self.pool)
            .await
            .expect("failed to read the database clock")
    }
}

fn worker_pool(url: &str, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_lazy(url)
        .expect("the database URL is valid")
}

fn init_logs() {
    // RUST_LOG=duespark_queue=debug shows the engine's logs. Without RUST_LOG only errors are printed.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// One row of `engine_test_runs`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Run {
    job_id: i64,
    run: i32,
    attempt: i32,
    worker: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// What a planned job does when it runs: sleep, then succeed or fail.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Plan {
    sleep_ms: u64,
    failure: Option<PlannedFailure>,
    /// Delay for a retry-after or a snooze, in milliseconds.
    after_ms: Option<u64>,
    /// Only the first this many runs fail; `None` fails every run.
    failing_runs: Option<i32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PlannedFailure {
    Retry,
    Snooze,
    Permanent,
}

impl Plan {
    fn outcome(&self, run: i32) -> Result<(), JobFailure> {
        let Some(failure) = self.failure else {
            return Ok(());
        };
        if self.failing_runs.is_some_and(|failing| run > failing) {
            return Ok(());
        }
        let after = self.after_ms.map(Duration::from_millis);
        match failure {
            PlannedFailure::Retry => Err(JobFailure::Retry {
                message: format!("planned failure of run {run}"),
                after,
            }),
            PlannedFailure::Snooze => Err(JobFailure::Snooze {
                after: after.unwrap_or_default(),
            }),
            PlannedFailure::Permanent => Err(JobFailure::permanent(format!(
                "planned permanent failure of run {run}"
            ))),
        }
    }
}

fn planned(plan: Value) -> NewJob {
    NewJob::new(QUEUE, KIND, plan)
}

/// Writes each run of a job to `engine_test_runs`. The handlers of one worker share it.
#[derive(Clone)]
struct Recorder {
    pool: PgPool,
    worker: String,
    /// Ids of jobs whose run insert failed, which with the unique index means a second run.
    failed_inserts: Arc<Mutex<Vec<(i64, String)>>>,
}

impl Recorder {
    /// Inserts the run's row and returns its run number.
    async fn record_start(&self, meta: &JobMeta) -> Result<i32, JobFailure> {
        let inserted = sqlx::query_scalar(
            r#"
            INSERT INTO engine_test_runs (job_id, run, attempt, worker)
            SELECT $1, count(*)::int + 1, $2, $3 FROM engine_test_runs WHERE job_id = $1
            RETURNING run
            "#,
        )
        .bind(meta.id.0)
        .bind(i32::try_from(meta.attempt).unwrap_or(i32::MAX))
        .bind(&self.worker)
        .fetch_one(&self.pool)
        .await;
        inserted.map_err(|error| {
            self.failed_inserts
                .lock()
                .unwrap()
                .push((meta.id.0, error.to_string()));
            JobFailure::permanent(format!(
                "failed to record the run of job {}: {error}",
                meta.id
            ))
        })
    }

    async fn record_finish(&self, id: JobId, run: i32) -> Result<(), JobFailure> {
        sqlx::query(
            "UPDATE engine_test_runs SET finished_at = clock_timestamp() WHERE job_id = $1 AND run = $2",
        )
        .bind(id.0)
        .bind(run)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|error| JobFailure::retry(format!("failed to record the end of a run: {error}")))
    }

    fn failed_inserts(&self) -> Vec<(i64, String)> {
        self.failed_inserts.lock().unwrap().clone()
    }
}

/// The handler of planned jobs. The end of a run is recorded only for jobs that sleep, which keeps
/// the no-op jobs of the load test at one statement each.
async fn run_planned_job(
    payload: Value,
    meta: Data<JobMeta>,
    recorder: Data<Recorder>,
) -> Result<(), JobFailure> {
    let run = recorder.record_start(&meta).await?;
    let plan: Plan = serde_json::from_value(payload)
        .map_err(|error| JobFailure::permanent(format!("invalid test plan: {error}")))?;
    if plan.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.sleep_ms)).await;
        recorder.record_finish(meta.id, run).await?;
    }
    plan.outcome(run)
}

/// A typed payload, for the test of payloads that do not decode.
#[derive(Debug, Deserialize)]
struct Greeting {
    name: String,
    count: u32,
}

async fn run_greeting(
    greeting: Greeting,
    meta: Data<JobMeta>,
    recorder: Data<Recorder>,
) -> Result<(), JobFailure> {
    if greeting.name.is_empty() || greeting.count == 0 {
        return Err(JobFailure::permanent(format!(
            "invalid greeting {greeting:?}: the name must not be empty and the count must be positive"
        )));
    }
    recorder.record_start(&meta).await.map(|_| ())
}

/// A worker running on its own tokio task until [`TestWorker::stop`].
struct TestWorker {
    name: String,
    recorder: Recorder,
    stop: CancellationToken,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl TestWorker {
    /// Starts a worker for planned jobs with `config.concurrency` slots.
    fn start(pool: PgPool, config: EngineConfig, name: &str) -> TestWorker {
        let recorder = recorder_for(&pool, name);
        let concurrency = config.concurrency;
        let backend = PgBackend::<Value>::new(pool, config, name);
        let stop = CancellationToken::new();
        let worker = WorkerBuilder::new(name)
            .backend(backend)
            .data(recorder.clone())
            .concurrency(concurrency)
            .build(run_planned_job);
        let task = tokio::spawn(worker.run_until(cancelled(stop.clone())));
        TestWorker {
            name: name.to_owned(),
            recorder,
            stop,
            task,
        }
    }

    /// Starts a worker whose jobs decode into [`Greeting`].
    fn start_greeting(pool: PgPool, config: EngineConfig, name: &str) -> TestWorker {
        let recorder = recorder_for(&pool, name);
        let concurrency = config.concurrency;
        let backend = PgBackend::<Greeting>::new(pool, config, name);
        let stop = CancellationToken::new();
        let worker = WorkerBuilder::new(name)
            .backend(backend)
            .data(recorder.clone())
            .concurrency(concurrency)
            .build(run_greeting);
        let task = tokio::spawn(worker.run_until(cancelled(stop.clone())));
        TestWorker {
            name: name.to_owned(),
            recorder,
            stop,
            task,
        }
    }

    fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops the worker and waits for it. Panics if the worker failed or took longer than 30 s.
    async fn stop(self) {
        self.stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap_or_else(|_| panic!("worker {} did not stop within 30 s", self.name));
        result
            .expect("the worker task panicked")
            .unwrap_or_else(|error| panic!("worker {} failed: {error}", self.name));
    }
}

fn recorder_for(pool: &PgPool, worker: &str) -> Recorder {
    Recorder {
        pool: pool.clone(),
        worker: worker.to_owned(),
        failed_inserts: Arc::default(),
    }
}

async fn cancelled(token: CancellationToken) -> Result<(), std::io::Error> {
    token.cancelled().await;
    Ok(())
}

/// Engine settings for tests: a 200 ms poll and a 50 ms retry backoff unless a test sets others.
fn test_config(concurrency: usize) -> EngineConfig {
    let mut config = EngineConfig::new(QUEUE, concurrency);
    config.poll_interval = Duration::from_millis(200);
    config.backoff = Arc::new(|_| RetryBackoff {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    });
    config
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds()
}

/// Returns the largest number of runs of one worker that overlapped in time.
fn max_overlap(runs: &[&Run]) -> usize {
    runs.iter()
        .map(|run| {
            runs.iter()
                .filter(|other| {
                    let other_end = other.finished_at.expect("long runs record their end");
                    other.started_at <= run.started_at && run.started_at < other_end
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_jobs_run_once_across_two_workers() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    db.allow_one_run_per_job().await;
    let first = TestWorker::start(db.worker_pool(6), test_config(2), "worker-a");
    let second = TestWorker::start(db.worker_pool(6), test_config(2), "worker-b");
    db.wait_for_workers(2).await;

    let jobs = (0..6).map(|_| planned(json!({"sleep_ms": 1500}))).collect();
    let ids: Vec<JobId> = db
        .store
        .enqueue_batch(jobs)
        .await
        .expect("enqueue failed")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect();
    let finished = db.wait_finished(&ids, Duration::from_secs(20)).await;

    for job in &finished {
        assert_eq!(job.status, JobStatus::Done, "job {}", job.id);
        assert_eq!(job.attempts, 1, "job {}", job.id);
        assert!(job.errors.is_empty(), "job {}: {:?}", job.id, job.errors);
    }
    assert_eq!(db.run_count().await, 6);
    assert!(first.recorder.failed_inserts().is_empty());
    assert!(second.recorder.failed_inserts().is_empty());

    let runs = db.all_runs().await;
    let ran: BTreeSet<i64> = runs.iter().map(|run| run.job_id).collect();
    assert_eq!(ran, ids.iter().map(|id| id.0).collect::<BTreeSet<_>>());
    for worker in ["worker-a", "worker-b"] {
        let own: Vec<&Run> = runs.iter().filter(|run| run.worker == worker).collect();
        assert!(!own.is_empty(), "{worker} ran no job");
        assert!(
            max_overlap(&own) <= 2,
            "{worker} ran more than 2 jobs at once: {own:?}"
        );
    }

    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_recovers_from_database_outage() {
    const OUTAGE: Duration = Duration::from_secs(5);
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    let mut proxy = DatabaseProxy::start(database_address().await).await;
    // A 100 ms poll would make about 50 claim attempts in 5 s without backoff.
    let mut config = test_config(4);
    config.poll_interval = Duration::from_millis(100);
    config.heartbeat_interval = Duration::from_secs(1);
    config.rescue_interval = Duration::from_secs(1);
    let worker = TestWorker::start(
        worker_pool(&url_through(&db.url, proxy.address), 6),
        config,
        "worker-behind-proxy",
    );

    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(db.enqueue(planned(json!({}))).await);
    }
    db.wait_finished(&before, Duration::from_secs(10)).await;

    let mut rejected_during_reset = 0;
    for outage in [Outage::PortClosed, Outage::ConnectionsReset] {
        let rejected_before = proxy.rejected();
        proxy.take_down(outage).await;
        // Jobs enqueued during the outage go through a pool that bypasses the proxy.
        let mut jobs = Vec::new();
        for _ in 0..3 {
            jobs.push(db.enqueue(planned(json!({}))).await);
        }
        tokio::time::sleep(OUTAGE).await;
        let rejected = proxy.rejected() - rejected_before;
        proxy.bring_up();
        let restored_at = tokio::time::Instant::now();

        for _ in 0..3 {
            jobs.push(db.enqueue(planned(json!({}))).await);
        }
        let finished = db.wait_finished(&jobs, Duration::from_secs(30)).await;
        let recovery = restored_at.elapsed();
        for job in &finished {
            assert_eq!(
                job.status,
                JobStatus::Done,
                "{outage:?}: job {}: {:?}",
                job.id,
                job.errors
            );
            assert_eq!(job.attempts, 1, "{outage:?}: job {}", job.id);
        }
        assert!(
            worker.is_running(),
            "the worker stopped during the {outage:?} outage"
        );
        // After 5 s of errors the engine's next retry comes within about 5 s, because its error
        // backoff doubles from 100 ms. sqlx 0.9 retries a refused connection at least every 6 s
        // (a fifth of its 30 s acquire timeout). So 15 s leaves room.
        assert!(
            recovery < Duration::from_secs(15),
            "{outage:?}: jobs finished {recovery:?} after the database came back"
        );
        eprintln!(
            "{outage:?}: {rejected} rejected connections in {OUTAGE:?}, jobs done {recovery:?} after recovery"
        );
        if outage == Outage::ConnectionsReset {
            rejected_during_reset = rejected;
        }
    }

    assert!(
        rejected_during_reset > 0,
        "the worker made no connection attempt during the outage"
    );
    assert!(
        rejected_during_reset < 50,
        "the worker opened {rejected_during_reset} connections in a {OUTAGE:?} outage, so it reconnects without backoff"
    );

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_job_backs_off_then_dies() {
    const BASE_MS: i64 = 200;
    // Allowance for claim and handler latency above the longest backoff.
    const LATENCY_MS: i64 = 600;
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    let mut config = EngineConfig::new(QUEUE, 1);
    config.backoff = Arc::new(|_| RetryBackoff {
        base: Duration::from_millis(BASE_MS as u64),
        cap: Duration::from_secs(60),
    });
    let worker = TestWorker::start(db.worker_pool(4), config, "worker-failing");

    let id = db
        .enqueue(planned(json!({"failure": "retry"})).max_attempts(4))
        .await;
    let job = db
        .wait_finished(&[id], Duration::from_secs(20))
        .await
        .remove(0);

    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!(job.attempts, 4);
    assert!(job.finished_at.is_some());
    let attempts: Vec<u32> = job.errors.iter().map(|error| error.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4]);
    for error in &job.errors {
        assert_eq!(
            error.message,
            format!("planned failure of run {}", error.attempt)
        );
        assert_eq!(error.worker, "worker-failing");
    }
    let runs = db.runs_of(id).await;
    let numbered: Vec<(i32, i32)> = runs.iter().map(|run| (run.run, run.attempt)).collect();
    assert_eq!(numbered, vec![(1, 1), (2, 2), (3, 3), (4, 4)]);

    // Retry n waits base × 2^(n-1) plus jitter below the same amount again.
    let gaps: Vec<i64> = job
        .errors
        .windows(2)
        .map(|pair| millis_between(pair[0].at, pair[1].at))
        .collect();
    for (index, gap) in gaps.iter().enumerate() {
        let nominal = BASE_MS << index;
        assert!(
            *gap >= nominal,
            "retry {} came {gap} ms after the failure, before its backoff of {nominal} ms: {gaps:?}",
            index + 1
        );
        assert!(
            *gap < 2 * nominal + LATENCY_MS,
            "retry {} came {gap} ms after the failure, later than its backoff allows: {gaps:?}",
            index + 1
        );
    }
    assert!(gaps[2] > gaps[0], "backoff did not grow: {gaps:?}");

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_and_snooze_delays() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    let mut config = test_config(4);
    config.max_delay = Duration::from_secs(30);
    config.max_snoozes = 3;
    // A backoff far above the test's deadline: a retry that ignored its retry-after would not run.
    config.backoff = Arc::new(|_| RetryBackoff {
        base: Duration::from_secs(120),
        cap: Duration::from_secs(120),
    });
    let worker = TestWorker::start(db.worker_pool(6), config, "worker-delays");

    let retried = db
        .enqueue(planned(
            json!({"failure": "retry", "after_ms": 1000, "failing_runs": 1}),
        ))
        .await;
    let snoozed = db
        .enqueue(planned(
            json!({"failure": "snooze", "after_ms": 500, "failing_runs": 1}),
        ))
        .await;
    let always_snoozing = db
        .enqueue(planned(json!({"failure": "snooze", "after_ms": 100})))
        .await;
    let capped = db
        .enqueue(planned(json!({"failure": "retry", "after_ms": 3_600_000})).max_attempts(3))
        .await;
    let finished = db
        .wait_finished(
            &[retried, snoozed, always_snoozing],
            Duration::from_secs(15),
        )
        .await;

    // Retry-after: the second run starts no earlier than 1 s after the failure and uses attempt 2.
    let job = &finished[0];
    let runs = db.runs_of(retried).await;
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.attempts, 2);
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].attempt, 1);
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].attempt, runs[1].attempt), (1, 2));
    let wait = millis_between(job.errors[0].at, runs[1].started_at);
    assert!(wait >= 1000, "retried {wait} ms after a 1 s retry-after");

    // Snooze: the second run starts no earlier than 0.5 s later and keeps attempt 1.
    let job = &finished[1];
    let runs = db.runs_of(snoozed).await;
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.attempts, 1);
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].attempt, runs[1].attempt), (1, 1));
    let wait = millis_between(runs[0].started_at, runs[1].started_at);
    assert!(wait >= 500, "ran again {wait} ms after a 500 ms snooze");

    // Snoozes are bounded: after 3 snoozes the 4th makes the job dead.
    let job = &finished[2];
    let runs = db.runs_of(always_snoozing).await;
    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!(job.attempts, 1);
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|run| run.attempt == 1), "{runs:?}");
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].message, "snoozed more than 3 times");

    // A retry-after above max_delay waits max_delay: run_at is 30 s after the failure, not 1 h.
    let pool = &db.pool;
    let job = wait_until(Duration::from_secs(10), || async move {
        let job = JobStore::new(pool.clone()).get(capped).await.ok()??;
        (job.status == JobStatus::Retrying).then_some(job)
    })
    .await
    .expect("the capped job did not reach retrying within 10 s");
    assert_eq!(job.attempts, 1);
    assert_eq!(job.errors.len(), 1);
    let delay = millis_between(job.errors[0].at, job.run_at);
    assert!(
        (29_990..=30_010).contains(&delay),
        "run_at is {delay} ms after the failure instead of the 30 s max_delay"
    );

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_payload_makes_only_that_job_dead() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    let worker = TestWorker::start_greeting(db.worker_pool(4), test_config(2), "worker-typed");

    let payloads = [
        json!({"name": "Ada", "count": 1}),
        json!({"name": "Grace", "count": 2}),
        json!({"name": "Edsger", "count": "three"}),
        json!({"name": "Barbara", "count": 4}),
        json!({"name": "Donald", "count": 5}),
    ];
    let jobs = payloads
        .iter()
        .map(|payload| NewJob::new(QUEUE, "test.greeting", payload.clone()))
        .collect();
    let ids: Vec<JobId> = db
        .store
        .enqueue_batch(jobs)
        .await
        .expect("enqueue failed")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect();
    let finished = db.wait_finished(&ids, Duration::from_secs(15)).await;

    for (index, job) in finished.iter().enumerate() {
        if index == 2 {
            continue;
        }
        assert_eq!(
            job.status,
            JobStatus::Done,
            "job {}: {:?}",
            job.id,
            job.errors
        );
        assert_eq!(db.runs_of(job.id).await.len(), 1, "job {}", job.id);
    }
    let bad = &finished[2];
    assert_eq!(bad.status, JobStatus::Dead);
    assert_eq!(bad.attempts, 1);
    assert!(bad.finished_at.is_some());
    assert_eq!(bad.errors.len(), 1);
    let message = &bad.errors[0].message;
    assert!(
        message.contains("does not decode") && message.contains("test.greeting"),
        "unexpected error: {message}"
    );
    assert!(
        message.contains(r#""three""#),
        "the error does not show the invalid value: {message}"
    );
    assert!(db.runs_of(bad.id).await.is_empty(), "the handler ran");

    // The worker is still alive and takes new jobs.
    let later = db
        .enqueue(NewJob::new(
            QUEUE,
            "test.greeting",
            json!({"name": "Alan", "count": 6}),
        ))
        .await;
    let job = db
        .wait_finished(&[later], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(job.status, JobStatus::Done);
    assert!(worker.is_running());

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_job_starts_at_its_run_at() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    // The defaults: a 1 s poll interval and LISTEN on.
    let worker = TestWorker::start(
        db.worker_pool(4),
        EngineConfig::new(QUEUE, 2),
        "worker-scheduled",
    );
    db.wait_for_workers(1).await;

    let enqueued_at = db.now().await;
    let run_at = enqueued_at + chrono::Duration::seconds(2);
    let id = db.enqueue(planned(json!({})).run_at(run_at)).await;
    assert_eq!(db.job(id).await.status, JobStatus::Scheduled);

    // Until just before run_at the job must not start.
    let early = wait_until(Duration::from_millis(1800), || async {
        let started = !db.runs_of(id).await.is_empty();
        started.then_some(())
    })
    .await;
    assert!(early.is_none(), "the job started before its run_at");

    let job = db
        .wait_finished(&[id], Duration::from_secs(10))
        .await
        .remove(0);
    let runs = db.runs_of(id).await;
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(runs.len(), 1);
    let started_at = runs[0].started_at;
    assert_eq!(job.run_at, run_at);
    assert!(
        started_at >= job.run_at,
        "started {} ms before run_at",
        millis_between(started_at, job.run_at)
    );
    let after_enqueue = millis_between(enqueued_at, started_at);
    assert!(
        (2000..=3000).contains(&after_enqueue),
        "started {after_enqueue} ms after enqueue"
    );
    let after_created = millis_between(job.created_at, started_at);
    assert!(
        after_created <= 3000,
        "started {after_created} ms after created_at"
    );
    let claimed_at = job.started_at.expect("the job has a start time");
    assert!(claimed_at >= job.run_at, "claimed before run_at");

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_expired_jobs() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;

    // (status, days since finished, deleted by the default policy)
    let cases = [
        ("done", 8, true),
        ("done", 1, false),
        ("dead", 8, false),
        ("dead", 31, true),
        ("cancelled", 8, true),
        ("cancelled", 6, false),
    ];
    let mut expected_kept = BTreeSet::new();
    let mut ids = Vec::new();
    for (status, days, deleted) in cases {
        let id = db.enqueue(planned(json!({}))).await;
        age_job(&db.pool, id, status, days).await;
        if !deleted {
            expected_kept.insert(id.0);
        }
        ids.push(id);
    }
    // Unfinished jobs are never deleted, however old.
    let old_pending = db.enqueue(planned(json!({}))).await;
    sqlx::query(
        "UPDATE duespark_queue.jobs SET created_at = now() - interval '90 days', run_at = now() - interval '90 days' WHERE id = $1",
    )
    .bind(old_pending.0)
    .execute(&db.pool)
    .await
    .unwrap();
    expected_kept.insert(old_pending.0);

    let deleted = db
        .store
        .delete_expired(&RetentionPolicy::default())
        .await
        .expect("delete_expired failed");
    assert_eq!(deleted, 3);
    assert_eq!(job_ids(&db.pool).await, expected_kept);

    // Small batches delete every expired row, for a count that is a multiple of the batch size and
    // one that is not.
    for count in [24, 25] {
        let jobs = (0..count).map(|_| planned(json!({}))).collect();
        let batch = db.store.enqueue_batch(jobs).await.expect("enqueue failed");
        for enqueued in &batch {
            age_job(&db.pool, enqueued.id, "done", 8).await;
        }
        let policy = RetentionPolicy {
            batch_size: 2,
            ..RetentionPolicy::default()
        };
        let deleted = db
            .store
            .delete_expired(&policy)
            .await
            .expect("delete_expired failed");
        assert_eq!(deleted, count, "batches of 2 over {count} rows");
        assert_eq!(job_ids(&db.pool).await, expected_kept);
    }
}

/// Sets a job's final status and makes it look finished `days` ago.
async fn age_job(pool: &PgPool, id: JobId, status: &str, days: i32) {
    sqlx::query(
        "UPDATE duespark_queue.jobs SET status = $2, finished_at = now() - make_interval(days => $3) WHERE id = $1",
    )
    .bind(id.0)
    .bind(status)
    .bind(days)
    .execute(pool)
    .await
    .expect("failed to age the job");
}

async fn job_ids(pool: &PgPool) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM duespark_queue.jobs")
        .fetch_all(pool)
        .await
        .expect("failed to list jobs")
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_run_twenty_thousand_jobs_once() {
    const JOBS: i64 = 20_000;
    const CHUNK: i64 = 1000;
    const DEADLINE: Duration = Duration::from_secs(120);
    let _gate = LOAD_TEST_GATE.write().await;
    let db = TestDatabase::create().await;
    db.allow_one_run_per_job().await;
    let workers: Vec<TestWorker> = (0..4)
        .map(|index| {
            TestWorker::start(
                db.worker_pool(6),
                test_config(8),
                &format!("worker-load-{index}"),
            )
        })
        .collect();
    db.wait_for_workers(4).await;

    let started = tokio::time::Instant::now();
    for _ in 0..JOBS / CHUNK {
        let jobs = (0..CHUNK).map(|_| planned(json!({}))).collect();
        let enqueued = db.store.enqueue_batch(jobs).await.expect("enqueue failed");
        assert!(enqueued.iter().all(|job| job.created));
    }
    let pool = &db.pool;
    let counts = wait_until(DEADLINE, || async move {
        let (done, other_finished): (i64, i64) = sqlx::query_as(
            r#"
            SELECT count(*) FILTER (WHERE status = 'done'),
                   count(*) FILTER (WHERE status IN ('dead', 'cancelled'))
            FROM duespark_queue.jobs
            "#,
        )
        .fetch_one(pool)
        .await
        .ok()?;
        (done + other_finished == JOBS).then_some((done, other_finished))
    })
    .await;
    let elapsed = started.elapsed();
    let failed_inserts: Vec<(i64, String)> = workers
        .iter()
        .flat_map(|worker| worker.recorder.failed_inserts())
        .collect();
    assert!(
        failed_inserts.is_empty(),
        "{} runs failed to record, a second run of the same job fails the unique index: {:?}",
        failed_inserts.len(),
        &failed_inserts[..failed_inserts.len().min(5)]
    );
    let (done, other_finished) =
        counts.unwrap_or_else(|| panic!("{JOBS} jobs did not finish within {DEADLINE:?}"));
    assert_eq!(done, JOBS);
    assert_eq!(other_finished, 0);

    assert_eq!(db.run_count().await, JOBS);
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT job_id) FROM engine_test_runs")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(distinct, JOBS);
    let retried: i64 =
        sqlx::query_scalar("SELECT count(*) FROM duespark_queue.jobs WHERE attempt <> 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(retried, 0, "jobs ran more than one attempt");
    let per_worker: HashMap<String, i64> =
        sqlx::query_as("SELECT worker, count(*) FROM engine_test_runs GROUP BY worker")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for worker in &workers {
        assert!(
            per_worker.get(&worker.name).copied().unwrap_or(0) > 0,
            "{} ran no job: {per_worker:?}",
            worker.name
        );
    }
    eprintln!("{JOBS} jobs done in {elapsed:?} by 4 workers: {per_worker:?}");

    for worker in workers {
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_pause_and_retry_actions() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;

    // A pending job cancelled before any worker runs never runs.
    let cancelled_pending = db.enqueue(planned(json!({}))).await;
    let job = db
        .store
        .cancel(cancelled_pending)
        .await
        .expect("cancel failed");
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(job.finished_at.is_some());

    let worker = TestWorker::start(db.worker_pool(6), test_config(2), "worker-actions");
    let marker = db.enqueue(planned(json!({}))).await;
    let job = db
        .wait_finished(&[marker], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(job.status, JobStatus::Done);
    assert!(db.runs_of(cancelled_pending).await.is_empty());
    assert_eq!(db.job(cancelled_pending).await.status, JobStatus::Cancelled);

    // A running job that fails retryably ends cancelled after that attempt instead of retrying.
    let running = db
        .enqueue(planned(json!({"sleep_ms": 1000, "failure": "retry"})))
        .await;
    let started = wait_until(Duration::from_secs(10), || async {
        (!db.runs_of(running).await.is_empty()).then_some(())
    })
    .await;
    assert!(started.is_some(), "the job did not start within 10 s");
    let job = db.store.cancel(running).await.expect("cancel failed");
    assert_eq!(job.status, JobStatus::Running);
    let job = db
        .wait_finished(&[running], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.attempts, 1);
    assert!(job.finished_at.is_some());
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].message, "planned failure of run 1");
    assert_eq!(db.runs_of(running).await.len(), 1);

    // A paused queue's jobs wait; after resume they run.
    db.store.pause_queue(QUEUE).await.expect("pause failed");
    let mut paused = Vec::new();
    for _ in 0..3 {
        paused.push(db.enqueue(planned(json!({}))).await);
    }
    let ran_while_paused = wait_until(Duration::from_secs(2), || async {
        for id in &paused {
            if !db.runs_of(*id).await.is_empty() {
                return Some(*id);
            }
        }
        None
    })
    .await;
    assert_eq!(ran_while_paused, None, "a job of a paused queue ran");
    for id in &paused {
        assert_eq!(db.job(*id).await.status, JobStatus::Pending);
    }
    let resumed_at = db.now().await;
    db.store.resume_queue(QUEUE).await.expect("resume failed");
    let finished = db.wait_finished(&paused, Duration::from_secs(10)).await;
    for job in &finished {
        assert_eq!(job.status, JobStatus::Done);
        let runs = db.runs_of(job.id).await;
        assert_eq!(runs.len(), 1);
        assert!(
            runs[0].started_at >= resumed_at,
            "job {} ran before resume",
            job.id
        );
    }

    // Retry of a dead job runs it again with one more attempt; its error history is kept.
    let dead = db
        .enqueue(planned(json!({"failure": "permanent", "failing_runs": 1})).max_attempts(3))
        .await;
    let job = db
        .wait_finished(&[dead], Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!(job.attempts, 1);
    let job = db.store.retry(dead).await.expect("retry failed");
    assert!(
        matches!(
            job.status,
            JobStatus::Pending | JobStatus::Running | JobStatus::Done
        ),
        "retried job is {}",
        job.status
    );
    let job = wait_until(Duration::from_secs(10), || async {
        let job = db.job(dead).await;
        (job.status == JobStatus::Done).then_some(job)
    })
    .await
    .expect("the retried job did not finish within 10 s");
    assert_eq!(job.attempts, 2);
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].attempt, 1);
    assert_eq!(db.runs_of(dead).await.len(), 2);

    // A done job cannot be retried or cancelled.
    assert!(db.store.retry(marker).await.is_err());
    assert!(db.store.cancel(marker).await.is_err());

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_enqueue_is_idempotent() {
    let _gate = LOAD_TEST_GATE.read().await;
    let db = TestDatabase::create().await;
    let existing = db
        .store
        .enqueue(keyed_job("existing", "first"))
        .await
        .expect("enqueue failed");
    assert!(existing.created);

    let batch = db
        .store
        .enqueue_batch(vec![
            planned(json!({"label": "no key"})),
            keyed_job("existing", "again"),
            keyed_job("new", "new first"),
            keyed_job("new", "new second"),
            keyed_job("other", "other"),
            // The same key in another queue is another job.
            NewJob::new("engine-test-other", KIND, json!({"label": "other queue"}))
                .idempotency_key("existing"),
        ])
        .await
        .expect("a batch with duplicate keys must not fail");
    let created: Vec<bool> = batch.iter().map(|enqueued| enqueued.created).collect();
    assert_eq!(created, vec![true, false, true, false, true, true]);
    assert_eq!(batch[1].id, existing.id);
    assert_eq!(batch[3].id, batch[2].id);
    let distinct: BTreeSet<JobId> = batch.iter().map(|enqueued| enqueued.id).collect();
    assert_eq!(distinct.len(), 5, "{batch:?}");
    assert_eq!(job_ids(&db.pool).await.len(), 5);
    assert_eq!(db.job(existing.id).await.payload, json!({"label": "first"}));
    assert_eq!(
        db.job(batch[2].id).await.payload,
        json!({"label": "new first"})
    );

    // A job enqueued in a transaction that rolls back does not exist.
    let mut tx = db.pool.begin().await.unwrap();
    let rolled_back = enqueue_in(&mut tx, keyed_job("rolled back", "rolled back"))
        .await
        .expect("enqueue_in failed");
    assert!(rolled_back.created);
    tx.rollback().await.unwrap();
    assert!(db.store.get(rolled_back.id).await.unwrap().is_none());
    assert_eq!(job_ids(&db.pool).await.len(), 5);

    // A duplicate key inside a transaction returns the existing job and leaves it usable.
    let mut tx = db.pool.begin().await.unwrap();
    let duplicate = enqueue_in(&mut tx, keyed_job("existing", "in transaction"))
        .await
        .expect("a duplicate key must not fail the transaction");
    assert_eq!(
        duplicate,
        duespark_queue::Enqueued {
            id: existing.id,
            created: false
        }
    );
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let fresh = enqueue_in(&mut tx, keyed_job("after duplicate", "after duplicate"))
        .await
        .expect("enqueue after a duplicate failed");
    assert!(fresh.created);
    tx.commit().await.unwrap();
    assert!(db.store.get(fresh.id).await.unwrap().is_some());
    assert_eq!(job_ids(&db.pool).await.len(), 6);

    // Two transactions racing for one key: the second waits for the first to commit, then returns
    // the first's job.
    let mut first_tx = db.pool.begin().await.unwrap();
    let first = enqueue_in(&mut first_tx, keyed_job("raced", "first"))
        .await
        .expect("enqueue_in failed");
    assert!(first.created);
    let store = db.store.clone();
    let second = tokio::spawn(async move { store.enqueue(keyed_job("raced", "second")).await });
    let pool = &db.pool;
    let blocked = wait_until(Duration::from_secs(10), || async move {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .ok()?;
        (waiting > 0).then_some(())
    })
    .await;
    assert!(
        blocked.is_some(),
        "the second enqueue did not wait for the first transaction"
    );
    first_tx.commit().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second enqueue did not return within 10 s")
        .unwrap()
        .expect("the second enqueue failed");
    assert_eq!(
        second,
        duespark_queue::Enqueued {
            id: first.id,
            created: false
        }
    );
    assert_eq!(db.job(first.id).await.payload, json!({"label": "first"}));
    assert_eq!(job_ids(&db.pool).await.len(), 7);
}

fn keyed_job(key: &str, label: &str) -> NewJob {
    planned(json!({"label": label})).idempotency_key(key)
}
