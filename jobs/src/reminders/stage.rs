//! Reminder stages and their offsets from an invoice's due date.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A point in an invoice's life at which its client gets one reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Upcoming,
    Due,
    #[serde(rename = "overdue_3")]
    Overdue3,
    #[serde(rename = "overdue_7")]
    Overdue7,
    #[serde(rename = "overdue_14")]
    Overdue14,
    Final,
}

impl Stage {
    /// Every stage, earliest first.
    pub const ALL: [Stage; 6] = [
        Stage::Upcoming,
        Stage::Due,
        Stage::Overdue3,
        Stage::Overdue7,
        Stage::Overdue14,
        Stage::Final,
    ];

    /// Returns the stage's name as stored in the database and used in the API and template file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Upcoming => "upcoming",
            Stage::Due => "due",
            Stage::Overdue3 => "overdue_3",
            Stage::Overdue7 => "overdue_7",
            Stage::Overdue14 => "overdue_14",
            Stage::Final => "final",
        }
    }

    /// Days from the due date to the stage's send day: negative before the due date.
    pub fn days_from_due(self) -> i64 {
        match self {
            Stage::Upcoming => -3,
            Stage::Due => 0,
            Stage::Overdue3 => 3,
            Stage::Overdue7 => 7,
            Stage::Overdue14 => 14,
            Stage::Final => 30,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown stage {0:?}: expected one of upcoming, due, overdue_3, overdue_7, overdue_14, final"
)]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == value)
            .ok_or_else(|| UnknownStage(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
            assert_eq!(serde_json::to_value(stage).unwrap(), stage.as_str());
        }
    }

    #[test]
    fn unknown_stage_is_rejected() {
        assert!("overdue_5".parse::<Stage>().is_err());
    }
}
