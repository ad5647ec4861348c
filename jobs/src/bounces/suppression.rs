//! The suppression list: adding an address (and skipping its pending reminders), looking it up
//! and deleting an entry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::domain::DomainError;

/// A suppression entry as support views it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Suppression {
    pub id: i64,
    pub email: String,
    pub reason: String,
    pub detail: Option<String>,
    pub can_reactivate: bool,
    pub account_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The reason a reminder to a suppressed address is skipped with. It names no cause, because
/// the suppression may come from another account's send.
pub const SKIP_REASON: &str = "the client's address is undeliverable";

/// An address to suppress.
#[derive(Debug, Clone, Copy)]
pub struct NewSuppression<'a> {
    /// The normalised address.
    pub email_key: &'a str,
    /// The address as the provider reported it.
    pub email: &'a str,
    pub reason: &'a str,
    pub detail: Option<&'a str>,
    pub can_reactivate: bool,
    pub account_id: Option<&'a str>,
    /// `None` for a permanent suppression.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Suppresses an address and skips the pending reminders of every client with that address. A
/// stronger entry is never weakened: a complaint stays a complaint, and a permanent entry never
/// gets an expiry. Returns the reminders skipped.
pub async fn suppress(
    conn: &mut PgConnection,
    new: NewSuppression<'_>,
) -> Result<u64, sqlx::Error> {
    let NewSuppression {
        email_key,
        email,
        reason,
        detail,
        can_reactivate,
        account_id,
        expires_at,
    } = new;
    sqlx::query(
        r#"
        INSERT INTO suppressions (email_key, email, reason, detail, can_reactivate, account_id, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (email_key) DO UPDATE SET
            reason = CASE WHEN suppressions.reason = 'complaint' THEN 'complaint' ELSE EXCLUDED.reason END,
            can_reactivate = suppressions.can_reactivate AND EXCLUDED.can_reactivate,
            expires_at = CASE
                WHEN suppressions.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
                ELSE greatest(suppressions.expires_at, EXCLUDED.expires_at) END,
            detail = coalesce(EXCLUDED.detail, suppressions.detail),
            updated_at = now()
        "#,
    )
    .bind(email_key)
    .bind(email)
    .bind(reason)
    .bind(detail)
    .bind(can_reactivate)
    .bind(account_id)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;

    let skipped = sqlx::query(
        r#"
        UPDATE reminders r SET status = 'skipped', reason = $2, updated_at = now()
        FROM invoices i JOIN clients c ON c.id = i.client_id
        WHERE r.invoice_id = i.id AND c.email_key = $1 AND r.status = 'queued'
        "#,
    )
    .bind(email_key)
    .bind(SKIP_REASON)
    .execute(&mut *conn)
    .await?;
    Ok(skipped.rows_affected())
}

/// Lists the active suppressions of an address.
pub async fn find(pool: &PgPool, email_key: &str) -> Result<Vec<Suppression>, DomainError> {
    Ok(sqlx::query_as::<_, Suppression>(
        r#"
        SELECT id, email, reason, detail, can_reactivate, account_id, expires_at, created_at
        FROM suppressions
        WHERE email_key = $1 AND (expires_at IS NULL OR expires_at > now())
        "#,
    )
    .bind(email_key)
    .fetch_all(pool)
    .await?)
}

/// Deletes a suppression so the address gets reminders again. A complaint, or an entry the
/// provider marked as not reactivatable, is refused with the reason.
pub async fn delete(pool: &PgPool, id: i64) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT reason, can_reactivate FROM suppressions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match row {
        None => return Err(DomainError::NotFound(format!("suppression {id}"))),
        Some((reason, _)) if reason == "complaint" => {
            return Err(DomainError::Conflict(
                "the recipient marked a reminder as spam; a complaint is never lifted, so this address gets no more reminders".to_owned(),
            ));
        }
        Some((_, false)) => {
            return Err(DomainError::Conflict(
                "the email provider marked this address as not reactivatable, so the suppression stays".to_owned(),
            ));
        }
        Some(_) => {}
    }
    sqlx::query("DELETE FROM suppressions WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
