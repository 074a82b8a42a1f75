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
