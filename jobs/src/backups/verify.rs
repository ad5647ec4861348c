//! Verifying a backup file, from cheap checks to a real restore into a scratch database.
//!
//! The checks run in this order and stop at the first failure, so the report names the first
//! problem and marks later checks as skipped: `present`, `age`, `size`, `checksum`, `header`,
//! `list` and `restore`. A checksum match alone proves only that the file was not changed since it
//! was written. The `list` and `restore` checks prove that `pg_restore` can read it and that it
//! contains data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::archive::{HEADER_PREFIX_LEN, check_header, parse_pg_restore_major};
use super::dump::{sha256_file, sidecar_path};
use super::{DatabaseUrl, find_tool, output_within, parse_name_timestamp};

/// Default recovery point objective: the newest backup must be younger than this.
pub const DEFAULT_RPO: Duration = Duration::from_secs(24 * 60 * 60);

/// Maximum run time of `pg_restore --list`, which reads only the table of contents.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Maximum run time of the scratch restore: half the RTO of 4 hours.
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// Prefix of scratch databases. The name goes on with the creation time in Unix seconds and a
/// random part: `duespark_verify_<secs>_<hex>`.
const SCRATCH_PREFIX: &str = "duespark_verify_";

/// Scratch databases older than this are left over from a verification that was stopped before its
/// cleanup (a killed process, a job timeout) and are dropped by the next verification.
const STALE_SCRATCH_AGE: Duration = Duration::from_secs(24 * 3600);

/// Tables that every backup of the platform must contain, with row counts compared after restore.
pub const MAIN_TABLES: [&str; 4] = ["accounts", "clients", "invoices", "reminders"];

const CHECK_NAMES: [&str; 7] = [
    "present", "age", "size", "checksum", "header", "list", "restore",
];

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not run because an earlier check failed.
    Skipped,
}

/// Result of one named check, with the reason for a failure or a short detail for a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub status: CheckStatus,
    pub reason: Option<String>,
}

/// Results of all checks of one backup file; `ok` is true when every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The location's name: `local` or `s3`.
    pub location: String,
    /// The backup as named in its location: a file path, or an `s3://` URL for S3.
    pub file: PathBuf,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub checks: Vec<CheckResult>,
    pub ok: bool,
}

impl VerifyReport {
    /// Builds the report of a backup that could not be read at all: `check` fails with `reason`
    /// and the other checks are skipped.
    pub fn failed_before_checks(
        location: &str,
        file: impl Into<PathBuf>,
        check: &str,
        reason: String,
    ) -> Self {
        let now = Utc::now();
        let checks = CHECK_NAMES
            .iter()
            .map(|name| CheckResult {
                name: (*name).to_string(),
                status: if *name == check {
                    CheckStatus::Fail
                } else {
                    CheckStatus::Skipped
                },
                reason: (*name == check).then(|| reason.clone()),
            })
            .collect();
        VerifyReport {
            location: location.to_string(),
            file: file.into(),
            started_at: now,
            finished_at: now,
            checks,
            ok: false,
        }
    }

    /// Returns the first failed check, if any.
    pub fn failed_check(&self) -> Option<&CheckResult> {
        self.checks
            .iter()
            .find(|check| check.status == CheckStatus::Fail)
    }
}

/// Settings shared by all checks of one verification.
struct Verification<'a> {
    file: &'a Path,
    previous_size: Option<u64>,
    database_url: &'a str,
    pg_bin_dir: Option<&'a Path>,
    rpo: Duration,
}

/// Runs all checks on `file` and returns the report. Every error becomes a failed check.
///
/// `previous_size` is the size of the previous verified backup, and the file fails the `size` check
/// when it is less than half of it. `database_url` is the live database. The restore creates a
/// scratch database `duespark_verify_<random>` on the same server, so that role needs `CREATEDB`.
/// The scratch database is dropped whether the restore passes or fails, unless this future is
/// dropped before it finishes.
pub async fn verify_backup(
    file: &Path,
    previous_size: Option<u64>,
    database_url: &str,
    pg_bin_dir: Option<&Path>,
    rpo: Duration,
) -> VerifyReport {
    let started_at = Utc::now();
    let verification = Verification {
        file,
        previous_size,
        database_url,
        pg_bin_dir,
        rpo,
    };
    tracing::info!(path = %file.display(), "backup verification started");

    let mut checks = Vec::with_capacity(CHECK_NAMES.len());
    let mut failed = false;
    for name in CHECK_NAMES {
        if failed {
            checks.push(CheckResult {
                name: name.to_string(),
                status: CheckStatus::Skipped,
                reason: None,
            });
            continue;
        }
        let outcome = verification.run_check(name).await;
        failed = outcome.is_err();
        let (status, reason) = match outcome {
            Ok(detail) => (CheckStatus::Pass, detail),
            Err(reason) => (CheckStatus::Fail, Some(reason)),
        };
        checks.push(CheckResult {
            name: name.to_string(),
            status,
            reason,
        });
    }

    let report = VerifyReport {
        location: "local".to_string(),
        file: file.to_path_buf(),
        started_at,
        finished_at: Utc::now(),
        ok: !failed,
        checks,
    };
    match report.failed_check() {
        None => tracing::info!(path = %file.display(), "backup verified"),
        Some(check) => tracing::warn!(
            path = %file.display(),
            check = %check.name,
            reason = check.reason.as_deref().unwrap_or_default(),
            "backup verification failed"
        ),
    }
    report
}

