//! What holds a task instance back because of its previous run, for `GET …/dependencies`:
//! Airflow's "Previous Dagrun State" (`depends_on_past`, `wait_for_downstream`), in its words.

use updraft_model::TaskState;
use updraft_scheduler::{held_by_past, DagGraph};
use updraft_store::{DagRun, TaskInstance};

use super::task_instance_dependencies::{dep, TaskDependencyResponse};
use crate::{RestError, RestState};

/// The reason, if any, that the previous run holds `ti` (task `index` of `graph`) back.
pub(super) async fn reasons(
    state: &RestState,
    run: &DagRun,
    ti: &TaskInstance,
    graph: &DagGraph,
    index: usize,
) -> Result<Vec<TaskDependencyResponse>, RestError> {
    let task = &graph.dag.tasks[index];
    let mut deps = Vec::new();
    if task.past.applies() && ti.state == TaskState::None {
        let previous = state
            .store()
            .previous_dag_run(&run.dag_id, run.logical_date, graph.dag.catchup)
            .await?;
        if let Some(previous) = previous {
            let tis = state.store().task_instances(previous.id).await?;
            let mut waiting = vec![false; graph.dag.tasks.len()];
            waiting[index] = true;
            let mut ran_before = std::collections::HashSet::new();
            if !tis.iter().any(|t| t.task_id == task.task_id)
                && state
                    .store()
                    .has_earlier_task_instance(&run.dag_id, &task.task_id, run.logical_date)
                    .await?
            {
                ran_before.insert(task.task_id.clone());
            }
            if held_by_past(graph, &waiting, &tis, &ran_before)[index] {
                let unsuccessful = tis
                    .iter()
                    .filter(|t| t.task_id == task.task_id)
                    .filter(|t| !matches!(t.state, TaskState::Success | TaskState::Skipped))
                    .count();
                let reason = if unsuccessful > 0 {
                    format!(
                        "depends_on_past is true for this task, but {unsuccessful} previous task instance(s) are not in a successful state."
                    )
                } else if tis.iter().any(|t| t.task_id == task.task_id) {
                    "The tasks downstream of the previous task instance(s) haven't completed, and wait_for_downstream is True.".to_string()
                } else {
                    "depends_on_past is true for this task's DAG, but the previous task instance has not run yet.".to_string()
                };
                deps.push(dep("Previous Dagrun State", reason));
            }
        }
    }
    Ok(deps)
}
