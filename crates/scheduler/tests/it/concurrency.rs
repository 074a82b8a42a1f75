//! The limits on how much runs at once: `max_active_runs`, the scheduler's `parallelism`, each
//! DAG's `max_active_tasks` and pool slots.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use updraft_model::{Dag, DagRunState, Task, TaskState};
use updraft_scheduler::{SchedulerConfig, SchedulerSignal};
use updraft_store::{Store, Transition};

use crate::fixture::{bash, dag, new_year, utc, World};

/// `n` independent bash tasks `<prefix>0`, `<prefix>1`, …
fn independent(prefix: &str, n: usize) -> Vec<Task> {
    (0..n).map(|i| bash(&format!("{prefix}{i}"), &[])).collect()
}

fn with_parallelism(parallelism: u32) -> SchedulerConfig {
    SchedulerConfig {
        parallelism,
        ..Default::default()
    }
}

/// Queued plus running task instances of every DAG.
async fn active(world: &World) -> usize {
    world.count(TaskState::Queued).await + world.count(TaskState::Running).await
}

#[tokio::test]
async fn max_active_runs_keeps_the_next_run_queued_until_the_first_finishes() {
    let world = World::at(utc("2025-01-02T12:00:00Z")).await;
    let one_at_a_time = Dag {
        catchup: true,
        max_active_runs: 1,
        ..dag("serial", "@daily", vec![bash("t", &[])])
    };
    world.publish(vec![one_at_a_time]).await;
    world.passes(3).await;
    let runs = world.runs("serial").await;
    assert_eq!(runs.len(), 2, "both missed runs are created");
    let (first, second) = (&runs[0], &runs[1]);
    assert_eq!(first.state, DagRunState::Running);
    assert_eq!(second.state, DagRunState::Queued);
    assert_eq!(world.states(second).await, "t=none");

    let t = world.claim_one().await;
    assert_eq!(t.dag_run.id, first.id);
    world.succeed(&t).await;
    world.pass().await;
    assert_eq!(world.run(first.id).await.state, DagRunState::Success);
    assert_eq!(
        world.run(second.id).await.state,
        DagRunState::Running,
        "the place the first run freed is taken in the same pass"
    );
    assert_eq!(world.states(second).await, "t=queued");
}

#[tokio::test]
async fn parallelism_limits_queued_and_running_task_instances_across_dags() {
    let world = World::new(with_parallelism(3), new_year()).await;
    world
        .publish(vec![
            dag("left", "@daily", independent("l", 4)),
            dag("right", "@daily", independent("r", 4)),
        ])
        .await;
    world.pass().await;
    assert_eq!(world.count(TaskState::Queued).await, 3);
    assert_eq!(world.count(TaskState::Scheduled).await, 5);

    // Running tasks hold their slot: claiming frees nothing.
    let mut claimed = world.claim(10).await;
    assert_eq!(claimed.len(), 3);
    world.pass().await;
    assert_eq!(world.count(TaskState::Queued).await, 0);

    // Each finished task lets exactly one more in, until all eight ran.
    let mut finished = 0;
    while let Some(t) = claimed.pop() {
        world.succeed(&t).await;
        finished += 1;
        world.pass().await;
        assert!(active(&world).await <= 3, "after {finished} finished");
        claimed.extend(world.claim(10).await);
    }
    assert_eq!(finished, 8);
    assert_eq!(world.count(TaskState::Success).await, 8);
    for dag_id in ["left", "right"] {
        assert_eq!(world.runs(dag_id).await[0].state, DagRunState::Success);
    }
}

#[tokio::test]
async fn max_active_tasks_limits_one_dag_and_not_the_others() {
    let world = World::at(new_year()).await;
    let narrow = Dag {
        max_active_tasks: 2,
        ..dag("narrow", "@daily", independent("n", 5))
    };
    world
        .publish(vec![narrow, dag("wide", "@daily", independent("w", 3))])
        .await;
    world.pass().await;
    let narrow_run = world.runs("narrow").await.remove(0);
    let wide_run = world.runs("wide").await.remove(0);
    let queued = |states: String| states.matches("=queued").count();
    assert_eq!(queued(world.states(&narrow_run).await), 2);
    assert_eq!(queued(world.states(&wide_run).await), 3);

    // Running counts towards the limit too; a finished task frees its place.
    let claimed = world.claim(10).await;
    world.pass().await;
    assert_eq!(queued(world.states(&narrow_run).await), 0);
    let n = claimed
        .iter()
        .find(|c| c.ti.dag_id == "narrow")
        .expect("a narrow task was claimed");
    world.succeed(n).await;
    world.pass().await;
    assert_eq!(queued(world.states(&narrow_run).await), 1);
}

