//! The audit log: one row per state-changing call of the API or the CLI.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Page, Result, Sort, TimeRange, Window};

/// What to record; the store assigns the id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewEventLog {
    pub when: DateTime<Utc>,
    /// What happened, e.g. `trigger_dag_run`, `delete_variable`, `cli_dags_pause`.
    pub event: String,
    /// Who: a username, or `cli:<os user>`.
    pub owner: Option<String>,
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    pub logical_date: Option<DateTime<Utc>>,
    /// The parameters, as JSON text with secrets masked.
    pub extra: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLogRecord {
    pub id: i64,
    #[serde(flatten)]
    pub event: NewEventLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLogSortField {
    Id,
    When,
    Event,
    Owner,
    DagId,
    RunId,
    TaskId,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLogQuery {
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    pub owner: Option<String>,
    pub event: Option<String>,
    /// Leave out these events / keep only these.
    pub excluded_events: Vec<String>,
    pub included_events: Vec<String>,
    pub when: TimeRange,
    pub sort: Vec<Sort<EventLogSortField>>,
    pub window: Window,
}

#[async_trait]
pub trait EventLogStore: Send + Sync {
    async fn add_event_log(&self, event: NewEventLog) -> Result<i64>;
    async fn get_event_log(&self, id: i64) -> Result<EventLogRecord>;
    async fn query_event_logs(&self, query: EventLogQuery) -> Result<Page<EventLogRecord>>;
}