/// Result of one check: `Ok` with an optional detail, or `Err` with the reason.
type CheckOutcome = Result<Option<String>, String>;

impl Verification<'_> {
    async fn run_check(&self, name: &str) -> CheckOutcome {
        match name {
            "present" => self.check_present().await,
            "age" => self.check_age().await,
            "size" => self.check_size().await,
            "checksum" => self.check_checksum().await,
            "header" => self.check_header().await,
            "list" => self.check_list().await,
            "restore" => self.check_restore().await,
            _ => unreachable!("unknown check {name}"),
        }
    }

    async fn file_size(&self) -> Result<u64, String> {
        tokio::fs::metadata(self.file)
            .await
            .map(|metadata| metadata.len())
            .map_err(|error| format!("cannot read {}: {error}", self.file.display()))
    }

    async fn check_present(&self) -> CheckOutcome {
        let size = self.file_size().await?;
        if size == 0 {
            return Err(format!("{} is empty", self.file.display()));
        }
        Ok(Some(format!("{size} bytes")))
    }

    /// Uses the timestamp in the file name as the creation time, because copies and downloads reset
    /// the modification time. Files without one fall back to the modification time.
    async fn check_age(&self) -> CheckOutcome {
        let name_time = self
            .file
            .file_name()
            .and_then(|name| parse_name_timestamp(&name.to_string_lossy()));
        let created_at = match name_time {
            Some(time) => time,
            None => {
                let modified = tokio::fs::metadata(self.file)
                    .await
                    .and_then(|metadata| metadata.modified())
                    .map_err(|error| format!("cannot read the modification time: {error}"))?;
                DateTime::<Utc>::from(modified)
            }
        };
        let age = (Utc::now() - created_at).to_std().unwrap_or(Duration::ZERO);
        if age >= self.rpo {
            return Err(format!(
                "backup created at {created_at} is {} s old, older than the RPO of {} s",
                age.as_secs(),
                self.rpo.as_secs()
            ));
        }
        Ok(Some(format!("created at {created_at}")))
    }

    async fn check_size(&self) -> CheckOutcome {
        let size = self.file_size().await?;
        match self.previous_size {
            Some(previous) if size < previous / 2 => Err(format!(
                "{size} bytes is less than half of the previous backup's {previous} bytes"
            )),
            Some(previous) => Ok(Some(format!("{size} bytes, previous {previous} bytes"))),
            None => Ok(None),
        }
    }

    async fn check_checksum(&self) -> CheckOutcome {
        let sidecar = sidecar_path(self.file);
        let contents = tokio::fs::read_to_string(&sidecar)
            .await
            .map_err(|error| format!("cannot read checksum file {}: {error}", sidecar.display()))?;
        let expected = contents
            .split_whitespace()
            .next()
            .filter(|digest| digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                format!(
                    "checksum file {} has no SHA-256 hex digest",
                    sidecar.display()
                )
            })?
            .to_ascii_lowercase();
        let actual = sha256_file(self.file)
            .await
            .map_err(|error| error.to_string())?;
        if actual != expected {
            return Err(format!(
                "SHA-256 mismatch: the file has {actual}, {} records {expected}",
                sidecar.display()
            ));
        }
        Ok(Some(actual))
    }

    async fn check_header(&self) -> CheckOutcome {
        let prefix = read_prefix(self.file)
            .await
            .map_err(|error| format!("cannot read {}: {error}", self.file.display()))?;
        let major = self.pg_restore_major().await?;
        let header = check_header(&prefix, major).map_err(|error| error.to_string())?;
        Ok(Some(format!(
            "custom format, archive version {}, readable by pg_restore {major}",
            header.version
        )))
    }

    async fn pg_restore_major(&self) -> Result<u32, String> {
        let program = find_tool("pg_restore", self.pg_bin_dir);
        let output = tokio::process::Command::new(&program)
            .arg("--version")
            .output()
            .await
            .map_err(|error| format!("failed to run {} --version: {error}", program.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        parse_pg_restore_major(&text).ok_or_else(|| {
            format!(
                "cannot parse the version of pg_restore from {:?}",
                text.trim()
            )
        })
    }

    async fn check_list(&self) -> CheckOutcome {
        let program = find_tool("pg_restore", self.pg_bin_dir);
        let mut command = tokio::process::Command::new(&program);
        command.arg("--list").arg(self.file);
        let output = output_within(&mut command, LIST_TIMEOUT)
            .await
            .map_err(|error| format!("failed to run {}: {error}", program.display()))?
            .ok_or_else(|| {
                format!(
                    "pg_restore --list did not finish within {} s",
                    LIST_TIMEOUT.as_secs()
                )
            })?;
        if !output.status.success() {
            return Err(format!(
                "pg_restore --list failed with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }

        let listing = parse_listing(&String::from_utf8_lossy(&output.stdout));
        if listing.toc_entries == 0 {
            return Err("the archive lists 0 TOC entries".to_string());
        }
        let missing: Vec<&str> = MAIN_TABLES
            .into_iter()
            .filter(|table| !listing.tables.iter().any(|listed| listed == table))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the archive does not contain the tables {}",
                missing.join(", ")
            ));
        }
        Ok(Some(format!("{} TOC entries", listing.toc_entries)))
    }

    async fn check_restore(&self) -> CheckOutcome {
        let live_url = DatabaseUrl::parse(self.database_url).map_err(|error| error.to_string())?;
        let mut live = PgConnection::connect(&live_url.connect_url())
            .await
            .map_err(|error| {
                format!(
                    "cannot connect to the live database {}: {}",
                    live_url.redacted(),
                    live_url.scrub(&error.to_string())
                )
            })?;

        drop_stale_scratch_databases(&mut live).await;
        let scratch = format!(
            "{SCRATCH_PREFIX}{}_{}",
            Utc::now().timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {scratch}")))
            .execute(&mut live)
            .await
            .map_err(|error| format!("cannot create scratch database {scratch}: {error}"))?;

        // A caller that drops this future (a job timeout, a shutdown) skips the DROP below. The next
        // verification drops the scratch database once it is a day old.
        let scratch_url = live_url.with_database(&scratch);
        let outcome = self.restore_and_compare(&mut live, &scratch_url).await;

        // The scratch database is dropped on every path after its creation; FORCE ends any session
        // that a failed restore left behind (PostgreSQL 13 and later).
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"
        )))
        .execute(&mut live)
        .await;
        if let Err(error) = &dropped {
            tracing::error!(database = %scratch, error = %error, "failed to drop the scratch database");
        }
        let _ = live.close().await;

        let detail = outcome?;
        dropped.map_err(|error| format!("cannot drop scratch database {scratch}: {error}"))?;
        Ok(Some(detail))
    }

    async fn restore_and_compare(
        &self,
        live: &mut PgConnection,
        scratch_url: &DatabaseUrl,
    ) -> Result<String, String> {
        let program = find_tool("pg_restore", self.pg_bin_dir);
        let mut command = scratch_url.command(&program);
        command
            .args(["--exit-on-error", "--no-owner", "--no-acl", "--dbname"])
            .arg(scratch_url.dbname_argument())
            .arg(self.file);
        let output = output_within(&mut command, RESTORE_TIMEOUT)
            .await
            .map_err(|error| format!("failed to run {}: {error}", program.display()))?
            .ok_or_else(|| {
                format!(
                    "pg_restore did not finish within {} s",
                    RESTORE_TIMEOUT.as_secs()
                )
            })?;
        if !output.status.success() {
            return Err(format!(
                "pg_restore failed with {}: {}",
                output.status,
                scratch_url.scrub(String::from_utf8_lossy(&output.stderr).trim())
            ));
        }

        let mut scratch = PgConnection::connect(&scratch_url.connect_url())
            .await
            .map_err(|error| format!("cannot connect to the scratch database: {error}"))?;
        let compared = compare_row_counts(live, &mut scratch).await;
        let _ = scratch.close().await;
        compared
    }
}

