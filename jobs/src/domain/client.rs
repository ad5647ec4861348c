//! Clients: an account's customers, who owe money and receive the reminders.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::validate::{validate_email, validate_id, validate_required};
use super::{DomainError, Upserted, require_account};

/// A client as the app pushes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub reminders_paused: Option<bool>,
}

/// A stored client.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Client {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub reminders_paused: bool,
}

/// Creates or updates a client. The account must exist, and a client cannot move to another
/// account. An omitted `reminders_paused` keeps the stored value.
pub async fn upsert_client(
    pool: &PgPool,
    id: &str,
    input: &ClientInput,
) -> Result<(Client, Upserted), DomainError> {
    validate_id("id", id)?;
    validate_id("account_id", &input.account_id)?;
    validate_required("name", &input.name, 200)?;
    validate_email("email", &input.email)?;
    let email_key = crate::bounces::address::normalize(&input.email)
        .map_err(|error| super::FieldError::new("email", "invalid_email", error.to_string()))?;

    let mut tx = pool.begin().await?;
    require_account(&mut tx, &input.account_id).await?;

    let existing_account: Option<String> =
        sqlx::query_scalar("SELECT account_id FROM clients WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(existing) = &existing_account
        && existing != &input.account_id
    {
        return Err(DomainError::Conflict(format!(
            "client {id:?} belongs to account {existing:?} and cannot move to another account"
        )));
    }

    let client = sqlx::query_as::<_, Client>(
        r#"
        INSERT INTO clients (id, account_id, name, email, reminders_paused, email_key)
        VALUES ($1, $2, $3, $4, coalesce($5, false), $6)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name,
            email = EXCLUDED.email,
            email_key = EXCLUDED.email_key,
            reminders_paused = coalesce($5, clients.reminders_paused),
            updated_at = now()
        RETURNING id, account_id, name, email, reminders_paused
        "#,
    )
    .bind(id)
    .bind(&input.account_id)
    .bind(&input.name)
    .bind(&input.email)
    .bind(input.reminders_paused)
    .bind(&email_key)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    let upserted = if existing_account.is_some() {
        Upserted::Updated
    } else {
        Upserted::Created
    };
    Ok((client, upserted))
}

/// Reads a client, or `None` when it does not exist.
pub async fn get_client(pool: &PgPool, id: &str) -> Result<Option<Client>, DomainError> {
    let client = sqlx::query_as::<_, Client>(
        "SELECT id, account_id, name, email, reminders_paused FROM clients WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(client)
}
