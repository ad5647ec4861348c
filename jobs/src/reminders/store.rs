//! Reminder rows: recording a reminder together with its delivery job, and reading them back.

use chrono::{DateTime, Utc};
use duespark_queue::{JobId, NewJob, enqueue_in};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use super::Stage;
use super::deliver::SendReminder;
use crate::domain::DomainError;
use crate::kinds;

/// A stored reminder, as `GET /v1/invoices/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Reminder {
    pub id: i64,
    pub invoice_id: String,
    pub stage: String,
    pub status: String,
    pub reason: Option<String>,
    pub job_id: Option<String>,
    pub message_id: Option<String>,
    pub send_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sending_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The reminder a request refers to, and whether this request created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedReminder {
    pub reminder_id: i64,
    pub job_id: JobId,
    pub created: bool,
}

/// Records a reminder for `(invoice, stage)` and enqueues its delivery job in the same
/// transaction. When the pair already has a reminder, whatever its status, nothing is written and
/// the existing reminder is returned.
pub async fn request_reminder(
    pool: &PgPool,
    invoice_id: &str,
    stage: Stage,
) -> Result<RequestedReminder, DomainError> {
    let mut tx = pool.begin().await?;
    let invoice_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM invoices WHERE id = $1)")
            .bind(invoice_id)
            .fetch_one(&mut *tx)
            .await?;
    if !invoice_exists {
        return Err(DomainError::NotFound(format!("invoice {invoice_id:?}")));
    }

    if let Some((reminder_id, job_id)) =
        insert_reminder_in(&mut tx, invoice_id, stage, Utc::now()).await?
    {
        tx.commit().await?;
        return Ok(RequestedReminder {
            reminder_id,
            job_id,
            created: true,
        });
    }

    let (reminder_id, job_id): (i64, Option<String>) =
        sqlx::query_as("SELECT id, job_id FROM reminders WHERE invoice_id = $1 AND stage = $2")
            .bind(invoice_id)
            .bind(stage.as_str())
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let job_id = job_id
        .and_then(|id| id.parse::<JobId>().ok())
        .ok_or_else(|| DomainError::Conflict(format!("reminder {reminder_id} has no job")))?;
    Ok(RequestedReminder {
        reminder_id,
        job_id,
        created: false,
    })
}

/// Inserts a reminder and its job on the caller's connection, normally inside a transaction.
/// Returns `None` when `(invoice, stage)` already had a reminder; the unique key decides, so
/// concurrent callers cannot both create one.
pub async fn insert_reminder_in(
    conn: &mut PgConnection,
    invoice_id: &str,
    stage: Stage,
    send_at: DateTime<Utc>,
) -> Result<Option<(i64, JobId)>, DomainError> {
    let reminder_id: Option<i64> = sqlx::query_scalar(
        r#"
        INSERT INTO reminders (invoice_id, stage, send_at)
        VALUES ($1, $2, $3)
        ON CONFLICT ON CONSTRAINT reminders_invoice_stage_key DO NOTHING
        RETURNING id
        "#,
    )
    .bind(invoice_id)
    .bind(stage.as_str())
    .bind(send_at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(reminder_id) = reminder_id else {
        return Ok(None);
    };

    let spec = kinds::spec(kinds::SEND_REMINDER).expect("the reminder kind is registered");
    let payload =
        serde_json::to_value(SendReminder { reminder_id }).expect("the payload serializes");
    let job = NewJob::new(spec.queue, spec.name, payload)
        .run_at(send_at)
        .max_attempts(spec.max_attempts)
        .idempotency_key(format!("reminder-{reminder_id}"));
    let enqueued = enqueue_in(conn, job).await?;

    sqlx::query("UPDATE reminders SET job_id = $2 WHERE id = $1")
        .bind(reminder_id)
        .bind(enqueued.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(Some((reminder_id, enqueued.id)))
}

/// Lists an invoice's reminders, earliest stage first.
pub async fn list_for_invoice(
    pool: &PgPool,
    invoice_id: &str,
) -> Result<Vec<Reminder>, DomainError> {
    let reminders = sqlx::query_as::<_, Reminder>(
        r#"
        SELECT id, invoice_id, stage, status, reason, job_id, message_id, send_at, created_at, updated_at,
               sending_at, sent_at
        FROM reminders
        WHERE invoice_id = $1
        ORDER BY send_at, id
        "#,
    )
    .bind(invoice_id)
    .fetch_all(pool)
    .await?;
    Ok(reminders)
}

/// Skips an invoice's reminders that have not started sending, with `reason`. One already
/// `sending` is left to finish, because a send cannot be taken back.
pub async fn skip_pending(
    conn: &mut PgConnection,
    invoice_id: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let skipped = sqlx::query(
        "UPDATE reminders SET status = 'skipped', reason = $2, updated_at = now() WHERE invoice_id = $1 AND status = 'queued'",
    )
    .bind(invoice_id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(skipped.rows_affected())
}
