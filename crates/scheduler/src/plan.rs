//! Deciding what happens next in one DAG run: which tasks become ready, skipped or
//! upstream-failed by their trigger rules, which retries are due, and whether the run is over.
//! Pure: the caller loads the task instances and applies the plan as compare-and-set writes.

use chrono::{DateTime, Utc};
use updraft_model::trigger_rule::{Decision, UpstreamSummary};
use updraft_model::{DagRunState, Operator, TaskState};
use updraft_store::{TaskInstance, Transition};

use crate::graph::DagGraph;

#[derive(Debug, Default, PartialEq)]
pub struct RunPlan {
    pub transitions: Vec<Transition>,
    /// Set when every task is finished once the transitions are applied.
    pub final_state: Option<DagRunState>,
}

pub fn plan_run(graph: &DagGraph, tis: &[TaskInstance], now: DateTime<Utc>) -> RunPlan {
    let mut by_task: Vec<Option<&TaskInstance>> = vec![None; graph.dag.tasks.len()];
    for ti in tis {
        if let Some(&i) = graph.index.get(&ti.task_id) {
            by_task[i] = Some(ti);
        }
    }
    let mut states: Vec<Option<TaskState>> = by_task.iter().map(|t| t.map(|ti| ti.state)).collect();
    let mut plan = RunPlan::default();
    for &i in &graph.topological {
        let Some(ti) = by_task[i] else { continue };
        let task = &graph.dag.tasks[i];
        let to = match ti.state {
            TaskState::None => {
                let summary = summarize(
                    graph.upstream[i]
                        .iter()
                        .map(|&u| (states[u], graph.dag.tasks[u].role.is_setup)),
                );
                let decision =
                    match setups_decide(graph.indirect_setups[i].iter().map(|&s| states[s])) {
                        Some(settled) => settled,
                        None => match task.trigger_rule.decide(&summary) {
                            // A teardown also waits for every task between its setups and itself.
                            Decision::Run
                                if !graph.teardown_scope[i]
                                    .iter()
                                    .all(|&t| states[t].is_none_or(TaskState::is_finished)) =>
                            {
                                Decision::Wait
                            }
                            decision => decision,
                        },
                    };
                match decision {
                    Decision::Wait => None,
                    Decision::Run if task.operator == Operator::Empty => Some(TaskState::Success),
                    Decision::Run => Some(TaskState::Scheduled),
                    Decision::Skip => Some(TaskState::Skipped),
                    Decision::UpstreamFailed => Some(TaskState::UpstreamFailed),
                }
            }
            TaskState::UpForRetry if ti.next_retry_at.is_none_or(|at| at <= now) => {
                Some(TaskState::Scheduled)
            }
            _ => None,
        };
        if let Some(to) = to {
            states[i] = Some(to);
            plan.transitions.push(Transition {
                ti_id: ti.id,
                try_number: ti.try_number,
                from: ti.state,
                to,
                now,
                new_try: false,
                next_retry_at: None,
            });
        }
    }
    plan.final_state = final_state(graph, &states);
    plan
}

/// What the setups a work task needs beyond its direct upstream decide (Airflow's setup
/// constraint): a failed one fails it, a skipped one skips it, an unfinished one keeps it
/// waiting; `None` when they all succeeded, and its trigger rule decides.
fn setups_decide(setups: impl Iterator<Item = Option<TaskState>>) -> Option<Decision> {
    let (mut skipped, mut waiting) = (false, false);
    for state in setups {
        match state {
            Some(TaskState::Success) | Some(TaskState::Removed) | None => {}
            Some(TaskState::Failed) | Some(TaskState::UpstreamFailed) => {
                return Some(Decision::UpstreamFailed)
            }
            Some(TaskState::Skipped) => skipped = true,
            Some(_) => waiting = true,
        }
    }
    if skipped {
        Some(Decision::Skip)
    } else if waiting {
        Some(Decision::Wait)
    } else {
        None
    }
}

/// Counts the states of a task's direct upstream, given with whether each is a setup.
fn summarize(upstream: impl Iterator<Item = (Option<TaskState>, bool)>) -> UpstreamSummary {
    let mut s = UpstreamSummary::default();
    for (state, is_setup) in upstream {
        s.total += 1;
        if is_setup {
            s.setups += 1;
            match state {
                Some(TaskState::Success) => s.setup_success += 1,
                Some(TaskState::Skipped) => s.setup_skipped += 1,
                _ => {}
            }
        }
        match state {
            Some(TaskState::Success) => s.success += 1,
            Some(TaskState::Failed) => s.failed += 1,
            Some(TaskState::UpstreamFailed) => s.upstream_failed += 1,
            Some(TaskState::Skipped) => s.skipped += 1,
            Some(TaskState::Removed) | None => s.removed += 1,
            _ => continue,
        }
        s.done += 1;
    }
    s
}

/// Airflow's rule: once every task is finished, the run failed if any leaf failed or was
/// upstream-failed, and succeeded otherwise; a teardown counts only with
/// `on_failure_fail_dagrun`, and does not hide the tasks upstream of it.
fn final_state(graph: &DagGraph, states: &[Option<TaskState>]) -> Option<DagRunState> {
    if !states.iter().flatten().all(|s| s.is_finished()) {
        return None;
    }
    let leaf_failed = states
        .iter()
        .enumerate()
        .any(|(i, s)| graph.decides_outcome[i] && s.is_some_and(TaskState::is_failure));
    Some(if leaf_failed {
        DagRunState::Failed
    } else {
        DagRunState::Success
    })
}

#[cfg(test)]
mod tests;
