//! A backup run and the verification of each location, shared by the jobs and the commands.
//!
//! A backup run dumps the database into the local folder, uploads the file to S3 when configured,
//! verifies the new backup in each location and then applies retention there. Every backup and
//! every verification is recorded. A verification of S3 downloads the object into a temporary
//! folder inside the local backup folder, which is removed afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::location::Location;
use super::record_verification;
use super::retention::{DEFAULT_RETENTION, apply_retention};
use super::s3::S3Location;
use super::verify::{DEFAULT_RPO, VerifyReport, verify_backup};
use super::{BackupError, BackupFile, create_backup, parse_name_timestamp, record_backup};

/// Backup locations, retention and the PostgreSQL tools' folder.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// The local backup folder (`BACKUP_DIR`).
    pub dir: PathBuf,
    /// S3-compatible storage (`BACKUP_S3_URL`), if configured.
    pub s3: Option<S3Location>,
    /// Folder of `pg_dump` and `pg_restore` (`PG_BIN_DIR`); `None` searches `PATH`.
    pub pg_bin_dir: Option<PathBuf>,
    /// Backups older than this are deleted (`BACKUP_RETENTION_DAYS`).
    pub retention: Duration,
    /// The newest backup must be younger than this.
    pub rpo: Duration,
}

impl BackupSettings {
    /// Settings for the local folder `dir` only, with the default retention and RPO.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            s3: None,
            pg_bin_dir: None,
            retention: DEFAULT_RETENTION,
            rpo: DEFAULT_RPO,
        }
    }

    /// Returns the configured locations: the local folder, then S3.
    pub fn locations(&self) -> Vec<Location> {
        let mut locations = vec![Location::Local(self.dir.clone())];
        if let Some(s3) = &self.s3 {
            locations.push(Location::S3(s3.clone()));
        }
        locations
    }
}

/// Result of a backup run. `ok` is true when the upload, every verification and retention passed.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRun {
    pub ok: bool,
    pub backup: BackupFile,
    /// The S3 URL of the uploaded backup, when S3 is configured and the upload succeeded.
    pub uploaded: Option<String>,
    pub verifications: Vec<VerifyReport>,
    /// Backups deleted by retention, per location.
    pub deleted: BTreeMap<String, Vec<String>>,
    /// Failures other than verification: upload and retention.
    pub errors: Vec<String>,
}

impl BackupRun {
    /// Describes the first problem of a run that is not `ok`.
    pub fn failure(&self) -> Option<String> {
        if let Some(error) = self.errors.first() {
            return Some(error.clone());
        }
        self.verifications.iter().find_map(|report| {
            report.failed_check().map(|check| {
                format!(
                    "backup {} failed verification at check {}: {}",
                    report.file.display(),
                    check.name,
                    check.reason.as_deref().unwrap_or("no reason given")
                )
            })
        })
    }
}

/// Takes a backup, uploads it, verifies it in each location and applies retention. Fails only when
/// the dump itself fails; other problems are in the returned run.
pub async fn backup_and_verify(
    pool: &PgPool,
    database_url: &str,
    settings: &BackupSettings,
) -> Result<BackupRun, BackupError> {
    tokio::fs::create_dir_all(&settings.dir)
        .await
        .map_err(BackupError::io(&settings.dir))?;
    let file = create_backup(database_url, &settings.dir, settings.pg_bin_dir.as_deref()).await?;
    let name = file_name(&file.path);
    let local = Location::Local(settings.dir.clone());
    record_backup(pool, local.name(), &local.backup_path(&name), &file)
        .await
        .map_err(BackupError::Record)?;

    let mut errors = Vec::new();
    let mut uploaded = None;
    let mut verifications =
        vec![verify_in_location(pool, database_url, settings, &local, Some(&name)).await];
    if let Some(s3) = &settings.s3 {
        let remote = Location::S3(s3.clone());
        match s3.upload(&file.path).await {
            Ok(url) => {
                record_backup(pool, remote.name(), &url, &file)
                    .await
                    .map_err(BackupError::Record)?;
                tracing::info!(url = %url, "backup uploaded");
                uploaded = Some(url);
                verifications.push(
                    verify_in_location(pool, database_url, settings, &remote, Some(&name)).await,
                );
            }
            Err(error) => {
                tracing::error!(%error, "backup upload failed");
                errors.push(error.to_string());
            }
        }
    }

    let mut deleted = BTreeMap::new();
    for location in settings.locations() {
        match apply_retention(pool, &location, settings.retention, Utc::now()).await {
            Ok(names) => {
                deleted.insert(location.name().to_string(), names);
            }
            Err(error) => {
                let error = format!("retention in {} failed: {error}", location.describe());
                tracing::error!(%error, "backup retention failed");
                errors.push(error);
            }
        }
    }

    let ok = errors.is_empty() && verifications.iter().all(|report| report.ok);
    Ok(BackupRun {
        ok,
        backup: file,
        uploaded,
        verifications,
        deleted,
        errors,
    })
}

/// Verifies the newest backup in each location and records the results.
pub async fn verify_newest(
    pool: &PgPool,
    database_url: &str,
    settings: &BackupSettings,
) -> Vec<VerifyReport> {
    let mut reports = Vec::new();
    for location in settings.locations() {
        reports.push(verify_in_location(pool, database_url, settings, &location, None).await);
    }
    reports
}

