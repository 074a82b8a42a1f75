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
                let summary = summarize(graph.upstream[i].iter().map(|&u| states[u]));
                match task.trigger_rule.decide(&summary) {
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

fn summarize(upstream: impl Iterator<Item = Option<TaskState>>) -> UpstreamSummary {
    let mut s = UpstreamSummary::default();
    for state in upstream {
        s.total += 1;
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
/// upstream-failed, and succeeded otherwise.
fn final_state(graph: &DagGraph, states: &[Option<TaskState>]) -> Option<DagRunState> {
    if !states.iter().flatten().all(|s| s.is_finished()) {
        return None;
    }
    let leaf_failed = states
        .iter()
        .enumerate()
        .any(|(i, s)| graph.is_leaf[i] && s.is_some_and(TaskState::is_failure));
    Some(if leaf_failed {
        DagRunState::Failed
    } else {
        DagRunState::Success
    })
}

#[cfg(test)]
mod tests;
