//! Filtered, sorted, paged reads for the public API and the UI. Every query answers one page
//! and the number of rows that match in all, so clients page with `limit`/`offset`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DagRecord, DagRun, DagRunState, Result, RunType, TaskInstance, TaskState};

/// One page of a query's matches, and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Which rows of the ordered matches to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub offset: u64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            limit: 50,
            offset: 0,
        }
    }
}

/// A sort key; ties are broken by the table's own id (in the direction of the last key), so
/// pages never overlap. Text compares bytewise; rows without a value (a missing date, a DAG
/// without runs) sort last in either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort<F> {
    pub field: F,
    pub descending: bool,
}

/// Bounds on an instant; each present bound must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub gte: Option<DateTime<Utc>>,
    pub gt: Option<DateTime<Utc>>,
    pub lte: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn is_empty(&self) -> bool {
        self.gte.is_none() && self.gt.is_none() && self.lte.is_none() && self.lt.is_none()
    }
}

/// A substring pattern as Airflow's `*_pattern` parameters take it: case-insensitive, with
/// SQL `LIKE` wildcards (`%` any run, `_` one character) inside it.
pub type LikePattern = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagSortField {
    DagId,
    NextDagrun,
    LastRunState,
    LastRunStartDate,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DagQuery {
    pub dag_id_pattern: Option<LikePattern>,
    /// Only DAGs with these tags: any of them, or all of them with `tags_match_all`.
    pub tags: Vec<String>,
    pub tags_match_all: bool,
    pub paused: Option<bool>,
    /// Leave out DAGs whose file is gone (Airflow's `exclude_stale`).
    pub exclude_stale: bool,
    /// Only DAGs whose latest run (by logical date) is in this state.
    pub last_dag_run_state: Option<DagRunState>,
    /// Empty: by dag_id.
    pub sort: Vec<Sort<DagSortField>>,
    pub window: Window,
    /// Leave [`DagSummary::last_run`] out (`None`): a list that does not show it costs a
    /// lookup less per DAG. Filters and sorts on the latest run still apply.
    pub without_last_run: bool,
}

impl DagQuery {
    /// Whether the query needs each DAG's latest run (to answer, filter or sort).
    pub fn needs_last_run(&self) -> bool {
        !self.without_last_run
            || self.last_dag_run_state.is_some()
            || self.sort.iter().any(|s| {
                matches!(
                    s.field,
                    DagSortField::LastRunState | DagSortField::LastRunStartDate
                )
            })
    }
}

/// A DAG with its latest run, as DAG lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DagSummary {
    pub dag: DagRecord,
    /// The run with the latest logical date (the newest run among equal dates), if any.
    pub last_run: Option<DagRun>,
    /// Whether the DAG's file has an import error now.
    pub has_import_errors: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagRunSortField {
    Id,
    DagId,
    RunId,
    State,
    RunType,
    LogicalDate,
    QueuedAt,
    StartDate,
    EndDate,
    DataIntervalStart,
    DataIntervalEnd,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DagRunQuery {
    /// `None`: runs of every DAG; an empty list matches nothing.
    pub dag_ids: Option<Vec<String>>,
    pub run_id_pattern: Option<LikePattern>,
    /// Empty: any state (likewise `run_types`).
    pub states: Vec<DagRunState>,
    pub run_types: Vec<RunType>,
    pub logical_date: TimeRange,
    pub start_date: TimeRange,
    pub end_date: TimeRange,
    pub queued_at: TimeRange,
    /// Empty: by id (creation order).
    pub sort: Vec<Sort<DagRunSortField>>,
    pub window: Window,
    /// The number of matching runs, when the caller knows it already (a count it keeps):
    /// answered as [`Page::total`] without counting again.
    pub known_total: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskInstanceSortField {
    Id,
    DagId,
    RunId,
    TaskId,
    MapIndex,
    State,
    TryNumber,
    LogicalDate,
    StartDate,
    EndDate,
    /// `end_date - start_date`; rows without both sort last.
    Duration,
    Pool,
    Queue,
    PriorityWeight,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskInstanceQuery {
    /// `None`: every DAG. In these three lists, an empty list matches nothing.
    pub dag_ids: Option<Vec<String>>,
    /// `None`: every run of the DAGs; without `dag_ids`, runs of that id in any DAG.
    pub run_ids: Option<Vec<String>>,
    pub task_ids: Option<Vec<String>>,
    pub task_id_pattern: Option<LikePattern>,
    /// Empty: any state (likewise `pools` and `queues`).
    pub states: Vec<TaskState>,
    pub pools: Vec<String>,
    pub queues: Vec<String>,
    /// The logical date of the task instance's run.
    pub logical_date: TimeRange,
    pub start_date: TimeRange,
    pub end_date: TimeRange,
    /// Seconds between start and end; rows without both never match.
    pub duration_gte: Option<f64>,
    pub duration_lte: Option<f64>,
    /// Empty: by id.
    pub sort: Vec<Sort<TaskInstanceSortField>>,
    /// Only task instances with a greater id: with the order by id and no offset, the next
    /// page after one that ended at this id (keyset paging; no row is read twice).
    pub id_after: Option<i64>,
    /// Leaves [`Page::total`] uncounted (0): counting reads every match, which a reader
    /// that pages through all of them does not need.
    pub without_total: bool,
    pub window: Window,
}

/// A task instance and the logical date of its run (which date filters and sorts use).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInstanceRow {
    pub ti: TaskInstance,
    pub logical_date: DateTime<Utc>,
    pub dag_version: i64,
}

/// One finished try of a task instance, from its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTry {
    pub ti_id: i64,
    pub try_number: u32,
    pub state: TaskState,
    pub hostname: Option<String>,
    pub worker_id: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub infrastructure_failure: bool,
}

/// Counts of a DAG's runs per state (`dagStats`).
#[derive(Debug, Clone, PartialEq)]
pub struct DagRunCounts {
    pub dag_id: String,
    /// Every state, zeros included: queued, running, success, failed.
    pub counts: Vec<(DagRunState, u64)>,
}

/// What a grid cell shows of a task instance: the few columns a page of thousands of them
/// needs, without the rest of the row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInstanceSummary {
    pub dag_run_id: i64,
    pub task_id: String,
    pub map_index: i64,
    pub state: TaskState,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
}

/// A published version of a DAG (without its definition).
#[derive(Debug, Clone, PartialEq)]
pub struct DagVersionRecord {
    pub dag_id: String,
    pub version: i64,
    pub content_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportErrorSortField {
    Id,
    Timestamp,
    Filename,
}

/// An import error with its identity, as the API lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrorRow {
    pub id: i64,
    pub filename: String,
    pub error: String,
    pub timestamp: DateTime<Utc>,
}

#[async_trait]
pub trait BrowseStore: Send + Sync {
    /// DAGs, inactive ones too unless `exclude_stale`, each with its latest run.
    async fn query_dags(&self, query: DagQuery) -> Result<Page<DagSummary>>;
    /// Every tag in use by an active DAG, sorted bytewise, matching the pattern, paged.
    async fn dag_tags(&self, pattern: Option<LikePattern>, window: Window) -> Result<Page<String>>;
    /// Run counts per state of the given DAGs (`None`: every active DAG), one entry per DAG
    /// asked (once, even if unknown or without runs), by dag_id.
    async fn dag_run_counts(&self, dag_ids: Option<Vec<String>>) -> Result<Vec<DagRunCounts>>;
    /// A DAG's versions, oldest first; `NotFound` for an unknown DAG.
    async fn dag_versions(&self, dag_id: &str, window: Window) -> Result<Page<DagVersionRecord>>;
    /// The file's text as it was when `version` was published; `NotFound` when there is no
    /// such version.
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<String>;
    async fn query_dag_runs(&self, query: DagRunQuery) -> Result<Page<DagRun>>;
    async fn query_task_instances(&self, query: TaskInstanceQuery)
        -> Result<Page<TaskInstanceRow>>;
    /// The task instances of the given runs (ids), in summary, ordered by run, task and map
    /// index; unknown ids match nothing.
    async fn task_instance_summaries(
        &self,
        dag_run_ids: Vec<i64>,
    ) -> Result<Vec<TaskInstanceSummary>>;
    /// The finished tries of a task instance, oldest first; `NotFound` for an unknown one.
    async fn task_tries(&self, ti_id: i64) -> Result<Vec<TaskTry>>;
    /// Import errors; an empty `sort` orders them by id.
    async fn query_import_errors(
        &self,
        sort: Vec<Sort<ImportErrorSortField>>,
        window: Window,
    ) -> Result<Page<ImportErrorRow>>;
    /// `NotFound` for an unknown id. Ids change when a sync replaces the import errors.
    async fn get_import_error(&self, id: i64) -> Result<ImportErrorRow>;
}
