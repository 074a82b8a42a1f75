//! The run loop: a pass for every thing told, none for a wake-up with nothing to answer.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use updraft_model::{Dag, DagRunState, Schedule};
use updraft_scheduler::{new_dag_run, Scheduler, SchedulerConfig, SchedulerSignal, TriggerRequest};
use updraft_store::Store;

use crate::fixture::{bash, dag, succeeded, utc, World};

/// A scheduler whose loop a test runs, its signal and its heartbeat; its sweeps are ten
/// minutes apart, so that only what it is told makes its passes.
fn looped(world: &World) -> (Scheduler, Arc<SchedulerSignal>, Arc<AtomicI64>) {
    let signal = Arc::new(SchedulerSignal::default());
    let heartbeat = Arc::new(AtomicI64::new(0));
    let scheduler = world.another_signalled_scheduler(
        SchedulerConfig {
            scheduler_id: "looped".to_string(),
            sweep_interval: Duration::from_secs(600),
            ..Default::default()
        },
        signal.clone(),
        heartbeat.clone(),
    );
    (scheduler, signal, heartbeat)
}

/// Waits until the loop made a pass (it stores its heartbeat after each).
async fn until_a_pass(heartbeat: &AtomicI64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while heartbeat.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no pass in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every signal wakes the loop, and two signals taken in one look leave a wake-up behind:
/// that one makes no pass (which would read every unfinished run and the occupancy), while
/// an asked read of the runs does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_with_nothing_told_makes_no_pass() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let (scheduler, signal, heartbeat) = looped(&world);
    let (stop, stopped) = watch::channel(false);
    let tell_and_watch = async {
        until_a_pass(&heartbeat).await;
        heartbeat.store(0, Ordering::SeqCst);
        // Nothing ended, twice: the first wake-up and the one it leaves find nothing to do.
        signal.tries_finished(std::iter::empty());
        signal.tries_finished(std::iter::empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(heartbeat.load(Ordering::SeqCst), 0, "a pass over nothing");
        // Asked to read the runs (a queued run may start), with no run named: a pass.
        signal.runs_changed(std::iter::empty());
        until_a_pass(&heartbeat).await;
        stop.send(true).unwrap();
    };
    tokio::join!(scheduler.run(stopped), tell_and_watch);
}

/// A pass asked to read the runs (a run ended, a queued one may start) reads them even when
/// a try's end is told in the same look: the pass over finished tries alone reads no run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_the_runs_asked_beside_a_finished_try_starts_the_queued_run() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    // Unscheduled (a due scheduled run would make the pass a full one, which reads the runs
    // anyway); two runs triggered, the second waiting for the first.
    let one_at_a_time = Dag {
        schedule: Schedule::None,
        max_active_runs: 1,
        ..dag("one_at_a_time", "@daily", vec![bash("t", &[])])
    };
    // Two tasks, so that the end of one does not end the run (which asks for a read).
    let busy = Dag {
        schedule: Schedule::None,
        ..dag("busy", "@daily", vec![bash("t", &[]), bash("u", &[])])
    };
    world
        .publish(vec![one_at_a_time.clone(), busy.clone()])
        .await;
    let trigger = |dag: &Dag, run_id: &str, hours: i64| {
        new_dag_run(
            dag,
            1,
            TriggerRequest {
                run_id: Some(run_id.to_string()),
                logical_date: Some(world.now() + chrono::Duration::hours(hours)),
                ..TriggerRequest::manual()
            },
            world.now(),
            None,
        )
    };
    for (dag, run_id, hours) in [
        (&one_at_a_time, "first", 0),
        (&one_at_a_time, "second", 1),
        (&busy, "busy", 0),
    ] {
        world
            .store
            .create_dag_run(trigger(dag, run_id, hours))
            .await
            .unwrap();
    }
    world.scheduler.hand_over().await.unwrap();
    let (scheduler, signal, heartbeat) = looped(&world);
    let (stop, stopped) = watch::channel(false);
    let tell_and_watch = async {
        until_a_pass(&heartbeat).await;
        let states = |runs: Vec<updraft_store::DagRun>| -> Vec<DagRunState> {
            runs.iter().map(|run| run.state).collect()
        };
        let limited = world.runs("one_at_a_time").await;
        assert_eq!(
            states(limited.clone()),
            [DagRunState::Running, DagRunState::Queued]
        );
        // A task of `busy` ends, and the running limited run is ended by hand (as the REST
        // API's "mark success" does).
        let busy_try = world
            .claim(10)
            .await
            .into_iter()
            .find(|claimed| claimed.ti.dag_id == "busy")
            .expect("busy's task was queued");
        world.succeed(&busy_try).await;
        world
            .store
            .set_dag_run_state(
                limited[0].id,
                DagRunState::Running,
                DagRunState::Success,
                world.now(),
            )
            .await
            .unwrap();
        // Told in one look: no await between the two.
        signal.tries_finished([succeeded(&busy_try)]);
        signal.runs_changed(std::iter::empty());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while states(world.runs("one_at_a_time").await)[1] != DagRunState::Running {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the next run did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
    };
    tokio::join!(scheduler.run(stopped), tell_and_watch);
}
