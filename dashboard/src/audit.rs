//! The audit log: who took which action on which job or queue, and when. Every admin action
//! writes one entry after it is applied; the audit page and the job page list them.

use chrono::{DateTime, Utc};
use duespark_queue::JobId;
use serde_json::Value;
use sqlx::PgPool;

/// An action a person can take in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Retry,
    Cancel,
    /// Retry of a queue's dead jobs.
    RetryDead,
    Pause,
    Resume,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Retry => "retry",
            AuditAction::Cancel => "cancel",
            AuditAction::RetryDead => "retry_dead",
            AuditAction::Pause => "pause",
            AuditAction::Resume => "resume",
        }
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub queue: Option<String>,
    pub job_id: Option<i64>,
    pub detail: Value,
}

/// The fields of a new entry; the database sets its id and time.
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub action: AuditAction,
    pub queue: Option<&'a str>,
    pub job_id: Option<JobId>,
    pub detail: Value,
}

/// Writes one entry.
pub async fn record(pool: &PgPool, entry: NewEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO dashboard_audit_log (actor, action, queue, job_id, detail)
        VALUES ($1, $2, $3, $4, $5)
        "#,
    )
    .bind(entry.actor)
    .bind(entry.action.as_str())
    .bind(entry.queue)
    .bind(entry.job_id.map(JobId::get))
    .bind(entry.detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lists entries newest first, older than `before` when given.
pub async fn list(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT id, at, actor, action, queue, job_id, detail
        FROM dashboard_audit_log
        WHERE ($1::bigint IS NULL OR id < $1)
        ORDER BY id DESC
        LIMIT $2
        "#,
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Lists the newest entries about one job.
pub async fn for_job(
    pool: &PgPool,
    job_id: JobId,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT id, at, actor, action, queue, job_id, detail
        FROM dashboard_audit_log
        WHERE job_id = $1
        ORDER BY id DESC
        LIMIT $2
        "#,
    )
    .bind(job_id.get())
    .bind(limit)
    .fetch_all(pool)
    .await
}
