//! Several schedulers on one database: each evaluates only the runs it owns, a fair share;
//! a scheduler that stops renewing loses its runs to the others; limits hold across them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::Duration;
use tokio::sync::watch;
use updraft_model::{Dag, DagRunState, TaskState};
use updraft_scheduler::{SchedulerConfig, SchedulerSignal};

use crate::fixture::{bash, dag, succeeded, utc, World};

/// A daily DAG with catch-up from new year: at `2025-01-05T12:00Z` it has several runs due.
fn four_runs(dag_id: &str) -> Dag {
    Dag {
        catchup: true,
        ..dag(dag_id, "@daily", vec![bash("t", &[])])
    }
}

async fn full_pass(scheduler: &updraft_scheduler::Scheduler) {
    scheduler.pass(true, HashSet::new()).await.unwrap();
}

/// Full passes of the world's scheduler until the missed runs of every DAG exist (a pass
/// creates one run per DAG).
async fn catch_up(world: &World) {
    world.passes(8).await;
}

/// Each run of `dag_id` by id, and the scheduler that owns it.
async fn owner_by_run(world: &World, dag_id: &str) -> HashMap<i64, Option<String>> {
    let owners = world.owners(dag_id);
    let runs = world.runs(dag_id).await;
    assert_eq!(runs.len(), owners.len());
    runs.iter().map(|run| run.id).zip(owners).collect()
}

fn all(owner: &str, n: usize) -> Vec<Option<String>> {
    vec![Some(owner.to_string()); n]
}

#[tokio::test]
async fn two_schedulers_split_the_runs_and_each_drives_its_own() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let other = world.another_scheduler("other");
    // `other` beats first, so the first scheduler takes only its fair share of the runs.
    full_pass(&other).await;
    world.publish(vec![four_runs("d")]).await;
    catch_up(&world).await;
    full_pass(&other).await;
    let owners = world.owners("d");
    let n = owners.len();
    assert!(n >= 4, "catch-up created {n} runs");
    let mine = owners
        .iter()
        .filter(|o| o.as_deref() == Some("scheduler"))
        .count();
    let theirs = owners
        .iter()
        .filter(|o| o.as_deref() == Some("other"))
        .count();
    assert_eq!(mine + theirs, n, "owners: {owners:?}");
    assert!(mine.abs_diff(theirs) <= 1, "a fair share each: {owners:?}");

    // Each scheduler queued the tasks of its own runs only; together, all of them.
    assert_eq!(world.count(TaskState::Queued).await, n);
    for claimed in world.claim(10).await {
        world.succeed(&claimed).await;
    }
    world.pass().await;
    full_pass(&other).await;
    let states: Vec<DagRunState> = world.runs("d").await.iter().map(|r| r.state).collect();
    assert_eq!(states, vec![DagRunState::Success; n]);
}

#[tokio::test]
async fn the_runs_of_a_scheduler_that_stopped_are_adopted_after_its_lease() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    world.publish(vec![four_runs("d")]).await;
    catch_up(&world).await;
    let n = world.owners("d").len();
    assert_eq!(world.owners("d"), all("scheduler", n));
    for claimed in world.claim(100).await {
        world.succeed(&claimed).await;
    }
    // The first scheduler is gone; within its lease the runs stay its own.
    let other = world.another_scheduler("other");
    full_pass(&other).await;
    assert_eq!(world.owners("d"), all("scheduler", n));
    assert_eq!(world.runs("d").await[0].state, DagRunState::Running);
    world.clock.advance(Duration::seconds(11));
    full_pass(&other).await;
    assert_eq!(world.owners("d"), all("other", n));
    let states: Vec<DagRunState> = world.runs("d").await.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        vec![DagRunState::Success; n],
        "the adopter finished them"
    );
}

#[tokio::test]
async fn a_scheduler_that_hands_over_lets_the_others_adopt_at_once() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    world.publish(vec![four_runs("d")]).await;
    catch_up(&world).await;
    world.scheduler.hand_over().await.unwrap();
    let other = world.another_scheduler("other");
    full_pass(&other).await;
    let n = world.owners("d").len();
    assert_eq!(world.owners("d"), all("other", n));
}

#[tokio::test]
async fn pool_slots_hold_across_schedulers() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    world.set_pool("narrow", 2).await;
    let other = world.another_scheduler("other");
    full_pass(&other).await;
    let in_pool = |id: &str| {
        let mut d = four_runs(id);
        d.tasks[0].pool = "narrow".to_string();
        d
    };
    world.publish(vec![in_pool("a"), in_pool("b")]).await;
    catch_up(&world).await;
    full_pass(&other).await;
    world.pass().await;
    let owners: HashSet<Option<String>> = world
        .owners("a")
        .into_iter()
        .chain(world.owners("b"))
        .collect();
    assert_eq!(owners.len(), 2, "both schedulers own runs: {owners:?}");
    let runs = world.owners("a").len() + world.owners("b").len();
    assert_eq!(world.count(TaskState::Queued).await, 2, "two slots in all");
    assert_eq!(world.count(TaskState::Scheduled).await, runs - 2);
}

