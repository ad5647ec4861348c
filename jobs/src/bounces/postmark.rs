//! Postmark bounce and spam-complaint webhooks: intake (store, then enqueue processing) and the
//! processing job that applies the suppression policy.

use chrono::{DateTime, Utc};
use duespark_queue::{NewJob, enqueue_in};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use tracing::{info, warn};

use super::address::normalize;
use super::policy::{
    BounceAction, SOFT_BOUNCE_LIMIT, classify_postmark, soft_bounce_suppression, soft_bounce_window,
};
use super::suppression::{NewSuppression, suppress};
use crate::context::JobContext;
use crate::domain::DomainError;
use crate::kinds;
use crate::outcome::JobError;

/// The all-zero MessageID of Postmark's "Send test" payloads.
const TEST_MESSAGE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Outcome of the intake of a Postmark record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostmarkIntake {
    Stored,
    Duplicate,
    /// A "Send test" payload: acknowledged, nothing changed.
    Test,
    /// A record type other than Bounce and SpamComplaint: acknowledged, nothing changed.
    NotABounce,
    /// Another Postmark server's record.
    ForeignServer,
}

/// Payload of a `bounce.process` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessBounce {
    pub email_event_id: i64,
}

/// Stores a Postmark record and enqueues its processing in one transaction. `server_id` is
/// `POSTMARK_SERVER_ID`, when set. The body must be a JSON object.
pub async fn store_postmark(
    pool: &PgPool,
    raw_body: &str,
    record: &Value,
    server_id: Option<i64>,
) -> Result<PostmarkIntake, DomainError> {
    if record["MessageID"].as_str() == Some(TEST_MESSAGE_ID) {
        return Ok(PostmarkIntake::Test);
    }
    if let (Some(expected), Some(actual)) = (server_id, record["ServerID"].as_i64())
        && expected != actual
    {
        return Ok(PostmarkIntake::ForeignServer);
    }
    let record_type = record["RecordType"].as_str().unwrap_or("Bounce");
    if !matches!(record_type, "Bounce" | "SpamComplaint") {
        return Ok(PostmarkIntake::NotABounce);
    }
    let Some(id) = record["ID"]
        .as_i64()
        .map(|id| id.to_string())
        .or_else(|| record["ID"].as_str().map(str::to_owned))
    else {
        return Err(crate::domain::FieldError::new(
            "ID",
            "required",
            "a Postmark record needs its ID",
        )
        .into());
    };

    let mut tx = pool.begin().await?;
    let event_id: Option<i64> = sqlx::query_scalar(
        r#"
        INSERT INTO email_events (provider, provider_event_id, record_type, raw_body)
        VALUES ('postmark', $1, $2, $3)
        ON CONFLICT ON CONSTRAINT email_events_provider_event_key DO NOTHING
        RETURNING id
        "#,
    )
    .bind(&id)
    .bind(record_type)
    .bind(raw_body)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(event_id) = event_id else {
        return Ok(PostmarkIntake::Duplicate);
    };
    enqueue_processing(&mut tx, event_id).await?;
    tx.commit().await?;
    Ok(PostmarkIntake::Stored)
}

/// Enqueues the processing of a stored email event.
pub async fn enqueue_processing(
    conn: &mut sqlx::PgConnection,
    event_id: i64,
) -> Result<(), DomainError> {
    let spec = kinds::spec(kinds::PROCESS_BOUNCE).expect("the bounce kind is registered");
    let job = NewJob::new(
        spec.queue,
        spec.name,
        serde_json::json!({ "email_event_id": event_id }),
    )
    .max_attempts(spec.max_attempts)
    .idempotency_key(format!("email-event:{event_id}"));
    enqueue_in(conn, job).await?;
    Ok(())
}

