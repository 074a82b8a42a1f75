//! Planning mapped tasks: expanding when ready (over literals or upstream results), skipping
//! an empty expansion, failing a bad one, and counting every instance downstream.

use serde_json::{json, Value};
use updraft_model::{MapSource, MappedArgument, Mapping, TaskState};
use updraft_store::{Expansion, TaskInstance, XCom};

use super::tests::{graph, instances, now};
use super::*;

/// `lines` as in `graph`, with `mapped` mapped over `source`.
fn mapped_graph(lines: &[&str], mapped: &str, source: MapSource) -> DagGraph {
    let plain = graph(lines);
    let mut dag = (*plain.dag).clone();
    for task in &mut dag.tasks {
        if task.task_id == mapped {
            task.mapping = Some(Mapping::Expand(vec![MappedArgument {
                name: "bash_command".into(),
                source: source.clone(),
            }]));
        }
    }
    DagGraph::new(std::sync::Arc::new(dag))
}

fn result_of(task_id: &str, value: Value) -> XCom {
    XCom {
        task_id: task_id.into(),
        map_index: -1,
        key: "return_value".into(),
        value,
    }
}

fn moves(plan: &RunPlan) -> Vec<(i64, TaskState)> {
    plan.transitions.iter().map(|t| (t.ti_id, t.to)).collect()
}

/// `task`'s instance `map_index` in `state`, beside the other instances.
fn instance(
    tis: &[TaskInstance],
    task: &str,
    map_index: i64,
    id: i64,
    state: TaskState,
) -> TaskInstance {
    let mut ti = tis.iter().find(|t| t.task_id == task).unwrap().clone();
    ti.id = id;
    ti.map_index = map_index;
    ti.state = state;
    ti
}

#[test]
fn a_literal_mapping_expands_when_its_upstream_is_done() {
    let graph = mapped_graph(
        &["a", "m <- a"],
        "m",
        MapSource::Literal(vec![json!("x"), json!("y"), json!("z")]),
    );
    let waiting = plan_run_mapped(
        &graph,
        &instances(&graph, "a=running"),
        MapInputs::default(),
        now(),
    );
    assert!(waiting.transitions.is_empty() && waiting.expansions.is_empty());

    let plan = plan_run_mapped(
        &graph,
        &instances(&graph, "a=success"),
        MapInputs::default(),
        now(),
    );
    assert_eq!(moves(&plan), vec![(101, TaskState::Scheduled)]);
    assert_eq!(
        plan.expansions,
        vec![Expansion {
            ti_id: 101,
            count: 3
        }]
    );
    assert!(!plan.needs_xcoms);
}

#[test]
fn an_upstream_result_is_read_before_expanding() {
    let graph = mapped_graph(&["a", "m <- a"], "m", MapSource::Xcom("a".into()));
    let tis = instances(&graph, "a=success");
    let first = plan_run_mapped(&graph, &tis, MapInputs::default(), now());
    assert!(first.needs_xcoms);
    assert!(
        first.transitions.is_empty(),
        "nothing decided without the values"
    );

    let xcoms = vec![result_of("a", json!([1, 2]))];
    let inputs = MapInputs {
        xcoms: Some(&xcoms),
        max_map_length: 1024,
        ..MapInputs::default()
    };
    let plan = plan_run_mapped(&graph, &tis, inputs, now());
    assert_eq!(
        plan.expansions,
        vec![Expansion {
            ti_id: 101,
            count: 2
        }]
    );

    // Airflow: mapping over nothing skips the task, and what follows it by its rules.
    let empty = vec![result_of("a", json!([]))];
    let graph = mapped_graph(
        &["a", "m <- a", "after <- m"],
        "m",
        MapSource::Xcom("a".into()),
    );
    let plan = plan_run_mapped(
        &graph,
        &instances(&graph, "a=success"),
        MapInputs {
            xcoms: Some(&empty),
            max_map_length: 1024,
            ..MapInputs::default()
        },
        now(),
    );
    assert_eq!(
        moves(&plan),
        vec![(101, TaskState::Skipped), (102, TaskState::Skipped)]
    );
    assert!(plan.expansions.is_empty());
    assert_eq!(plan.final_state, Some(DagRunState::Success));
}

