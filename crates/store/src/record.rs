//! The records kept in the store, as plain data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

pub use updraft_model::{DagRunState, RunType, TaskState};

/// One DAG folder scan, to be made true in the database.
#[derive(Debug, Clone, Default)]
pub struct DagSync {
    pub dags: Vec<DagUpsert>,
    pub import_errors: Vec<ImportErrorRecord>,
    pub now: DateTime<Utc>,
    /// Airflow's `dags_are_paused_at_creation`: new DAGs start paused.
    pub paused_at_creation: bool,
    /// The folder that was scanned: only DAGs whose file lies under it are deactivated when
    /// missing (a scan of another folder must not remove them). `None`: any DAG may be.
    pub folder: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DagUpsert {
    pub dag: updraft_model::Dag,
    pub fileloc: String,
    pub content_hash: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub deactivated: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DagRecord {
    pub dag_id: String,
    pub fileloc: String,
    pub is_paused: bool,
    pub is_active: bool,
    pub version: i64,
    pub schedule: String,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub next_dagrun: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportErrorRecord {
    pub filename: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct NewDagRun {
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub dag_version: i64,
    pub tasks: Vec<NewTaskInstance>,
    pub now: DateTime<Utc>,
    /// For scheduled runs: the DAG's next run after this one.
    pub next_dagrun: Option<Option<DateTime<Utc>>>,
    /// The process that runs this run by itself (`dags test`); other schedulers and workers
    /// leave such a run alone while that process lives.
    pub runner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTaskInstance {
    pub task_id: String,
    pub queue: String,
    pub pool: String,
    pub priority_weight: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DagRun {
    pub id: i64,
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub state: DagRunState,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub dag_version: i64,
    pub queued_at: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// See [`NewDagRun::runner`].
    pub runner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInstance {
    pub id: i64,
    pub dag_run_id: i64,
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i64,
    pub try_number: u32,
    pub state: TaskState,
    pub queue: String,
    pub pool: String,
    pub priority_weight: i64,
    pub hostname: Option<String>,
    pub worker_id: Option<String>,
    pub claim_id: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub infra_failures: u32,
}

/// A compare-and-set on one task instance: applied only if it is still in `from` at `try_number`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub ti_id: i64,
    pub try_number: u32,
    pub from: TaskState,
    pub to: TaskState,
    pub now: DateTime<Utc>,
    /// Starts a new try: `try_number + 1` is written with the new state.
    pub new_try: bool,
    pub next_retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionResult {
    Applied,
    /// The row was no longer in the expected state or try: nothing changed.
    Conflict,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Queued + running task instances per DAG.
    pub per_dag: HashMap<String, u32>,
    pub per_pool: HashMap<String, u32>,
    pub pool_slots: HashMap<String, u32>,
    pub total: u32,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub hostname: String,
    /// The queues served; `None` serves every queue (the local worker of `standalone`).
    pub queues: Option<Vec<String>>,
    /// Only claim tasks of this run (`dags test`).
    pub dag_run_id: Option<i64>,
    pub limit: usize,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// A task instance a worker now owns for one try, with what it needs to run it.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub ti: TaskInstance,
    pub claim_id: String,
    pub dag_run: DagRun,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FinishReport {
    pub ti_id: i64,
    pub try_number: u32,
    pub claim_id: String,
    /// success, failed, up_for_retry or skipped.
    pub state: TaskState,
    pub end_date: DateTime<Utc>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub xcom: Option<serde_json::Value>,
    /// The try failed because its worker or process was lost, not because of the task.
    pub infrastructure_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct XCom {
    pub task_id: String,
    pub key: String,
    pub value: serde_json::Value,
}
