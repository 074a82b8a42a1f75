//! Task instances as Airflow shows them (`TaskInstanceResponse`,
//! `TaskInstanceHistoryResponse`), shaped with their DAG's definition and version.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_scheduler::DagGraph;
use updraft_store::{TaskInstance, TaskTry};
use uuid::Uuid;

use super::common::{
    dag_graph, operator_name, seconds_between, ti_state, ti_uuid, DagVersionResponse, Versions,
};
use crate::{RestError, RestState};

/// Airflow's `TaskInstanceResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskInstanceResponse {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i64,
    pub logical_date: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub duration: Option<f64>,
    pub state: Option<String>,
    pub try_number: u32,
    pub max_tries: u32,
    pub task_display_name: String,
    pub dag_display_name: String,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub pool: String,
    pub pool_slots: u32,
    pub queue: Option<String>,
    pub priority_weight: Option<i64>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub queued_when: Option<DateTime<Utc>>,
    pub scheduled_when: Option<DateTime<Utc>>,
    pub pid: Option<i64>,
    pub executor: Option<String>,
    pub executor_config: String,
    pub note: Option<String>,
    pub rendered_map_index: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub rendered_fields: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub trigger: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub triggerer_job: Option<serde_json::Value>,
    pub dag_version: Option<DagVersionResponse>,
}

/// Airflow's `TaskInstanceCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskInstanceCollectionResponse {
    pub task_instances: Vec<TaskInstanceResponse>,
    pub total_entries: u64,
}

/// Airflow's `TaskInstanceHistoryResponse`: one try of a task instance.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskInstanceHistoryResponse {
    pub task_id: String,
    pub dag_id: String,
    pub dag_run_id: String,
    pub map_index: i64,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub duration: Option<f64>,
    pub state: Option<String>,
    pub try_number: u32,
    pub max_tries: u32,
    pub task_display_name: String,
    pub dag_display_name: String,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub pool: String,
    pub pool_slots: u32,
    pub queue: Option<String>,
    pub priority_weight: Option<i64>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub queued_when: Option<DateTime<Utc>>,
    pub scheduled_when: Option<DateTime<Utc>>,
    pub pid: Option<i64>,
    pub executor: Option<String>,
    pub executor_config: String,
    pub dag_version: Option<DagVersionResponse>,
}

/// Airflow's `TaskInstanceHistoryCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskInstanceHistoryCollectionResponse {
    pub task_instances: Vec<TaskInstanceHistoryResponse>,
    pub total_entries: u64,
}

/// Shapes the task instances of one request, loading each DAG version's graph and record once.
#[derive(Default)]
pub(crate) struct Shaper {
    versions: Versions,
    graphs: HashMap<(String, i64), Option<Arc<DagGraph>>>,
}

impl Shaper {
    async fn graph(
        &mut self,
        state: &RestState,
        dag_id: &str,
        version: i64,
    ) -> Result<Option<Arc<DagGraph>>, RestError> {
        let key = (dag_id.to_string(), version);
        if let Some(graph) = self.graphs.get(&key) {
            return Ok(graph.clone());
        }
        // A version deleted with its DAG still leaves its task instances readable.
        let graph = dag_graph(state, dag_id, version).await.ok();
        self.graphs.insert(key, graph.clone());
        Ok(graph)
    }

    /// A task instance of a run with `logical_date`, pinned to DAG `version`.
    pub(crate) async fn instance(
        &mut self,
        state: &RestState,
        ti: &TaskInstance,
        logical_date: DateTime<Utc>,
        version: i64,
    ) -> Result<TaskInstanceResponse, RestError> {
        let graph = self.graph(state, &ti.dag_id, version).await?;
        let dag_version = self.versions.get(state, &ti.dag_id, version).await?;
        let (max_tries, operator) = describe(graph.as_deref(), &ti.task_id);
        Ok(TaskInstanceResponse {
            id: ti_uuid(ti.id),
            task_id: ti.task_id.clone(),
            dag_id: ti.dag_id.clone(),
            dag_run_id: ti.run_id.clone(),
            map_index: ti.map_index,
            logical_date: Some(logical_date),
            run_after: logical_date,
            start_date: ti.start_date,
            end_date: ti.end_date,
            duration: seconds_between(ti.start_date, ti.end_date),
            state: ti_state(ti.state),
            try_number: ti.try_number,
            max_tries,
            task_display_name: ti.task_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            hostname: ti.hostname.clone(),
            unixname: None,
            pool: ti.pool.clone(),
            pool_slots: 1,
            queue: Some(ti.queue.clone()),
            priority_weight: Some(ti.priority_weight),
            operator: operator.map(String::from),
            operator_name: operator.map(String::from),
            queued_when: ti.queued_at,
            scheduled_when: None,
            pid: None,
            executor: None,
            executor_config: "{}".to_string(),
            note: ti.note.clone(),
            rendered_map_index: None,
            rendered_fields: Some(serde_json::json!({})),
            trigger: None,
            triggerer_job: None,
            dag_version,
        })
    }

    /// The tries of a task instance: the finished ones from its history, then the current
    /// one unless it is among them or has not started.
    pub(crate) async fn tries(
        &mut self,
        state: &RestState,
        ti: &TaskInstance,
        history: &[TaskTry],
        version: i64,
    ) -> Result<Vec<TaskInstanceHistoryResponse>, RestError> {
        let graph = self.graph(state, &ti.dag_id, version).await?;
        let dag_version = self.versions.get(state, &ti.dag_id, version).await?;
        let (max_tries, operator) = describe(graph.as_deref(), &ti.task_id);
        let shape = |try_number: u32,
                     state: Option<String>,
                     hostname: Option<String>,
                     start: Option<DateTime<Utc>>,
                     end: Option<DateTime<Utc>>| TaskInstanceHistoryResponse {
            task_id: ti.task_id.clone(),
            dag_id: ti.dag_id.clone(),
            dag_run_id: ti.run_id.clone(),
            map_index: ti.map_index,
            start_date: start,
            end_date: end,
            duration: seconds_between(start, end),
            state,
            try_number,
            max_tries,
            task_display_name: ti.task_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            hostname,
            unixname: None,
            pool: ti.pool.clone(),
            pool_slots: 1,
            queue: Some(ti.queue.clone()),
            priority_weight: Some(ti.priority_weight),
            operator: operator.map(String::from),
            operator_name: operator.map(String::from),
            queued_when: None,
            scheduled_when: None,
            pid: None,
            executor: None,
            executor_config: "{}".to_string(),
            dag_version: dag_version.clone(),
        };
        let mut out: Vec<TaskInstanceHistoryResponse> = history
            .iter()
            .map(|t| {
                shape(
                    t.try_number,
                    ti_state(t.state),
                    t.hostname.clone(),
                    t.start_date,
                    t.end_date,
                )
            })
            .collect();
        let current_recorded = history.iter().any(|t| t.try_number == ti.try_number);
        if ti.try_number > 0 && !current_recorded {
            out.push(shape(
                ti.try_number,
                ti_state(ti.state),
                ti.hostname.clone(),
                ti.start_date,
                ti.end_date,
            ));
        }
        Ok(out)
    }
}

/// `max_tries` (the task's retries) and Airflow's operator name, from the definition.
fn describe(graph: Option<&DagGraph>, task_id: &str) -> (u32, Option<&'static str>) {
    match graph {
        Some(graph) => (
            graph.dag.task(task_id).map(|t| t.retries).unwrap_or(0),
            operator_name(&graph.dag, task_id),
        ),
        None => (0, None),
    }
}
