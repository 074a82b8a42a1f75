//! The waits on time the plan decides itself: a time sensor waits as `deferred` until its
//! instant, then succeeds where it stands; one whose instant passed succeeds at once.

use std::sync::Arc;

use chrono::Duration;
use updraft_model::{Operator, Task, TaskState};

use super::tests::{dag, instances, now};
use super::*;

fn waiting_graph(wait: Operator) -> DagGraph {
    let sensor = Task::new("wait", wait);
    let mut after = Task::new(
        "after",
        Operator::Bash {
            bash_command: "true".into(),
        },
    );
    after.dependencies = vec!["wait".into()];
    DagGraph::new(Arc::new(dag(vec![sensor, after])))
}

fn inputs_ending_at(interval_end: DateTime<Utc>) -> MapInputs<'static> {
    MapInputs {
        interval_end: Some(interval_end),
        ..MapInputs::default()
    }
}

#[test]
fn a_time_delta_sensor_waits_deferred_from_the_interval_end_then_succeeds() {
    let graph = waiting_graph(Operator::TimeDeltaSensor {
        delta: std::time::Duration::from_secs(600),
    });
    let end = now() - Duration::seconds(60);
    let tis = instances(&graph, "");
    let plan = plan_run_mapped(&graph, &tis, inputs_ending_at(end), now());
    assert_eq!(plan.transitions.len(), 1, "{:?}", plan.transitions);
    let t = &plan.transitions[0];
    assert_eq!((t.from, t.to), (TaskState::None, TaskState::Deferred));
    assert_eq!(t.next_retry_at, Some(end + Duration::seconds(600)));
    assert!(!t.new_try, "a wait on time starts no try");
    assert_eq!(plan.final_state, None);

    let mut tis = tis;
    tis[0].state = TaskState::Deferred;
    tis[0].next_retry_at = t.next_retry_at;
    let early = plan_run_mapped(&graph, &tis, inputs_ending_at(end), now());
    assert!(early.transitions.is_empty(), "{:?}", early.transitions);
    let due = end + Duration::seconds(600);
    let later = plan_run_mapped(&graph, &tis, inputs_ending_at(end), due);
    let moves: Vec<_> = later.transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        moves,
        vec![
            (TaskState::Deferred, TaskState::Success),
            (TaskState::None, TaskState::Scheduled)
        ]
    );
}

#[test]
fn a_wait_whose_instant_passed_succeeds_at_once() {
    let graph = waiting_graph(Operator::DateTimeSensor {
        target_time: now() - Duration::hours(1),
    });
    let plan = plan_run(&graph, &instances(&graph, ""), now());
    let moves: Vec<_> = plan.transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        moves,
        vec![
            (TaskState::None, TaskState::Success),
            (TaskState::None, TaskState::Scheduled)
        ]
    );
}

#[test]
fn a_rescheduled_sensor_is_left_to_queueing() {
    let graph = waiting_graph(Operator::Bash {
        bash_command: "true".into(),
    });
    let mut tis = instances(&graph, "");
    tis[0].state = TaskState::UpForReschedule;
    tis[0].next_retry_at = Some(now() - Duration::seconds(1));
    let plan = plan_run(&graph, &tis, now());
    assert!(plan.transitions.is_empty(), "{:?}", plan.transitions);
    assert_eq!(
        plan.final_state, None,
        "a run is not over while a sensor waits"
    );
}
