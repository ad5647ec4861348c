//! Accounts, clients and invoices: validation of what the app pushes, and their upserts.
//!
//! Every upsert validates its input first and reports the first invalid field as a
//! [`DomainError::Invalid`], so the API can name it. Ids are the app's own strings.

mod account;
mod client;
mod invoice;
mod validate;

pub use account::{Account, AccountInput, get_account, upsert_account};
pub use client::{Client, ClientInput, get_client, upsert_client};
pub use invoice::{Invoice, InvoiceInput, InvoiceStatus, get_invoice, upsert_invoice};
pub use validate::{FieldError, validate_email, validate_id};

/// Whether an upsert created the row or updated an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// A failure of a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input is invalid; the field and the problem are named.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The change contradicts the current state (for example reopening a paid invoice).
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] duespark_queue::QueueError),
}

/// Fails with an `account_id` field error unless the account exists.
async fn require_account(
    conn: &mut sqlx::PgConnection,
    account_id: &str,
) -> Result<(), DomainError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)")
        .bind(account_id)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        let message = format!("no account has id {account_id:?}");
        return Err(FieldError::new("account_id", "unknown_account", message).into());
    }
    Ok(())
}
