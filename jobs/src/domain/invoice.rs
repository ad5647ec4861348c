//! Invoices: what a client owes, and the status that decides whether it is reminded.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::validate::{FieldError, validate_id, validate_required, validate_url};
use super::{DomainError, Upserted, require_account};
use crate::email::money::currency_exponent;

/// An invoice's status. Only `open` invoices are reminded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    /// A delayed payment method (a bank debit, say) is on its way.
    PaymentPending,
    Paid,
    Void,
    Refunded,
    Disputed,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 6] = [
        InvoiceStatus::Open,
        InvoiceStatus::PaymentPending,
        InvoiceStatus::Paid,
        InvoiceStatus::Void,
        InvoiceStatus::Refunded,
        InvoiceStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::PaymentPending => "payment_pending",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Refunded => "refunded",
            InvoiceStatus::Disputed => "disputed",
        }
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InvoiceStatus {
    type Err = FieldError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        InvoiceStatus::ALL.into_iter().find(|status| status.as_str() == value).ok_or_else(|| {
            FieldError::new(
                "status",
                "invalid_status",
                format!("{value:?} is not a status: use open, payment_pending, paid, void, refunded or disputed"),
            )
        })
    }
}

/// An invoice as the app pushes it. Dates and the status stay strings here so that a bad value is
/// reported with its field name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceInput {
    pub account_id: String,
    pub client_id: String,
    pub number: String,
    /// In the currency's minor unit.
    pub amount_due: i64,
    pub currency: String,
    pub issued_on: String,
    pub due_on: String,
    pub pay_url: String,
    pub status: Option<String>,
    pub reminders_paused: Option<bool>,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_invoice_id: Option<String>,
    pub stripe_checkout_session_id: Option<String>,
}

/// A stored invoice.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invoice {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub number: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
    pub pay_url: String,
    pub status: String,
    pub reminders_paused: bool,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_invoice_id: Option<String>,
    pub stripe_checkout_session_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct ValidInvoice {
    issued_on: NaiveDate,
    due_on: NaiveDate,
    status: Option<InvoiceStatus>,
}

fn parse_date(field: &str, value: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_date",
                format!("{value:?} is not a valid date in the form YYYY-MM-DD"),
            )
        })
}

impl InvoiceInput {
    fn validate(&self) -> Result<ValidInvoice, FieldError> {
        validate_id("account_id", &self.account_id)?;
        validate_id("client_id", &self.client_id)?;
        validate_required("number", &self.number, 100)?;
        if self.amount_due < 0 {
            return Err(FieldError::new(
                "amount_due",
                "negative_amount",
                "must be zero or more (in minor units)",
            ));
        }
        if self.currency.len() != 3
            || currency_exponent(&self.currency.to_ascii_lowercase()).is_none()
        {
            return Err(FieldError::new(
                "currency",
                "unknown_currency",
                format!(
                    "{:?} is not a known ISO 4217 currency code such as \"usd\"",
                    self.currency
                ),
            ));
        }
        let issued_on = parse_date("issued_on", &self.issued_on)?;
        let due_on = parse_date("due_on", &self.due_on)?;
        if due_on < issued_on {
            return Err(FieldError::new(
                "due_on",
                "due_before_issue",
                format!("{due_on} is before the issue date {issued_on}"),
            ));
        }
        validate_url("pay_url", &self.pay_url)?;
        for (field, value) in [
            ("stripe_payment_intent_id", &self.stripe_payment_intent_id),
            ("stripe_invoice_id", &self.stripe_invoice_id),
            (
                "stripe_checkout_session_id",
                &self.stripe_checkout_session_id,
            ),
        ] {
            if let Some(value) = value {
                validate_required(field, value, 255)?;
            }
        }
        let status = self
            .status
            .as_deref()
            .map(InvoiceStatus::from_str)
            .transpose()?;
        Ok(ValidInvoice {
            issued_on,
            due_on,
            status,
        })
    }
}

