//! `GET /dags/{dag_id}/tasks` and `GET /dags/{dag_id}/tasks/{task_id}`: a DAG's tasks as
//! Airflow's operators.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{Dag, Operator, Task};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{current_dag, PathParams, QueryParams};
use crate::auth::{Access, Action, Resource};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    ("get_tasks", Access::Require(Action::Read, Resource::Dag)),
    ("get_task", Access::Require(Action::Read, Resource::Dag)),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_tasks))
        .routes(routes!(get_task))
}

/// Airflow's `TimeDelta`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimeDelta {
    #[serde(rename = "__type")]
    pub kind: String,
    pub days: u64,
    pub seconds: u64,
    pub microseconds: u32,
}

impl From<Duration> for TimeDelta {
    fn from(d: Duration) -> Self {
        let secs = d.as_secs();
        TimeDelta {
            kind: "TimeDelta".to_string(),
            days: secs / 86_400,
            seconds: secs % 86_400,
            microseconds: d.subsec_micros(),
        }
    }
}

/// Airflow's `TaskResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskResponse {
    pub task_id: Option<String>,
    pub task_display_name: Option<String>,
    pub owner: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub trigger_rule: Option<String>,
    pub depends_on_past: bool,
    pub wait_for_downstream: bool,
    pub retries: Option<f64>,
    pub queue: Option<String>,
    pub pool: Option<String>,
    pub pool_slots: Option<f64>,
    pub execution_timeout: Option<TimeDelta>,
    pub retry_delay: Option<TimeDelta>,
    pub retry_exponential_backoff: f64,
    pub priority_weight: Option<f64>,
    pub weight_rule: Option<String>,
    pub ui_color: Option<String>,
    pub ui_fgcolor: Option<String>,
    pub template_fields: Option<Vec<String>>,
    pub downstream_task_ids: Option<Vec<String>>,
    pub doc_md: Option<String>,
    pub operator_name: Option<String>,
    #[schema(value_type = Object)]
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    #[schema(value_type = Object)]
    pub class_ref: Option<serde_json::Value>,
    pub is_mapped: Option<bool>,
    pub extra_links: Vec<String>,
}

impl TaskResponse {
    pub(crate) fn new(dag: &Dag, task: &Task) -> Self {
        let (operator, module, template_fields, color) = match &task.operator {
            Operator::Bash { .. } => (
                "BashOperator",
                "airflow.providers.standard.operators.bash",
                vec!["bash_command", "env", "cwd"],
                "#f0ede4",
            ),
            Operator::Empty => (
                "EmptyOperator",
                "airflow.providers.standard.operators.empty",
                vec![],
                "#e8f7e4",
            ),
            Operator::Python { python_kind, .. } => (
                super::common::python_operator_name(*python_kind),
                "airflow.providers.standard.operators.python",
                vec!["templates_dict", "op_args", "op_kwargs"],
                "#ffefeb",
            ),
            Operator::Http(_) => (
                "HttpOperator",
                "airflow.providers.http.operators.http",
                vec!["endpoint", "data", "headers"],
                "#f4a460",
            ),
            Operator::Docker(_) => (
                "DockerOperator",
                "airflow.providers.docker.operators.docker",
                vec!["image", "command", "environment"],
                "#fff",
            ),
            Operator::FileSensor(_) => (
                "FileSensor",
                "airflow.providers.standard.sensors.filesystem",
                vec!["filepath"],
                "#91818a",
            ),
            Operator::TimeDeltaSensor { .. } => (
                "TimeDeltaSensor",
                "airflow.providers.standard.sensors.time_delta",
                vec![],
                "#fff",
            ),
            Operator::TimeSensor { .. } => (
                "TimeSensor",
                "airflow.providers.standard.sensors.time",
                vec![],
                "#fff",
            ),
            Operator::DateTimeSensor { .. } => (
                "DateTimeSensor",
                "airflow.providers.standard.sensors.date_time",
                vec!["target_time"],
                "#fff",
            ),
            Operator::TriggerDagRun(_) => (
                "TriggerDagRunOperator",
                "airflow.providers.standard.operators.trigger_dagrun",
                vec![
                    "trigger_dag_id",
                    "trigger_run_id",
                    "logical_date",
                    "conf",
                    "wait_for_completion",
                    "skip_when_already_exists",
                ],
                "#ffefeb",
            ),
            Operator::ExternalTaskMarker(_) => (
                "ExternalTaskMarker",
                "airflow.providers.standard.sensors.external_task",
                vec!["external_dag_id", "external_task_id", "logical_date"],
                "#4db7db",
            ),
            Operator::ExternalTaskSensor(_) => (
                "ExternalTaskSensor",
                "airflow.providers.standard.sensors.external_task",
                vec![
                    "external_dag_id",
                    "external_task_id",
                    "external_task_ids",
                    "external_task_group_id",
                ],
                "#4db7db",
            ),
        };
        let mut downstream: Vec<String> = dag
            .downstream_of(&task.task_id)
            .map(|t| t.task_id.clone())
            .collect();
        downstream.sort();
        TaskResponse {
            task_id: Some(task.task_id.clone()),
            task_display_name: Some(task.task_id.clone()),
            owner: Some("airflow".to_string()),
            start_date: dag.start_date,
            end_date: dag.end_date,
            trigger_rule: Some(task.trigger_rule.as_str().to_string()),
            // As in Airflow, `wait_for_downstream` turns `depends_on_past` on.
            depends_on_past: task.past.applies(),
            wait_for_downstream: task.past.wait_for_downstream,
            retries: Some(f64::from(task.retries)),
            queue: Some(task.queue.clone()),
            pool: Some(task.pool.clone()),
            pool_slots: Some(1.0),
            execution_timeout: task.execution_timeout.map(TimeDelta::from),
            retry_delay: Some(task.retry_delay.into()),
            retry_exponential_backoff: if task.retry_exponential_backoff {
                2.0
            } else {
                0.0
            },
            priority_weight: Some(task.priority_weight as f64),
            weight_rule: Some("downstream".to_string()),
            ui_color: Some(color.to_string()),
            ui_fgcolor: Some("#000".to_string()),
            template_fields: Some(template_fields.into_iter().map(String::from).collect()),
            downstream_task_ids: Some(downstream),
            doc_md: None,
            operator_name: Some(operator.to_string()),
            params: Some(serde_json::Map::new()),
            class_ref: Some(serde_json::json!({
                "module_path": module,
                "class_name": operator,
            })),
            is_mapped: Some(false),
            extra_links: Vec::new(),
        }
    }
}

