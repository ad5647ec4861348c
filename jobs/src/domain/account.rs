//! Accounts: DueSpark's customers, who send reminders to their clients.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::validate::{FieldError, validate_email, validate_id, validate_required};
use super::{DomainError, Upserted};

/// An account as the app pushes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    pub name: String,
    pub sender_name: String,
    pub reply_to: String,
    pub timezone: String,
    pub reminders_paused: Option<bool>,
}

/// A stored account.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub sender_name: String,
    pub reply_to: String,
    pub timezone: String,
    pub reminders_paused: bool,
}

impl AccountInput {
    fn validate(&self) -> Result<(), FieldError> {
        validate_required("name", &self.name, 200)?;
        validate_required("sender_name", &self.sender_name, 200)?;
        validate_email("reply_to", &self.reply_to)?;
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(FieldError::new(
                "timezone",
                "invalid_timezone",
                format!(
                    "{:?} is not an IANA time zone such as Europe/Berlin",
                    self.timezone
                ),
            ));
        }
        Ok(())
    }
}

/// Creates or updates an account. An omitted `reminders_paused` keeps the stored value.
pub async fn upsert_account(
    pool: &PgPool,
    id: &str,
    input: &AccountInput,
) -> Result<(Account, Upserted), DomainError> {
    validate_id("id", id)?;
    input.validate()?;

    let (account, created) =
        sqlx::query_as::<_, (String, String, String, String, String, bool, bool)>(
            r#"
        INSERT INTO accounts (id, name, sender_name, reply_to, timezone, reminders_paused)
        VALUES ($1, $2, $3, $4, $5, coalesce($6, false))
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name,
            sender_name = EXCLUDED.sender_name,
            reply_to = EXCLUDED.reply_to,
            timezone = EXCLUDED.timezone,
            reminders_paused = coalesce($6, accounts.reminders_paused),
            updated_at = now()
        RETURNING id, name, sender_name, reply_to, timezone, reminders_paused, (xmax = 0) AS created
        "#,
        )
        .bind(id)
        .bind(&input.name)
        .bind(&input.sender_name)
        .bind(&input.reply_to)
        .bind(&input.timezone)
        .bind(input.reminders_paused)
        .fetch_one(pool)
        .await
        .map(
            |(id, name, sender_name, reply_to, timezone, reminders_paused, created)| {
                (
                    Account {
                        id,
                        name,
                        sender_name,
                        reply_to,
                        timezone,
                        reminders_paused,
                    },
                    created,
                )
            },
        )?;

    Ok((
        account,
        if created {
            Upserted::Created
        } else {
            Upserted::Updated
        },
    ))
}

/// Reads an account, or `None` when it does not exist.
pub async fn get_account(pool: &PgPool, id: &str) -> Result<Option<Account>, DomainError> {
    let account = sqlx::query_as::<_, Account>(
        "SELECT id, name, sender_name, reply_to, timezone, reminders_paused FROM accounts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(account)
}
