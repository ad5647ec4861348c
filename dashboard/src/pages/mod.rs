//! The dashboard's pages, one module each. Handlers read, format into a template context and
//! render; they hold no SQL on the job table, which goes through the job store.

pub mod audit;
pub mod job;
pub mod jobs;
pub mod login;
pub mod overview;

use duespark_jobs::kinds::queues;
use serde::Deserialize;

use crate::error::DashboardError;
use crate::format;

/// The notice an action leaves for the page it redirects to, as query parameters. Only known
/// codes and queues produce text, so a crafted link cannot put words on the page.
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
    pub queue: Option<String>,
    pub count: Option<u64>,
}

impl NoticeQuery {
    pub fn message(&self) -> Option<String> {
        let queue = self
            .queue
            .as_deref()
            .filter(|queue| queues::ALL.contains(queue));
        let count = self
            .count
            .map(|count| format::thousands(i64::try_from(count).unwrap_or(i64::MAX)));
        let message = match (self.notice.as_deref()?, queue, count) {
            ("retried", _, _) => {
                "The job was retried: it is pending and runs again now.".to_owned()
            }
            ("cancelled", _, _) => {
                "The job was cancelled. A running job ends cancelled after its current attempt."
                    .to_owned()
            }
            ("retried_dead", Some(queue), Some(count)) => {
                format!("Retried {count} dead jobs of queue {queue}.")
            }
            ("paused", Some(queue), _) => {
                format!(
                    "Queue {queue} is paused: workers claim none of its jobs until it is resumed."
                )
            }
            ("resumed", Some(queue), _) => format!("Queue {queue} is resumed."),
            _ => return None,
        };
        Some(message)
    }
}

/// Reads an optional query value: an empty string, as a form sends for "any", means none.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Reads an optional keyset cursor from the query.
pub fn parse_cursor(value: Option<String>) -> Result<Option<i64>, DashboardError> {
    non_empty(value)
        .map(|value| {
            value
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    DashboardError::BadRequest(format!(
                        "before={value:?} is not a valid page cursor (a positive whole number); open the first page instead"
                    ))
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(code: &str, queue: Option<&str>, count: Option<u64>) -> Option<String> {
        NoticeQuery {
            notice: Some(code.to_owned()),
            queue: queue.map(str::to_owned),
            count,
        }
        .message()
    }

    #[test]
    fn known_notices_have_text() {
        assert!(notice("retried", None, None).is_some());
        assert_eq!(
            notice("retried_dead", Some("reminders"), Some(1200)).as_deref(),
            Some("Retried 1,200 dead jobs of queue reminders.")
        );
    }

    #[test]
    fn unknown_notices_and_queues_have_none() {
        assert_eq!(notice("<b>hello</b>", None, None), None);
        assert_eq!(notice("paused", Some("<script>"), None), None);
    }

    #[test]
    fn cursors_must_be_positive() {
        assert_eq!(parse_cursor(None).unwrap(), None);
        assert_eq!(parse_cursor(Some(String::new())).unwrap(), None);
        assert_eq!(parse_cursor(Some("42".into())).unwrap(), Some(42));
        assert!(parse_cursor(Some("-1".into())).is_err());
        assert!(parse_cursor(Some("abc".into())).is_err());
    }
}
