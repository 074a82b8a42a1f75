//! Runs that a task starts (Airflow's `TriggerDagRunOperator`): what the worker asks for, what
//! it gets back, and the one place that creates or resets such a run, shared by the local
//! worker's [`StoreExecution`](crate::StoreExecution) and the task-execution API server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{Dag, DagRunState, RunType};

use crate::{NewDagRun, NewTaskInstance, Result, Store, StoreError};

/// A run of `dag_id` that a task asks for. The worker names the run and its logical date, so
/// the id it pushes as XCom is the one the run gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerDagRunRequest {
    pub dag_id: String,
    pub run_id: String,
    pub logical_date: DateTime<Utc>,
    #[serde(default)]
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// A run with that id already exists: clear every task of it so it runs again.
    #[serde(default)]
    pub reset_dag_run: bool,
}

/// What became of a [`TriggerDagRunRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TriggerDagRunOutcome {
    /// A new run (`manual`, queued), with its database id.
    Created { dag_run_id: i64 },
    /// The run existed and was cleared (`reset_dag_run`).
    Reset { dag_run_id: i64 },
    /// The run exists and was left alone.
    AlreadyExists { dag_run_id: i64 },
    /// No active DAG has that id.
    DagNotFound,
}

impl TriggerDagRunOutcome {
    /// The run to wake a scheduler for: one that was created or reset.
    pub fn changed_run(self) -> Option<i64> {
        match self {
            TriggerDagRunOutcome::Created { dag_run_id }
            | TriggerDagRunOutcome::Reset { dag_run_id } => Some(dag_run_id),
            TriggerDagRunOutcome::AlreadyExists { .. } | TriggerDagRunOutcome::DagNotFound => None,
        }
    }
}

impl NewTaskInstance {
    /// One task instance per task of `dag`: what every new run starts with.
    pub fn for_dag(dag: &Dag) -> Vec<NewTaskInstance> {
        dag.tasks
            .iter()
            .map(|t| NewTaskInstance {
                task_id: t.task_id.clone(),
                queue: t.queue.clone(),
                pool: t.pool.clone(),
                priority_weight: t.priority_weight,
            })
            .collect()
    }
}

/// Creates the requested run of the DAG's current version, as Airflow's execution API does
/// for a trigger from a task: run type `manual`, the data interval at the logical date. An
/// existing run of that id is cleared with `reset_dag_run`, otherwise left alone.
pub async fn trigger_dag_run(
    store: &dyn Store,
    request: TriggerDagRunRequest,
    now: DateTime<Utc>,
) -> Result<TriggerDagRunOutcome> {
    let record = match store.get_dag(&request.dag_id).await {
        Ok(record) if record.is_active => record,
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(TriggerDagRunOutcome::DagNotFound),
        Err(e) => return Err(e),
    };
    let existing = match store.get_dag_run(&request.dag_id, &request.run_id).await {
        Ok(run) => Some(run),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    if let Some(run) = existing {
        return reset_or_leave(store, run, request.reset_dag_run, now).await;
    }
    let dag = store
        .get_dag_version(&request.dag_id, record.version)
        .await?;
    let new_run = NewDagRun {
        dag_id: request.dag_id.clone(),
        run_id: request.run_id.clone(),
        run_type: RunType::Manual,
        logical_date: request.logical_date,
        data_interval_start: request.logical_date,
        data_interval_end: request.logical_date,
        conf: request.conf.clone(),
        dag_version: record.version,
        tasks: NewTaskInstance::for_dag(&dag),
        now,
        next_dagrun: None,
        runner: None,
    };
    match store.create_dag_run(new_run).await {
        Ok(run) => Ok(TriggerDagRunOutcome::Created { dag_run_id: run.id }),
        // Another trigger made it in between.
        Err(StoreError::AlreadyExists(_)) => {
            let run = store.get_dag_run(&request.dag_id, &request.run_id).await?;
            reset_or_leave(store, run, request.reset_dag_run, now).await
        }
        Err(e) => Err(e),
    }
}

async fn reset_or_leave(
    store: &dyn Store,
    run: crate::DagRun,
    reset: bool,
    now: DateTime<Utc>,
) -> Result<TriggerDagRunOutcome> {
    if !reset {
        return Ok(TriggerDagRunOutcome::AlreadyExists { dag_run_id: run.id });
    }
    let task_ids: Vec<String> = store
        .task_instances(run.id)
        .await?
        .into_iter()
        .map(|ti| ti.task_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !task_ids.is_empty() {
        store.clear_task_instances(run.id, &task_ids, now).await?;
    }
    Ok(TriggerDagRunOutcome::Reset { dag_run_id: run.id })
}

/// The state of `dag_id`'s run `run_id`, for a task that waits for a run it triggered.
pub async fn dag_run_state(store: &dyn Store, dag_id: &str, run_id: &str) -> Result<DagRunState> {
    Ok(store.get_dag_run(dag_id, run_id).await?.state)
}
