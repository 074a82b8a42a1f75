//! Planning a mapped task group: every task expands as soon as it may run (into instances
//! that wait), instance i waits only for instance i of its upstream in the group, a failure
//! at one index leaves the others alone, and a task after the group sees every instance.

use serde_json::json;
use updraft_model::{MapSource, MappedArgument, Mapping, TaskState};
use updraft_store::{Expansion, TaskInstance};

use super::tests::{graph, instances, now};
use super::*;

/// `a -> b` in mapped group `g` over three literal values, then `after`.
fn group_graph() -> DagGraph {
    let plain = graph(&["g.a", "g.b <- g.a", "after <- g.b"]);
    let mut dag = (*plain.dag).clone();
    for task in &mut dag.tasks {
        if task.task_id.starts_with("g.") {
            task.map_group = Some("g".into());
            task.mapping = Some(Mapping::Expand(vec![MappedArgument {
                name: "n".into(),
                source: MapSource::Literal(vec![json!(1), json!(2), json!(3)]),
            }]));
        }
    }
    DagGraph::new(std::sync::Arc::new(dag))
}

/// `task`'s instances with these states, ids from `first_id`.
fn expanded(
    tis: &[TaskInstance],
    task: &str,
    first_id: i64,
    states: &[TaskState],
) -> Vec<TaskInstance> {
    let base = tis.iter().find(|t| t.task_id == task).unwrap();
    states
        .iter()
        .enumerate()
        .map(|(i, state)| {
            let mut ti = base.clone();
            ti.id = first_id + i as i64;
            ti.map_index = i as i64;
            ti.state = *state;
            ti
        })
        .collect()
}

#[test]
fn a_group_task_expands_into_waiting_instances_before_its_upstream_runs() {
    let graph = group_graph();
    let tis = instances(&graph, "");
    let plan = plan_run_mapped(&graph, &tis, MapInputs::default(), now());
    // Both expand at once (g.b's instances will wait for g.a's); `after` waits for them all.
    assert_eq!(
        plan.expansions,
        vec![
            Expansion {
                ti_id: 100,
                count: 3
            },
            Expansion {
                ti_id: 101,
                count: 3
            }
        ]
    );
    let to: Vec<TaskState> = plan.transitions.iter().map(|t| t.to).collect();
    assert_eq!(to, vec![TaskState::None, TaskState::None]);
}

#[test]
fn instance_i_follows_only_instance_i_of_its_group_upstream() {
    use TaskState::*;
    let graph = group_graph();
    let base = instances(&graph, "");
    let mut tis = expanded(&base, "g.a", 200, &[Success, Failed, Running]);
    tis.extend(expanded(&base, "g.b", 300, &[None, None, None]));
    tis.push(base.iter().find(|t| t.task_id == "after").unwrap().clone());
    let plan = plan_run_mapped(&graph, &tis, MapInputs::default(), now());
    let moves: Vec<(i64, TaskState)> = plan.transitions.iter().map(|t| (t.ti_id, t.to)).collect();
    // Index 2 waits for its own g.a; `after` (all_success) already has a failed upstream.
    assert_eq!(
        moves,
        vec![
            (300, Scheduled),
            (301, UpstreamFailed),
            (102, UpstreamFailed)
        ]
    );
    assert_eq!(plan.final_state, Option::None);
}

#[test]
fn a_trigger_rule_in_a_group_counts_the_same_index_only() {
    use TaskState::*;
    // `g.b` runs when its own `g.a` failed (all_failed), index by index.
    let plain = graph(&["g.a", "g.b <- g.a all_failed"]);
    let mut dag = (*plain.dag).clone();
    for task in &mut dag.tasks {
        task.map_group = Some("g".into());
        task.mapping = Some(Mapping::Expand(vec![MappedArgument {
            name: "n".into(),
            source: MapSource::Literal(vec![json!(1), json!(2)]),
        }]));
    }
    let graph = DagGraph::new(std::sync::Arc::new(dag));
    let base = instances(&graph, "");
    let mut tis = expanded(&base, "g.a", 200, &[Failed, Success]);
    tis.extend(expanded(&base, "g.b", 300, &[None, None]));
    let plan = plan_run_mapped(&graph, &tis, MapInputs::default(), now());
    let moves: Vec<(i64, TaskState)> = plan.transitions.iter().map(|t| (t.ti_id, t.to)).collect();
    assert_eq!(moves, vec![(300, Scheduled), (301, Skipped)]);
}
