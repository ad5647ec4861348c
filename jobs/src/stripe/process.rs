//! Processing of a stored Stripe event: find its invoice, turn the event into a payment effect,
//! and apply it through the state machine, once.
//!
//! Unknown event types are recorded as ignored and events for objects the platform does not know
//! as unmatched; neither is retried. Database failures are retried by the job engine.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;
use tracing::info;

use super::state::{PaymentEffect, PaymentState, apply, leaves_open};
use crate::context::JobContext;
use crate::domain::InvoiceStatus;
use crate::outcome::JobError;

/// Payload of a `stripe.event` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub event_id: String,
}

/// The change an event makes to its invoice, before amounts are totalled.
pub(crate) enum EventEffect {
    /// A payment object (payment intent or checkout session) received `amount` in total.
    Payment {
        object_id: String,
        amount: i64,
    },
    /// A Stripe invoice has `amount` paid in total.
    StripeInvoicePaid {
        object_id: String,
        amount: i64,
    },
    /// A charge has `amount` refunded in total.
    Refund {
        object_id: String,
        amount: i64,
    },
    Effect(PaymentEffect),
}

/// Applies one stored event. Returns `Ok` once the event has a final status.
pub async fn process_event(ctx: &JobContext, event_id: &str) -> Result<(), JobError> {
    let mut tx = ctx.pool.begin().await?;
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT type, status, raw_body FROM stripe_events WHERE id = $1 FOR UPDATE")
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((event_type, status, raw_body)) = row else {
        return Err(JobError::permanent(format!(
            "Stripe event {event_id} is not stored"
        )));
    };
    if status != "received" {
        return Ok(());
    }
    let event: Value = serde_json::from_str(&raw_body).map_err(|error| {
        JobError::permanent(format!(
            "stored Stripe event {event_id} is not JSON: {error}"
        ))
    })?;
    let object = &event["data"]["object"];

    let Some(effect) = event_effect(&event_type, object) else {
        finish(
            &mut tx,
            event_id,
            "ignored",
            &format!("event type {event_type} is not handled"),
            None,
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    };
    let Some(invoice_id) = find_invoice(&mut tx, object).await? else {
        finish(
            &mut tx,
            event_id,
            "unmatched",
            "no invoice of this platform matches the event's objects",
            None,
        )
        .await?;
        tx.commit().await?;
        info!(stripe.event = event_id, %event_type, "Stripe event matches no invoice");
        return Ok(());
    };
    // Lock the invoice before anything refers to it. Inserting a link takes a key-share lock on
    // the invoice row, and two events that both held one and then asked for the update lock in
    // `apply_effect` deadlocked.
    sqlx::query("SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE")
        .bind(&invoice_id)
        .execute(&mut *tx)
        .await?;
    if let Some(mismatch) = currency_mismatch(&mut tx, &invoice_id, object).await? {
        finish(&mut tx, event_id, "unmatched", &mismatch, Some(&invoice_id)).await?;
        tx.commit().await?;
        tracing::warn!(stripe.event = event_id, invoice.id = %invoice_id, %mismatch, "Stripe event not applied");
        return Ok(());
    }
    remember_links(&mut tx, &invoice_id, object).await?;

    let note = apply_effect(&mut tx, &invoice_id, event_id, &event_type, effect).await?;
    finish(&mut tx, event_id, "processed", &note, Some(&invoice_id)).await?;
    tx.commit().await?;
    info!(stripe.event = event_id, %event_type, invoice.id = %invoice_id, %note, "Stripe event applied");
    Ok(())
}

/// Turns an event into an effect, or `None` for a type this platform does not handle.
fn event_effect(event_type: &str, object: &Value) -> Option<EventEffect> {
    let id = object["id"].as_str().unwrap_or_default().to_owned();
    let amount = |field: &str| object[field].as_i64().unwrap_or(0).max(0);
    let effect = match event_type {
        "payment_intent.succeeded" => EventEffect::Payment {
            object_id: id,
            amount: amount("amount_received"),
        },
        "invoice.paid" | "invoice.payment_succeeded" => EventEffect::StripeInvoicePaid {
            object_id: id,
            amount: amount("amount_paid"),
        },
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            match object["payment_status"].as_str() {
                Some("paid") => {
                    // The session's payment intent is the payment; keying by it lets a later
                    // payment_intent.succeeded for the same money replace, not add to, this amount.
                    let object_id = object["payment_intent"].as_str().map_or(id, str::to_owned);
                    EventEffect::Payment {
                        object_id,
                        amount: amount("amount_total"),
                    }
                }
                Some("unpaid") => EventEffect::Effect(PaymentEffect::Pending),
                _ => return None,
            }
        }
        "payment_intent.payment_failed"
        | "invoice.payment_failed"
        | "checkout.session.async_payment_failed" => EventEffect::Effect(PaymentEffect::Failed),
        "charge.refunded" => EventEffect::Refund {
            object_id: id,
            amount: amount("amount_refunded"),
        },
        "charge.dispute.created" => EventEffect::Effect(PaymentEffect::DisputeOpened),
        "charge.dispute.closed" => match object["status"].as_str() {
            Some("won") => EventEffect::Effect(PaymentEffect::DisputeClosed { won: true }),
            Some("lost") => EventEffect::Effect(PaymentEffect::DisputeClosed { won: false }),
            _ => return None,
        },
        _ => return None,
    };
    Some(effect)
}

