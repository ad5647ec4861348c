//! The reminder delivery job: re-read, decide, render, send at most once, record.
//!
//! The reminder row is the record of truth. Before the email is handed to the mailer the row is
//! marked `sending` and committed, so an attempt that finds a row still `sending` knows an earlier
//! attempt may have delivered it: that reminder becomes `uncertain` and is never sent again. A
//! missed reminder is covered by the next stage; a duplicate cannot be taken back.

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tracing::{info, warn};

use super::Stage;
use crate::context::JobContext;
use crate::email::{OutgoingEmail, ReminderVars, SendError, new_message_id};
use crate::metrics::job_metrics;
use crate::outcome::JobError;
use duespark_queue::JobMeta;

/// Payload of a `reminder.send` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendReminder {
    pub reminder_id: i64,
}

/// Everything the job reads about a reminder, in one row.
#[derive(Debug, sqlx::FromRow)]
struct ReminderRow {
    stage: String,
    status: String,
    message_id: Option<String>,
    invoice_id: String,
    invoice_number: String,
    invoice_status: String,
    amount_due: i64,
    amount_paid: i64,
    currency: String,
    issued_on: NaiveDate,
    due_on: NaiveDate,
    pay_url: String,
    invoice_paused: bool,
    client_name: String,
    client_email: String,
    client_paused: bool,
    account_id: String,
    account_name: String,
    sender_name: String,
    reply_to: String,
    timezone: String,
    account_paused: bool,
    client_suppressed: bool,
}

/// Sends one reminder, at most once. Returns `Ok` once the reminder has a final status (sent,
/// skipped or uncertain); a temporary mail failure is retryable, and a rejection is permanent.
pub async fn send_reminder(
    ctx: &JobContext,
    reminder_id: i64,
    job: &JobMeta,
) -> Result<(), JobError> {
    // Wait for the send rate limit before taking any row lock.
    ctx.mail_limiter.until_ready().await;

    let email = match prepare(ctx, reminder_id).await? {
        Prepared::Finished => return Ok(()),
        Prepared::Send(email) => *email,
    };

    match ctx.mailer.send(&email).await {
        Ok(()) => {
            record(ctx, reminder_id, "sent", None).await?;
            job_metrics().email("sent");
            info!(reminder.id = reminder_id, message_id = %email.message_id, "reminder sent");
            Ok(())
        }
        Err(SendError::Retryable(reason)) if !job.is_last_attempt() => {
            record(ctx, reminder_id, "queued", Some(&reason)).await?;
            Err(JobError::retryable(format!(
                "temporary mail failure: {reason}"
            )))
        }
        Err(SendError::Retryable(reason)) => {
            let reason = format!("temporary mail failure on the last attempt: {reason}");
            record(ctx, reminder_id, "failed", Some(&reason)).await?;
            job_metrics().email("failed");
            Err(JobError::permanent(reason))
        }
        Err(SendError::Rejected(reason)) => {
            record(ctx, reminder_id, "failed", Some(&reason)).await?;
            job_metrics().email("failed");
            Err(JobError::permanent(format!("recipient rejected: {reason}")))
        }
        Err(SendError::Uncertain(reason)) => {
            warn!(reminder.id = reminder_id, %reason, "reminder outcome unknown; it will not be sent again");
            record(ctx, reminder_id, "uncertain", Some(&reason)).await?;
            job_metrics().email("uncertain");
            Ok(())
        }
    }
}

enum Prepared {
    /// The reminder already has a final status, or has just been given one.
    Finished,
    Send(Box<OutgoingEmail>),
}

/// Locks the reminder, re-reads what it depends on and either records a final status or marks it
/// `sending` with its Message-ID, committed before the send.
async fn prepare(ctx: &JobContext, reminder_id: i64) -> Result<Prepared, JobError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(row) = lock_reminder(&mut tx, reminder_id).await? else {
        return Err(JobError::permanent(format!(
            "reminder {reminder_id} does not exist"
        )));
    };

    match row.status.as_str() {
        "queued" => {}
        "sending" => {
            let reason =
                "an earlier attempt stopped during the send, so the email may have been delivered";
            set_status(&mut tx, reminder_id, "uncertain", Some(reason)).await?;
            tx.commit().await?;
            job_metrics().email("uncertain");
            warn!(
                reminder.id = reminder_id,
                "reminder left in sending; recorded as uncertain"
            );
            return Ok(Prepared::Finished);
        }
        _ => return Ok(Prepared::Finished),
    }

    if let Some(reason) = skip_reason(&row) {
        set_status(&mut tx, reminder_id, "skipped", Some(&reason)).await?;
        tx.commit().await?;
        job_metrics().email("skipped");
        info!(reminder.id = reminder_id, %reason, "reminder skipped");
        return Ok(Prepared::Finished);
    }

    let email = match build_email(ctx, &row) {
        Ok(email) => email,
        Err(reason) => {
            set_status(&mut tx, reminder_id, "failed", Some(&reason)).await?;
            tx.commit().await?;
            return Err(JobError::permanent(reason));
        }
    };

    sqlx::query(
        r#"
        UPDATE reminders
        SET status = 'sending', message_id = $2, sending_at = now(), updated_at = now()
        WHERE id = $1
        "#,
    )
    .bind(reminder_id)
    .bind(&email.message_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Prepared::Send(Box::new(email)))
}

