//! `PUT /v1/invoices/{id}` and `GET /v1/invoices/{id}` (the invoice with its reminders).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use duespark_jobs::domain::{self, InvoiceInput};
use duespark_jobs::reminders::store::list_for_invoice;
use serde_json::{Value, json};

use super::accounts::upsert_status;
use crate::auth::Scope;
use crate::extract::{Auth, ValidJson};
use crate::{ApiError, AppState};

pub async fn put_invoice(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    ValidJson(input): ValidJson<InvoiceInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    claims.require(Scope::JobsWrite)?;
    let (invoice, upserted) = domain::upsert_invoice(&state.pool, &id, &input).await?;
    Ok((upsert_status(upserted), Json(json!(invoice))))
}

pub async fn get_invoice(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !claims.has_scope(Scope::JobsWrite) {
        claims.require(Scope::JobsRead)?;
    }
    let invoice = domain::get_invoice(&state.pool, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("invoice {id:?} not found")))?;
    let reminders = list_for_invoice(&state.pool, &id).await?;

    let payment_events: Vec<(
        String,
        String,
        String,
        String,
        String,
        chrono::DateTime<chrono::Utc>,
    )> = sqlx::query_as(
        r#"
        SELECT stripe_event_id, type, status_before, status_after, note, applied_at
        FROM invoice_payment_events WHERE invoice_id = $1 ORDER BY applied_at, stripe_event_id
        "#,
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let payment_events: Vec<Value> = payment_events
        .into_iter()
        .map(|(event_id, event_type, before, after, note, applied_at)| {
            json!({ "stripe_event_id": event_id, "type": event_type, "status_before": before, "status_after": after, "note": note, "applied_at": applied_at })
        })
        .collect();

    let mut body = json!(invoice);
    body["reminders"] = json!(reminders);
    body["payment_events"] = json!(payment_events);
    Ok(Json(body))
}
