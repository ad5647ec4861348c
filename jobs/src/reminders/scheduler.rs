//! The reminder scheduler: finds the invoices whose next stage is due and records one reminder per
//! invoice with its delivery job.
//!
//! One run at a time across all workers: a run holds a transaction-scoped advisory lock, and a run
//! that cannot take it returns at once. The unique key on `(invoice, stage)` makes a second run, or
//! a concurrent one that slipped past the lock, insert nothing twice.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use tracing::{info, warn};

use super::Stage;
use super::schedule::stage_to_send;
use super::store::insert_reminder_in;
use crate::context::JobContext;
use crate::domain::DomainError;

/// Key of the advisory lock that serializes scheduler runs (an arbitrary constant, "DSSCHED1").
const SCHEDULER_LOCK_KEY: i64 = 0x4453_5343_4845_4431;

/// Counts of one scheduler run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerRun {
    /// False when another run held the lock and this one did nothing.
    pub ran: bool,
    pub invoices_checked: usize,
    pub reminders_enqueued: usize,
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    due_on: NaiveDate,
    timezone: String,
    recorded: Vec<String>,
}

/// Runs the scheduler once at the context's clock time.
pub async fn run_scheduler(ctx: &JobContext) -> Result<SchedulerRun, DomainError> {
    let now = ctx.clock.now();
    let mut tx = ctx.pool.begin().await?;

    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SCHEDULER_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        info!("another scheduler run is in progress; skipping this one");
        return Ok(SchedulerRun::default());
    }

    // The first stage is 3 days before the due date, and a time zone shifts the local date by one
    // day, hence the margin. Invoices past their last stage keep being candidates until they have
    // a `final` reminder, so one that becomes eligible late still gets that stage.
    let latest_due = now.date_naive() + Duration::days(4);
    let candidates = sqlx::query_as::<_, Candidate>(
        r#"
        SELECT i.id, i.due_on, a.timezone,
               coalesce(array_agg(r.stage) FILTER (WHERE r.stage IS NOT NULL), '{}') AS recorded
        FROM invoices i
        JOIN clients c ON c.id = i.client_id
        JOIN accounts a ON a.id = i.account_id
        LEFT JOIN reminders r ON r.invoice_id = i.id
        WHERE i.status = 'open'
          AND i.amount_due > i.amount_paid
          AND NOT i.reminders_paused AND NOT c.reminders_paused AND NOT a.reminders_paused
          AND NOT EXISTS (SELECT 1 FROM suppressions s
                          WHERE s.email_key = c.email_key AND (s.expires_at IS NULL OR s.expires_at > now()))
          AND i.due_on <= $1
          AND NOT EXISTS (SELECT 1 FROM reminders f WHERE f.invoice_id = i.id AND f.stage = 'final')
        GROUP BY i.id, i.due_on, a.timezone
        "#,
    )
    .bind(latest_due)
    .fetch_all(&mut *tx)
    .await?;

    let mut run = SchedulerRun {
        ran: true,
        invoices_checked: candidates.len(),
        reminders_enqueued: 0,
    };
    for candidate in candidates {
        let Ok(tz) = candidate.timezone.parse::<Tz>() else {
            warn!(invoice.id = %candidate.id, timezone = %candidate.timezone, "invalid account time zone; invoice not scheduled");
            continue;
        };
        let recorded: Vec<Stage> = candidate
            .recorded
            .iter()
            .filter_map(|stage| stage.parse().ok())
            .collect();
        let Some((stage, send_at)) = stage_to_send(candidate.due_on, tz, now, &recorded) else {
            continue;
        };
        if insert_reminder_in(&mut tx, &candidate.id, stage, send_at)
            .await?
            .is_some()
        {
            run.reminders_enqueued += 1;
        }
    }
    tx.commit().await?;

    info!(
        invoices = run.invoices_checked,
        enqueued = run.reminders_enqueued,
        "scheduler run finished"
    );
    Ok(run)
}