async fn lock_reminder(
    conn: &mut PgConnection,
    reminder_id: i64,
) -> Result<Option<ReminderRow>, sqlx::Error> {
    sqlx::query_as::<_, ReminderRow>(
        r#"
        SELECT r.stage, r.status, r.message_id,
               i.id AS invoice_id, i.number AS invoice_number, i.status AS invoice_status, i.amount_due,
               i.amount_paid, i.currency, i.issued_on, i.due_on, i.pay_url, i.reminders_paused AS invoice_paused,
               c.name AS client_name, c.email AS client_email, c.reminders_paused AS client_paused,
               a.id AS account_id, a.name AS account_name, a.sender_name, a.reply_to, a.timezone,
               a.reminders_paused AS account_paused,
               EXISTS (SELECT 1 FROM suppressions s
                       WHERE s.email_key = c.email_key AND (s.expires_at IS NULL OR s.expires_at > now())) AS client_suppressed
        FROM reminders r
        JOIN invoices i ON i.id = r.invoice_id
        JOIN clients c ON c.id = i.client_id
        JOIN accounts a ON a.id = i.account_id
        WHERE r.id = $1
        FOR UPDATE OF r
        "#,
    )
    .bind(reminder_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Returns the reason a reminder must not be sent now, if anything stops it. A skip is final.
fn skip_reason(row: &ReminderRow) -> Option<String> {
    if row.invoice_status != "open" {
        return Some(format!("invoice is {}", row.invoice_status));
    }
    if row.amount_due - row.amount_paid <= 0 {
        return Some("invoice has nothing outstanding".to_owned());
    }
    if row.account_paused {
        return Some("reminders are paused for the account".to_owned());
    }
    if row.client_paused {
        return Some("reminders are paused for the client".to_owned());
    }
    if row.invoice_paused {
        return Some("reminders are paused for the invoice".to_owned());
    }
    if row.client_suppressed {
        return Some(crate::bounces::suppression::SKIP_REASON.to_owned());
    }
    None
}

fn build_email(ctx: &JobContext, row: &ReminderRow) -> Result<OutgoingEmail, String> {
    let stage: Stage = row.stage.parse().map_err(|error| format!("{error}"))?;
    let tz: Tz = row.timezone.parse().map_err(|_| {
        format!(
            "account {} has an invalid time zone {:?}",
            row.account_id, row.timezone
        )
    })?;
    let today = ctx.clock.now().with_timezone(&tz).date_naive();

    let vars = ReminderVars {
        account_name: row.account_name.clone(),
        sender_name: row.sender_name.clone(),
        client_name: row.client_name.clone(),
        invoice_number: row.invoice_number.clone(),
        amount_outstanding_minor: row.amount_due - row.amount_paid,
        currency: row.currency.clone(),
        issued_on: row.issued_on,
        due_on: row.due_on,
        pay_url: row.pay_url.clone(),
        stage,
        today,
    };
    let rendered = ctx
        .templates
        .render(stage, &vars)
        .map_err(|error| format!("rendering the {stage} reminder failed: {error}"))?;

    let message_id = row
        .message_id
        .clone()
        .unwrap_or_else(|| new_message_id(&ctx.mail_from));
    Ok(OutgoingEmail {
        from_address: ctx.mail_from.clone(),
        from_name: row.sender_name.clone(),
        reply_to: row.reply_to.clone(),
        to_name: row.client_name.clone(),
        to_address: row.client_email.clone(),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        message_id,
        metadata: vec![
            ("invoice_id".to_owned(), row.invoice_id.clone()),
            ("account_id".to_owned(), row.account_id.clone()),
            ("stage".to_owned(), stage.as_str().to_owned()),
        ],
    })
}

async fn set_status(
    conn: &mut PgConnection,
    reminder_id: i64,
    status: &str,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        UPDATE reminders
        SET status = $2, reason = $3, updated_at = now(),
            sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
        WHERE id = $1
        "#,
    )
    .bind(reminder_id)
    .bind(status)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the outcome of a send. A failure here after a successful send is logged at error level:
/// the row stays `sending`, so a retry records `uncertain` and does not send again.
async fn record(
    ctx: &JobContext,
    reminder_id: i64,
    status: &str,
    reason: Option<&str>,
) -> Result<(), JobError> {
    let mut conn = ctx.pool.acquire().await.inspect_err(|error| {
        tracing::error!(reminder.id = reminder_id, %status, %error, "failed to record the reminder outcome");
    })?;
    set_status(&mut conn, reminder_id, status, reason).await.inspect_err(|error| {
        tracing::error!(reminder.id = reminder_id, %status, %error, "failed to record the reminder outcome");
    })?;
    Ok(())
}
