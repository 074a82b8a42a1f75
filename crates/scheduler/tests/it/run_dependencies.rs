//! Runs that depend on other runs, as in Airflow: `dagrun_timeout`, `depends_on_past` and
//! `wait_for_downstream`, `max_active_tis_per_dag` / `_per_dagrun`, and
//! `max_consecutive_failed_dag_runs`.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::Duration;
use updraft_model::{
    Dag, DagRunState, MapSource, MappedArgument, Mapping, PastDependency, Task, TaskState,
};
use updraft_store::{EventLogQuery, EventLogStore, Store, TransitionResult};

use crate::fixture::{bash, dag, new_year, utc, World};

/// A daily DAG with catch-up from new year: at 2025-01-03T12:00Z its first pass creates the
/// run of new year, each further pass the next one.
fn daily(dag_id: &str, tasks: Vec<Task>) -> Dag {
    Dag {
        catchup: true,
        ..dag(dag_id, "@daily", tasks)
    }
}

fn depends_on_past(task: Task) -> Task {
    Task {
        past: PastDependency {
            depends_on_past: true,
            ..PastDependency::default()
        },
        ..task
    }
}

/// A world at 2025-01-03T12:00Z with `dag` published and two of its runs created.
async fn two_runs(dag: Dag) -> (World, Vec<updraft_store::DagRun>) {
    let world = World::at(utc("2025-01-02T12:00:00Z")).await;
    let dag_id = dag.dag_id.clone();
    world.publish(vec![dag]).await;
    world.passes(2).await;
    let runs = world.runs(&dag_id).await;
    assert_eq!(runs.len(), 2);
    (world, runs)
}

#[tokio::test]
async fn a_run_past_its_dagrun_timeout_fails_and_its_unfinished_tasks_are_skipped() {
    let world = World::at(new_year()).await;
    let slow = Dag {
        dagrun_timeout: Some(StdDuration::from_secs(3600)),
        ..dag(
            "slow",
            "@daily",
            vec![bash("work", &[]), bash("after", &["work"])],
        )
    };
    world.publish(vec![slow]).await;
    world.pass().await;
    let run = world.runs("slow").await.remove(0);
    let claimed = world.claim_one().await;
    let outcome = world.pass().await;
    assert_eq!(
        outcome.next_due,
        Some(new_year() + Duration::hours(1)),
        "the scheduler wakes when the run times out"
    );

    world.clock.advance(Duration::minutes(59));
    world.pass().await;
    assert_eq!(world.run(run.id).await.state, DagRunState::Running);

    world.clock.advance(Duration::minutes(1));
    world.pass().await;
    let run = world.run(run.id).await;
    assert_eq!(run.state, DagRunState::Failed);
    assert_eq!(run.end_date, Some(world.now()));
    // As Airflow: every unfinished task instance is skipped, the running one too.
    assert_eq!(world.states(&run).await, "work=skipped after=skipped");
    // The running try lost its claim: its worker kills it, and its report does not count.
    assert!(!world.heartbeat(&claimed).await);
    assert_eq!(
        world.report(&claimed, TaskState::Success, None).await,
        TransitionResult::Conflict
    );
    world.pass().await;
    assert_eq!(world.states(&run).await, "work=skipped after=skipped");

    // Cleared, the run starts afresh: its timeout counts from its new start.
    world
        .store
        .clear_task_instances(run.id, &["work".into(), "after".into()], world.now())
        .await
        .unwrap();
    world.clock.advance(Duration::minutes(1));
    world.pass().await;
    let rerun = world.run(run.id).await;
    assert_eq!(
        (rerun.state, rerun.start_date),
        (DagRunState::Running, Some(world.now()))
    );
    assert_eq!(world.states(&rerun).await, "work=queued after=none");
}

#[tokio::test]
async fn a_run_that_ends_in_time_is_not_timed_out() {
    let world = World::at(new_year()).await;
    let quick = Dag {
        dagrun_timeout: Some(StdDuration::from_secs(60)),
        ..dag("quick", "@daily", vec![bash("work", &[])])
    };
    world.publish(vec![quick]).await;
    world.pass().await;
    let claimed = world.claim_one().await;
    world.succeed(&claimed).await;
    world.pass().await;
    world.clock.advance(Duration::minutes(5));
    world.pass().await;
    let run = world.runs("quick").await.remove(0);
    assert_eq!(run.state, DagRunState::Success);
    assert_eq!(world.states(&run).await, "work=success");
}

