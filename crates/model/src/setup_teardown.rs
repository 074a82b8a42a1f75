//! Airflow's setup and teardown tasks, as decisions over a DAG's graph.
//!
//! A setup creates a resource, the work tasks downstream of it use it, and its teardown
//! (a task downstream of the setup marked `is_teardown`, with the trigger rule
//! `all_done_setup_success`) removes it whatever the work tasks did. From that follow:
//!
//! - which tasks decide a run's outcome ([`outcome_tasks`]): the leaves, where a teardown
//!   that may not fail the run (`on_failure_fail_dagrun` unset) neither counts nor keeps
//!   the tasks upstream of it from being leaves;
//! - what a teardown waits for besides its direct upstream ([`teardown_scopes`]): every task
//!   between its setups and itself;
//! - which setups a work task needs to have succeeded without being directly downstream of
//!   them ([`indirect_setups`]);
//! - what clearing a task also clears ([`clear_selection`]): its setups and their teardowns.
//!
//! Indexes are into `dag.tasks`.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::Dag;

/// Direct upstream and downstream of every task, by index.
struct Edges {
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
}

impl Edges {
    fn of(dag: &Dag) -> Edges {
        let index: HashMap<&str, usize> = dag
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.as_str(), i))
            .collect();
        let mut upstream = vec![Vec::new(); dag.tasks.len()];
        let mut downstream = vec![Vec::new(); dag.tasks.len()];
        for (i, task) in dag.tasks.iter().enumerate() {
            for dependency in &task.dependencies {
                if let Some(&u) = index.get(dependency.as_str()) {
                    upstream[i].push(u);
                    downstream[u].push(i);
                }
            }
        }
        Edges {
            upstream,
            downstream,
        }
    }
}

/// Every task reachable from `starts` along `edges` (the starts themselves only when reached
/// again), as a mask.
fn reachable(starts: &[usize], edges: &[Vec<usize>]) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut stack: Vec<usize> = starts.to_vec();
    while let Some(i) = stack.pop() {
        for &next in &edges[i] {
            if !seen[next] {
                seen[next] = true;
                stack.push(next);
            }
        }
    }
    seen
}

fn has_roles(dag: &Dag) -> bool {
    dag.tasks.iter().any(|t| !t.role.is_work())
}

/// Which tasks' states decide the run's outcome (Airflow's `_tis_for_dagrun_state`): a task
/// counts when none of its downstream tasks counts and it is not a teardown allowed to fail.
/// A DAG of nothing but such teardowns falls back to its plain leaves.
pub fn outcome_tasks(dag: &Dag) -> Vec<bool> {
    let edges = Edges::of(dag);
    let ignorable = |i: usize| {
        let role = dag.tasks[i].role;
        role.is_teardown && !role.on_failure_fail_dagrun
    };
    let effective: Vec<bool> = (0..dag.tasks.len())
        .map(|i| !ignorable(i) && edges.downstream[i].iter().all(|&d| ignorable(d)))
        .collect();
    if effective.iter().any(|&e| e) {
        effective
    } else {
        edges.downstream.iter().map(Vec::is_empty).collect()
    }
}

/// For each teardown, the tasks it waits for beyond its direct upstream: those downstream
/// of one of its (direct upstream) setups and upstream of it. Empty for every other task.
pub fn teardown_scopes(dag: &Dag) -> Vec<Vec<usize>> {
    let mut scopes = vec![Vec::new(); dag.tasks.len()];
    if !has_roles(dag) {
        return scopes;
    }
    let edges = Edges::of(dag);
    for (t, task) in dag.tasks.iter().enumerate() {
        if !task.role.is_teardown {
            continue;
        }
        let setups: Vec<usize> = edges.upstream[t]
            .iter()
            .copied()
            .filter(|&u| dag.tasks[u].role.is_setup)
            .collect();
        if setups.is_empty() {
            continue;
        }
        let above = reachable(&[t], &edges.upstream);
        let below_setups = reachable(&setups, &edges.downstream);
        scopes[t] = (0..dag.tasks.len())
            .filter(|&i| above[i] && below_setups[i] && !edges.upstream[t].contains(&i))
            .collect();
    }
    scopes
}

