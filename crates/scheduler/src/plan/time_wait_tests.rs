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

mod external {
    //! A wait on another DAG: deferred with its first poke due at once, then each poke's
    //! verdict decides.

    use std::collections::HashMap;

    use updraft_model::{ExternalTarget, ExternalTaskSensor, ExternalVerdict, Sensing};

    use super::*;

    fn external_graph(soft_fail: bool) -> DagGraph {
        let mut sensor = Task::new(
            "wait",
            Operator::ExternalTaskSensor(Box::new(ExternalTaskSensor {
                external_dag_id: "up".into(),
                target: ExternalTarget::Run,
                allowed_states: vec!["success".into()],
                failed_states: vec!["failed".into()],
                skipped_states: vec![],
                execution_delta_secs: None,
                check_existence: false,
            })),
        );
        sensor.sensor = Some(Sensing {
            poke_interval: std::time::Duration::from_secs(30),
            timeout: std::time::Duration::from_secs(300),
            soft_fail,
            ..Sensing::default()
        });
        let mut after = Task::new("after", Operator::Empty);
        after.dependencies = vec!["wait".into()];
        DagGraph::new(Arc::new(dag(vec![sensor, after])))
    }

    fn poked(
        graph: &DagGraph,
        tis: &[updraft_store::TaskInstance],
        verdict: ExternalVerdict,
        at: DateTime<Utc>,
    ) -> RunPlan {
        let verdicts: HashMap<i64, ExternalVerdict> = [(tis[0].id, verdict)].into();
        let inputs = MapInputs {
            external: Some(&verdicts),
            ..MapInputs::default()
        };
        plan_run_mapped(graph, tis, inputs, at)
    }

    fn deferred(graph: &DagGraph, started: DateTime<Utc>) -> Vec<updraft_store::TaskInstance> {
        let mut tis = instances(graph, "");
        tis[0].state = TaskState::Deferred;
        tis[0].try_number = 1;
        tis[0].start_date = Some(started);
        tis[0].next_retry_at = Some(started);
        tis
    }

    #[test]
    fn it_begins_as_a_try_deferred_with_its_first_poke_due_now() {
        let graph = external_graph(false);
        let plan = plan_run(&graph, &instances(&graph, ""), now());
        assert_eq!(plan.transitions.len(), 1, "{:?}", plan.transitions);
        let t = &plan.transitions[0];
        assert_eq!((t.from, t.to), (TaskState::None, TaskState::Deferred));
        assert_eq!(t.next_retry_at, Some(now()));
        assert!(t.new_try, "the sensor's wait is its try");
        assert!(!plan.needs_external);
    }

    #[test]
    fn a_due_poke_asks_for_a_verdict_and_leaves_the_task_until_it_has_one() {
        let graph = external_graph(false);
        let tis = deferred(&graph, now());
        let plan = plan_run(&graph, &tis, now());
        assert!(plan.needs_external);
        assert!(plan.transitions.is_empty(), "{:?}", plan.transitions);
        let early = plan_run(
            &graph,
            &deferred(&graph, now()),
            now() - Duration::seconds(1),
        );
        assert!(
            !early.needs_external,
            "nothing is due before the poke's instant"
        );
    }

    #[test]
    fn each_verdict_moves_the_sensor_on() {
        let graph = external_graph(false);
        let tis = deferred(&graph, now());
        let met = poked(&graph, &tis, ExternalVerdict::Met, now());
        let moves: Vec<_> = met.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            moves,
            vec![
                (TaskState::Deferred, TaskState::Success),
                (TaskState::None, TaskState::Success)
            ]
        );
        assert!(met.external_endings.is_empty());

        let pending = poked(&graph, &tis, ExternalVerdict::Pending, now());
        let t = &pending.transitions[0];
        assert_eq!((t.from, t.to), (TaskState::Deferred, TaskState::Deferred));
        assert_eq!(t.next_retry_at, Some(now() + Duration::seconds(30)));

        let failed = poked(
            &graph,
            &tis,
            ExternalVerdict::Failed("up failed".into()),
            now(),
        );
        assert_eq!(failed.transitions[0].to, TaskState::Failed);
        assert_eq!(
            failed.external_endings,
            vec![("wait".into(), TaskState::Failed, "up failed".into())]
        );
        assert_eq!(failed.transitions[1].to, TaskState::UpstreamFailed);

        let skipped = poked(&graph, &tis, ExternalVerdict::Skipped("skip".into()), now());
        assert_eq!(skipped.transitions[0].to, TaskState::Skipped);
    }

    #[test]
    fn the_timeout_counts_from_the_first_poke_and_soft_fail_skips() {
        let graph = external_graph(false);
        let started = now() - Duration::seconds(300);
        let tis = deferred(&graph, started);
        let plan = poked(&graph, &tis, ExternalVerdict::Pending, now());
        assert_eq!(plan.transitions[0].to, TaskState::Failed);
        assert!(plan.external_endings[0].2.contains("timed out"));
        // The last wait is cut to the timeout.
        let near = deferred(&graph, now() - Duration::seconds(290));
        let plan = poked(&graph, &near, ExternalVerdict::Pending, now());
        assert_eq!(
            plan.transitions[0].next_retry_at,
            Some(now() + Duration::seconds(10))
        );

        let soft = external_graph(true);
        let plan = poked(
            &soft,
            &deferred(&soft, started),
            ExternalVerdict::Pending,
            now(),
        );
        assert_eq!(plan.transitions[0].to, TaskState::Skipped);
        let plan = poked(
            &soft,
            &deferred(&soft, now()),
            ExternalVerdict::Failed("up failed".into()),
            now(),
        );
        assert_eq!(plan.transitions[0].to, TaskState::Skipped);
    }
}