/// Creates or updates an invoice. On create an absent status means `open`; on update it leaves the
/// status unchanged. An invoice whose paid, refunded or disputed status Stripe confirmed cannot be
/// moved back to `open` (a conflict).
pub async fn upsert_invoice(
    pool: &PgPool,
    id: &str,
    input: &InvoiceInput,
) -> Result<(Invoice, Upserted), DomainError> {
    validate_id("id", id)?;
    let valid = input.validate()?;

    let mut tx = pool.begin().await?;
    check_owner(&mut tx, input).await?;

    let existing: Option<(String, String, bool)> =
        sqlx::query_as("SELECT client_id, status, status_confirmed_by_stripe FROM invoices WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((_, current, confirmed)) = &existing
        && *confirmed
        && valid.status == Some(InvoiceStatus::Open)
        && matches!(current.as_str(), "paid" | "refunded" | "disputed")
    {
        return Err(DomainError::Conflict(format!(
            "invoice {id:?} is {current} as confirmed by Stripe and cannot be reopened"
        )));
    }

    let invoice = sqlx::query_as::<_, Invoice>(
        r#"
        INSERT INTO invoices (id, account_id, client_id, number, amount_due, currency, issued_on, due_on, pay_url,
                              status, reminders_paused, stripe_payment_intent_id, stripe_invoice_id,
                              stripe_checkout_session_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10, 'open'), coalesce($11, false), $12, $13, $14)
        ON CONFLICT (id) DO UPDATE SET
            account_id = EXCLUDED.account_id,
            client_id = EXCLUDED.client_id,
            number = EXCLUDED.number,
            amount_due = EXCLUDED.amount_due,
            currency = EXCLUDED.currency,
            issued_on = EXCLUDED.issued_on,
            due_on = EXCLUDED.due_on,
            pay_url = EXCLUDED.pay_url,
            status = coalesce($10, invoices.status),
            status_confirmed_by_stripe = CASE WHEN $10 IS NULL THEN invoices.status_confirmed_by_stripe ELSE false END,
            reminders_paused = coalesce($11, invoices.reminders_paused),
            stripe_payment_intent_id = coalesce($12, invoices.stripe_payment_intent_id),
            stripe_invoice_id = coalesce($13, invoices.stripe_invoice_id),
            stripe_checkout_session_id = coalesce($14, invoices.stripe_checkout_session_id),
            updated_at = now()
        RETURNING id, account_id, client_id, number, amount_due, amount_paid, amount_refunded, currency, issued_on,
                  due_on, pay_url, status, reminders_paused, stripe_payment_intent_id, stripe_invoice_id,
                  stripe_checkout_session_id, created_at, updated_at
        "#,
    )
    .bind(id)
    .bind(&input.account_id)
    .bind(&input.client_id)
    .bind(&input.number)
    .bind(input.amount_due)
    .bind(input.currency.to_ascii_lowercase())
    .bind(valid.issued_on)
    .bind(valid.due_on)
    .bind(&input.pay_url)
    .bind(valid.status.map(InvoiceStatus::as_str))
    .bind(input.reminders_paused)
    .bind(&input.stripe_payment_intent_id)
    .bind(&input.stripe_invoice_id)
    .bind(&input.stripe_checkout_session_id)
    .fetch_one(&mut *tx)
    .await?;
    let was_open = existing
        .as_ref()
        .is_some_and(|(_, status, _)| status == "open");
    if was_open && invoice.status != "open" {
        let reason = format!("invoice is {}", invoice.status);
        crate::reminders::store::skip_pending(&mut tx, id, &reason).await?;
    }
    tx.commit().await?;

    let upserted = if existing.is_some() {
        Upserted::Updated
    } else {
        Upserted::Created
    };
    Ok((invoice, upserted))
}

/// Checks that the account and the client exist and that the client belongs to the account.
async fn check_owner(tx: &mut sqlx::PgConnection, input: &InvoiceInput) -> Result<(), DomainError> {
    require_account(&mut *tx, &input.account_id).await?;

    let client_account: Option<String> =
        sqlx::query_scalar("SELECT account_id FROM clients WHERE id = $1")
            .bind(&input.client_id)
            .fetch_optional(&mut *tx)
            .await?;
    match client_account {
        None => Err(FieldError::new(
            "client_id",
            "unknown_client",
            format!("no client has id {:?}", input.client_id),
        )
        .into()),
        Some(owner) if owner != input.account_id => Err(FieldError::new(
            "client_id",
            "client_of_other_account",
            format!("client {:?} belongs to another account", input.client_id),
        )
        .into()),
        Some(_) => Ok(()),
    }
}

/// Reads an invoice, or `None` when it does not exist.
pub async fn get_invoice(pool: &PgPool, id: &str) -> Result<Option<Invoice>, DomainError> {
    let invoice = sqlx::query_as::<_, Invoice>(
        r#"
        SELECT id, account_id, client_id, number, amount_due, amount_paid, amount_refunded, currency, issued_on,
               due_on, pay_url, status, reminders_paused, stripe_payment_intent_id, stripe_invoice_id,
               stripe_checkout_session_id, created_at, updated_at
        FROM invoices
        WHERE id = $1
        "#,
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(invoice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_dates_are_rejected() {
        assert!(parse_date("issued_on", "2026-02-30").is_err());
        assert!(parse_date("issued_on", "2026-2-3").is_err());
        assert_eq!(
            parse_date("issued_on", "2026-02-28").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
    }
}
