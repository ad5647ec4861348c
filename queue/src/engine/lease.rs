//! Background tasks of a backend: the heartbeat that keeps this worker's leases alive and the
//! rescuer that returns jobs of dead workers to their queue.

use std::sync::Arc;

use tracing::{info, warn};

use super::backend::Shared;
use super::claim;

/// Extends this worker's leases at every heartbeat interval until shutdown.
pub(crate) async fn run_heartbeat(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(shared.config.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.shutdown.cancelled() => return,
        }
        let result = claim::heartbeat(
            &shared.pool,
            &shared.owner,
            &shared.config.queue,
            shared.config.lease_duration,
        )
        .await;
        if let Err(error) = result {
            warn!(worker = %shared.owner, %error, "heartbeat failed; leases expire unless a later one succeeds");
        }
    }
}

/// Rescues jobs with expired leases at every rescue interval until shutdown. Any live worker
/// rescues jobs of every queue, so one surviving worker is enough.
pub(crate) async fn run_rescuer(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(shared.config.rescue_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.shutdown.cancelled() => return,
        }
        match claim::rescue_expired(&shared.pool).await {
            Ok(rescued) if !rescued.is_empty() => {
                let ids: Vec<i64> = rescued.iter().map(|job| job.id).collect();
                info!(worker = %shared.owner, jobs = ?ids, "rescued jobs whose worker stopped sending heartbeats");
                let metrics = &shared.config.metrics;
                for job in &rescued {
                    metrics.rescued(&job.queue, 1);
                    // A lost last attempt makes the job dead here, not in a result.
                    if job.status == "dead" {
                        metrics.finished(&job.queue, &job.kind, "dead");
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                warn!(worker = %shared.owner, %error, "rescue of expired leases failed; retrying at the next interval")
            }
        }
    }
}
