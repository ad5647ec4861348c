//! Runs a job by its kind.

use duespark_queue::JobMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::JobContext;
use crate::kinds;
use crate::outcome::JobError;
use crate::reminders;

/// Runs one attempt of a job. An unknown kind or a payload that does not decode is a permanent
/// error: retrying cannot fix it.
pub async fn run_job(ctx: &JobContext, job: &JobMeta, payload: &Value) -> Result<(), JobError> {
    match job.kind.as_str() {
        kinds::SEND_REMINDER => {
            let payload: reminders::deliver::SendReminder = decode(job, payload)?;
            reminders::deliver::send_reminder(ctx, payload.reminder_id, job).await
        }
        kinds::SCHEDULE_REMINDERS => {
            reminders::scheduler::run_scheduler(ctx).await?;
            Ok(())
        }
        kinds::PROCESS_STRIPE_EVENT => {
            let payload: crate::stripe::process::ProcessEvent = decode(job, payload)?;
            crate::stripe::process::process_event(ctx, &payload.event_id).await
        }
        kinds::SYNC_PAYMENT => {
            let payload: crate::stripe::sync::SyncPayment = decode(job, payload)?;
            crate::stripe::sync::sync_invoice(ctx, &payload.invoice_id, job).await
        }
        kinds::SWEEP_PAYMENTS => crate::stripe::sync::sweep(ctx).await.map(|_| ()),
        kinds::RECONCILE_STRIPE_EVENTS => {
            crate::stripe::reconcile::reconcile(ctx).await.map(|_| ())
        }
        kinds::PROCESS_BOUNCE => {
            let payload: crate::bounces::postmark::ProcessBounce = decode(job, payload)?;
            crate::bounces::postmark::process_email_event(ctx, payload.email_event_id).await
        }
        kinds::BACKUP_DATABASE => crate::backups::job::run_backup(ctx).await,
        kinds::VERIFY_BACKUPS => crate::backups::job::run_verify(ctx).await,
        kinds::NOOP => run_noop(job, payload).await,
        other => Err(JobError::permanent(format!("unknown job kind {other:?}"))),
    }
}

fn decode<T: DeserializeOwned>(job: &JobMeta, payload: &Value) -> Result<T, JobError> {
    T::deserialize(payload).map_err(|error| {
        JobError::permanent(format!(
            "invalid payload for job kind {}: {error}",
            job.kind
        ))
    })
}

/// Payload of the `noop` kind: nothing, or a time to sleep for tests and benchmarks.
#[derive(Debug, Default, serde::Deserialize)]
struct Noop {
    /// Milliseconds to sleep, at most a minute.
    #[serde(default)]
    sleep_ms: u64,
}

async fn run_noop(job: &JobMeta, payload: &Value) -> Result<(), JobError> {
    let noop: Noop = if payload.is_null() {
        Noop::default()
    } else {
        decode(job, payload)?
    };
    if noop.sleep_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(noop.sleep_ms.min(60_000))).await;
    }
    Ok(())
}

/// Checks that a payload decodes for its kind, so the API can reject it before it is enqueued
/// rather than let the job die later.
pub fn check_payload(kind: &str, payload: &Value) -> Result<(), String> {
    fn check<T: DeserializeOwned>(payload: &Value) -> Result<(), String> {
        T::deserialize(payload)
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
    match kind {
        kinds::SEND_REMINDER => check::<reminders::deliver::SendReminder>(payload),
        kinds::PROCESS_STRIPE_EVENT => check::<crate::stripe::process::ProcessEvent>(payload),
        kinds::SYNC_PAYMENT => check::<crate::stripe::sync::SyncPayment>(payload),
        kinds::PROCESS_BOUNCE => check::<crate::bounces::postmark::ProcessBounce>(payload),
        kinds::NOOP if !payload.is_null() => check::<Noop>(payload),
        _ => Ok(()),
    }
}