#[tokio::test]
async fn schedulers_racing_to_time_out_a_run_fail_it_once() {
    let world = World::at(new_year()).await;
    let slow = Dag {
        dagrun_timeout: Some(StdDuration::from_secs(60)),
        ..dag("slow", "@daily", vec![bash("work", &[])])
    };
    world.publish(vec![slow]).await;
    world.pass().await;
    let run = world.runs("slow").await.remove(0);
    world.claim_one().await;
    world.clock.advance(Duration::minutes(2));
    let now = world.now();
    // Two schedulers decided at once: the first compare-and-set wins, the second changes
    // nothing.
    assert_eq!(
        world.store.time_out_dag_run(run.id, now).await.unwrap(),
        TransitionResult::Applied
    );
    assert_eq!(
        world.store.time_out_dag_run(run.id, now).await.unwrap(),
        TransitionResult::Conflict
    );
    world.pass().await;
    assert_eq!(world.run(run.id).await.state, DagRunState::Failed);
}

#[tokio::test]
async fn depends_on_past_waits_for_the_previous_runs_instance_to_succeed() {
    let (world, runs) = two_runs(daily(
        "past",
        vec![depends_on_past(bash("a", &[])), bash("b", &["a"])],
    ))
    .await;
    // The first run has no past; the second waits for the first's `a`.
    assert_eq!(world.states(&runs[0]).await, "a=queued b=none");
    assert_eq!(world.states(&runs[1]).await, "a=none b=none");
    let first_a = world.claim_one().await;
    world.pass().await;
    assert_eq!(world.states(&runs[1]).await, "a=none b=none");

    world.succeed(&first_a).await;
    // Only the first run changed; the run waiting on it is evaluated with it.
    world
        .scheduler
        .pass(false, HashSet::from([runs[0].id]))
        .await
        .unwrap();
    assert_eq!(world.states(&runs[0]).await, "a=success b=queued");
    assert_eq!(world.states(&runs[1]).await, "a=queued b=none");
}

#[tokio::test]
async fn depends_on_past_never_starts_after_a_failed_previous_instance() {
    let (world, runs) = two_runs(daily(
        "past",
        vec![depends_on_past(bash("a", &[])), bash("b", &["a"])],
    ))
    .await;
    let first_a = world.claim_one().await;
    assert_eq!(world.fail(&first_a).await, TaskState::Failed);
    world.passes(2).await;
    assert_eq!(world.run(runs[0].id).await.state, DagRunState::Failed);
    // As in Airflow: no deadlock is declared; the task waits until the past is fixed.
    assert_eq!(world.states(&runs[1]).await, "a=none b=none");
    assert_eq!(world.run(runs[1].id).await.state, DagRunState::Running);
}

#[tokio::test]
async fn a_skipped_previous_instance_lets_the_next_run_start() {
    let (world, runs) = two_runs(daily(
        "past",
        vec![depends_on_past(bash("a", &[])), bash("b", &["a"])],
    ))
    .await;
    let first_a = world.claim_one().await;
    world.report(&first_a, TaskState::Skipped, None).await;
    world.pass().await;
    assert_eq!(world.states(&runs[1]).await, "a=queued b=none");
}

#[tokio::test]
async fn wait_for_downstream_also_waits_for_the_previous_runs_direct_downstream() {
    let waits = Task {
        past: PastDependency {
            wait_for_downstream: true,
            ..PastDependency::default()
        },
        ..bash("a", &[])
    };
    let (world, runs) = two_runs(daily("wfd", vec![waits, bash("b", &["a"])])).await;
    let first_a = world.claim_one().await;
    world.succeed(&first_a).await;
    world.pass().await;
    assert_eq!(world.states(&runs[0]).await, "a=success b=queued");
    assert_eq!(world.states(&runs[1]).await, "a=none b=none");
    let first_b = world.claim_one().await;
    world.succeed(&first_b).await;
    world.pass().await;
    assert_eq!(world.states(&runs[1]).await, "a=queued b=none");
}

#[tokio::test]
async fn max_active_tis_per_dag_limits_a_task_over_every_run() {
    let limited = Task {
        max_active_tis_per_dag: Some(1),
        ..bash("t", &[])
    };
    let (world, runs) = two_runs(daily("limited", vec![limited, bash("free", &[])])).await;
    let queued = |states: &[String]| {
        states
            .iter()
            .map(|s| s.matches("t=queued").count())
            .sum::<usize>()
    };
    let mut states = Vec::new();
    for run in &runs {
        states.push(world.states(run).await);
    }
    assert_eq!(queued(&states), 1, "{states:?}");
    // Every run's other task is queued: the limit is the task's, not the DAG's.
    assert!(
        states.iter().all(|s| s.contains("free=queued")),
        "{states:?}"
    );

    let claimed = world.claim(10).await;
    let t = claimed
        .iter()
        .find(|c| c.ti.task_id == "t")
        .expect("t was claimed");
    world.pass().await;
    assert_eq!(
        world.count(TaskState::Queued).await,
        0,
        "running counts too"
    );
    world.succeed(t).await;
    world.pass().await;
    let mut states = Vec::new();
    for run in &runs {
        states.push(world.states(run).await);
    }
    assert_eq!(queued(&states), 1, "{states:?}");
}