/// Returns whether any backup of `location` was ever recorded. The daily verification skips a
/// location that has none yet, as on a new deployment before its first backup.
pub async fn has_recorded_backup(pool: &PgPool, location: &Location) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM backups WHERE location = $1)")
        .bind(location.name())
        .fetch_one(pool)
        .await
}

/// Verifies backup `name` in `location`, or its newest backup when `name` is `None`, and records
/// the result. A location without backups fails the `present` check.
pub async fn verify_in_location(
    pool: &PgPool,
    database_url: &str,
    settings: &BackupSettings,
    location: &Location,
    name: Option<&str>,
) -> VerifyReport {
    let report = match name {
        Some(name) => check_in_location(pool, database_url, settings, location, name).await,
        None => match location.list().await {
            Ok(backups) => match backups.last() {
                Some(newest) => {
                    check_in_location(pool, database_url, settings, location, &newest.name).await
                }
                None => VerifyReport::failed_before_checks(
                    location.name(),
                    location.describe(),
                    "present",
                    format!("no backup found in {}", location.describe()),
                ),
            },
            Err(error) => VerifyReport::failed_before_checks(
                location.name(),
                location.describe(),
                "present",
                format!("cannot list the backups: {error}"),
            ),
        },
    };
    record(pool, report).await
}

/// Verifies a local file anywhere on disk, such as a copy an operator wants to restore, and records
/// the result under the local location.
pub async fn verify_file(
    pool: &PgPool,
    database_url: &str,
    settings: &BackupSettings,
    path: &Path,
) -> VerifyReport {
    let path_text = path.to_string_lossy().into_owned();
    let previous = previous_verified_size(pool, "local", &path_text, path).await;
    let report = verify_backup(
        path,
        previous,
        database_url,
        settings.pg_bin_dir.as_deref(),
        settings.rpo,
    )
    .await;
    record(pool, report).await
}

async fn check_in_location(
    pool: &PgPool,
    database_url: &str,
    settings: &BackupSettings,
    location: &Location,
    name: &str,
) -> VerifyReport {
    let backup_path = location.backup_path(name);
    let previous =
        previous_verified_size(pool, location.name(), &backup_path, Path::new(name)).await;
    match location {
        Location::Local(dir) => {
            let mut report = verify_backup(
                &dir.join(name),
                previous,
                database_url,
                settings.pg_bin_dir.as_deref(),
                settings.rpo,
            )
            .await;
            report.location = location.name().to_string();
            report
        }
        Location::S3(s3) => {
            let mut report = verify_download(s3, name, previous, database_url, settings).await;
            report.location = location.name().to_string();
            report.file = PathBuf::from(backup_path);
            report
        }
    }
}

/// Downloads an S3 backup into a temporary folder, verifies it there and removes the folder.
async fn verify_download(
    s3: &S3Location,
    name: &str,
    previous: Option<u64>,
    database_url: &str,
    settings: &BackupSettings,
) -> VerifyReport {
    let scratch_dir = settings
        .dir
        .join(format!(".verify-{}", uuid::Uuid::new_v4().simple()));
    if let Err(error) = tokio::fs::create_dir_all(&scratch_dir).await {
        return VerifyReport::failed_before_checks(
            "s3",
            s3.object_url(name),
            "present",
            format!(
                "cannot create the download folder {}: {error}",
                scratch_dir.display()
            ),
        );
    }
    let report = match s3.download(name, &scratch_dir).await {
        Ok(file) => {
            verify_backup(
                &file,
                previous,
                database_url,
                settings.pg_bin_dir.as_deref(),
                settings.rpo,
            )
            .await
        }
        Err(error) => VerifyReport::failed_before_checks(
            "s3",
            s3.object_url(name),
            "present",
            error.to_string(),
        ),
    };
    if let Err(error) = tokio::fs::remove_dir_all(&scratch_dir).await {
        tracing::warn!(folder = %scratch_dir.display(), %error, "cannot remove the download folder");
    }
    report
}

/// Records `report`; a failure to record is logged and does not hide the result.
async fn record(pool: &PgPool, report: VerifyReport) -> VerifyReport {
    if let Err(error) = record_verification(pool, &report).await {
        tracing::error!(%error, file = %report.file.display(), "cannot record a backup verification");
    }
    report
}

/// Size of the newest verified backup in `location` created before the one at `backup_path`, for
/// the size check. The creation time comes from the file name when it has one.
async fn previous_verified_size(
    pool: &PgPool,
    location: &str,
    backup_path: &str,
    file: &Path,
) -> Option<u64> {
    let created_before: Option<DateTime<Utc>> = file
        .file_name()
        .and_then(|name| parse_name_timestamp(&name.to_string_lossy()));
    let size: Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(
        r#"
        SELECT b.size_bytes FROM backups b
        WHERE b.location = $1 AND b.path <> $2
          AND ($3::timestamptz IS NULL OR b.created_at < $3)
          AND EXISTS (SELECT 1 FROM backup_verifications v
                      WHERE v.backup_path = b.path AND v.location = b.location AND v.ok)
        ORDER BY b.created_at DESC
        LIMIT 1
        "#,
    )
    .bind(location)
    .bind(backup_path)
    .bind(created_before)
    .fetch_optional(pool)
    .await
    .map(Option::flatten);
    match size {
        Ok(size) => size.and_then(|size| u64::try_from(size).ok()),
        Err(error) => {
            tracing::warn!(%error, "cannot read the previous backup's size; skipping the size check");
            None
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
