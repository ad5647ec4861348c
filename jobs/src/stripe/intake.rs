//! Webhook intake: a verified event is stored and its processing job enqueued in one transaction,
//! before Stripe gets its 2xx. A duplicate event id stores and enqueues nothing.

use chrono::{DateTime, Utc};
use duespark_queue::{JobId, NewJob, enqueue_in};
use serde_json::Value;
use sqlx::PgPool;

use crate::domain::DomainError;
use crate::kinds;

/// The top-level fields of an event that intake needs; everything else stays in the raw body.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHeader {
    pub id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub created: DateTime<Utc>,
}

/// Reads the event's top-level fields tolerantly: unknown fields and types never fail it.
pub fn parse_event_header(body: &[u8]) -> Result<EventHeader, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let id = value["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or("the event has no id")?;
    if value["object"].as_str() != Some("event") {
        return Err(format!(
            "object is {}, not an event snapshot",
            value["object"]
        ));
    }
    let event_type = value["type"].as_str().ok_or("the event has no type")?;
    let livemode = value["livemode"]
        .as_bool()
        .ok_or("the event has no livemode")?;
    let created = value["created"]
        .as_i64()
        .and_then(|created| DateTime::from_timestamp(created, 0))
        .ok_or("the event has no valid created time")?;
    Ok(EventHeader {
        id: id.to_owned(),
        event_type: event_type.to_owned(),
        livemode,
        api_version: value["api_version"].as_str().map(str::to_owned),
        created,
    })
}

/// Outcome of the intake of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored and its processing enqueued.
    Stored { job_id: JobId },
    /// Seen before; nothing stored or enqueued.
    Duplicate,
    /// Stored as ignored: the event's livemode differs from this deployment's.
    LivemodeMismatch,
}

/// Stores a verified event and enqueues its processing in one transaction.
pub async fn store_event(
    pool: &PgPool,
    raw_body: &str,
    event: &EventHeader,
    expected_livemode: bool,
) -> Result<IntakeOutcome, DomainError> {
    let mismatch = event.livemode != expected_livemode;
    let (status, reason) = if mismatch {
        let reason = format!(
            "livemode is {} but this deployment expects {}",
            event.livemode, expected_livemode
        );
        ("livemode_mismatch", Some(reason))
    } else {
        ("received", None)
    };

    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        r#"
        INSERT INTO stripe_events (id, type, livemode, api_version, created_at, raw_body, status, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (id) DO NOTHING
        "#,
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.livemode)
    .bind(&event.api_version)
    .bind(event.created)
    .bind(raw_body)
    .bind(status)
    .bind(&reason)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(IntakeOutcome::Duplicate);
    }
    if mismatch {
        tx.commit().await?;
        return Ok(IntakeOutcome::LivemodeMismatch);
    }

    let spec =
        kinds::spec(kinds::PROCESS_STRIPE_EVENT).expect("the Stripe event kind is registered");
    let job = NewJob::new(
        spec.queue,
        spec.name,
        serde_json::json!({ "event_id": event.id }),
    )
    .max_attempts(spec.max_attempts)
    .idempotency_key(format!("stripe-event:{}", event.id));
    let enqueued = enqueue_in(&mut tx, job).await?;
    tx.commit().await?;
    Ok(IntakeOutcome::Stored {
        job_id: enqueued.id,
    })
}
