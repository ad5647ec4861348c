//! The audit log page: every admin action, newest first, in keyset pages by id.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};

use super::parse_cursor;
use crate::DashboardState;
use crate::audit::{self, AuditEntry};
use crate::error::DashboardError;
use crate::format;
use crate::render::{self, Layout};
use crate::session::Session;

/// Entries per page.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    before: Option<String>,
}

#[derive(Serialize)]
struct AuditPage {
    layout: Layout,
    entries: Vec<AuditRow>,
    /// The cursor of the next (older) page; `None` on the last page.
    next_before: Option<i64>,
    is_first_page: bool,
}

/// An audit entry as a table row.
#[derive(Serialize)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub queue: String,
    pub job_id: String,
    pub detail: String,
}

impl AuditRow {
    pub fn new(entry: AuditEntry) -> Self {
        AuditRow {
            at: format::timestamp(entry.at),
            actor: entry.actor,
            action: entry.action,
            queue: entry.queue.unwrap_or_default(),
            job_id: entry.job_id.map(|id| id.to_string()).unwrap_or_default(),
            detail: entry.detail.to_string(),
        }
    }
}

/// Shows one page of the audit log.
pub async fn show(
    State(state): State<DashboardState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, DashboardError> {
    let before = parse_cursor(query.before)?;
    let mut entries = audit::list(state.pool(), before, PAGE_SIZE + 1).await?;
    let next_before = if entries.len() as i64 > PAGE_SIZE {
        entries.truncate(PAGE_SIZE as usize);
        entries.last().map(|entry| entry.id)
    } else {
        None
    };

    let page = AuditPage {
        layout: Layout::new("Audit log", "audit", &session),
        entries: entries.into_iter().map(AuditRow::new).collect(),
        next_before,
        is_first_page: before.is_none(),
    };
    render::page("audit", &page)
}
