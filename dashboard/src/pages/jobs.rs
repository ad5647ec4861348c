//! The job list: filters by queue, status and kind, newest first in keyset pages by id, with a
//! count of the matches that stops at [`COUNT_CAP`]. A search by job id or invoice id replaces
//! the pages with the matching jobs, filtered the same way.

use axum::extract::{Query, State};
use axum::response::Html;
use duespark_jobs::kinds::{self, queues};
use duespark_queue::{JobFilter, JobId, JobInfo, JobStatus};
use serde::{Deserialize, Serialize};

use super::{non_empty, parse_cursor};
use crate::DashboardState;
use crate::error::DashboardError;
use crate::format;
use crate::mask::mask_text;
use crate::pages::overview::COUNT_CAP;
use crate::render::{self, Layout};
use crate::session::Session;

/// Jobs per page.
const PAGE_SIZE: u32 = 50;
/// Most jobs a search by invoice id lists.
const SEARCH_LIMIT: u32 = 100;
/// Maximum length of a queue or kind name in a filter.
const MAX_NAME_LEN: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    queue: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    /// A job id or an invoice id.
    q: Option<String>,
    /// The previous page's last id.
    before: Option<String>,
}

#[derive(Serialize)]
struct JobsPage {
    layout: Layout,
    filters: Filters,
    jobs: Vec<JobRow>,
    /// How many jobs match, such as `1,234` or `10,000+`; empty for a search.
    matching: String,
    /// How many jobs a search found.
    found: usize,
    searching: bool,
    /// The query string of the next (older) page; `None` on the last page.
    next_page: Option<String>,
    first_page: Option<String>,
    queue_options: Vec<Choice>,
    state_options: Vec<Choice>,
    kind_options: Vec<Choice>,
}

#[derive(Serialize)]
struct Filters {
    queue: String,
    state: String,
    kind: String,
    q: String,
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    selected: bool,
}

/// A job as a list row.
#[derive(Serialize)]
pub struct JobRow {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub status: &'static str,
    pub attempts: String,
    pub run_at: String,
    pub created_at: String,
    pub finished_at: String,
    pub last_error: String,
}

impl JobRow {
    pub fn new(job: &JobInfo) -> Self {
        JobRow {
            id: job.id.to_string(),
            queue: job.queue.clone(),
            kind: job.kind.clone(),
            status: job.status.as_str(),
            attempts: format!("{}/{}", job.attempts, job.max_attempts),
            run_at: format::timestamp(job.run_at),
            created_at: format::timestamp(job.created_at),
            finished_at: format::optional_timestamp(job.finished_at),
            last_error: job
                .last_error
                .as_deref()
                .map(|error| format::truncate(&mask_text(error), 120))
                .unwrap_or_default(),
        }
    }
}

/// Shows one page of jobs, or the results of a search.
pub async fn show(
    State(state): State<DashboardState>,
    session: Session,
    Query(query): Query<JobsQuery>,
) -> Result<Html<String>, DashboardError> {
    let filter = JobFilter {
        queue: checked_name("queue", non_empty(query.queue))?,
        status: non_empty(query.state)
            .map(|state| state.parse::<JobStatus>())
            .transpose()
            .map_err(|error| DashboardError::BadRequest(format!("state: {error}")))?,
        kind: checked_name("kind", non_empty(query.kind))?,
        before: parse_cursor(query.before)?.map(JobId),
        limit: PAGE_SIZE,
    };
    let search = non_empty(query.q);

    let (jobs, matching, next_cursor) = match &search {
        Some(term) => (
            search_jobs(&state, term, &filter).await?,
            String::new(),
            None,
        ),
        None => {
            let (page, count) = tokio::try_join!(
                state.store().list(&filter),
                state.store().count_matching(&filter, COUNT_CAP),
            )?;
            (page.jobs, format::capped(count), page.next_cursor)
        }
    };

    let page = JobsPage {
        layout: Layout::new("Jobs", "jobs", &session),
        next_page: next_cursor.map(|cursor| page_query(&filter, Some(cursor))),
        first_page: filter.before.map(|_| page_query(&filter, None)),
        queue_options: choices(&queues::ALL, filter.queue.as_deref()),
        state_options: choices(
            &JobStatus::ALL.map(JobStatus::as_str),
            filter.status.map(JobStatus::as_str),
        ),
        kind_options: choices(
            &kinds::all()
                .iter()
                .map(|spec| spec.name)
                .collect::<Vec<_>>(),
            filter.kind.as_deref(),
        ),
        filters: Filters {
            queue: filter.queue.clone().unwrap_or_default(),
            state: filter
                .status
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            kind: filter.kind.clone().unwrap_or_default(),
            q: search.clone().unwrap_or_default(),
        },
        jobs: jobs.iter().map(JobRow::new).collect(),
        found: jobs.len(),
        matching,
        searching: search.is_some(),
    };
    render::page("jobs", &page)
}

