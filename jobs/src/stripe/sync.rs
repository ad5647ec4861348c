//! Payment sync: reads an invoice's payment objects from the Stripe API and applies their current
//! state through the same state machine as webhook events, so a missed or delayed event is caught
//! up. The sweep enqueues syncs of open invoices that have Stripe ids, stalest first.

use duespark_queue::{JobId, JobMeta, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::process::{EventEffect, apply_effect};
use super::state::PaymentEffect;
use crate::context::JobContext;
use crate::domain::DomainError;
use crate::kinds;
use crate::outcome::JobError;

/// Payload of a `stripe.sync` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncPayment {
    pub invoice_id: String,
}

/// Invoices one sweep enqueues at most.
const SWEEP_BATCH: i64 = 500;

/// Syncs one invoice. A missing API key or invoice fails permanently; Stripe's errors are
/// classified by the client.
pub async fn sync_invoice(
    ctx: &JobContext,
    invoice_id: &str,
    job: &JobMeta,
) -> Result<(), JobError> {
    let ids: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT stripe_payment_intent_id, stripe_invoice_id, stripe_checkout_session_id FROM invoices WHERE id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some((payment_intent, stripe_invoice, checkout_session)) = ids else {
        return Err(JobError::permanent(format!(
            "invoice {invoice_id:?} does not exist"
        )));
    };

    // Read everything before opening a transaction, so no row lock waits on Stripe.
    let mut effects = Vec::new();
    if let Some(id) = &payment_intent {
        effects.extend(payment_intent_effect(
            &ctx.stripe.get_payment_intent(id).await?,
        ));
    }
    if let Some(id) = &stripe_invoice {
        effects.extend(stripe_invoice_effect(&ctx.stripe.get_invoice(id).await?));
    }
    if let Some(id) = &checkout_session {
        effects.extend(checkout_session_effect(
            &ctx.stripe.get_checkout_session(id).await?,
        ));
    }

    let mut tx = ctx.pool.begin().await?;
    let mut notes = Vec::new();
    for (index, effect) in effects.into_iter().enumerate() {
        let record_id = format!("sync:{}:{index}", job.id);
        notes.push(apply_effect(&mut tx, invoice_id, &record_id, "payment_sync", effect).await?);
    }
    sqlx::query("UPDATE invoices SET stripe_synced_at = now() WHERE id = $1")
        .bind(invoice_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    info!(invoice.id = invoice_id, notes = ?notes, "payment sync applied");
    Ok(())
}

/// Turns a payment intent's current state into an effect.
fn payment_intent_effect(object: &Value) -> Option<EventEffect> {
    let id = object["id"].as_str()?.to_owned();
    match object["status"].as_str()? {
        "succeeded" => Some(EventEffect::Payment {
            object_id: id,
            amount: object["amount_received"].as_i64().unwrap_or(0).max(0),
        }),
        "processing" => Some(EventEffect::Effect(PaymentEffect::Pending)),
        "canceled" => Some(EventEffect::Effect(PaymentEffect::Failed)),
        "requires_payment_method" if !object["last_payment_error"].is_null() => {
            Some(EventEffect::Effect(PaymentEffect::Failed))
        }
        _ => None,
    }
}

/// Turns a Stripe invoice's paid amount into an effect; nothing while nothing is paid.
fn stripe_invoice_effect(object: &Value) -> Option<EventEffect> {
    let id = object["id"].as_str()?.to_owned();
    let amount = object["amount_paid"].as_i64().unwrap_or(0).max(0);
    (amount > 0 || object["status"].as_str() == Some("paid")).then_some(
        EventEffect::StripeInvoicePaid {
            object_id: id,
            amount,
        },
    )
}

/// Turns a checkout session's payment into an effect.
fn checkout_session_effect(object: &Value) -> Option<EventEffect> {
    let id = object["id"].as_str()?.to_owned();
    match (object["status"].as_str(), object["payment_status"].as_str()) {
        (_, Some("paid")) => {
            let object_id = object["payment_intent"].as_str().map_or(id, str::to_owned);
            Some(EventEffect::Payment {
                object_id,
                amount: object["amount_total"].as_i64().unwrap_or(0).max(0),
            })
        }
        (Some("complete"), Some("unpaid")) => Some(EventEffect::Effect(PaymentEffect::Pending)),
        (Some("expired"), _) => Some(EventEffect::Effect(PaymentEffect::Failed)),
        _ => None,
    }
}

/// Enqueues a sync of one invoice; 422-worthy problems come back as a field error.
pub async fn request_sync(ctx_pool: &sqlx::PgPool, invoice_id: &str) -> Result<JobId, DomainError> {
    let has_ids: Option<bool> = sqlx::query_scalar(
        r#"
        SELECT stripe_payment_intent_id IS NOT NULL OR stripe_invoice_id IS NOT NULL OR stripe_checkout_session_id IS NOT NULL
        FROM invoices WHERE id = $1
        "#,
    )
    .bind(invoice_id)
    .fetch_optional(ctx_pool)
    .await?;
    match has_ids {
        None => {
            return Err(crate::domain::FieldError::new(
                "invoice_id",
                "unknown_invoice",
                format!("no invoice has id {invoice_id:?}"),
            )
            .into());
        }
        Some(false) => {
            return Err(crate::domain::FieldError::new(
                "invoice_id",
                "no_stripe_ids",
                format!("invoice {invoice_id:?} has no Stripe payment intent, invoice or checkout session id to sync"),
            )
            .into());
        }
        Some(true) => {}
    }
    let spec = kinds::spec(kinds::SYNC_PAYMENT).expect("the sync kind is registered");
    let job = NewJob::new(
        spec.queue,
        spec.name,
        serde_json::json!({ "invoice_id": invoice_id }),
    )
    .max_attempts(spec.max_attempts);
    let mut conn = ctx_pool.acquire().await?;
    Ok(duespark_queue::enqueue_in(&mut conn, job).await?.id)
}

/// Enqueues syncs of open invoices with Stripe ids, stalest first. Returns how many.
pub async fn sweep(ctx: &JobContext) -> Result<usize, JobError> {
    if !ctx.stripe.has_api_key() {
        info!("STRIPE_API_KEY is not set; payment sync sweep skipped");
        return Ok(0);
    }
    let invoice_ids: Vec<String> = sqlx::query_scalar(
        r#"
        SELECT id FROM invoices
        WHERE status IN ('open', 'payment_pending')
          AND (stripe_payment_intent_id IS NOT NULL OR stripe_invoice_id IS NOT NULL OR stripe_checkout_session_id IS NOT NULL)
        ORDER BY stripe_synced_at NULLS FIRST
        LIMIT $1
        "#,
    )
    .bind(SWEEP_BATCH)
    .fetch_all(&ctx.pool)
    .await?;
    let spec = kinds::spec(kinds::SYNC_PAYMENT).expect("the sync kind is registered");
    let jobs: Vec<NewJob> = invoice_ids
        .iter()
        .map(|id| {
            NewJob::new(
                spec.queue,
                spec.name,
                serde_json::json!({ "invoice_id": id }),
            )
            .max_attempts(spec.max_attempts)
        })
        .collect();
    let count = jobs.len();
    ctx.store.enqueue_batch(jobs).await?;
    info!(invoices = count, "payment sync sweep enqueued");
    Ok(count)
}