/// The world's scheduler and another one, each owning some of the runs of DAG `d`, whose task
/// runs in pool `one` of one slot: one task is queued, the others wait.
async fn runs_of_two_schedulers_in_a_pool_of_one() -> (World, updraft_scheduler::Scheduler) {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let other = world.another_scheduler("other");
    full_pass(&other).await;
    world.set_pool("one", 1).await;
    let mut d = four_runs("d");
    d.tasks[0].pool = "one".to_string();
    world.publish(vec![d]).await;
    catch_up(&world).await;
    full_pass(&other).await;
    world.pass().await;
    (world, other)
}

/// A try's end is its run's owner's to answer: the owner fills the place it freed from its
/// own runs, and tells the other schedulers only when it has nothing to put there; they fill
/// it then, and not before.
#[tokio::test]
async fn the_owner_fills_the_place_its_try_freed_and_tells_the_others_when_it_cannot() {
    let (world, other) = runs_of_two_schedulers_in_a_pool_of_one().await;
    let owner_by_run = owner_by_run(&world, "d").await;
    for id in ["scheduler", "other"] {
        assert!(
            owner_by_run.values().any(|o| o.as_deref() == Some(id)),
            "both own runs: {owner_by_run:?}"
        );
    }
    assert_eq!(
        world.count(TaskState::Queued).await,
        1,
        "the pool has one slot"
    );
    let owner_of = |run_id: i64| owner_by_run[&run_id].clone();
    let mut claimed = world.claim_one().await;
    let owner_id = owner_of(claimed.ti.dag_run_id);
    let (owner, bystander) = match owner_id.as_deref() {
        Some("scheduler") => (&world.scheduler, &other),
        _ => (&other, &world.scheduler),
    };
    let mut waiting = owner_by_run.values().filter(|o| **o == owner_id).count() - 1;
    loop {
        world.succeed(&claimed).await;
        let done = vec![succeeded(&claimed)];
        let told = bystander
            .pass_with(false, HashSet::new(), done.clone())
            .await
            .unwrap();
        assert_eq!(told.queued, 0, "another's try is its owner's to answer");
        assert!(!told.told_places_free);
        let answered = owner.pass_with(false, HashSet::new(), done).await.unwrap();
        if waiting == 0 {
            assert_eq!(answered.queued, 0);
            assert!(answered.told_places_free, "the owner left the place free");
            break;
        }
        // Another of its runs waits for the slot: it fills it, and tells nobody.
        assert_eq!(answered.queued, 1);
        assert!(!answered.told_places_free, "the owner filled the place");
        waiting -= 1;
        claimed = world.claim_one().await;
        assert_eq!(owner_of(claimed.ti.dag_run_id), owner_id);
    }
    let filled = bystander.fill_free_places().await.unwrap();
    assert_eq!(filled.queued, 1);
    let queued = world.claim_one().await;
    assert_ne!(
        owner_of(queued.ti.dag_run_id),
        owner_id,
        "the bystander queued a task of its own runs"
    );
}

/// The run loop of a scheduler told that tries ended only in another scheduler's runs leaves
/// the places to that scheduler; told that it left places free, it fills them at once, long
/// before its sweep, whatever else it was told with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_fills_the_places_another_scheduler_left_free() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let ids = ["first", "second"];
    let signals = ids.map(|_| Arc::new(SchedulerSignal::default()));
    let heartbeats = ids.map(|_| Arc::new(AtomicI64::new(0)));
    let schedulers: Vec<_> = (0..2)
        .map(|i| {
            world.another_signalled_scheduler(
                SchedulerConfig {
                    scheduler_id: ids[i].to_string(),
                    // Only the news of the finish can make the pass that fills the place.
                    sweep_interval: std::time::Duration::from_secs(600),
                    ..Default::default()
                },
                signals[i].clone(),
                heartbeats[i].clone(),
            )
        })
        .collect();
    // Both beat before the runs exist, so that each takes a fair share of them.
    for scheduler in &schedulers {
        full_pass(scheduler).await;
    }
    world.set_pool("one", 1).await;
    let mut d = four_runs("d");
    d.tasks[0].pool = "one".to_string();
    world.publish(vec![d]).await;
    catch_up(&world).await;
    world.scheduler.hand_over().await.unwrap();
    for scheduler in &schedulers {
        full_pass(scheduler).await;
    }
    let owners = world.owners("d");
    for id in ids {
        assert!(
            owners.iter().any(|o| o.as_deref() == Some(id)),
            "{owners:?}"
        );
    }
    assert_eq!(
        world.count(TaskState::Queued).await,
        1,
        "the pool has one slot"
    );

    let claimed = world.claim_one().await;
    let owner_by_run = owner_by_run(&world, "d").await;
    let owner_of = |run_id: i64| owner_by_run[&run_id].clone();
    let bystander = usize::from(owner_of(claimed.ti.dag_run_id).as_deref() == Some(ids[0]));
    heartbeats[bystander].store(0, Ordering::SeqCst);
    let (stop, stopped) = watch::channel(false);
    let tell_and_watch = async {
        // Its first pass, a full one, finds the pool's slot taken.
        while heartbeats[bystander].load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(world.count(TaskState::Queued).await, 0);
        world.succeed(&claimed).await;
        signals[bystander].tries_finished([succeeded(&claimed)]);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            world.count(TaskState::Queued).await,
            0,
            "another's try is its owner's to answer"
        );
        // Told of free places together with more of another's tries (one look takes both:
        // the loop runs in this task, between awaits), it fills them.
        signals[bystander].tries_finished([succeeded(&claimed)]);
        signals[bystander].places_free();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while world.count(TaskState::Queued).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the freed place was not filled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
    };
    tokio::join!(schedulers[bystander].run(stopped), tell_and_watch);
    let queued = world.claim_one().await;
    assert_eq!(
        owner_of(queued.ti.dag_run_id).as_deref(),
        Some(ids[bystander]),
        "the bystander queued a task of its own runs"
    );
}