/// Applies a stored Postmark record. Returns `Ok` once the event has a final status.
pub async fn process_postmark(
    ctx: &JobContext,
    event_id: i64,
    record: &Value,
) -> Result<(), JobError> {
    let record_type = record["RecordType"].as_str().unwrap_or("Bounce");
    let bounce_type = record["Type"].as_str().unwrap_or_default();
    let inactive = record["Inactive"].as_bool().unwrap_or(false);
    let can_activate = record["CanActivate"].as_bool().unwrap_or(true);
    let account_id = record["Metadata"]["account_id"].as_str();
    let invoice_id = record["Metadata"]["invoice_id"].as_str();
    let email = record["Email"].as_str().unwrap_or_default();
    let occurred_at = record["BouncedAt"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or_else(Utc::now, |at| at.with_timezone(&Utc));

    let action = classify_postmark(record_type, bounce_type, inactive, can_activate);
    let detail = record["Details"]
        .as_str()
        .or(record["Description"].as_str());
    let note = apply_action(
        ctx,
        event_id,
        email,
        action,
        detail,
        account_id,
        occurred_at,
    )
    .await?;

    sqlx::query(
        "UPDATE email_events SET status = 'processed', reason = $2, account_id = $3, invoice_id = $4, processed_at = now() WHERE id = $1",
    )
    .bind(event_id)
    .bind(format!("{bounce_type}: {note}"))
    .bind(account_id)
    .bind(invoice_id)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

/// Applies one classified notification to one address; returns a note for the event record.
pub async fn apply_action(
    ctx: &JobContext,
    event_id: i64,
    email: &str,
    action: BounceAction,
    detail: Option<&str>,
    account_id: Option<&str>,
    occurred_at: DateTime<Utc>,
) -> Result<String, JobError> {
    if action == BounceAction::Record {
        return Ok("recorded only".to_owned());
    }
    let email_key = match normalize(email) {
        Ok(key) => key,
        Err(error) => {
            warn!(email_event.id = event_id, %error, "bounce for an address that does not parse; recorded only");
            return Ok(format!("recorded only: {error}"));
        }
    };

    let mut tx = ctx.pool.begin().await?;
    let note = match action {
        BounceAction::Suppress {
            reason,
            can_reactivate,
        } => {
            let new = NewSuppression {
                email_key: &email_key,
                email,
                reason,
                detail,
                can_reactivate,
                account_id,
                expires_at: None,
            };
            let skipped = suppress(&mut tx, new).await?;
            format!("suppressed ({reason}); {skipped} pending reminders skipped")
        }
        BounceAction::Soft => {
            sqlx::query("INSERT INTO soft_bounces (email_key, email_event_id, occurred_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&email_key)
                .bind(event_id)
                .bind(occurred_at)
                .execute(&mut *tx)
                .await?;
            let recent: i64 = sqlx::query_scalar("SELECT count(*) FROM soft_bounces WHERE email_key = $1 AND occurred_at > now() - $2::interval")
                .bind(&email_key)
                .bind(format!("{} days", soft_bounce_window().num_days()))
                .fetch_one(&mut *tx)
                .await?;
            if recent >= SOFT_BOUNCE_LIMIT {
                let until = Utc::now() + soft_bounce_suppression();
                let new = NewSuppression {
                    email_key: &email_key,
                    email,
                    reason: "soft_bounces",
                    detail,
                    can_reactivate: true,
                    account_id,
                    expires_at: Some(until),
                };
                let skipped = suppress(&mut tx, new).await?;
                format!(
                    "{recent} soft bounces in 7 days: suppressed until {until}; {skipped} pending reminders skipped"
                )
            } else {
                format!("soft bounce {recent} of {SOFT_BOUNCE_LIMIT} in 7 days")
            }
        }
        BounceAction::Record => unreachable!("handled above"),
    };
    tx.commit().await?;
    info!(email_event.id = event_id, %note, "bounce applied");
    Ok(note)
}

/// Runs a `bounce.process` job: reads the stored event and applies it by provider.
pub async fn process_email_event(ctx: &JobContext, event_id: i64) -> Result<(), JobError> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT provider, status, raw_body FROM email_events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(&ctx.pool)
            .await?;
    let Some((provider, status, raw_body)) = row else {
        return Err(JobError::permanent(format!(
            "email event {event_id} is not stored"
        )));
    };
    if status != "received" {
        return Ok(());
    }
    let record: Value = serde_json::from_str(&raw_body).map_err(|error| {
        JobError::permanent(format!(
            "stored email event {event_id} is not JSON: {error}"
        ))
    })?;
    match provider.as_str() {
        "postmark" => process_postmark(ctx, event_id, &record).await,
        "ses" => super::ses::process_ses(ctx, event_id, &record).await,
        other => Err(JobError::permanent(format!(
            "email events of provider {other} are not processed yet"
        ))),
    }
}
