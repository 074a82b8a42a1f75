//! Runs that depend on their past: Airflow's `depends_on_past` and `wait_for_downstream`. A
//! task instance of such a task does not start until the same task in the previous run (by
//! logical date; with `catchup`, the previous run that is not manual) succeeded or was
//! skipped, and with `wait_for_downstream` also the tasks directly downstream of it there.

use std::collections::{HashMap, HashSet};

use updraft_model::TaskState;
use updraft_store::{DagRun, TaskInstance};

use crate::kept_states::KeptRun;
use crate::{DagGraph, Scheduler, SchedulerError};

/// Which tasks of a run may not start yet (by index into the DAG's tasks), given the task
/// instances of its previous run. Only the tasks in `waiting` (their instance has not started
/// yet) are looked at. A task with no instance in the previous run waits, unless it has none
/// in any earlier run either (it is new: not in `ran_before`) and it has
/// `ignore_first_depends_on_past`, Airflow 3's default.
pub fn held_by_past(
    graph: &DagGraph,
    waiting: &[bool],
    previous: &[TaskInstance],
    ran_before: &HashSet<String>,
) -> Vec<bool> {
    let mut by_task: HashMap<&str, Vec<TaskState>> = HashMap::new();
    for ti in previous {
        by_task
            .entry(ti.task_id.as_str())
            .or_default()
            .push(ti.state);
    }
    let done = |task_id: &str| -> Option<bool> {
        by_task.get(task_id).map(|states| {
            states
                .iter()
                .all(|s| matches!(s, TaskState::Success | TaskState::Skipped))
        })
    };
    graph
        .dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            if !waiting.get(i).copied().unwrap_or(false) || !task.past.applies() {
                return false;
            }
            match done(&task.task_id) {
                None => {
                    !task.past.ignore_first_depends_on_past || ran_before.contains(&task.task_id)
                }
                Some(false) => true,
                Some(true) if task.past.wait_for_downstream => graph.downstream[i]
                    .iter()
                    .any(|&d| done(&graph.dag.tasks[d].task_id) == Some(false)),
                Some(true) => false,
            }
        })
        .collect()
}

impl Scheduler {
    /// The tasks of `run` that wait for its previous run ([`held_by_past`]); `None` when none
    /// does (no task of the DAG depends on its past, or there is no previous run). Reads the
    /// previous run only when a task depending on its past has an instance yet to start.
    pub(crate) async fn held_tasks(
        &self,
        run: &DagRun,
        graph: &DagGraph,
    ) -> Result<Option<Vec<bool>>, SchedulerError> {
        let waiting: Vec<bool> = {
            let kept = self.kept();
            let tis = kept.get(&run.id).map(KeptRun::tis).unwrap_or_default();
            let mut waiting = vec![false; graph.dag.tasks.len()];
            for ti in tis.iter().filter(|ti| ti.state == TaskState::None) {
                if let Some(&i) = graph.index.get(&ti.task_id) {
                    waiting[i] = graph.dag.tasks[i].past.applies();
                }
            }
            waiting
        };
        let held = if !waiting.contains(&true) {
            None
        } else {
            match self
                .store
                .previous_dag_run(&run.dag_id, run.logical_date, graph.dag.catchup)
                .await?
            {
                None => None,
                Some(run_before) => {
                    let previous = self.store.task_instances(run_before.id).await?;
                    let mut ran_before = HashSet::new();
                    for (i, task) in graph.dag.tasks.iter().enumerate() {
                        let missing = waiting[i]
                            && task.past.ignore_first_depends_on_past
                            && !previous.iter().any(|ti| ti.task_id == task.task_id);
                        if missing
                            && self
                                .store
                                .has_earlier_task_instance(
                                    &run.dag_id,
                                    &task.task_id,
                                    run.logical_date,
                                )
                                .await?
                        {
                            ran_before.insert(task.task_id.clone());
                        }
                    }
                    Some(held_by_past(graph, &waiting, &previous, &ran_before))
                        .filter(|h| h.contains(&true))
                }
            }
        };
        if let Ok(mut waiters) = self.past_waiters.lock() {
            let runs = waiters.entry(run.dag_id.clone()).or_default();
            if held.is_some() {
                runs.insert(run.id);
            } else {
                runs.remove(&run.id);
            }
        }
        Ok(held)
    }

    /// The runs held by their past (as of their last evaluation) in the DAGs of `runs`, other
    /// than `runs` themselves: what a change in `runs` may release.
    pub(crate) fn past_waiters_of(&self, runs: &[&DagRun]) -> HashSet<i64> {
        let Ok(waiters) = self.past_waiters.lock() else {
            return HashSet::new();
        };
        let changed: HashSet<i64> = runs.iter().map(|r| r.id).collect();
        runs.iter()
            .filter_map(|r| waiters.get(&r.dag_id))
            .flatten()
            .filter(|id| !changed.contains(id))
            .copied()
            .collect()
    }

    /// Every run that waited for its past when last evaluated.
    pub(crate) fn all_past_waiters(&self) -> HashSet<i64> {
        self.past_waiters
            .lock()
            .map(|waiters| waiters.values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets a finished run as a waiter.
    pub(crate) fn forget_past_waiter(&self, run: &DagRun) {
        if let Ok(mut waiters) = self.past_waiters.lock() {
            if let Some(runs) = waiters.get_mut(&run.dag_id) {
                runs.remove(&run.id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
