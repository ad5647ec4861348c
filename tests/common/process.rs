//! Child processes of the process-level tests: `duespark worker` processes started from the built
//! binary, signals sent to them by process id, and a guard that stops a private PostgreSQL server.
//!
//! Every child is killed when its guard is dropped, so a failing test leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use sqlx::PgPool;

use super::{SECRET_KEY, workspace_dir};

/// Settings of one `duespark worker` process, passed as environment variables.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub database_url: String,
    /// `WORKER_CONCURRENCY`, such as `maintenance=5,reminders=10`.
    pub concurrency: String,
    /// The SMTP server's port; `None` makes the worker write emails to an outbox folder.
    pub smtp_port: Option<u16>,
    /// `MAIL_RATE_PER_SECOND`.
    pub mail_rate_per_second: u32,
    /// More variables, set after the defaults, such as `LOG_FORMAT` or `METRICS_TOKEN`.
    pub env: Vec<(String, String)>,
}

impl WorkerSettings {
    pub fn new(database_url: &str, concurrency: &str) -> WorkerSettings {
        WorkerSettings {
            database_url: database_url.to_owned(),
            concurrency: concurrency.to_owned(),
            smtp_port: None,
            mail_rate_per_second: 1000,
            env: Vec::new(),
        }
    }
}

/// A running `duespark worker` process. Dropping it kills the process with SIGKILL if it is still
/// running.
pub struct WorkerProcess {
    child: Child,
    pid: u32,
    exit_status: Option<ExitStatus>,
    /// Working directory of the process: its log file and its outbox.
    folder: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts `duespark worker` with only the variables of `settings` and the test defaults set.
    /// Its standard output and error go to a log file, shown by [`WorkerProcess::log_tail`].
    pub fn start(settings: &WorkerSettings) -> WorkerProcess {
        let folder = tempfile::tempdir().expect("temp dir for the worker process");
        let log_path = folder.path().join("worker.log");
        let log = std::fs::File::create(&log_path).expect("worker log file is created");
        let log_for_stderr = log.try_clone().expect("worker log file handle is cloned");

        let mut command = Command::new(env!("CARGO_BIN_EXE_duespark"));
        command
            .arg("worker")
            // The working directory has no .env file, so only the variables below apply.
            .current_dir(folder.path())
            .env_clear()
            .env("DATABASE_URL", &settings.database_url)
            .env("SECRET_KEY", SECRET_KEY)
            .env("MAIL_FROM", "DueSpark <reminders@duespark.test>")
            .env(
                "MAIL_RATE_PER_SECOND",
                settings.mail_rate_per_second.to_string(),
            )
            .env("TEMPLATES_DIR", workspace_dir().join("templates"))
            .env("OUTBOX_DIR", folder.path().join("outbox"))
            .env("WORKER_METRICS_BIND", "127.0.0.1:0")
            .env("WORKER_CONCURRENCY", &settings.concurrency)
            .env("WORKER_DEFAULT_CONCURRENCY", "2")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_for_stderr));
        if let Some(port) = settings.smtp_port {
            command.env("SMTP_URL", format!("smtp://127.0.0.1:{port}"));
        }
        command.envs(settings.env.iter().cloned());

        let child = command.spawn().expect("the duespark worker process starts");
        let pid = child.id();
        WorkerProcess {
            child,
            pid,
            exit_status: None,
            folder,
        }
    }

    /// Waits until the process logs the address of its health and metrics endpoint, and returns it.
    pub async fn metrics_address(&self, timeout: Duration) -> std::net::SocketAddr {
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let address = log
                .lines()
                .filter(|line| line.contains("metrics endpoint listening"))
                .find_map(|line| {
                    let start = line.find("127.0.0.1:")?;
                    let rest = &line[start..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                        .unwrap_or(rest.len());
                    rest[..end].parse().ok()
                });
            if let Some(address) = address {
                return address;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the worker did not log its metrics address within {timeout:?}:\n{}",
            self.log_tail(30)
        );
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Returns a SQL `LIKE` pattern that matches the lease owner of this process's worker for `queue`.
    /// Worker names are `<host>-<pid>-<queue>-<random suffix>`.
    pub fn owner_pattern(&self, queue: &str) -> String {
        format!("%-{}-{queue}-%", self.pid)
    }

    /// Waits until this process's worker for `queue` has sent its first heartbeat. Panics with the
    /// log tail when the process exits first or the timeout passes.
    pub async fn wait_until_ready(&mut self, pool: &PgPool, queue: &str, timeout: Duration) {
        let pattern = self.owner_pattern(queue);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let registered: i64 =
                sqlx::query_scalar("SELECT count(*) FROM duespark_queue.workers WHERE id LIKE $1")
                    .bind(&pattern)
                    .fetch_one(pool)
                    .await
                    .expect("the live-worker list is readable");
            if registered > 0 {
                return;
            }
            if let Some(status) = self.try_exit_status() {
                panic!(
                    "worker process {} exited with {status} before its {queue} worker started; log:\n{}",
                    self.pid,
                    self.log_tail(40)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "worker process {} did not start its {queue} worker within {timeout:?}; log:\n{}",
                    self.pid,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if self.try_exit_status().is_some() {
            return;
        }
        self.child
            .kill()
            .expect("SIGKILL is sent to the worker process");
        self.exit_status = Some(self.child.wait().expect("the killed worker is reaped"));
    }

    /// Sends SIGTERM, the signal for a graceful stop.
    pub fn terminate(&mut self) {
        assert!(
            self.try_exit_status().is_none(),
            "worker process {} exited before SIGTERM was sent; log:\n{}",
            self.pid,
            self.log_tail(40)
        );
        // The process has not been reaped, so its id cannot have been reused by another process.
        let status = Command::new("kill")
            .args(["-s", "TERM", &self.pid.to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(
            status.success(),
            "kill -s TERM {} failed: {status}",
            self.pid
        );
    }

    /// Waits up to `timeout` for the process to exit and returns its exit status, or `None` if it
    /// is still running.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Returns the last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_path(&self) -> PathBuf {
        self.folder.path().join("worker.log")
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            self.exit_status = self
                .child
                .try_wait()
                .expect("the worker's exit status is readable");
        }
        self.exit_status
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.exit_status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Stops the PostgreSQL server of a data directory when dropped, so a test that fails halfway
/// leaves no server running. Declare it after the folder that contains the data directory, so it
/// is dropped before that folder is removed.
pub struct PostgresGuard {
    data_dir: PathBuf,
}

impl PostgresGuard {
    pub fn new(data_dir: &Path) -> PostgresGuard {
        PostgresGuard {
            data_dir: data_dir.to_owned(),
        }
    }
}

impl Drop for PostgresGuard {
    fn drop(&mut self) {
        let pid_file = self.data_dir.join("postmaster.pid");
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        else {
            return;
        };
        // SIGQUIT is PostgreSQL's immediate shutdown: the server exits without a checkpoint.
        let _ = Command::new("kill")
            .args(["-s", "QUIT", &pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pid_file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