/// Drops scratch databases whose name says they were created more than [`STALE_SCRATCH_AGE`] ago.
/// Verifications running now are younger, so concurrent runs never drop each other's database.
async fn drop_stale_scratch_databases(live: &mut PgConnection) {
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(SCRATCH_PREFIX)
            .fetch_all(&mut *live)
            .await
        {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "cannot list scratch databases");
                return;
            }
        };
    let now = Utc::now().timestamp();
    for name in names {
        if !scratch_is_stale(&name, now) {
            continue;
        }
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut *live)
        .await;
        match dropped {
            Ok(_) => tracing::info!(database = %name, "dropped a stale scratch database"),
            Err(error) => {
                tracing::warn!(database = %name, %error, "cannot drop a stale scratch database")
            }
        }
    }
}

/// Returns whether scratch database `name` (`duespark_verify_<secs>_<hex>`) is older than
/// [`STALE_SCRATCH_AGE`] at `now` (Unix seconds). Names without a time are never stale.
fn scratch_is_stale(name: &str, now: i64) -> bool {
    let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) else {
        return false;
    };
    let Some((secs, random)) = rest.split_once('_') else {
        return false;
    };
    if !random.chars().all(|c| c.is_ascii_hexdigit()) {
        return false;
    }
    secs.parse::<i64>()
        .is_ok_and(|created| now - created > STALE_SCRATCH_AGE.as_secs() as i64)
}