/// Airflow's `TaskCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskCollectionResponse {
    pub tasks: Vec<TaskResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskOrder {
    /// A field of the task (`task_id` by default; `-` for descending).
    pub order_by: Option<String>,
}

/// The tasks of a DAG's current version.
#[utoipa::path(get, path = "/dags/{dag_id}/tasks", operation_id = "get_tasks", tag = "Task",
    params(("dag_id" = String, Path), TaskOrder),
    responses((status = 200, body = TaskCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn get_tasks(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(order): QueryParams<TaskOrder>,
) -> Result<Json<TaskCollectionResponse>, RestError> {
    let (_, graph) = current_dag(&state, &dag_id).await?;
    let dag = &graph.dag;
    let mut tasks: Vec<TaskResponse> = dag
        .tasks
        .iter()
        .map(|t| TaskResponse::new(dag, t))
        .collect();
    let order = order.order_by.unwrap_or_else(|| "task_id".to_string());
    let (field, descending) = match order.strip_prefix('-') {
        Some(field) => (field, true),
        None => (order.as_str(), false),
    };
    let key = |t: &TaskResponse| -> Result<serde_json::Value, RestError> {
        let value = serde_json::to_value(t).map_err(|e| RestError::bad_request(e.to_string()))?;
        value.get(field).cloned().ok_or_else(|| {
            RestError::bad_request(format!("'{field}' is not an attribute of a task"))
        })
    };
    let mut keyed = Vec::with_capacity(tasks.len());
    for task in tasks.drain(..) {
        keyed.push((sort_key(&key(&task)?), task));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        keyed.reverse();
    }
    let tasks: Vec<TaskResponse> = keyed.into_iter().map(|(_, t)| t).collect();
    Ok(Json(TaskCollectionResponse {
        total_entries: tasks.len() as u64,
        tasks,
    }))
}

/// A total order on the JSON values of a field: numbers by value, everything else as text.
fn sort_key(value: &serde_json::Value) -> (u8, i128, String) {
    match value {
        serde_json::Value::Null => (0, 0, String::new()),
        serde_json::Value::Number(n) => {
            (1, (n.as_f64().unwrap_or(0.0) * 1e6) as i128, String::new())
        }
        serde_json::Value::String(s) => (2, 0, s.clone()),
        other => (3, 0, other.to_string()),
    }
}

/// One task of a DAG's current version.
#[utoipa::path(get, path = "/dags/{dag_id}/tasks/{task_id}", operation_id = "get_task", tag = "Task",
    params(("dag_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_task(
    State(state): State<RestState>,
    PathParams((dag_id, task_id)): PathParams<(String, String)>,
) -> Result<Json<TaskResponse>, RestError> {
    let (_, graph) = current_dag(&state, &dag_id).await?;
    let task = graph
        .dag
        .task(&task_id)
        .ok_or_else(|| RestError::not_found(format!("Task with id {task_id} not found")))?;
    Ok(Json(TaskResponse::new(&graph.dag, task)))
}
