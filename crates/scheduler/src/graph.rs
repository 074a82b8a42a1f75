//! A DAG's task graph in index form: topological order, upstream lists and leaves, computed
//! once per DAG version so that evaluating a run does no string searching.

use std::collections::HashMap;
use std::sync::Arc;

use updraft_model::{setup_teardown, Dag};

#[derive(Debug)]
pub struct DagGraph {
    pub dag: Arc<Dag>,
    /// Task indexes (into `dag.tasks`) with every task after all of its upstream.
    pub topological: Vec<usize>,
    /// Each task's place in `topological` (`u32::MAX` for a task left out of it).
    pub topological_position: Vec<u32>,
    pub upstream: Vec<Vec<usize>>,
    pub downstream: Vec<Vec<usize>>,
    /// The tasks whose plan reads each task's state: its downstream, the work tasks it is an
    /// indirect setup of, and the teardowns whose scope it is in.
    pub dependents: Vec<Vec<usize>>,
    /// The tasks whose states decide the run's outcome: the leaves, not counting teardowns
    /// that may not fail the run (`setup_teardown::outcome_tasks`).
    pub decides_outcome: Vec<bool>,
    /// Per teardown, the tasks between its setups and itself, which it waits for too.
    pub teardown_scope: Vec<Vec<usize>>,
    /// Per work task, the setups not directly upstream of it that must succeed first.
    pub indirect_setups: Vec<Vec<usize>>,
    pub index: HashMap<String, usize>,
    /// Whether any task has callbacks (only then may a plan's transitions notify).
    pub any_callbacks: bool,
    /// Whether any task depends on its past: only then may a plan have to read the run before.
    pub any_depends_on_past: bool,
    /// The tasks that limit their own instances (`max_active_tis_per_dag`/`_per_dagrun`).
    pub task_limits: crate::queueing::DagTaskLimits,
}

impl DagGraph {
    /// Builds the graph of a validated DAG. Dependencies that name no task are ignored (the
    /// loader rejects them); a cycle leaves its tasks out of the order (the loader rejects those too).
    pub fn new(dag: Arc<Dag>) -> Self {
        let index: HashMap<String, usize> = dag
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.clone(), i))
            .collect();
        let upstream: Vec<Vec<usize>> = dag
            .tasks
            .iter()
            .map(|t| {
                t.dependencies
                    .iter()
                    .filter_map(|d| index.get(d).copied())
                    .collect()
            })
            .collect();
        let mut remaining: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let mut downstream = vec![Vec::new(); dag.tasks.len()];
        for (task, ups) in upstream.iter().enumerate() {
            for &u in ups {
                downstream[u].push(task);
            }
        }
        let mut topological: Vec<usize> = (0..dag.tasks.len())
            .filter(|&i| remaining[i] == 0)
            .collect();
        let mut next = 0;
        while next < topological.len() {
            let current = topological[next];
            for &d in &downstream[current] {
                remaining[d] -= 1;
                if remaining[d] == 0 {
                    topological.push(d);
                }
            }
            next += 1;
        }
        let task_limits = dag
            .tasks
            .iter()
            .filter(|t| t.max_active_tis_per_dag.is_some() || t.max_active_tis_per_dagrun.is_some())
            .map(|t| {
                (
                    t.task_id.clone(),
                    (t.max_active_tis_per_dag, t.max_active_tis_per_dagrun),
                )
            })
            .collect();
        let mut topological_position = vec![u32::MAX; dag.tasks.len()];
        for (at, &task) in topological.iter().enumerate() {
            topological_position[task] = u32::try_from(at).unwrap_or(u32::MAX);
        }
        let indirect_setups = setup_teardown::indirect_setups(&dag);
        let teardown_scope = setup_teardown::teardown_scopes(&dag);
        let mut dependents = downstream.clone();
        for (task, (setups, scope)) in indirect_setups.iter().zip(&teardown_scope).enumerate() {
            for &read in setups.iter().chain(scope) {
                if !dependents[read].contains(&task) {
                    dependents[read].push(task);
                }
            }
        }
        DagGraph {
            any_depends_on_past: dag.tasks.iter().any(|t| t.past.applies()),
            task_limits,
            decides_outcome: setup_teardown::outcome_tasks(&dag),
            any_callbacks: dag.tasks.iter().any(|t| !t.callbacks.is_empty()),
            teardown_scope,
            indirect_setups,
            dag,
            topological,
            topological_position,
            upstream,
            downstream,
            dependents,
            index,
        }
    }
}
