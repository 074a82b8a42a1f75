//! Table-driven tests of `plan_run`: small DAGs, the states of their task instances, and the
//! transitions and final run state the plan must produce.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use updraft_model::{Dag, DagRunState, Operator, Schedule, Task, TaskState, TriggerRule};
use updraft_store::TaskInstance;

use super::*;

/// The instant every plan is made at.
pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap()
}

/// A DAG from one line per task: `id [<- upstream…] [trigger_rule] [empty]
/// [setup|teardown|teardown!]`, e.g. `"c <- a b all_done"`. Tasks run bash unless marked
/// `empty`; a teardown has Airflow's `all_done_setup_success`, and `teardown!` fails the run
/// when it fails (`on_failure_fail_dagrun`).
pub(super) fn graph(lines: &[&str]) -> DagGraph {
    let tasks = lines
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next().expect("a task id");
            let mut task = Task::new(
                id,
                Operator::Bash {
                    bash_command: format!("echo {id}"),
                },
            );
            for word in words {
                if word == "<-" {
                    continue;
                } else if word == "empty" {
                    task.operator = Operator::Empty;
                } else if word == "setup" {
                    task.role.is_setup = true;
                } else if word == "teardown" || word == "teardown!" {
                    task.role.is_teardown = true;
                    task.role.on_failure_fail_dagrun = word == "teardown!";
                    task.trigger_rule = TriggerRule::AllDoneSetupSuccess;
                } else if let Ok(rule) = word.parse::<TriggerRule>() {
                    task.trigger_rule = rule;
                } else {
                    task.dependencies.push(word.to_string());
                }
            }
            task
        })
        .collect();
    DagGraph::new(Arc::new(dag(tasks)))
}

pub(super) fn dag(tasks: Vec<Task>) -> Dag {
    Dag {
        tasks,
        ..Dag::new("d", Schedule::None)
    }
}

/// Task instances from `task=state` words, in the DAG's task order; a task left out is in
/// state `none`. `up_for_retry@S` retries `S` seconds from now (negative: overdue). Every
/// task instance is on try 1 unless it is in state `none`.
pub(super) fn instances(graph: &DagGraph, states: &str) -> Vec<TaskInstance> {
    let given: Vec<(&str, &str)> = states
        .split_whitespace()
        .map(|w| w.split_once('=').expect("task=state"))
        .collect();
    for (task_id, _) in &given {
        assert!(graph.index.contains_key(*task_id), "no task {task_id}");
    }
    graph
        .dag
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let text = given
                .iter()
                .find(|(id, _)| *id == task.task_id)
                .map_or("none", |(_, s)| *s);
            let (state, retry_in) = match text.split_once('@') {
                Some((state, secs)) => (state, Some(secs.parse::<i64>().unwrap())),
                None => (text, None),
            };
            let state: TaskState = state.parse().unwrap();
            TaskInstance {
                id: 100 + i as i64,
                dag_run_id: 1,
                dag_id: "d".into(),
                run_id: "r".into(),
                task_id: task.task_id.clone(),
                map_index: -1,
                try_number: u32::from(state != TaskState::None),
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
                next_retry_at: retry_in.map(|s| now() + Duration::seconds(s)),
                infra_failures: 0,
                note: None,
            }
        })
        .collect()
}

struct Case {
    name: &'static str,
    dag: &'static [&'static str],
    states: &'static str,
    /// `task=new_state` per transition, sorted by task id.
    expect: &'static str,
    final_state: Option<DagRunState>,
}

/// Plans `case` and checks the transitions are legal compare-and-sets of the given rows.
fn check(case: &Case) {
    let graph = graph(case.dag);
    let tis = instances(&graph, case.states);
    let plan = plan_run(&graph, &tis, now());
    let mut got: Vec<String> = plan
        .transitions
        .iter()
        .map(|t| {
            let ti = tis.iter().find(|ti| ti.id == t.ti_id).unwrap();
            assert_eq!(t.from, ti.state, "{}: from of {}", case.name, ti.task_id);
            assert_eq!(t.try_number, ti.try_number, "{}: try", case.name);
            assert!(!t.new_try, "{}: only queueing starts a try", case.name);
            assert_eq!(t.now, now(), "{}", case.name);
            assert_eq!(t.next_retry_at, None, "{}", case.name);
            assert!(
                t.from.can_become(t.to),
                "{}: illegal {} -> {}",
                case.name,
                t.from,
                t.to
            );
            format!("{}={}", ti.task_id, t.to)
        })
        .collect();
    got.sort();
    assert_eq!(got.join(" "), case.expect, "{}: transitions", case.name);
    assert_eq!(
        plan.final_state, case.final_state,
        "{}: final state",
        case.name
    );
}