#[test]
fn a_result_that_cannot_be_mapped_fails_the_task_with_the_reason() {
    let graph = mapped_graph(&["a", "m <- a"], "m", MapSource::Xcom("a".into()));
    let tis = instances(&graph, "a=success");
    let text = vec![result_of("a", json!("abc"))];
    let plan = plan_run_mapped(
        &graph,
        &tis,
        MapInputs {
            xcoms: Some(&text),
            max_map_length: 1024,
            ..MapInputs::default()
        },
        now(),
    );
    assert_eq!(moves(&plan), vec![(101, TaskState::UpstreamFailed)]);
    assert_eq!(
        plan.mapping_errors,
        vec!["task 'm' can only map over a list or a dict, but task 'a' returned a string"]
    );
    let long = vec![result_of("a", json!([1, 2, 3]))];
    let plan = plan_run_mapped(
        &graph,
        &tis,
        MapInputs {
            xcoms: Some(&long),
            max_map_length: 2,
            ..MapInputs::default()
        },
        now(),
    );
    assert_eq!(moves(&plan), vec![(101, TaskState::UpstreamFailed)]);
    assert!(plan.mapping_errors[0].contains("more than max_map_length (2)"));
}

#[test]
fn downstream_of_a_mapped_task_counts_every_instance() {
    let graph = mapped_graph(
        &["m", "all <- m", "done <- m all_done", "one <- m one_failed"],
        "m",
        MapSource::Literal(vec![json!(1), json!(2)]),
    );
    let base = instances(&graph, "");
    let with = |first: TaskState, second: TaskState| {
        let mut tis: Vec<TaskInstance> =
            base.iter().filter(|t| t.task_id != "m").cloned().collect();
        tis.push(instance(&base, "m", 0, 10, first));
        tis.push(instance(&base, "m", 1, 11, second));
        tis
    };
    let plan = plan_run_mapped(
        &graph,
        &with(TaskState::Success, TaskState::Running),
        MapInputs::default(),
        now(),
    );
    assert!(
        plan.transitions.is_empty(),
        "one instance still runs: {plan:?}"
    );

    let plan = plan_run_mapped(
        &graph,
        &with(TaskState::Success, TaskState::Failed),
        MapInputs::default(),
        now(),
    );
    // all_success: upstream_failed; all_done: runs; one_failed: runs.
    assert_eq!(
        moves(&plan),
        vec![
            (101, TaskState::UpstreamFailed),
            (102, TaskState::Scheduled),
            (103, TaskState::Scheduled)
        ]
    );
    let mut finished = with(TaskState::Success, TaskState::Failed);
    for ti in &mut finished {
        if ti.task_id != "m" {
            ti.state = TaskState::Success;
        }
    }
    // Not a leaf: the failed instance does not fail the run.
    assert_eq!(
        plan_run_mapped(&graph, &finished, MapInputs::default(), now()).final_state,
        Some(DagRunState::Success)
    );
}

#[test]
fn mapped_instances_retry_and_run_one_by_one() {
    let graph = mapped_graph(&["m"], "m", MapSource::Literal(vec![json!(1), json!(2)]));
    let base = instances(&graph, "");
    let tis = vec![
        instance(&base, "m", 0, 10, TaskState::UpForRetry),
        instance(&base, "m", 1, 11, TaskState::Failed),
    ];
    let plan = plan_run_mapped(&graph, &tis, MapInputs::default(), now());
    assert_eq!(moves(&plan), vec![(10, TaskState::Scheduled)]);
    assert!(
        plan.expansions.is_empty(),
        "an expanded task is not expanded again"
    );
    let tis = vec![
        instance(&base, "m", 0, 10, TaskState::Success),
        instance(&base, "m", 1, 11, TaskState::Failed),
    ];
    assert_eq!(
        plan_run_mapped(&graph, &tis, MapInputs::default(), now()).final_state,
        Some(DagRunState::Failed),
        "a failed instance of a leaf fails the run"
    );
}
