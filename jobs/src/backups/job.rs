//! The `backup.run` job: a backup into the backup folder, then its verification, both recorded.
//! It runs daily from the worker's schedule and on request through the API.

use sqlx::ConnectOptions;
use tracing::info;

use super::{DEFAULT_RPO, create_backup, record_backup, record_verification, verify_backup};
use crate::context::JobContext;
use crate::outcome::JobError;

/// Takes and verifies one backup. A failed verification is permanent for this run and names the
/// check; the next scheduled run tries again.
pub async fn run_backup(ctx: &JobContext) -> Result<(), JobError> {
    // The pool's own connection settings, so the backup reads the database the platform uses.
    let database_url = libpq_url(ctx.pool.connect_options().to_url_lossy());
    let dir = &ctx.backup_dir;
    tokio::fs::create_dir_all(dir).await.map_err(|error| {
        JobError::permanent(format!(
            "failed to create the backup folder {}: {error}",
            dir.display()
        ))
    })?;

    let previous: Option<i64> = sqlx::query_scalar(
        r#"
        SELECT b.size_bytes FROM backups b
        WHERE EXISTS (SELECT 1 FROM backup_verifications v WHERE v.backup_path = b.path AND v.ok)
        ORDER BY b.created_at DESC LIMIT 1
        "#,
    )
    .fetch_optional(&ctx.pool)
    .await?;

    let file = create_backup(&database_url, dir, ctx.pg_bin_dir.as_deref())
        .await
        .map_err(|error| JobError::retryable(format!("the backup failed: {error}")))?;
    record_backup(&ctx.pool, "local", &file).await?;

    let report = verify_backup(
        &file.path,
        previous.and_then(|size| u64::try_from(size).ok()),
        &database_url,
        ctx.pg_bin_dir.as_deref(),
        DEFAULT_RPO,
    )
    .await;
    record_verification(&ctx.pool, &report).await?;
    match report.failed_check() {
        None => {
            info!(path = %file.path.display(), size_bytes = file.size_bytes, "backup written and verified");
            Ok(())
        }
        Some(check) => Err(JobError::permanent(format!(
            "backup {} failed verification at check {}: {}",
            file.path.display(),
            check.name,
            check.reason.as_deref().unwrap_or("no reason given")
        ))),
    }
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