const CHAIN: &[&str] = &["a", "b <- a", "c <- b", "d <- c"];

#[test]
fn dependencies_and_propagation() {
    let cases = [
        Case {
            name: "a new run schedules its root only",
            dag: CHAIN,
            states: "",
            expect: "a=scheduled",
            final_state: None,
        },
        Case {
            name: "a chain advances one step",
            dag: CHAIN,
            states: "a=success",
            expect: "b=scheduled",
            final_state: None,
        },
        Case {
            name: "nothing moves while the upstream runs",
            dag: CHAIN,
            states: "a=success b=running",
            expect: "",
            final_state: None,
        },
        Case {
            name: "fan-in waits for every upstream",
            dag: &["a", "b", "c <- a b"],
            states: "a=success b=running",
            expect: "",
            final_state: None,
        },
        Case {
            name: "fan-in runs once all upstream succeeded",
            dag: &["a", "b", "c <- a b"],
            states: "a=success b=success",
            expect: "c=scheduled",
            final_state: None,
        },
        Case {
            name: "a skip propagates down the whole chain in one plan",
            dag: CHAIN,
            states: "a=skipped",
            expect: "b=skipped c=skipped d=skipped",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "a failure propagates as upstream_failed down the whole chain",
            dag: CHAIN,
            states: "a=failed",
            expect: "b=upstream_failed c=upstream_failed d=upstream_failed",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a failure settles fan-in at once, without waiting for the rest",
            dag: &["a", "b", "c <- a b"],
            states: "a=failed b=running",
            expect: "c=upstream_failed",
            final_state: None,
        },
        Case {
            name: "a failure wins over a skip for all_success",
            dag: &["a", "b", "c <- a b"],
            states: "a=skipped b=failed",
            expect: "c=upstream_failed",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "tasks already decided are left alone",
            dag: CHAIN,
            states: "a=success b=success c=queued",
            expect: "",
            final_state: None,
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn trigger_rules_in_a_dag() {
    let cases = [
        Case {
            name: "all_done runs after a failure (teardown)",
            dag: &["a", "b <- a", "cleanup <- b all_done"],
            states: "a=failed",
            expect: "b=upstream_failed cleanup=scheduled",
            final_state: None,
        },
        Case {
            name: "all_done waits while an upstream runs",
            dag: &["a", "b", "cleanup <- a b all_done"],
            states: "a=failed b=running",
            expect: "",
            final_state: None,
        },
        Case {
            name: "one_failed runs on the first failure without waiting",
            dag: &["a", "b", "alert <- a b one_failed"],
            states: "a=failed b=running",
            expect: "alert=scheduled",
            final_state: None,
        },
        Case {
            name: "one_failed is skipped when everything succeeded",
            dag: &["a", "b", "alert <- a b one_failed"],
            states: "a=success b=success",
            expect: "alert=skipped",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "none_failed_min_one_success joins after a skipped branch",
            dag: &[
                "branch",
                "x <- branch",
                "y <- branch",
                "join <- x y none_failed_min_one_success",
            ],
            states: "branch=success x=skipped y=success",
            expect: "join=scheduled",
            final_state: None,
        },
        Case {
            name: "none_failed_min_one_success is skipped when every branch was skipped",
            dag: &["x", "y", "join <- x y none_failed_min_one_success"],
            states: "x=skipped y=skipped",
            expect: "join=skipped",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "none_failed_min_one_success is upstream_failed after a failure",
            dag: &["x", "y", "join <- x y none_failed_min_one_success"],
            states: "x=failed y=running",
            expect: "join=upstream_failed",
            final_state: None,
        },
        Case {
            name: "always runs at once, with its upstream still to run",
            dag: &["a", "b <- a always"],
            states: "",
            expect: "a=scheduled b=scheduled",
            final_state: None,
        },
        Case {
            name: "all_failed is skipped by a success",
            dag: &["a", "b", "c <- a b all_failed"],
            states: "a=success b=running",
            expect: "c=skipped",
            final_state: None,
        },
        Case {
            name: "one_success runs on the first success",
            dag: &["a", "b", "c <- a b one_success"],
            states: "a=running b=success",
            expect: "c=scheduled",
            final_state: None,
        },
        Case {
            name: "none_skipped is skipped by a skip",
            dag: &["a", "b", "c <- a b none_skipped"],
            states: "a=skipped b=running",
            expect: "c=skipped",
            final_state: None,
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn empty_tasks_succeed_without_running() {
    let cases = [
        Case {
            name: "an empty root succeeds and its downstream is scheduled in the same plan",
            dag: &["start empty", "t <- start"],
            states: "",
            expect: "start=success t=scheduled",
            final_state: None,
        },
        Case {
            name: "a chain of empty tasks finishes the run in one plan",
            dag: &[
                "start empty",
                "middle <- start empty",
                "end <- middle empty",
            ],
            states: "",
            expect: "end=success middle=success start=success",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "an empty task follows its trigger rule: upstream_failed, not success",
            dag: &["a", "join <- a empty"],
            states: "a=failed",
            expect: "join=upstream_failed",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "an empty task with a skipped upstream is skipped",
            dag: &["a", "join <- a empty"],
            states: "a=skipped",
            expect: "join=skipped",
            final_state: Some(DagRunState::Success),
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn retries_are_scheduled_once_due() {
    let cases = [
        Case {
            name: "a retry one second from now still waits",
            dag: CHAIN,
            states: "a=up_for_retry@1",
            expect: "",
            final_state: None,
        },
        Case {
            name: "a retry due exactly now is scheduled",
            dag: CHAIN,
            states: "a=up_for_retry@0",
            expect: "a=scheduled",
            final_state: None,
        },
        Case {
            name: "an overdue retry is scheduled",
            dag: CHAIN,
            states: "a=up_for_retry@-30",
            expect: "a=scheduled",
            final_state: None,
        },
        Case {
            name: "a retry without a retry time is scheduled",
            dag: CHAIN,
            states: "a=up_for_retry",
            expect: "a=scheduled",
            final_state: None,
        },
        Case {
            name: "a retry not yet due waits, and its downstream is not upstream_failed",
            dag: CHAIN,
            states: "a=up_for_retry@60",
            expect: "",
            final_state: None,
        },
        Case {
            name: "a run with a task up for retry is not over",
            dag: &["a", "b"],
            states: "a=success b=up_for_retry@60",
            expect: "",
            final_state: None,
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn run_final_state_follows_the_leaves() {
    let cases = [
        Case {
            name: "every task succeeded",
            dag: CHAIN,
            states: "a=success b=success c=success d=success",
            expect: "",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "a failed non-leaf with an all_done leaf that succeeded is a success",
            dag: &["a", "cleanup <- a all_done"],
            states: "a=failed cleanup=success",
            expect: "",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "a failed leaf fails the run",
            dag: &["a", "b <- a all_done"],
            states: "a=success b=failed",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "an upstream_failed leaf fails the run",
            dag: &["a", "b <- a", "c"],
            states: "a=failed b=upstream_failed c=success",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "skipped leaves do not fail the run",
            dag: &["a", "b <- a", "c <- a"],
            states: "a=success b=skipped c=success",
            expect: "",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "a failed leaf fails the run even if another leaf succeeded",
            dag: &["a", "b"],
            states: "a=failed b=success",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a run is not over while its all_done leaf runs",
            dag: &["a", "b <- a", "cleanup <- b all_done"],
            states: "a=failed b=upstream_failed cleanup=running",
            expect: "",
            final_state: None,
        },
        Case {
            name: "a run is not over while a task is queued",
            dag: &["a", "b"],
            states: "a=failed b=queued",
            expect: "",
            final_state: None,
        },
        Case {
            name: "a cleared task (state none) with finished upstream reopens the run",
            dag: &["a", "b <- a"],
            states: "a=success",
            expect: "b=scheduled",
            final_state: None,
        },
    ];
    for case in &cases {
        check(case);
    }
}

/// Airflow's basic example: create >> query >> delete, create >> delete.
const SETUP_TEARDOWN: &[&str] = &[
    "create setup",
    "query <- create",
    "delete <- query create teardown",
];

#[test]
fn setups_and_teardowns() {
    let cases = [
        Case {
            name: "the teardown waits for the work task",
            dag: SETUP_TEARDOWN,
            states: "create=success query=running",
            expect: "",
            final_state: None,
        },
        Case {
            name: "the teardown runs after the work task failed",
            dag: SETUP_TEARDOWN,
            states: "create=success query=failed",
            expect: "delete=scheduled",
            final_state: None,
        },
        Case {
            name: "a failed work task fails the run though the teardown succeeded",
            dag: SETUP_TEARDOWN,
            states: "create=success query=failed delete=success",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a failed teardown does not fail the run",
            dag: SETUP_TEARDOWN,
            states: "create=success query=success delete=failed",
            expect: "",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "a failed teardown fails the run with on_failure_fail_dagrun",
            dag: &[
                "create setup",
                "query <- create",
                "delete <- query create teardown!",
            ],
            states: "create=success query=success delete=failed",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a failed setup fails its work task and teardown upstream",
            dag: SETUP_TEARDOWN,
            states: "create=failed",
            expect: "delete=upstream_failed query=upstream_failed",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a skipped setup skips its work task and teardown",
            dag: SETUP_TEARDOWN,
            states: "create=skipped",
            expect: "delete=skipped query=skipped",
            final_state: Some(DagRunState::Success),
        },
        Case {
            name: "one setup succeeded of two: the teardown runs",
            dag: &[
                "s1 setup",
                "s2 setup",
                "work <- s1 s2 all_done",
                "t <- work s1 s2 teardown",
            ],
            states: "s1=success s2=failed work=success",
            expect: "t=scheduled",
            final_state: None,
        },
        Case {
            name: "the teardown waits for tasks between its setup and itself",
            dag: &[
                "create setup",
                "a <- create",
                "b <- create",
                "c <- a b one_success",
                "delete <- c create teardown",
            ],
            states: "create=success a=success b=running c=success",
            expect: "",
            final_state: None,
        },
        Case {
            name: "a work task needs its indirect setup to succeed",
            dag: &[
                "create setup",
                "a <- create",
                "b <- a all_done",
                "delete <- b create teardown",
            ],
            states: "create=failed a=upstream_failed",
            expect: "b=upstream_failed delete=upstream_failed",
            final_state: Some(DagRunState::Failed),
        },
        Case {
            name: "a task after a teardown decides the run",
            dag: &[
                "create setup",
                "query <- create",
                "delete <- query create teardown",
                "report <- delete",
            ],
            states: "create=success query=success delete=success report=failed",
            expect: "",
            final_state: Some(DagRunState::Failed),
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn a_run_of_a_dag_without_tasks_succeeds() {
    let graph = DagGraph::new(Arc::new(dag(Vec::new())));
    let plan = plan_run(&graph, &[], now());
    assert_eq!(
        plan,
        RunPlan {
            transitions: Vec::new(),
            final_state: Some(DagRunState::Success),
            ..RunPlan::default()
        }
    );
}

#[test]
fn transitions_keep_the_try_number_of_the_row() {
    let graph = graph(&["a"]);
    let mut tis = instances(&graph, "a=up_for_retry@-1");
    tis[0].try_number = 3;
    let plan = plan_run(&graph, &tis, now());
    assert_eq!(plan.transitions.len(), 1);
    let t = &plan.transitions[0];
    assert_eq!(
        (t.ti_id, t.try_number, t.from, t.to),
        (100, 3, TaskState::UpForRetry, TaskState::Scheduled)
    );
}
