//! `POST /webhooks/stripe`: verify the signature on the raw body at receipt, store the event and
//! enqueue its processing in one transaction, then return 200.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use duespark_jobs::stripe::intake::{IntakeOutcome, parse_event_header, store_event};
use duespark_jobs::stripe::signature;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{ApiError, AppState};

/// Largest Stripe event body accepted; some events exceed 100 kB.
pub const MAX_STRIPE_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Seconds a signature's timestamp may differ from this server's clock, either way.
const SIGNATURE_TOLERANCE_SECS: i64 = 300;

pub async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let header = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(error) = signature::verify(
        header,
        &body,
        &state.stripe.webhook_secrets,
        now,
        SIGNATURE_TOLERANCE_SECS,
    ) {
        warn!(%error, "rejected a Stripe webhook with an invalid signature");
        state.counters.webhook("stripe", "invalid_signature");
        return Err(ApiError::BadRequest {
            code: "invalid_signature",
            message: error.to_string(),
        });
    }

    let event = parse_event_header(&body).map_err(|message| {
        state.counters.webhook("stripe", "invalid_event");
        ApiError::BadRequest {
            code: "invalid_event",
            message,
        }
    })?;
    let raw_body = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest {
        code: "invalid_event",
        message: "the body is not UTF-8".to_owned(),
    })?;

    let outcome = store_event(&state.pool, raw_body, &event, state.stripe.livemode).await?;
    match &outcome {
        IntakeOutcome::Stored { job_id } => {
            info!(stripe.event = %event.id, r#type = %event.event_type, job.id = %job_id, "Stripe event stored")
        }
        IntakeOutcome::Duplicate => {
            info!(stripe.event = %event.id, "duplicate Stripe event ignored")
        }
        IntakeOutcome::LivemodeMismatch => {
            warn!(stripe.event = %event.id, livemode = event.livemode, "Stripe event of the other mode stored as ignored")
        }
    }
    let outcome = match outcome {
        IntakeOutcome::Stored { .. } => "stored",
        IntakeOutcome::Duplicate => "duplicate",
        IntakeOutcome::LivemodeMismatch => "livemode_mismatch",
    };
    state.counters.webhook("stripe", outcome);
    Ok(Json(json!({ "received": true, "outcome": outcome })))
}
