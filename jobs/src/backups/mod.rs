//! Local database backups: writing `pg_dump` custom-format archives with a SHA-256 sidecar,
//! verifying them (down to a real restore into a scratch database) and recording both in the
//! `backups` and `backup_verifications` tables.
//!
//! A run ([`run`]) writes the backup into the local folder, uploads it to S3-compatible storage
//! when configured ([`s3`]), verifies the newest backup in each location ([`location`]) and applies
//! retention there ([`retention`]). The `backup.run` and `backup.verify` jobs ([`job`]) and the
//! `duespark backup` and `verify-backup` commands use the same functions.
//!
//! Database URLs may contain a password. Every message built here shows the URL with the password
//! replaced by `***`, and the PostgreSQL tools receive the password in `PGPASSWORD`, not on their
//! command line.

pub mod archive;
pub mod dump;
pub mod job;
pub mod location;
pub mod retention;
pub mod run;
pub mod s3;
pub mod verify;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::process::Command;

pub use dump::{BackupFile, create_backup, create_backup_within, write_checksum_sidecar};
pub use location::Location;
pub use retention::DEFAULT_RETENTION;
pub use run::{BackupRun, BackupSettings};
pub use s3::S3Location;
pub use verify::{CheckResult, CheckStatus, DEFAULT_RPO, VerifyReport, verify_backup};

/// Errors of creating a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid database URL {0}: expected postgres://user[:password]@host[:port]/database")]
    InvalidUrl(String),
    #[error(
        "failed to start {tool}: {source}. Install the PostgreSQL client tools or set the PostgreSQL bin directory"
    )]
    ToolNotFound {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed with {status}: {stderr}")]
    ToolFailed {
        tool: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{tool} did not finish within {} s and was stopped", timeout.as_secs())]
    TimedOut { tool: String, timeout: Duration },
    #[error("the backup was written but could not be recorded: {0}")]
    Record(#[source] sqlx::Error),
    #[error("backup file {0} already exists; wait a second and retry")]
    AlreadyExists(PathBuf),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BackupError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A database URL split for the PostgreSQL tools: the URL without its password, for `--dbname`, and
/// the decoded password, for `PGPASSWORD`.
#[derive(Clone)]
pub(crate) struct DatabaseUrl {
    without_password: url::Url,
    password: Option<String>,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    pub(crate) fn parse(database_url: &str) -> Result<Self, BackupError> {
        let mut url = url::Url::parse(database_url)
            .map_err(|_| BackupError::InvalidUrl(redact_url(database_url)))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(BackupError::InvalidUrl(redact_url(database_url)));
        }
        let password = url.password().map(|encoded| {
            percent_encoding::percent_decode_str(encoded)
                .decode_utf8_lossy()
                .into_owned()
        });
        url.set_password(None)
            .map_err(|()| BackupError::InvalidUrl(redact_url(database_url)))?;
        Ok(Self {
            without_password: url,
            password,
        })
    }

    /// Returns the same server and credentials with another database name.
    pub(crate) fn with_database(&self, database: &str) -> Self {
        let mut copy = self.clone();
        copy.without_password.set_path(&format!("/{database}"));
        copy
    }

    /// Returns the URL with the password, for sqlx connections. Never log this value.
    pub(crate) fn connect_url(&self) -> String {
        let mut url = self.without_password.clone();
        if let Some(password) = &self.password {
            let encoded =
                percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            // Setting a password fails only for URLs that cannot have one (no host), and such a
            // URL has no password to set.
            let _ = url.set_password(Some(&encoded));
        }
        url.to_string()
    }

    /// Returns the URL without the password, for `--dbname`.
    pub(crate) fn dbname_argument(&self) -> String {
        self.without_password.to_string()
    }

    pub(crate) fn redacted(&self) -> String {
        let mut url = self.without_password.clone();
        if self.password.is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }

    /// Builds a command for a PostgreSQL tool with the password in its environment.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command.kill_on_drop(true);
        command
    }

    /// Replaces the password wherever it occurs in `text`, such as a tool's stderr.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(password) if !password.is_empty() => text.replace(password.as_str(), "***"),
            _ => text.to_string(),
        }
    }
}