#[tokio::test]
async fn pool_slots_limit_the_tasks_of_that_pool() {
    let world = World::at(new_year()).await;
    world.set_pool("db", 2).await;
    let mut tasks = independent("db", 4);
    for t in &mut tasks {
        t.pool = "db".to_string();
    }
    tasks.extend(independent("free", 2));
    world.publish(vec![dag("pooled", "@daily", tasks)]).await;
    world.pass().await;
    let run = world.runs("pooled").await.remove(0);
    assert_eq!(
        world.states(&run).await,
        "db0=queued db1=queued db2=scheduled db3=scheduled free0=queued free1=queued"
    );

    let claimed = world.claim(10).await;
    let db0 = claimed.iter().find(|c| c.ti.task_id == "db0").unwrap();
    world.succeed(db0).await;
    world.pass().await;
    assert_eq!(
        world.states(&run).await,
        "db0=success db1=running db2=queued db3=scheduled free0=running free1=running"
    );
}

/// Regression: the scheduler looked only at the first `4 * free + 16` scheduled task
/// instances by priority, so a crowd of high-priority tasks waiting for a full pool kept every
/// other task from being queued, although slots were free.
#[tokio::test]
async fn tasks_waiting_for_a_full_pool_do_not_starve_other_tasks() {
    let world = World::new(with_parallelism(4), new_year()).await;
    world.set_pool("narrow", 1).await;
    let mut crowd = independent("c", 40);
    for t in &mut crowd {
        t.pool = "narrow".to_string();
        t.priority_weight = 10;
    }
    world
        .publish(vec![
            dag("crowd", "@daily", crowd),
            dag("other", "@daily", vec![bash("lone", &[])]),
        ])
        .await;
    world.pass().await;
    let other = world.runs("other").await.remove(0);
    assert_eq!(world.states(&other).await, "lone=queued");
    assert_eq!(world.count(TaskState::Queued).await, 2);
}

/// The same starvation through `max_active_tasks`: a DAG at its limit must not hide the
/// scheduled tasks of other DAGs.
#[tokio::test]
async fn tasks_of_a_dag_at_max_active_tasks_do_not_starve_other_dags() {
    let world = World::new(with_parallelism(4), new_year()).await;
    let mut crowd = independent("c", 40);
    for t in &mut crowd {
        t.priority_weight = 10;
    }
    let crowd = Dag {
        max_active_tasks: 1,
        ..dag("crowd", "@daily", crowd)
    };
    world
        .publish(vec![crowd, dag("other", "@daily", vec![bash("lone", &[])])])
        .await;
    world.pass().await;
    let other = world.runs("other").await.remove(0);
    assert_eq!(world.states(&other).await, "lone=queued");
}

/// The sweep plans from the task states the scheduler keeps; a scheduler whose runs' leases
/// lapsed before it renewed them (a stalled process) reads them again, since another
/// scheduler may have driven them meanwhile: here a task reset behind its back (no change
/// told) runs again at its next sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_whose_run_leases_lapsed_reads_its_runs_again() {
    let world = World::at(new_year()).await;
    world
        .publish(vec![dag("pooled", "@daily", independent("db", 1))])
        .await;
    let scheduler = world.another_signalled_scheduler(
        SchedulerConfig {
            scheduler_id: "sweeper".to_string(),
            sweep_interval: Duration::from_millis(50),
            ..Default::default()
        },
        Arc::new(SchedulerSignal::default()),
        Arc::new(AtomicI64::new(0)),
    );
    let (stop, stopped) = watch::channel(false);
    let drive = async {
        let run = run_states_within(&world, "db0=queued").await;
        let db0 = world.ti(&run, "db0").await;
        assert_eq!(db0.try_number, 1);
        let reset = Transition {
            ti_id: db0.id,
            try_number: db0.try_number,
            from: TaskState::Queued,
            to: TaskState::None,
            now: world.now(),
            new_try: false,
            next_retry_at: None,
        };
        world.store.apply_transitions(vec![reset]).await.unwrap();
        world.clock.advance(chrono::Duration::seconds(20));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while world.ti(&run, "db0").await.try_number != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reset task never ran again: {}",
                world.states(&run).await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
    };
    tokio::join!(scheduler.run(stopped), drive);
}

/// The first run of DAG `pooled` once its states are `expected` (within 10 s).
async fn run_states_within(world: &World, expected: &str) -> updraft_store::DagRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(run) = world.runs("pooled").await.first() {
            if world.states(run).await == expected {
                return run.clone();
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never {expected}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