/// A scheduler's pass over a try that ended in its own run queues within the occupancy it
/// keeps, not one it reads: when another scheduler took the freed place first, the store
/// refuses the pick and the limit holds; the next pass over its own finish still fills the
/// place that finish frees.
#[tokio::test]
async fn a_pass_over_its_own_finish_queues_within_the_limits_another_scheduler_filled() {
    let (world, other) = runs_of_two_schedulers_in_a_pool_of_one().await;
    assert_eq!(world.count(TaskState::Queued).await, 1);

    let claimed = world.claim_one().await;
    world.succeed(&claimed).await;
    let owner_by_run = owner_by_run(&world, "d").await;
    let owner_of = |run_id: i64| owner_by_run[&run_id].clone();
    let (owner, bystander) = match owner_of(claimed.ti.dag_run_id).as_deref() {
        Some("scheduler") => (&world.scheduler, &other),
        _ => (&other, &world.scheduler),
    };
    // The bystander, told of free places (by the owner's pass over an earlier finish, say),
    // takes the pool's slot for its own run before the owner's pass over this one.
    let taken = bystander.fill_free_places().await.unwrap();
    assert_eq!(taken.queued, 1);
    let refused = owner
        .pass_with(false, HashSet::new(), vec![succeeded(&claimed)])
        .await
        .unwrap();
    assert_eq!(refused.queued, 0, "the slot was taken");
    assert_eq!(world.count(TaskState::Queued).await, 1);

    // The bystander's task ends in its own run: its pass fills the slot again.
    let second = world.claim_one().await;
    assert_ne!(
        owner_of(second.ti.dag_run_id),
        owner_of(claimed.ti.dag_run_id)
    );
    world.succeed(&second).await;
    let filled = bystander
        .pass_with(false, HashSet::new(), vec![succeeded(&second)])
        .await
        .unwrap();
    assert_eq!(filled.queued, 1);
    assert_eq!(world.count(TaskState::Queued).await, 1);
    assert_eq!(world.count(TaskState::Running).await, 0);
}

/// A task that limits its instances across its DAG's runs frees a place that only its own
/// instances can take, perhaps in another scheduler's run: its owner tells the others even
/// when it filled the DAG's and the pool's place with another task.
#[tokio::test]
async fn the_owner_tells_the_others_of_a_place_only_a_task_of_theirs_can_take() {
    let world = World::at(utc("2025-01-05T12:00:00Z")).await;
    let other = world.another_scheduler("other");
    full_pass(&other).await;
    let mut d = four_runs("d");
    d.tasks[0].max_active_tis_per_dag = Some(1);
    d.tasks.push(bash("after", &["t"]));
    world.publish(vec![d]).await;
    catch_up(&world).await;
    full_pass(&other).await;
    world.pass().await;
    assert_eq!(
        world.count(TaskState::Queued).await,
        1,
        "one `t` at a time over all runs"
    );
    let claimed = world.claim_one().await;
    let owner = match owner_by_run(&world, "d").await[&claimed.ti.dag_run_id].as_deref() {
        Some("scheduler") => &world.scheduler,
        _ => &other,
    };
    world.succeed(&claimed).await;
    let answered = owner
        .pass_with(false, HashSet::new(), vec![succeeded(&claimed)])
        .await
        .unwrap();
    assert!(answered.queued >= 1, "`after` of the run is queued");
    assert!(
        answered.told_places_free,
        "the place of `t` is told to the others"
    );
}