/// Finds the job with id `term` and the jobs of the invoice with id `term`, newest first, and
/// keeps those that pass the filter. An invoice's jobs are its reminders' jobs and the jobs whose
/// payload names it (payment syncs).
///
/// NOTE: Stripe event and bounce jobs carry only their event's id, so a search by invoice id does
/// not find them.
async fn search_jobs(
    state: &DashboardState,
    term: &str,
    filter: &JobFilter,
) -> Result<Vec<JobInfo>, DashboardError> {
    let mut ids: Vec<JobId> = Vec::new();
    if let Ok(id) = term.parse::<JobId>() {
        ids.push(id);
    }
    if is_invoice_id(term) {
        ids.extend(reminder_job_ids(state, term).await?);
        ids.extend(
            state
                .store()
                .find_by_payload_invoice_id(term, SEARCH_LIMIT)
                .await?,
        );
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(SEARCH_LIMIT as usize);

    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(job) = state.store().get(id).await?
            && matches_filter(&job, filter)
        {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Returns the ids of the jobs that deliver an invoice's reminders.
async fn reminder_job_ids(
    state: &DashboardState,
    invoice_id: &str,
) -> Result<Vec<JobId>, DashboardError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT job_id FROM reminders WHERE invoice_id = $1 AND job_id IS NOT NULL",
    )
    .bind(invoice_id)
    .fetch_all(state.pool())
    .await?;
    Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
}

fn matches_filter(job: &JobInfo, filter: &JobFilter) -> bool {
    filter
        .queue
        .as_ref()
        .is_none_or(|queue| *queue == job.queue)
        && filter.status.is_none_or(|status| status == job.status)
        && filter.kind.as_ref().is_none_or(|kind| *kind == job.kind)
}

/// Returns whether `term` has the form of the app's ids: 1 to 64 characters `[A-Za-z0-9_-]`.
fn is_invoice_id(term: &str) -> bool {
    (1..=64).contains(&term.len())
        && term
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn checked_name(field: &str, value: Option<String>) -> Result<Option<String>, DashboardError> {
    match value {
        Some(value) if value.len() > MAX_NAME_LEN => Err(DashboardError::BadRequest(format!(
            "{field} is longer than {MAX_NAME_LEN} characters; pick one from the list"
        ))),
        other => Ok(other),
    }
}

/// Builds the query string of a page of the same filter.
fn page_query(filter: &JobFilter, before: Option<JobId>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(queue) = &filter.queue {
        query.append_pair("queue", queue);
    }
    if let Some(status) = filter.status {
        query.append_pair("state", status.as_str());
    }
    if let Some(kind) = &filter.kind {
        query.append_pair("kind", kind);
    }
    if let Some(before) = before {
        query.append_pair("before", &before.to_string());
    }
    query.finish()
}

fn choices(values: &[&'static str], selected: Option<&str>) -> Vec<Choice> {
    values
        .iter()
        .map(|value| Choice {
            value,
            selected: selected == Some(*value),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_ids_follow_the_app_format() {
        assert!(is_invoice_id("inv-2026_001"));
        assert!(is_invoice_id("12345"));
        assert!(!is_invoice_id(""));
        assert!(!is_invoice_id("inv 1"));
        assert!(!is_invoice_id(&"x".repeat(65)));
    }

    #[test]
    fn page_links_keep_the_filter() {
        let filter = JobFilter {
            queue: Some("reminders".into()),
            status: Some(JobStatus::Dead),
            kind: Some("reminder.send".into()),
            before: None,
            limit: PAGE_SIZE,
        };
        assert_eq!(
            page_query(&filter, Some(JobId(99))),
            "queue=reminders&state=dead&kind=reminder.send&before=99"
        );
        assert_eq!(page_query(&JobFilter::default(), None), "");
    }
}
