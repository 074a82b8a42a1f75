//! `GET …/taskInstances/{task_id}[/{map_index}]/dependencies`: why a task instance is not
//! running now, in Airflow's terms.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use updraft_model::{Decision, TaskState, UpstreamSummary};
use updraft_store::TaskInstance;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{dag_graph, PathParams};
use super::task_instances::task_instance_at;
use crate::auth::{Access, Action, Resource};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_task_instance_dependencies",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_mapped_task_instance_dependencies",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_task_instance_dependencies))
        .routes(routes!(get_mapped_task_instance_dependencies))
}

/// Airflow's `TaskDependencyResponse`: a condition that keeps the task from running.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskDependencyResponse {
    pub name: String,
    pub reason: String,
}

/// Airflow's `TaskDependencyCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskDependencyCollectionResponse {
    pub dependencies: Vec<TaskDependencyResponse>,
}

pub(super) fn dep(name: &str, reason: String) -> TaskDependencyResponse {
    TaskDependencyResponse {
        name: name.to_string(),
        reason,
    }
}

/// Why the task instance is not running now, in Airflow's terms (empty: nothing holds it).
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dependencies",
    operation_id = "get_task_instance_dependencies", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskDependencyCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_task_instance_dependencies(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id)): PathParams<(String, String, String)>,
) -> Result<Json<TaskDependencyCollectionResponse>, RestError> {
    dependencies(&state, &dag_id, &run_id, &task_id, -1).await
}

/// [`get_task_instance_dependencies`] of one instance of a mapped task.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dependencies",
    operation_id = "get_mapped_task_instance_dependencies", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("map_index" = i64, Path)),
    responses((status = 200, body = TaskDependencyCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_mapped_task_instance_dependencies(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id, map_index)): PathParams<(String, String, String, i64)>,
) -> Result<Json<TaskDependencyCollectionResponse>, RestError> {
    dependencies(&state, &dag_id, &run_id, &task_id, map_index).await
}

async fn dependencies(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
) -> Result<Json<TaskDependencyCollectionResponse>, RestError> {
    let state = state.clone();
    let (dag_id, task_id) = (dag_id.to_string(), task_id.to_string());
    let (run, ti) = task_instance_at(&state, &dag_id, run_id, &task_id, map_index).await?;
    let mut deps = Vec::new();
    let waiting = matches!(
        ti.state,
        TaskState::None | TaskState::Scheduled | TaskState::UpForRetry
    );
    if !waiting {
        if !matches!(ti.state, TaskState::Queued | TaskState::Running) {
            deps.push(dep(
                "Task Instance State",
                format!(
                    "Task is in the '{}' state which is not a valid state for execution. The task must be cleared in order to be run.",
                    ti.state.as_str()
                ),
            ));
        }
        return Ok(Json(TaskDependencyCollectionResponse {
            dependencies: deps,
        }));
    }
    let record = super::common::dag_record(&state, &dag_id).await?;
    if record.is_paused {
        deps.push(dep(
            "Dag Not Paused",
            format!("Task's DAG '{dag_id}' is paused."),
        ));
    }
    if run.state != updraft_model::DagRunState::Running {
        deps.push(dep(
            "Dagrun Running",
            format!(
                "Task instance's dagrun was not in the 'running' state but in the state '{}'.",
                run.state.as_str()
            ),
        ));
    }
    let now = Utc::now();
    if ti.state == TaskState::UpForRetry {
        if let Some(at) = ti.next_retry_at.filter(|at| *at > now) {
            deps.push(dep(
                "Not In Retry Period",
                format!(
                    "Task is not ready for retry yet but will be retried automatically. Current date is {} and task will be retried at {}.",
                    now.to_rfc3339(),
                    at.to_rfc3339()
                ),
            ));
        }
    }
    let graph = dag_graph(&state, &run.dag_id, run.dag_version).await?;
    if let (Some(&index), Some(task)) = (graph.index.get(&task_id), graph.dag.task(&task_id)) {
        let upstream_ids: Vec<&str> = graph.upstream[index]
            .iter()
            .map(|&u| graph.dag.tasks[u].task_id.as_str())
            .collect();
        if !upstream_ids.is_empty() {
            // In a mapped group an instance waits only for its own index of the group's tasks.
            let counts = |t: &TaskInstance| {
                let same_group = task.map_group.is_some()
                    && graph.dag.task(&t.task_id).map(|u| &u.map_group) == Some(&task.map_group);
                !same_group || ti.map_index < 0 || t.map_index == ti.map_index
            };
            let tis: Vec<TaskInstance> = state
                .store()
                .task_instances(run.id)
                .await?
                .into_iter()
                .filter(counts)
                .collect();
            let states: Vec<TaskState> = tis
                .iter()
                .filter(|t| upstream_ids.contains(&t.task_id.as_str()))
                .map(|t| t.state)
                .collect();
            let mut summary = UpstreamSummary::from_states(states.iter().copied());
            // A teardown's rule looks at its setups among them.
            for t in tis
                .iter()
                .filter(|t| upstream_ids.contains(&t.task_id.as_str()))
            {
                if graph.dag.task(&t.task_id).is_some_and(|u| u.role.is_setup) {
                    summary.setups += 1;
                    summary.setup_success += usize::from(t.state == TaskState::Success);
                    summary.setup_skipped += usize::from(t.state == TaskState::Skipped);
                }
            }
            if task.trigger_rule.decide(&summary) != Decision::Run {
                deps.push(dep(
                    "Trigger Rule",
                    format!(
                        "Task's trigger rule '{}' requires its upstream tasks to be in other states: upstream_states=[success: {}, failed: {}, upstream_failed: {}, skipped: {}, removed: {}, done: {} of {}], upstream_task_ids={:?}",
                        task.trigger_rule.as_str(),
                        summary.success,
                        summary.failed,
                        summary.upstream_failed,
                        summary.skipped,
                        summary.removed,
                        summary.done,
                        summary.total,
                        upstream_ids
                    ),
                ));
            }
        }
        deps.extend(super::ti_run_dependencies::reasons(&state, &run, &ti, &graph, index).await?);
        let occupancy = state.store().occupancy().await?;
        if let Some(&slots) = occupancy.pool_slots.get(&ti.pool) {
            let used = occupancy.per_pool.get(&ti.pool).copied().unwrap_or(0);
            if used >= slots {
                deps.push(dep(
                    "Pool Slots Available",
                    format!(
                        "Not scheduling since there are {} open slots in pool {} and require 1 pool slots",
                        slots.saturating_sub(used),
                        ti.pool
                    ),
                ));
            }
        }
        let running = occupancy.per_dag.get(&dag_id).copied().unwrap_or(0);
        if running >= graph.dag.max_active_tasks {
            deps.push(dep(
                "Dag Max Active Tasks",
                format!(
                    "The maximum number of running tasks ({}) for this task's DAG '{dag_id}' has been reached.",
                    graph.dag.max_active_tasks
                ),
            ));
        }
    }
    Ok(Json(TaskDependencyCollectionResponse {
        dependencies: deps,
    }))
}
