//! Which tasks wait for their past, and that waiting holds back only their start.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use updraft_model::{Dag, Operator, PastDependency, Schedule, Task, TaskState};
use updraft_store::TaskInstance;

use super::held_by_past;
use crate::{plan_run_held, DagGraph, MapInputs};

/// `a -> b -> c`; `a` depends on its past with the given settings.
fn chain(past: PastDependency) -> DagGraph {
    let mut tasks: Vec<Task> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            Task::new(
                *id,
                Operator::Bash {
                    bash_command: "true".into(),
                },
            )
        })
        .collect();
    tasks[1].dependencies = vec!["a".into()];
    tasks[2].dependencies = vec!["b".into()];
    tasks[0].past = past;
    DagGraph::new(Arc::new(Dag {
        tasks,
        ..Dag::new("d", Schedule::None)
    }))
}

fn ti(id: i64, task_id: &str, state: TaskState) -> TaskInstance {
    TaskInstance {
        id,
        dag_run_id: 1,
        dag_id: "d".into(),
        run_id: "r".into(),
        task_id: task_id.into(),
        map_index: -1,
        try_number: 0,
        state,
        queue: "default".into(),
        pool: "default_pool".into(),
        priority_weight: 1,
        hostname: None,
        worker_id: None,
        claim_id: None,
        lease_until: None,
        queued_at: None,
        start_date: None,
        end_date: None,
        next_retry_at: None,
        infra_failures: 0,
        note: None,
    }
}

fn previous(a: TaskState, b: TaskState) -> Vec<TaskInstance> {
    vec![ti(10, "a", a), ti(11, "b", b), ti(12, "c", TaskState::None)]
}

const DEPENDS: PastDependency = PastDependency {
    depends_on_past: true,
    wait_for_downstream: false,
    ignore_first_depends_on_past: true,
};
const WAITS: PastDependency = PastDependency {
    depends_on_past: false,
    wait_for_downstream: true,
    ignore_first_depends_on_past: true,
};

#[test]
fn depends_on_past_waits_until_the_previous_instance_succeeded_or_was_skipped() {
    use TaskState::*;
    let graph = chain(DEPENDS);
    let waiting = [true, true, true];
    for (state, held) in [
        (None, true),
        (Scheduled, true),
        (Running, true),
        (UpForRetry, true),
        (Failed, true),
        (UpstreamFailed, true),
        (Success, false),
        (Skipped, false),
    ] {
        assert_eq!(
            held_by_past(&graph, &waiting, &previous(state, None), &HashSet::new()),
            vec![held, false, false],
            "previous a {state:?}"
        );
    }
}

#[test]
fn wait_for_downstream_also_waits_for_the_direct_downstream_of_the_previous_instance() {
    use TaskState::*;
    let graph = chain(WAITS);
    let waiting = [true, true, true];
    assert_eq!(
        held_by_past(
            &graph,
            &waiting,
            &previous(Success, Running),
            &HashSet::new()
        ),
        vec![true, false, false]
    );
    // `c` is not directly downstream of `a`: it is not waited for.
    assert_eq!(
        held_by_past(
            &graph,
            &waiting,
            &previous(Success, Success),
            &HashSet::new()
        ),
        vec![false, false, false]
    );
    assert_eq!(
        held_by_past(
            &graph,
            &waiting,
            &previous(Running, Success),
            &HashSet::new()
        ),
        vec![true, false, false]
    );
}

#[test]
fn a_task_new_since_the_previous_run_waits_only_without_ignore_first_depends_on_past() {
    let previous = vec![ti(11, "b", TaskState::Success)];
    let waiting = [true, true, true];
    assert_eq!(
        held_by_past(&chain(DEPENDS), &waiting, &previous, &HashSet::new()),
        vec![false, false, false]
    );
    let strict = PastDependency {
        ignore_first_depends_on_past: false,
        ..DEPENDS
    };
    assert_eq!(
        held_by_past(&chain(strict), &waiting, &previous, &HashSet::new()),
        vec![true, false, false]
    );
}

#[test]
fn a_task_missing_from_the_previous_run_but_run_before_waits() {
    // As Airflow: only a task that never ran before counts as having no past.
    let previous = vec![ti(11, "b", TaskState::Success)];
    let ran_before = HashSet::from(["a".to_string()]);
    assert_eq!(
        held_by_past(&chain(DEPENDS), &[true, true, true], &previous, &ran_before),
        vec![true, false, false]
    );
}

#[test]
fn an_instance_that_started_is_not_held() {
    let graph = chain(DEPENDS);
    assert_eq!(
        held_by_past(
            &graph,
            &[false, true, true],
            &previous(TaskState::Failed, TaskState::None),
            &HashSet::new()
        ),
        vec![false, false, false]
    );
}

#[test]
fn a_held_task_is_not_scheduled_but_can_still_be_skipped_or_upstream_failed() {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut graph_tasks = chain(DEPENDS);
    // `a` downstream of a failed `z`: upstream-failed whatever its past.
    let dag = Arc::make_mut(&mut graph_tasks.dag);
    dag.tasks.insert(
        0,
        Task::new(
            "z",
            Operator::Bash {
                bash_command: "false".into(),
            },
        ),
    );
    dag.tasks[1].dependencies = vec!["z".into()];
    let graph = DagGraph::new(graph_tasks.dag.clone());
    let held = [false, true, false, false];
    let ready = vec![
        ti(1, "z", TaskState::Success),
        ti(2, "a", TaskState::None),
        ti(3, "b", TaskState::None),
        ti(4, "c", TaskState::None),
    ];
    let plan = plan_run_held(&graph, &ready, MapInputs::default(), Some(&held), now);
    assert!(plan.transitions.is_empty(), "{:?}", plan.transitions);
    assert_eq!(plan.final_state, None);
    let failed = vec![
        ti(1, "z", TaskState::Failed),
        ti(2, "a", TaskState::None),
        ti(3, "b", TaskState::None),
        ti(4, "c", TaskState::None),
    ];
    let plan = plan_run_held(&graph, &failed, MapInputs::default(), Some(&held), now);
    let to: Vec<(i64, TaskState)> = plan.transitions.iter().map(|t| (t.ti_id, t.to)).collect();
    assert_eq!(
        to,
        vec![
            (2, TaskState::UpstreamFailed),
            (3, TaskState::UpstreamFailed),
            (4, TaskState::UpstreamFailed)
        ]
    );
    let plan = plan_run_held(&graph, &ready, MapInputs::default(), None, now);
    assert_eq!(plan.transitions[0].to, TaskState::Scheduled);
}
