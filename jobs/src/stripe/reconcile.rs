//! Reconciliation: lists Stripe's events since the newest one stored (at most 30 days back, as
//! long as Stripe keeps them) and feeds the unseen ones through the webhook intake, so an outage
//! of our endpoint loses nothing.

use chrono::{Duration, Utc};
use serde_json::Value;
use tracing::{info, warn};

use super::intake::{IntakeOutcome, parse_event_header, store_event};
use crate::context::JobContext;
use crate::outcome::JobError;

/// Stripe keeps events for 30 days.
const MAX_LOOKBACK_DAYS: i64 = 30;
/// Pages of 100 events read in one run at most; the next run goes on from the newest stored.
const MAX_PAGES: usize = 100;

/// Counts of one reconciliation run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub listed: usize,
    pub stored: usize,
}

/// Runs one reconciliation.
pub async fn reconcile(ctx: &JobContext) -> Result<Reconciled, JobError> {
    if !ctx.stripe.has_api_key() {
        info!("STRIPE_API_KEY is not set; Stripe event reconciliation skipped");
        return Ok(Reconciled::default());
    }
    let oldest_allowed = Utc::now() - Duration::days(MAX_LOOKBACK_DAYS);
    let newest: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT max(created_at) FROM stripe_events")
            .fetch_one(&ctx.pool)
            .await?;
    let since = newest.map_or(oldest_allowed, |newest| newest.max(oldest_allowed));

    let mut result = Reconciled::default();
    let mut starting_after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = ctx
            .stripe
            .list_events(since.timestamp(), starting_after.as_deref())
            .await?;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        for event in &events {
            result.listed += 1;
            if store_listed_event(ctx, event).await? {
                result.stored += 1;
            }
        }
        let has_more = page["has_more"].as_bool().unwrap_or(false);
        starting_after = events
            .last()
            .and_then(|event| event["id"].as_str())
            .map(str::to_owned);
        if !has_more || starting_after.is_none() {
            break;
        }
    }
    info!(
        listed = result.listed,
        stored = result.stored,
        "Stripe events reconciled"
    );
    Ok(result)
}

/// Stores one listed event through the intake; returns whether it was new.
async fn store_listed_event(ctx: &JobContext, event: &Value) -> Result<bool, JobError> {
    // Listed events come from the API over an authenticated connection, so they carry no
    // signature; they are stored as the API returned them.
    let raw = event.to_string();
    let header = match parse_event_header(raw.as_bytes()) {
        Ok(header) => header,
        Err(reason) => {
            warn!(%reason, "skipped a listed Stripe event that is not an event snapshot");
            return Ok(false);
        }
    };
    let outcome = store_event(&ctx.pool, &raw, &header, ctx.stripe_livemode).await?;
    Ok(!matches!(outcome, IntakeOutcome::Duplicate))
}
