//! `duespark backup` takes a backup with upload, verification and retention, as the daily job does.
//! `duespark verify-backup [PATH]` verifies backups. Both record the results and print them as
//! JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use duespark_jobs::backups::run::{
    backup_and_verify, verify_file, verify_in_location, verify_newest,
};
use duespark_jobs::backups::{Location, VerifyReport};
use sqlx::PgPool;

use crate::config::Config;

/// Takes a backup into `BACKUP_DIR`, uploads it to `BACKUP_S3_URL` when set, verifies it in each
/// location and applies retention. Fails naming the first problem.
pub async fn backup(config: &Config, pool: &PgPool, database_url: &str) -> Result<()> {
    let settings = config.backup_settings();
    let run = backup_and_verify(pool, database_url, &settings)
        .await
        .context("the backup failed")?;
    println!("{}", serde_json::to_string_pretty(&run)?);
    match run.failure() {
        None => Ok(()),
        Some(failure) => bail!("{failure}"),
    }
}

/// Verifies `path` (a file, or an `s3://` URL under `BACKUP_S3_URL`), or without a path the newest
/// backup in each location.
pub async fn verify(
    config: &Config,
    pool: &PgPool,
    database_url: &str,
    path: Option<PathBuf>,
) -> Result<()> {
    let settings = config.backup_settings();
    let reports = match path {
        None => verify_newest(pool, database_url, &settings).await,
        Some(path) => match path.to_str().filter(|text| text.starts_with("s3://")) {
            Some(url) => {
                let s3 = settings
                    .s3
                    .clone()
                    .with_context(|| format!("{url} is an S3 URL but BACKUP_S3_URL is not set"))?;
                let name = url
                    .strip_prefix(&format!("{}/", s3.url()))
                    .filter(|name| !name.contains('/'))
                    .with_context(|| format!("{url} is not a backup under {}", s3.url()))?
                    .to_string();
                vec![
                    verify_in_location(
                        pool,
                        database_url,
                        &settings,
                        &Location::S3(s3),
                        Some(&name),
                    )
                    .await,
                ]
            }
            None => vec![verify_file(pool, database_url, &settings, &path).await],
        },
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "ok": reports.iter().all(|report| report.ok),
            "verifications": reports,
        }))?
    );
    match reports.iter().find_map(failure) {
        None => Ok(()),
        Some(failure) => bail!("{failure}"),
    }
}

fn failure(report: &VerifyReport) -> Option<String> {
    report.failed_check().map(|check| {
        format!(
            "backup verification of {} failed at check {:?}: {}",
            report.file.display(),
            check.name,
            check.reason.as_deref().unwrap_or("no reason given")
        )
    })
}