#[tokio::test]
async fn max_active_tis_per_dagrun_limits_a_mapped_tasks_instances_in_a_run() {
    let world = World::at(new_year()).await;
    let mapped = Task {
        max_active_tis_per_dagrun: Some(2),
        mapping: Some(Mapping::Expand(vec![MappedArgument {
            name: "bash_command".into(),
            source: MapSource::Literal(
                ["echo 1", "echo 2", "echo 3", "echo 4"]
                    .iter()
                    .map(|c| serde_json::json!(c))
                    .collect(),
            ),
        }])),
        ..bash("m", &[])
    };
    world
        .publish(vec![dag("fan", "@daily", vec![mapped])])
        .await;
    world.passes(2).await;
    assert_eq!(world.count(TaskState::Queued).await, 2);
    let claimed = world.claim(10).await;
    assert_eq!(claimed.len(), 2);
    world.pass().await;
    assert_eq!(world.count(TaskState::Queued).await, 0);
    world.succeed(&claimed[0]).await;
    world.pass().await;
    assert_eq!(world.count(TaskState::Queued).await, 1);
}

#[tokio::test]
async fn max_consecutive_failed_dag_runs_pauses_the_dag_with_a_reason() {
    let world = World::at(utc("2025-01-02T12:00:00Z")).await;
    let fragile = Dag {
        max_consecutive_failed_dag_runs: 2,
        ..daily("fragile", vec![bash("t", &[])])
    };
    world.publish(vec![fragile]).await;
    world.pass().await;
    let first = world.claim_one().await;
    assert_eq!(world.fail(&first).await, TaskState::Failed);
    world.pass().await;
    assert!(!world.store.get_dag("fragile").await.unwrap().is_paused);

    world.pass().await;
    let second = world
        .claim(10)
        .await
        .into_iter()
        .next()
        .expect("the second run's task");
    assert_eq!(world.fail(&second).await, TaskState::Failed);
    world.pass().await;
    let runs = world.runs("fragile").await;
    assert!(runs.iter().take(2).all(|r| r.state == DagRunState::Failed));
    assert!(world.store.get_dag("fragile").await.unwrap().is_paused);
    let events = world
        .store
        .query_event_logs(EventLogQuery {
            dag_id: Some("fragile".into()),
            ..EventLogQuery::default()
        })
        .await
        .unwrap();
    let paused: Vec<_> = events
        .items
        .iter()
        .filter(|e| e.event.event == "paused")
        .collect();
    assert_eq!(paused.len(), 1, "{events:?}");
    assert_eq!(paused[0].event.owner.as_deref(), Some("scheduler"));
    assert!(
        paused[0]
            .event
            .extra
            .as_deref()
            .is_some_and(|e| e.contains("max_consecutive_failed_dag_runs")),
        "{paused:?}"
    );
}

#[tokio::test]
/// A pass that plans only what changed in a run (here its other task finishing) must not
/// forget that a task of it still waits for the run before: that run's end releases it.
async fn a_run_waiting_for_its_past_stays_waiting_through_a_pass_over_its_other_tasks() {
    let (world, runs) = two_runs(daily(
        "past",
        vec![depends_on_past(bash("a", &[])), bash("c", &[])],
    ))
    .await;
    assert_eq!(world.states(&runs[0]).await, "a=queued c=queued");
    assert_eq!(world.states(&runs[1]).await, "a=none c=queued");
    let claimed = world.claim(100).await;
    let c1 = claimed
        .iter()
        .find(|c| c.dag_run.id == runs[1].id && c.ti.task_id == "c")
        .expect("the second run's independent task was claimed");
    world.succeed(c1).await;
    world
        .scheduler
        .pass_with(
            false,
            HashSet::new(),
            vec![updraft_store::FinishedTry {
                dag_run_id: runs[1].id,
                ti_id: c1.ti.id,
                try_number: c1.ti.try_number,
                state: TaskState::Success,
                next_retry_at: None,
            }],
        )
        .await
        .unwrap();
    let a0 = claimed
        .iter()
        .find(|c| c.dag_run.id == runs[0].id && c.ti.task_id == "a")
        .expect("the first run's task was claimed");
    world.succeed(a0).await;
    world
        .scheduler
        .pass(false, HashSet::from([runs[0].id]))
        .await
        .unwrap();
    assert_eq!(world.states(&runs[1]).await, "a=queued c=success");
}
