//! The suppression policy: the effect of a bounce or complaint on an address.
//!
//! Permanent bounces and complaints suppress the address for every account. Soft bounces are
//! counted: three within seven days suppress it for thirty days. Delays, auto-replies, our own
//! sending problems (DMARC, blocks) and other informational notices are only recorded.

use chrono::Duration;

/// Soft bounces within [`soft_bounce_window`] that suppress an address.
pub const SOFT_BOUNCE_LIMIT: i64 = 3;
pub fn soft_bounce_window() -> Duration {
    Duration::days(7)
}
pub fn soft_bounce_suppression() -> Duration {
    Duration::days(30)
}

/// The action a notification calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceAction {
    /// Suppress for good. `reason` is the stored reason word.
    Suppress {
        reason: &'static str,
        can_reactivate: bool,
    },
    /// Count a soft bounce.
    Soft,
    /// Record only.
    Record,
}

/// Classifies a Postmark record on `RecordType` and `Type` (never on `TypeCode` alone, whose
/// values disagree between Postmark's docs and its client libraries). `inactive` and
/// `can_activate` are Postmark's own flags: an address Postmark deactivated is suppressed too.
pub fn classify_postmark(
    record_type: &str,
    bounce_type: &str,
    inactive: bool,
    can_activate: bool,
) -> BounceAction {
    if record_type == "SpamComplaint" || bounce_type == "SpamComplaint" {
        return BounceAction::Suppress {
            reason: "complaint",
            can_reactivate: false,
        };
    }
    match bounce_type {
        "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" => BounceAction::Suppress {
            reason: "hard_bounce",
            can_reactivate: can_activate,
        },
        "Unsubscribe" => BounceAction::Suppress {
            reason: "unsubscribe",
            can_reactivate: can_activate,
        },
        "SoftBounce" | "DnsError" => BounceAction::Soft,
        // Postmark refuses further sends to an address it deactivated, whatever its type.
        _ if inactive => BounceAction::Suppress {
            reason: "hard_bounce",
            can_reactivate: can_activate,
        },
        _ => BounceAction::Record,
    }
}

/// Classifies an SES notification (`notificationType` or `eventType`) for one recipient.
pub fn classify_ses(
    notification_type: &str,
    bounce_type: Option<&str>,
    bounce_sub_type: Option<&str>,
    complaint_feedback: Option<&str>,
) -> BounceAction {
    match notification_type {
        "Complaint" if complaint_feedback == Some("not-spam") => BounceAction::Record,
        "Complaint" => BounceAction::Suppress {
            reason: "complaint",
            can_reactivate: false,
        },
        "Bounce" => match (bounce_type, bounce_sub_type) {
            (Some("Permanent"), _) => BounceAction::Suppress {
                reason: "hard_bounce",
                can_reactivate: true,
            },
            (Some("Transient"), Some("MailboxFull" | "MessageTooLarge")) => BounceAction::Soft,
            _ => BounceAction::Record,
        },
        _ => BounceAction::Record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmark_types() {
        let suppress = |reason| BounceAction::Suppress {
            reason,
            can_reactivate: true,
        };
        let cases = [
            ("Bounce", "HardBounce", false, true, suppress("hard_bounce")),
            (
                "Bounce",
                "BadEmailAddress",
                false,
                true,
                suppress("hard_bounce"),
            ),
            (
                "Bounce",
                "Unsubscribe",
                false,
                true,
                suppress("unsubscribe"),
            ),
            ("Bounce", "SoftBounce", false, true, BounceAction::Soft),
            ("Bounce", "DnsError", false, true, BounceAction::Soft),
            ("Bounce", "Transient", false, true, BounceAction::Record),
            ("Bounce", "AutoResponder", false, true, BounceAction::Record),
            ("Bounce", "DMARCPolicy", false, true, BounceAction::Record),
            ("Bounce", "Blocked", false, true, BounceAction::Record),
            ("Bounce", "Unknown", true, true, suppress("hard_bounce")),
            (
                "SpamComplaint",
                "SpamComplaint",
                true,
                false,
                BounceAction::Suppress {
                    reason: "complaint",
                    can_reactivate: false,
                },
            ),
        ];
        for (record_type, bounce_type, inactive, can_activate, expected) in cases {
            assert_eq!(
                classify_postmark(record_type, bounce_type, inactive, can_activate),
                expected,
                "{bounce_type}"
            );
        }
    }

    #[test]
    fn complaint_is_never_reactivatable() {
        assert_eq!(
            classify_postmark("SpamComplaint", "SpamComplaint", true, true),
            BounceAction::Suppress {
                reason: "complaint",
                can_reactivate: false
            }
        );
    }

    #[test]
    fn ses_types() {
        assert_eq!(
            classify_ses("Bounce", Some("Permanent"), Some("General"), None),
            BounceAction::Suppress {
                reason: "hard_bounce",
                can_reactivate: true
            }
        );
        assert_eq!(
            classify_ses("Bounce", Some("Transient"), Some("MailboxFull"), None),
            BounceAction::Soft
        );
        assert_eq!(
            classify_ses("Bounce", Some("Transient"), Some("General"), None),
            BounceAction::Record
        );
        assert_eq!(
            classify_ses("Bounce", Some("Undetermined"), Some("Undetermined"), None),
            BounceAction::Record
        );
        assert_eq!(
            classify_ses("Complaint", None, None, Some("abuse")),
            BounceAction::Suppress {
                reason: "complaint",
                can_reactivate: false
            }
        );
        assert_eq!(
            classify_ses("Complaint", None, None, Some("not-spam")),
            BounceAction::Record
        );
        assert_eq!(
            classify_ses("Delivery", None, None, None),
            BounceAction::Record
        );
    }
}
