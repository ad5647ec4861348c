//! SES notifications delivered by SNS: intake of verified messages and the processing job that
//! applies the suppression policy to each recipient.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::address::extract_addr_spec;
use super::policy::{BounceAction, classify_ses};
use super::postmark::{apply_action, enqueue_processing};
use crate::context::JobContext;
use crate::domain::DomainError;
use crate::outcome::JobError;

/// Stores a verified SNS message under its MessageId. With `enqueue`, its processing is enqueued
/// in the same transaction; otherwise it is stored with `status` (`processed` or `ignored`) and
/// `reason`. Returns false for a MessageId seen before.
pub async fn store_ses(
    pool: &PgPool,
    message_id: &str,
    record_type: &str,
    raw_body: &str,
    outcome: Option<(&str, &str)>,
) -> Result<bool, DomainError> {
    let (status, reason) = outcome.unwrap_or(("received", ""));
    let mut tx = pool.begin().await?;
    let event_id: Option<i64> = sqlx::query_scalar(
        r#"
        INSERT INTO email_events (provider, provider_event_id, record_type, raw_body, status, reason,
                                  processed_at)
        VALUES ('ses', $1, $2, $3, $4, nullif($5, ''), CASE WHEN $4 = 'received' THEN NULL ELSE now() END)
        ON CONFLICT ON CONSTRAINT email_events_provider_event_key DO NOTHING
        RETURNING id
        "#,
    )
    .bind(message_id)
    .bind(record_type)
    .bind(raw_body)
    .bind(status)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(event_id) = event_id else {
        return Ok(false);
    };
    if outcome.is_none() {
        enqueue_processing(&mut tx, event_id).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Applies a stored SES notification to each of its recipients.
pub async fn process_ses(
    ctx: &JobContext,
    event_id: i64,
    notification: &Value,
) -> Result<(), JobError> {
    let notification_type = notification["notificationType"]
        .as_str()
        .or(notification["eventType"].as_str())
        .unwrap_or_default();
    let (recipients, bounce_type, bounce_sub_type, feedback, occurred_at) = match notification_type
    {
        "Bounce" => (
            addresses(&notification["bounce"]["bouncedRecipients"]),
            notification["bounce"]["bounceType"].as_str(),
            notification["bounce"]["bounceSubType"].as_str(),
            None,
            timestamp(&notification["bounce"]["timestamp"]),
        ),
        "Complaint" => (
            addresses(&notification["complaint"]["complainedRecipients"]),
            None,
            None,
            notification["complaint"]["complaintFeedbackType"].as_str(),
            timestamp(&notification["complaint"]["timestamp"]),
        ),
        _ => (Vec::new(), None, None, None, Utc::now()),
    };
    let action = classify_ses(notification_type, bounce_type, bounce_sub_type, feedback);
    let (account_id, invoice_id) = reminder_link(ctx, notification).await?;

    let mut notes = Vec::new();
    for recipient in &recipients {
        let note = apply_action(
            ctx,
            event_id,
            recipient,
            action,
            None,
            account_id.as_deref(),
            occurred_at,
        )
        .await?;
        notes.push(format!("{recipient}: {note}"));
    }
    if recipients.is_empty() || action == BounceAction::Record {
        notes.push(format!("{notification_type} recorded only"));
    }

    sqlx::query(
        "UPDATE email_events SET status = 'processed', reason = $2, account_id = $3, invoice_id = $4, processed_at = now() WHERE id = $1",
    )
    .bind(event_id)
    .bind(notes.join("; "))
    .bind(account_id)
    .bind(invoice_id)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

fn addresses(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|recipients| {
            recipients
                .iter()
                .filter_map(|recipient| recipient["emailAddress"].as_str())
                .filter_map(extract_addr_spec)
                .collect()
        })
        .unwrap_or_default()
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or_else(Utc::now, |at| at.with_timezone(&Utc))
}

/// Finds the reminder through our own Message-ID, which SES returns among the original headers
/// when header inclusion is on.
async fn reminder_link(
    ctx: &JobContext,
    notification: &Value,
) -> Result<(Option<String>, Option<String>), JobError> {
    let from_headers = notification["mail"]["headers"]
        .as_array()
        .and_then(|headers| {
            headers
                .iter()
                .find(|header| {
                    header["name"]
                        .as_str()
                        .is_some_and(|name| name.eq_ignore_ascii_case("Message-ID"))
                })
                .and_then(|header| header["value"].as_str())
        });
    let Some(message_id) =
        from_headers.or(notification["mail"]["commonHeaders"]["messageId"].as_str())
    else {
        return Ok((None, None));
    };
    let link: Option<(String, String)> = sqlx::query_as(
        "SELECT i.account_id, i.id FROM reminders r JOIN invoices i ON i.id = r.invoice_id WHERE r.message_id = $1",
    )
    .bind(message_id.trim())
    .fetch_optional(&ctx.pool)
    .await?;
    Ok(link.map_or((None, None), |(account, invoice)| {
        (Some(account), Some(invoice))
    }))
}
