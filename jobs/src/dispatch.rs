//! Runs a job by its kind.

use duespark_queue::JobEnvelope;
use serde::de::DeserializeOwned;

use crate::context::{Attempt, JobContext};
use crate::kinds;
use crate::outcome::JobError;
use crate::reminders;

/// Runs one attempt of a job. An unknown kind or a payload that does not decode is a permanent
/// error: retrying cannot fix it.
pub async fn run_job(
    ctx: &JobContext,
    job: &JobEnvelope,
    attempt: Attempt,
) -> Result<(), JobError> {
    match job.kind.as_str() {
        kinds::SEND_REMINDER => {
            let payload: reminders::deliver::SendReminder = decode(job)?;
            reminders::deliver::send_reminder(ctx, payload.reminder_id, attempt).await
        }
        kinds::SCHEDULE_REMINDERS => {
            reminders::scheduler::run_scheduler(ctx).await?;
            Ok(())
        }
        kinds::NOOP => Ok(()),
        other => Err(JobError::permanent(format!("unknown job kind {other:?}"))),
    }
}

fn decode<T: DeserializeOwned>(job: &JobEnvelope) -> Result<T, JobError> {
    serde_json::from_value(job.payload.clone()).map_err(|error| {
        JobError::permanent(format!(
            "invalid payload for job kind {}: {error}",
            job.kind
        ))
    })
}
