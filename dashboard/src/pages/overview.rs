//! The overview. Per queue it shows the job counts by status (capped), the age of the oldest due
//! job, a chart of the jobs finished in the last hour and the pause state. Below are the live
//! workers and the business panel. The queries run concurrently on the pool.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Html;
use chrono::Utc;
use duespark_jobs::kinds::queues;
use duespark_queue::{JobStatus, QueueStatusCount, WorkerInfo};
use serde::Serialize;

use super::NoticeQuery;
use crate::DashboardState;
use crate::business::{self, BusinessPanel};
use crate::chart::{self, Chart, PerMinute};
use crate::error::DashboardError;
use crate::format;
use crate::render::{self, Layout};
use crate::session::Session;

/// Counts stop here, so that a status with millions of jobs costs no more than this many rows.
pub const COUNT_CAP: u32 = 10_000;
/// A worker whose last heartbeat is older than this is shown as late; the job store rescues its
/// jobs once their leases expire.
const LATE_HEARTBEAT_SECONDS: f64 = 60.0;

#[derive(Serialize)]
struct OverviewPage {
    layout: Layout,
    statuses: Vec<&'static str>,
    queues: Vec<QueueRow>,
    workers: Vec<WorkerRow>,
    business: BusinessPanel,
    count_cap: String,
}

#[derive(Serialize)]
struct QueueRow {
    name: &'static str,
    paused: bool,
    counts: Vec<CountCell>,
    has_dead: bool,
    oldest_waiting: Option<String>,
    chart: Chart,
}

#[derive(Serialize)]
struct CountCell {
    status: &'static str,
    text: String,
    zero: bool,
}

#[derive(Serialize)]
struct WorkerRow {
    id: String,
    queue: String,
    started_at: String,
    last_heartbeat: String,
    heartbeat_age: String,
    late: bool,
}

/// Shows the overview.
pub async fn show(
    State(state): State<DashboardState>,
    session: Session,
    Query(notice): Query<NoticeQuery>,
) -> Result<Html<String>, DashboardError> {
    let store = state.store();
    let now = Utc::now();
    let (counts, ages, finished, workers, paused, business) = tokio::try_join!(
        async { Ok::<_, DashboardError>(store.capped_counts(&queues::ALL, COUNT_CAP).await?) },
        async { Ok(store.oldest_waiting_ages().await?) },
        async { Ok(store.finished_per_minute(chart::MINUTES as u32).await?) },
        async { Ok(store.workers().await?) },
        async { Ok(store.paused_queues().await?) },
        async { Ok(business::load(state.pool(), now).await?) },
    )?;

    let mut per_queue: HashMap<String, PerMinute> = HashMap::new();
    for row in finished {
        per_queue.entry(row.queue).or_default().add(
            row.minutes_ago,
            row.status == JobStatus::Dead,
            row.count,
        );
    }
    let queue_rows = queues::ALL
        .iter()
        .map(|name| QueueRow {
            name,
            paused: paused.iter().any(|queue| queue == name),
            counts: count_cells(&counts, name),
            has_dead: counts
                .iter()
                .any(|c| c.queue == *name && c.status == JobStatus::Dead && c.count.count > 0),
            oldest_waiting: ages
                .iter()
                .find(|(queue, _)| queue == name)
                .map(|(_, seconds)| format::age(*seconds)),
            chart: chart::throughput(&per_queue.remove(*name).unwrap_or_default()),
        })
        .collect();

    let page = OverviewPage {
        layout: Layout::new("Overview", "overview", &session).with_notice(notice.message()),
        statuses: JobStatus::ALL
            .iter()
            .map(|status| status.as_str())
            .collect(),
        queues: queue_rows,
        workers: workers
            .into_iter()
            .map(|worker| worker_row(worker, now))
            .collect(),
        business,
        count_cap: format::thousands(i64::from(COUNT_CAP)),
    };
    render::page("overview", &page)
}

/// Builds one cell per status, in the order of `JobStatus::ALL`.
fn count_cells(counts: &[QueueStatusCount], queue: &str) -> Vec<CountCell> {
    JobStatus::ALL
        .iter()
        .map(|status| {
            let count = counts
                .iter()
                .find(|c| c.queue == queue && c.status == *status)
                .map(|c| c.count)
                .unwrap_or(duespark_queue::CappedCount {
                    count: 0,
                    capped: false,
                });
            CountCell {
                status: status.as_str(),
                text: format::capped(count),
                zero: count.count == 0,
            }
        })
        .collect()
}

fn worker_row(worker: WorkerInfo, now: chrono::DateTime<Utc>) -> WorkerRow {
    let age = (now - worker.last_heartbeat).num_milliseconds() as f64 / 1000.0;
    WorkerRow {
        id: worker.id,
        queue: worker.queue,
        started_at: format::timestamp(worker.started_at),
        last_heartbeat: format::timestamp(worker.last_heartbeat),
        heartbeat_age: format::age(age),
        late: age > LATE_HEARTBEAT_SECONDS,
    }
}
