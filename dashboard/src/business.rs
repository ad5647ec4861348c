//! The overview's business panel: today's reminders by outcome, bounces and suppressions,
//! payments applied, and the newest backup and verification per location. "Today" is the
//! current UTC day. Each figure reads the domain tables through an index on its time column.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::format;

/// The figures of the panel, formatted for the page.
#[derive(Debug, Serialize)]
pub struct BusinessPanel {
    pub day: String,
    pub reminders_sent: String,
    pub reminders_skipped: String,
    pub reminders_uncertain: String,
    pub reminders_failed: String,
    pub bounces: String,
    pub complaints: String,
    pub suppressions_active: String,
    pub suppressions_added: String,
    pub payments_applied: String,
    pub backups: Vec<BackupRow>,
}

/// The newest backup and the newest verification of one location.
#[derive(Debug, Serialize)]
pub struct BackupRow {
    pub location: String,
    pub backup_at: String,
    pub backup_size: String,
    pub verified_at: String,
    /// `passed`, `failed`, or `never` when no verification ran in this location.
    pub verification: &'static str,
}

/// Reads the panel's figures for the UTC day that contains `now`.
pub async fn load(pool: &PgPool, now: DateTime<Utc>) -> Result<BusinessPanel, sqlx::Error> {
    let day_start = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();

    let (reminders, events, suppressions, payments, backups) = tokio::try_join!(
        reminders_today(pool, day_start),
        email_events_today(pool, day_start),
        suppressions(pool, day_start),
        payments_today(pool, day_start),
        backups(pool),
    )?;

    let by_status = |status: &str| {
        let count = reminders
            .iter()
            .find(|(name, _)| name == status)
            .map_or(0, |(_, count)| *count);
        format::thousands(count)
    };
    let by_record_type = |types: &[&str]| {
        let count: i64 = events
            .iter()
            .filter(|(record_type, _)| types.contains(&record_type.as_str()))
            .map(|(_, count)| count)
            .sum();
        format::thousands(count)
    };
    Ok(BusinessPanel {
        day: day_start.format("%Y-%m-%d").to_string(),
        reminders_sent: by_status("sent"),
        reminders_skipped: by_status("skipped"),
        reminders_uncertain: by_status("uncertain"),
        reminders_failed: by_status("failed"),
        // Postmark calls complaints SpamComplaint, SES calls them Complaint.
        bounces: by_record_type(&["Bounce"]),
        complaints: by_record_type(&["SpamComplaint", "Complaint"]),
        suppressions_active: format::thousands(suppressions.0),
        suppressions_added: format::thousands(suppressions.1),
        payments_applied: format::thousands(payments),
        backups,
    })
}

async fn reminders_today(
    pool: &PgPool,
    day_start: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    // A reminder's updated_at is the time of its last status change.
    sqlx::query_as(
        r#"
        SELECT status, count(*) FROM reminders
        WHERE updated_at >= $1 AND status IN ('sent', 'skipped', 'uncertain', 'failed')
        GROUP BY status
        "#,
    )
    .bind(day_start)
    .fetch_all(pool)
    .await
}

async fn email_events_today(
    pool: &PgPool,
    day_start: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT record_type, count(*) FROM email_events WHERE received_at >= $1 GROUP BY record_type",
    )
    .bind(day_start)
    .fetch_all(pool)
    .await
}

/// Returns the active suppressions and those added today.
async fn suppressions(pool: &PgPool, day_start: DateTime<Utc>) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now()),
               count(*) FILTER (WHERE created_at >= $1)
        FROM suppressions
        "#,
    )
    .bind(day_start)
    .fetch_one(pool)
    .await
}

async fn payments_today(pool: &PgPool, day_start: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM invoice_payment_events WHERE applied_at >= $1")
        .bind(day_start)
        .fetch_one(pool)
        .await
}

/// The newest backup and verification of a location, as stored.
#[derive(sqlx::FromRow)]
struct NewestBackup {
    location: String,
    backup_at: Option<DateTime<Utc>>,
    size_bytes: Option<i64>,
    verified_at: Option<DateTime<Utc>>,
    ok: Option<bool>,
}

async fn backups(pool: &PgPool) -> Result<Vec<BackupRow>, sqlx::Error> {
    let rows: Vec<NewestBackup> = sqlx::query_as(
        r#"
        WITH newest_backup AS (
            SELECT DISTINCT ON (location) location, created_at, size_bytes
            FROM backups ORDER BY location, created_at DESC
        ), newest_verification AS (
            SELECT DISTINCT ON (location) location, finished_at, ok
            FROM backup_verifications ORDER BY location, finished_at DESC
        )
        SELECT location, b.created_at AS backup_at, b.size_bytes, v.finished_at AS verified_at, v.ok
        FROM newest_backup b FULL JOIN newest_verification v USING (location)
        ORDER BY location
        "#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| BackupRow {
            location: row.location,
            backup_at: format::optional_timestamp(row.backup_at),
            backup_size: row.size_bytes.map(format::bytes).unwrap_or_default(),
            verified_at: format::optional_timestamp(row.verified_at),
            verification: match row.ok {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "never",
            },
        })
        .collect())
}
