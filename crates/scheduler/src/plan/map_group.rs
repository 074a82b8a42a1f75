//! Mapped task groups (Airflow's `@task_group` called with `.expand(…)`): every task of the
//! group expands to the same instances, and instance i of a task waits only for instance i
//! of the group's other tasks upstream of it (Airflow's "relevant upstream map indexes"),
//! while tasks outside the group see all of a group task's instances.

use smallvec::{smallvec, SmallVec};
use updraft_model::TaskState;
use updraft_store::TaskInstance;

use crate::graph::DagGraph;

/// Whether tasks `i` and `u` belong to the same mapped group.
pub(super) fn same_group(graph: &DagGraph, i: usize, u: usize) -> bool {
    let tasks = &graph.dag.tasks;
    tasks[i].map_group.is_some() && tasks[i].map_group == tasks[u].map_group
}

/// The states of upstream task `u` (of the same mapped group) that decide an instance with
/// `map_index`: the upstream instance of the same index, once there is one. A placeholder
/// (not expanded yet) sees only an upstream placeholder that will never expand (skipped,
/// upstream-failed), so that it follows it; an expanded upstream is left to the instances.
pub(super) fn upstream_in_group(
    map_index: i64,
    upstream: &[&TaskInstance],
    states: &[TaskState],
) -> super::Instances<Option<TaskState>> {
    let placeholder = match upstream {
        [only] if only.map_index < 0 && states.len() == 1 => Some(states[0]),
        _ => None,
    };
    if map_index < 0 {
        return match placeholder {
            Some(state) if state.is_finished() => smallvec![Some(state)],
            Some(_) => smallvec![Some(TaskState::None)],
            None => SmallVec::new(),
        };
    }
    if let Some(state) = placeholder {
        // The upstream will not run for any index: its state decides every instance.
        return smallvec![Some(if state.is_finished() {
            state
        } else {
            TaskState::None
        })];
    }
    let same = upstream
        .iter()
        .zip(states)
        .find(|(ti, _)| ti.map_index == map_index)
        .map(|(_, state)| *state);
    // Not found: expanded in this very pass, not planned on yet.
    smallvec![Some(same.unwrap_or(TaskState::None))]
}