/// Compares the row counts of [`MAIN_TABLES`]: a restored table must have rows when the live table
/// has rows, and must not have more rows than the live table.
///
/// NOTE: rows deleted from the live database after the dump make the restored count larger than the
/// live one, which this check reports as a failure.
async fn compare_row_counts(
    live: &mut PgConnection,
    scratch: &mut PgConnection,
) -> Result<String, String> {
    let mut summary = Vec::with_capacity(MAIN_TABLES.len());
    for table in MAIN_TABLES {
        let query = format!("SELECT count(*) FROM {table}");
        let live_count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query.clone()))
            .fetch_one(&mut *live)
            .await
            .map_err(|error| {
                format!("cannot count rows of {table} in the live database: {error}")
            })?;
        let restored_count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .fetch_one(&mut *scratch)
            .await
            .map_err(|error| format!("cannot count rows of restored {table}: {error}"))?;

        if live_count > 0 && restored_count == 0 {
            return Err(format!(
                "restored table {table} is empty but the live table has {live_count} rows"
            ));
        }
        if restored_count > live_count {
            return Err(format!(
                "restored table {table} has {restored_count} rows, more than the live table's {live_count}"
            ));
        }
        summary.push(format!("{table} {restored_count}/{live_count}"));
    }
    Ok(format!("restored/live rows: {}", summary.join(", ")))
}

async fn read_prefix(file: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;

    let file = tokio::fs::File::open(file).await?;
    let mut prefix = Vec::with_capacity(HEADER_PREFIX_LEN);
    file.take(HEADER_PREFIX_LEN as u64)
        .read_to_end(&mut prefix)
        .await?;
    Ok(prefix)
}

/// The parts of `pg_restore --list` output that the `list` check uses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    toc_entries: u64,
    tables: Vec<String>,
}

/// Parses `pg_restore --list` output: the `; TOC Entries: N` comment and item lines such as
/// `215; 1259 16386 TABLE public invoices app`.
fn parse_listing(output: &str) -> Listing {
    let mut listing = Listing::default();
    for line in output.lines() {
        if let Some(count) = line
            .trim_start_matches(';')
            .trim()
            .strip_prefix("TOC Entries:")
        {
            listing.toc_entries = count.trim().parse().unwrap_or(0);
            continue;
        }
        if line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `TABLE DATA` lines have one more word in the description; only `TABLE` itself counts.
        if fields.len() >= 6 && fields[3] == "TABLE" && fields[4] != "DATA" {
            listing.tables.push(fields[5].to_string());
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
;
; Archive created at 2026-12-04 22:33:17 UTC
;     dbname: duespark
;     TOC Entries: 12
;     Compression: -1
;     Format: CUSTOM
;
; Selected TOC Entries:
;
215; 1259 16386 TABLE public invoices app
216; 1259 16390 TABLE public accounts app
3350; 0 16386 TABLE DATA public invoices app
";

    #[test]
    fn parses_listing_entries_and_tables() {
        let listing = parse_listing(LISTING);
        assert_eq!(listing.toc_entries, 12);
        assert_eq!(listing.tables, vec!["invoices", "accounts"]);
    }

    #[test]
    fn only_day_old_scratch_databases_are_stale() {
        let now = 1_800_000_000;
        assert!(scratch_is_stale(
            "duespark_verify_1799900000_ab12cd34ef56",
            now
        ));
        assert!(!scratch_is_stale(
            "duespark_verify_1799990000_ab12cd34ef56",
            now
        ));
        // Older names carry no time; other databases are never touched.
        assert!(!scratch_is_stale(
            "duespark_verify_0f3c9a7e2b1d4c5e8f6a7b8c9d0e1f2a",
            now
        ));
        assert!(!scratch_is_stale("duespark_verify_1_x\"; DROP", now));
        assert!(!scratch_is_stale("duespark", now));
    }

    #[test]
    fn parses_empty_listing() {
        assert_eq!(parse_listing("").toc_entries, 0);
    }
}
