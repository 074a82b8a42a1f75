//! What users change by hand through the API and the CLI: notes, deletions, marking states,
//! XCom entries, variables with descriptions, and pool usage.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Page, Result, StoreError, TaskInstance, TaskState, Window};

/// A variable as the API shows it. `value` is plain text: a backend given a
/// [`Cipher`](crate::Cipher) encrypts it at rest and decrypts it on reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableRecord {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    /// Whether the stored value is encrypted.
    pub is_encrypted: bool,
}

/// An XCom entry with where it belongs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XComEntry {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i64,
    pub key: String,
    pub value: serde_json::Value,
    pub logical_date: DateTime<Utc>,
    /// When the value was written; `None` for values written before this was recorded.
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XComQuery {
    /// `None`: every DAG (`~` in the path).
    pub dag_id: Option<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub map_index: Option<i64>,
    pub key: Option<String>,
    pub window: Window,
}

/// The identity of one XCom entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XComKey {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i64,
    pub key: String,
}

/// Task instances of a pool per state, for the pools API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub running: u32,
    pub queued: u32,
    pub scheduled: u32,
}

/// A state set by hand on task instances (Airflow's "mark success/failed/skipped").
#[derive(Debug, Clone, PartialEq)]
pub struct MarkTaskInstances {
    pub ti_ids: Vec<i64>,
    /// `success`, `failed` or `skipped`.
    pub state: TaskState,
    pub now: DateTime<Utc>,
}

#[async_trait]
pub trait ManageStore: Send + Sync {
    /// Sets (or with `None` removes) a run's note.
    async fn set_dag_run_note(&self, id: i64, note: Option<String>) -> Result<()>;
    async fn set_task_instance_note(&self, ti_id: i64, note: Option<String>) -> Result<()>;
    /// Deletes a run with its task instances, tries, XComs and logs.
    async fn delete_dag_run(&self, id: i64) -> Result<()>;
    /// Deletes a DAG's record, versions, runs and everything of them. The DAG comes back
    /// when its file is parsed again. Refused ([`StoreError::Conflict`], from
    /// [`still_running`]) while a task instance of the DAG runs, as Airflow refuses.
    async fn delete_dag(&self, dag_id: &str) -> Result<()>;
    /// Sets the state of task instances by hand, in one transaction, whatever their state; a
    /// running one loses its claim (its worker's next heartbeat kills it) and gets
    /// `end_date`. Answers the task instances as they are now, for those that changed.
    async fn mark_task_instances(&self, mark: MarkTaskInstances) -> Result<Vec<TaskInstance>>;
    /// Sets a run's state by hand (`queued`, `success`, `failed`), whatever it was, and its
    /// task instances as Airflow's "mark run as" does ([`marks_for_run_state`]), in one
    /// transaction; `success`/`failed` also set `end_date`, `queued` clears it.
    async fn force_dag_run_state(
        &self,
        id: i64,
        state: crate::DagRunState,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn query_xcoms(&self, query: XComQuery) -> Result<Page<XComEntry>>;
    /// Creates or replaces one entry; the run and task instance must exist.
    async fn put_xcom(
        &self,
        key: XComKey,
        value: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<XComEntry>;
    /// Whether it existed.
    async fn delete_xcom(&self, key: XComKey) -> Result<bool>;

    async fn get_variable_record(&self, key: &str) -> Result<Option<VariableRecord>>;
    /// Creates or replaces a variable with its description.
    async fn put_variable(&self, variable: VariableRecord) -> Result<()>;
    /// Variables sorted by key (or descending), whose key matches the pattern, paged.
    async fn query_variables(
        &self,
        key_pattern: Option<crate::LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<VariableRecord>>;

    async fn pool_usage(&self) -> Result<HashMap<String, PoolUsage>>;
}

/// Finds a running task instance of the DAG `$1`/`?1`, if any (the same SQL on both backends).
pub const RUNNING_TASK_OF_DAG: &str = "SELECT 1 FROM task_instance \
     WHERE dag_id = $1 AND state IN ('running', 'restarting') LIMIT 1";

/// Why a DAG with running task instances is not deleted (Airflow's words).
pub fn still_running(dag_id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "Task instances of dag with id: '{dag_id}' are still running"
    ))
}

/// What timing out a run (`dagrun_timeout`) does to its task instances, given `(id, state)`
/// of each: Airflow skips every unfinished one, the running ones included.
pub fn marks_for_timeout(tis: &[(i64, TaskState)], now: DateTime<Utc>) -> Vec<MarkTaskInstances> {
    let ti_ids: Vec<i64> = tis
        .iter()
        .filter(|(_, s)| !s.is_finished())
        .map(|(id, _)| *id)
        .collect();
    if ti_ids.is_empty() {
        return Vec::new();
    }
    vec![MarkTaskInstances {
        ti_ids,
        state: TaskState::Skipped,
        now,
    }]
}

/// What marking a run `to` by hand does to its task instances, given `(id, state)` of each,
/// as Airflow's "mark run as": `success` marks every unfinished one success; `failed` fails
/// the running ones and skips the other unfinished ones; any other state changes only the run.
pub fn marks_for_run_state(
    tis: &[(i64, TaskState)],
    to: crate::DagRunState,
    now: DateTime<Utc>,
) -> Vec<MarkTaskInstances> {
    let running = |s: TaskState| matches!(s, TaskState::Running | TaskState::Restarting);
    let ids = |keep: &dyn Fn(TaskState) -> bool| -> Vec<i64> {
        tis.iter()
            .filter(|(_, s)| !s.is_finished() && keep(*s))
            .map(|(id, _)| *id)
            .collect()
    };
    let plan = match to {
        crate::DagRunState::Success => vec![(ids(&|_| true), TaskState::Success)],
        crate::DagRunState::Failed => vec![
            (ids(&running), TaskState::Failed),
            (ids(&|s| !running(s)), TaskState::Skipped),
        ],
        _ => Vec::new(),
    };
    plan.into_iter()
        .filter(|(ti_ids, _)| !ti_ids.is_empty())
        .map(|(ti_ids, state)| MarkTaskInstances { ti_ids, state, now })
        .collect()
}