/// Returns `database_url` with its password replaced by `***`, or a placeholder when it does not parse.
pub fn redact_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// Returns the path of a PostgreSQL tool: `pg_bin_dir/name` when that file exists, otherwise the
/// bare name, which the operating system looks up in `PATH`.
pub(crate) fn find_tool(name: &str, pg_bin_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = pg_bin_dir {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from(name)
}

/// Runs `command` to completion and returns its output, or `None` when it did not finish within
/// `timeout`. The process is then killed, because the command is set to `kill_on_drop`.
pub(crate) async fn output_within(
    command: &mut Command,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    match tokio::time::timeout(timeout, command.kill_on_drop(true).output()).await {
        Ok(output) => output.map(Some),
        Err(_elapsed) => Ok(None),
    }
}

/// Inserts a row into `backups` for `backup` stored at `path` in `location` (`local` or `s3`) and
/// returns its id.
pub async fn record_backup(
    pool: &PgPool,
    location: &str,
    path: &str,
    backup: &BackupFile,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        INSERT INTO backups (location, path, size_bytes, sha256, created_at)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id
        "#,
    )
    .bind(location)
    .bind(path)
    .bind(i64::try_from(backup.size_bytes).unwrap_or(i64::MAX))
    .bind(&backup.sha256)
    .bind(backup.created_at)
    .fetch_one(pool)
    .await
}

/// Inserts a row into `backup_verifications` with the checks of `report` as JSON and returns its id.
pub async fn record_verification(pool: &PgPool, report: &VerifyReport) -> Result<i64, sqlx::Error> {
    let checks = serde_json::to_value(&report.checks)
        .expect("check results serialise to JSON: they contain only strings and enums");
    sqlx::query_scalar(
        r#"
        INSERT INTO backup_verifications (location, backup_path, started_at, finished_at, ok, checks)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id
        "#,
    )
    .bind(&report.location)
    .bind(report.file.to_string_lossy().as_ref())
    .bind(report.started_at)
    .bind(report.finished_at)
    .bind(report.ok)
    .bind(checks)
    .fetch_one(pool)
    .await
}

/// Formats a backup creation time as it appears in file names: UTC `%Y%m%dT%H%M%SZ`.
pub(crate) fn format_name_timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Parses the creation time from a name such as `duespark-20261204T223317Z.dump`.
pub fn parse_name_timestamp(file_name: &str) -> Option<DateTime<Utc>> {
    let stamp = file_name.strip_prefix("duespark-")?.strip_suffix(".dump")?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_url() {
        let redacted = redact_url("postgres://app:s3cret@db:5432/duespark");
        assert_eq!(redacted, "postgres://app:***@db:5432/duespark");
        assert!(!redact_url("not a url s3cret").contains("s3cret"));
    }

    #[test]
    fn splits_password_from_url() {
        let url = DatabaseUrl::parse("postgres://app:p%40ss@db/duespark").unwrap();
        assert_eq!(url.dbname_argument(), "postgres://app@db/duespark");
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert!(!format!("{url:?}").contains("p@ss"));
        assert_eq!(url.scrub("failed for p@ss"), "failed for ***");
        assert_eq!(
            url.with_database("scratch").connect_url(),
            "postgres://app:p%40ss@db/scratch"
        );
    }

    #[test]
    fn rejects_non_postgres_url() {
        assert!(DatabaseUrl::parse("mysql://app:pw@db/x").is_err());
    }

    #[test]
    fn parses_timestamp_in_backup_name() {
        let time = parse_name_timestamp("duespark-20261204T223317Z.dump").unwrap();
        assert_eq!(format_name_timestamp(time), "20261204T223317Z");
        assert!(parse_name_timestamp("other.dump").is_none());
    }
}