/// For each work task, the setups upstream of it (not directly) that must have succeeded
/// before it runs: those whose teardown is downstream of it, or that have no teardown.
/// Empty for setups and teardowns.
pub fn indirect_setups(dag: &Dag) -> Vec<Vec<usize>> {
    let mut needed = vec![Vec::new(); dag.tasks.len()];
    if !has_roles(dag) {
        return needed;
    }
    let edges = Edges::of(dag);
    for (i, task) in dag.tasks.iter().enumerate() {
        if !task.role.is_work() {
            continue;
        }
        needed[i] = relevant_setups(dag, &edges, i)
            .into_iter()
            .filter(|s| !edges.upstream[i].contains(s))
            .collect();
    }
    needed
}

/// Airflow's relevant upstream setups of task `i`: every setup upstream of it whose teardowns
/// include one downstream of `i`, or that has no teardown.
fn relevant_setups(dag: &Dag, edges: &Edges, i: usize) -> Vec<usize> {
    let above = reachable(&[i], &edges.upstream);
    let below = reachable(&[i], &edges.downstream);
    (0..dag.tasks.len())
        .filter(|&s| above[s] && dag.tasks[s].role.is_setup)
        .filter(|&s| {
            let mut teardowns = teardowns_of(dag, edges, s).peekable();
            teardowns.peek().is_none() || teardowns.any(|t| below[t])
        })
        .collect()
}

/// The teardowns directly downstream of setup `s`.
fn teardowns_of<'a>(dag: &'a Dag, edges: &'a Edges, s: usize) -> impl Iterator<Item = usize> + 'a {
    edges.downstream[s]
        .iter()
        .copied()
        .filter(|&d| dag.tasks[d].role.is_teardown)
}

/// What clearing `task_ids` (with their upstream and/or downstream when asked) clears, as
/// Airflow's `partial_subset` selects it: besides the tasks themselves, a work task brings
/// its relevant setups and their teardowns, a task upstream that is a setup brings its
/// teardowns, and a setup cleared without its downstream brings its teardowns. Ids that
/// name no task are left out; the answer is in the DAG's task order.
pub fn clear_selection(
    dag: &Dag,
    task_ids: &[String],
    include_upstream: bool,
    include_downstream: bool,
) -> Vec<String> {
    let n = dag.tasks.len();
    let edges = Edges::of(dag);
    let wanted: HashSet<&str> = task_ids.iter().map(String::as_str).collect();
    let matched: Vec<usize> = (0..n)
        .filter(|&i| wanted.contains(dag.tasks[i].task_id.as_str()))
        .collect();
    let mut is_matched = vec![false; n];
    for &m in &matched {
        is_matched[m] = true;
    }
    let none = || vec![false; n];
    let below = if include_downstream {
        reachable(&matched, &edges.downstream)
    } else {
        none()
    };
    let above = if include_upstream {
        reachable(&matched, &edges.upstream)
    } else {
        none()
    };
    let mut selected: Vec<bool> = (0..n)
        .map(|i| is_matched[i] || below[i] || above[i])
        .collect();
    if has_roles(dag) {
        let role = |i: usize| dag.tasks[i].role;
        // Work tasks whose relevant setups (and those setups' teardowns) come along.
        let needing_setups = (0..n).filter(|&i| {
            role(i).is_work()
                && ((below[i] && !is_matched[i]) || (is_matched[i] && !include_upstream))
        });
        let mut setups: BTreeSet<usize> = BTreeSet::new();
        for i in needing_setups.collect::<Vec<_>>() {
            setups.extend(relevant_setups(dag, &edges, i));
        }
        // Setups upstream of what is cleared, and matched setups cleared without their
        // downstream, bring their teardowns.
        setups.extend((0..n).filter(|&i| role(i).is_setup && above[i]));
        setups.extend(
            matched
                .iter()
                .copied()
                .filter(|&m| role(m).is_setup && !include_downstream),
        );
        for s in setups {
            selected[s] = true;
            for t in teardowns_of(dag, &edges, s) {
                selected[t] = true;
            }
        }
    }
    (0..n)
        .filter(|&i| selected[i])
        .map(|i| dag.tasks[i].task_id.clone())
        .collect()
}

#[cfg(test)]
mod tests;
