//! The `backup.run` job (a backup, its upload, verification in each location and retention) and the
//! `backup.verify` job (the newest backup in each location). Both run daily from the worker's
//! schedule; `backup.run` also on request through the API.

use sqlx::ConnectOptions;
use tracing::info;

use super::run::{backup_and_verify, has_recorded_backup, verify_in_location};
use crate::context::JobContext;
use crate::outcome::JobError;

/// Takes and verifies one backup. A failed upload, verification or retention is permanent for this
/// run and names its cause; the next scheduled run tries again.
pub async fn run_backup(ctx: &JobContext) -> Result<(), JobError> {
    let database_url = database_url(ctx);
    let run = backup_and_verify(&ctx.pool, &database_url, &ctx.backups)
        .await
        .map_err(|error| JobError::retryable(format!("the backup failed: {error}")))?;
    match run.failure() {
        None => {
            info!(
                path = %run.backup.path.display(),
                size_bytes = run.backup.size_bytes,
                uploaded = run.uploaded.as_deref().unwrap_or("no"),
                "backup written and verified"
            );
            Ok(())
        }
        Some(failure) => Err(JobError::permanent(failure)),
    }
}

/// Verifies the newest backup in each location. A failure names the location's backup and check.
pub async fn run_verify(ctx: &JobContext) -> Result<(), JobError> {
    let database_url = database_url(ctx);
    let mut reports = Vec::new();
    for location in ctx.backups.locations() {
        if !has_recorded_backup(&ctx.pool, &location).await? {
            info!(
                location = location.name(),
                "no backup recorded in this location yet; nothing to verify"
            );
            continue;
        }
        reports.push(
            verify_in_location(&ctx.pool, &database_url, &ctx.backups, &location, None).await,
        );
    }
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|report| {
            report.failed_check().map(|check| {
                format!(
                    "{} backup {} failed check {}: {}",
                    report.location,
                    report.file.display(),
                    check.name,
                    check.reason.as_deref().unwrap_or("no reason given")
                )
            })
        })
        .collect();
    if failures.is_empty() {
        info!(locations = reports.len(), "newest backups verified");
        Ok(())
    } else {
        Err(JobError::permanent(failures.join("; ")))
    }
}

/// Returns the pool's own connection URL, so the backup reads the database the platform uses.
fn database_url(ctx: &JobContext) -> String {
    libpq_url(ctx.pool.connect_options().to_url_lossy())
}

/// Keeps only the query parameters libpq understands: sqlx adds its own (such as
/// `statement-cache-capacity`), which pg_dump rejects.
fn libpq_url(mut url: url::Url) -> String {
    const LIBPQ: [&str; 10] = [
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "options",
        "application_name",
        "host",
        "port",
        "connect_timeout",
        "target_session_attrs",
    ];
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| LIBPQ.contains(&key.as_ref()))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn libpq_url_drops_sqlx_parameters() {
        let url = url::Url::parse(
            "postgres://app:secret@db:5432/duespark?statement-cache-capacity=100&sslmode=require",
        )
        .unwrap();
        assert_eq!(
            super::libpq_url(url),
            "postgres://app:secret@db:5432/duespark?sslmode=require"
        );
    }
}
