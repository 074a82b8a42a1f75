//! Schedules: cron expressions, presets and fixed intervals, evaluated in the DAG's time zone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Schedule {
    /// Manual runs only.
    None,
    /// `@once`: a single run at `start_date`.
    Once,
    /// A 5-field cron expression (presets are stored in their cron form).
    Cron(String),
    /// A fixed interval in seconds, starting at `start_date`.
    Every(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule {input:?}: {reason}")]
    Invalid { input: String, reason: String },
}

impl Schedule {
    /// Parses what a user writes after `schedule:`: a cron expression, a preset or a duration.
    // TODO(helper): validate cron with croner, presets, durations.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::Cron(text.to_string()))
    }
}
