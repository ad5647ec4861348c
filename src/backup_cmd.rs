//! `duespark backup` and `duespark verify-backup [PATH]`: take a local backup and verify it, or
//! verify an existing one, recording the results and printing the verification report as JSON.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use duespark_jobs::backups::{
    DEFAULT_RPO, VerifyReport, create_backup, record_backup, record_verification, verify_backup,
};
use sqlx::PgPool;
use tracing::info;

use crate::config::Config;

/// Takes a backup into `BACKUP_DIR`, then verifies it against the previous verified one. Fails
/// when the verification fails, naming the check.
pub async fn backup(config: &Config, pool: &PgPool, database_url: &str) -> Result<()> {
    let dir = &config.backup_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("failed to create BACKUP_DIR {}", dir.display()))?;
    let previous = previous_verified_size(pool, None).await?;

    let file = create_backup(database_url, dir, config.pg_bin_dir.as_deref())
        .await
        .context("the backup failed")?;
    record_backup(pool, "local", &file).await?;
    info!(path = %file.path.display(), size_bytes = file.size_bytes, "backup written");

    let report = verify_backup(
        &file.path,
        previous,
        database_url,
        config.pg_bin_dir.as_deref(),
        DEFAULT_RPO,
    )
    .await;
    finish(pool, &report).await
}

/// Verifies `path`, or the newest backup in `BACKUP_DIR` when none is given.
pub async fn verify(
    config: &Config,
    pool: &PgPool,
    database_url: &str,
    path: Option<PathBuf>,
) -> Result<()> {
    let path = match path {
        Some(path) => path,
        None => newest_backup(&config.backup_dir)?,
    };
    let previous = previous_verified_size(pool, Some(&path)).await?;
    let report = verify_backup(
        &path,
        previous,
        database_url,
        config.pg_bin_dir.as_deref(),
        DEFAULT_RPO,
    )
    .await;
    finish(pool, &report).await
}

async fn finish(pool: &PgPool, report: &VerifyReport) -> Result<()> {
    record_verification(pool, report).await?;
    println!("{}", serde_json::to_string_pretty(report)?);
    match report.failed_check() {
        None => Ok(()),
        Some(check) => bail!(
            "backup verification failed at check {:?}: {}",
            check.name,
            check.reason.as_deref().unwrap_or("no reason given")
        ),
    }
}

/// Size of the newest backup that verified, other than `except`, for the size check.
async fn previous_verified_size(pool: &PgPool, except: Option<&Path>) -> Result<Option<u64>> {
    let except = except.map(|path| path.to_string_lossy().into_owned());
    let size: Option<i64> = sqlx::query_scalar(
        r#"
        SELECT b.size_bytes FROM backups b
        WHERE ($1::text IS NULL OR b.path <> $1)
          AND EXISTS (SELECT 1 FROM backup_verifications v WHERE v.backup_path = b.path AND v.ok)
        ORDER BY b.created_at DESC
        LIMIT 1
        "#,
    )
    .bind(except)
    .fetch_optional(pool)
    .await?;
    Ok(size.and_then(|size| u64::try_from(size).ok()))
}

/// Finds the newest `duespark-*.dump` file in `dir`; names sort by their UTC timestamp.
fn newest_backup(dir: &Path) -> Result<PathBuf> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read BACKUP_DIR {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("duespark-") && name.ends_with(".dump"))
        })
        .collect();
    backups.sort();
    backups.pop().with_context(|| {
        format!(
            "no backup found in BACKUP_DIR {}; give a path or run `duespark backup`",
            dir.display()
        )
    })
}