/// Finds the invoice through `metadata.invoice_id`, `client_reference_id`, the Stripe ids stored on
/// invoices, or links learnt from earlier events (charges and disputes carry no metadata).
async fn find_invoice(
    conn: &mut PgConnection,
    object: &Value,
) -> Result<Option<String>, sqlx::Error> {
    for candidate in [
        &object["metadata"]["invoice_id"],
        &object["client_reference_id"],
    ] {
        if let Some(id) = candidate.as_str() {
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM invoices WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    let object_ids = related_ids(object);
    let found: Option<String> = sqlx::query_scalar(
        r#"
        SELECT invoice_id FROM stripe_object_links WHERE object_id = ANY($1)
        UNION ALL
        SELECT id FROM invoices
        WHERE stripe_payment_intent_id = ANY($1) OR stripe_invoice_id = ANY($1) OR stripe_checkout_session_id = ANY($1)
        LIMIT 1
        "#,
    )
    .bind(&object_ids)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found)
}

/// Collects the object's own id and the ids of the objects it points to.
fn related_ids(object: &Value) -> Vec<String> {
    ["id", "payment_intent", "charge", "latest_charge", "invoice"]
        .iter()
        .filter_map(|field| object[*field].as_str())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn remember_links(
    conn: &mut PgConnection,
    invoice_id: &str,
    object: &Value,
) -> Result<(), sqlx::Error> {
    for object_id in related_ids(object) {
        sqlx::query("INSERT INTO stripe_object_links (object_id, invoice_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&object_id)
            .bind(invoice_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records amounts, applies the effect to the locked invoice, and skips its pending reminders when
/// it leaves `open`. Returns the note for the event record.
pub(crate) async fn apply_effect(
    conn: &mut PgConnection,
    invoice_id: &str,
    event_id: &str,
    event_type: &str,
    effect: EventEffect,
) -> Result<String, JobError> {
    // Lock the invoice first: events of one invoice then apply one after another, and each reads
    // the amounts the earlier ones recorded when it totals them.
    let (status, amount_due, amount_paid, amount_refunded, confirmed): (String, i64, i64, i64, bool) = sqlx::query_as(
        "SELECT status, amount_due, amount_paid, amount_refunded, status_confirmed_by_stripe FROM invoices WHERE id = $1 FOR UPDATE",
    )
    .bind(invoice_id)
    .fetch_one(&mut *conn)
    .await?;

    let effect = match effect {
        EventEffect::Payment { object_id, amount } => {
            if record_amount(conn, invoice_id, &object_id, "payment", amount).await? {
                crate::metrics::job_metrics().payment_applied();
            }
            PaymentEffect::Paid {
                total_paid: total_paid(conn, invoice_id).await?,
            }
        }
        EventEffect::StripeInvoicePaid { object_id, amount } => {
            if record_amount(conn, invoice_id, &object_id, "stripe_invoice", amount).await? {
                crate::metrics::job_metrics().payment_applied();
            }
            PaymentEffect::Paid {
                total_paid: total_paid(conn, invoice_id).await?,
            }
        }
        EventEffect::Refund { object_id, amount } => {
            record_amount(conn, invoice_id, &object_id, "refund", amount).await?;
            let total_refunded: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(amount), 0)::bigint FROM invoice_stripe_amounts WHERE invoice_id = $1 AND kind = 'refund'",
            )
            .bind(invoice_id)
            .fetch_one(&mut *conn)
            .await?;
            PaymentEffect::Refunded { total_refunded }
        }
        EventEffect::Effect(effect) => effect,
    };

    let status: InvoiceStatus = status
        .parse()
        .map_err(|error: crate::domain::FieldError| JobError::permanent(error.to_string()))?;
    let before = PaymentState {
        status,
        amount_due,
        amount_paid,
        amount_refunded,
        confirmed_by_stripe: confirmed,
    };
    let transition = apply(&before, &effect);
    let after = transition.state;

    if transition.changed {
        sqlx::query(
            r#"
            UPDATE invoices
            SET status = $2, amount_paid = $3, amount_refunded = $4, status_confirmed_by_stripe = $5, updated_at = now()
            WHERE id = $1
            "#,
        )
        .bind(invoice_id)
        .bind(after.status.as_str())
        .bind(after.amount_paid)
        .bind(after.amount_refunded)
        .bind(after.confirmed_by_stripe)
        .execute(&mut *conn)
        .await?;
    }
    if leaves_open(&before, &after) {
        let reason = format!("invoice is {}", after.status);
        crate::reminders::store::skip_pending(conn, invoice_id, &reason).await?;
    }

    sqlx::query(
        r#"
        INSERT INTO invoice_payment_events (invoice_id, stripe_event_id, type, status_before, status_after, note)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(invoice_id)
    .bind(event_id)
    .bind(event_type)
    .bind(before.status.as_str())
    .bind(after.status.as_str())
    .bind(&transition.note)
    .execute(&mut *conn)
    .await?;
    Ok(transition.note)
}

/// Records the cumulative amount of one Stripe object and returns whether it grew.
async fn record_amount(
    conn: &mut PgConnection,
    invoice_id: &str,
    object_id: &str,
    kind: &str,
    amount: i64,
) -> Result<bool, sqlx::Error> {
    // Amounts are cumulative per object, so the larger one is the later state. A replay or an
    // older event changes no row.
    let changed = sqlx::query(
        r#"
        INSERT INTO invoice_stripe_amounts (invoice_id, object_id, kind, amount) VALUES ($1, $2, $3, $4)
        ON CONFLICT (invoice_id, object_id, kind) DO UPDATE
            SET amount = EXCLUDED.amount, updated_at = now()
            WHERE invoice_stripe_amounts.amount < EXCLUDED.amount
        "#,
    )
    .bind(invoice_id)
    .bind(object_id)
    .bind(kind)
    .bind(amount)
    .execute(&mut *conn)
    .await?;
    Ok(changed.rows_affected() > 0)
}

/// Total paid: the sum over payments, or over Stripe invoices when that sum is larger. A Stripe
/// invoice's amount already includes its payment intents, so the two are not added together.
async fn total_paid(conn: &mut PgConnection, invoice_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        SELECT greatest(
            coalesce(sum(amount) FILTER (WHERE kind = 'payment'), 0),
            coalesce(sum(amount) FILTER (WHERE kind = 'stripe_invoice'), 0))::bigint
        FROM invoice_stripe_amounts
        WHERE invoice_id = $1
        "#,
    )
    .bind(invoice_id)
    .fetch_one(&mut *conn)
    .await
}

async fn finish(
    conn: &mut PgConnection,
    event_id: &str,
    status: &str,
    reason: &str,
    invoice_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE stripe_events SET status = $2, reason = $3, invoice_id = $4, processed_at = now() WHERE id = $1")
        .bind(event_id)
        .bind(status)
        .bind(reason)
        .bind(invoice_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Compares the event's currency with the invoice's and returns the reason when they differ: a
/// payment in another currency is not applied, because its amounts are in other units.
async fn currency_mismatch(
    conn: &mut PgConnection,
    invoice_id: &str,
    object: &Value,
) -> Result<Option<String>, sqlx::Error> {
    let Some(currency) = object["currency"].as_str() else {
        return Ok(None);
    };
    let invoice_currency: String =
        sqlx::query_scalar("SELECT currency FROM invoices WHERE id = $1")
            .bind(invoice_id)
            .fetch_one(&mut *conn)
            .await?;
    if currency.eq_ignore_ascii_case(&invoice_currency) {
        return Ok(None);
    }
    Ok(Some(format!(
        "the event's currency {currency} differs from the invoice's {invoice_currency}"
    )))
}
