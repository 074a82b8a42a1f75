//! Failed tries: retry delays and backoff under the fake clock, the final failure and its
//! propagation, and tries lost with their worker's lease.

use std::time::Duration as StdDuration;

use chrono::Duration;
use updraft_model::{DagRunState, Task, TaskState};
use updraft_store::TransitionResult;

use crate::fixture::{bash, dag, new_year, World, LEASE};

/// `t` with `retries` and `retry_delay` seconds between tries, then `after` downstream of it.
fn flaky(retries: u32, delay_secs: u64, backoff: bool) -> Vec<Task> {
    let t = Task {
        retries,
        retry_delay: StdDuration::from_secs(delay_secs),
        retry_exponential_backoff: backoff,
        ..bash("t", &[])
    };
    vec![t, bash("after", &["t"])]
}

async fn world_with(tasks: Vec<Task>) -> World {
    let world = World::at(new_year()).await;
    world.publish(vec![dag("flaky", "@daily", tasks)]).await;
    world
}

#[tokio::test]
async fn a_failed_try_is_requeued_only_once_its_retry_delay_passed() {
    let world = world_with(flaky(2, 300, false)).await;
    world.pass().await;
    let run = world.runs("flaky").await.remove(0);
    let first = world.claim_one().await;
    assert_eq!(first.ti.try_number, 1);
    assert_eq!(world.fail(&first).await, TaskState::UpForRetry);

    let outcome = world.pass().await;
    let t = world.ti(&run, "t").await;
    assert_eq!(t.state, TaskState::UpForRetry);
    assert_eq!(t.next_retry_at, Some(new_year() + Duration::seconds(300)));
    assert_eq!(world.states(&run).await, "t=up_for_retry after=none");
    assert_eq!(
        outcome.next_due, t.next_retry_at,
        "the scheduler wakes up when the retry is due"
    );

    world.clock.advance(Duration::seconds(299));
    world.pass().await;
    assert_eq!(world.states(&run).await, "t=up_for_retry after=none");

    world.clock.advance(Duration::seconds(1));
    world.pass().await;
    let t = world.ti(&run, "t").await;
    assert_eq!((t.state, t.try_number), (TaskState::Queued, 2));

    let second = world.claim_one().await;
    assert_eq!(second.ti.try_number, 2);
    world.succeed(&second).await;
    world.pass().await;
    assert_eq!(world.states(&run).await, "t=success after=queued");
}

#[tokio::test]
async fn exponential_backoff_doubles_the_delay_between_tries() {
    let world = world_with(flaky(3, 60, true)).await;
    world.pass().await;
    let run = world.runs("flaky").await.remove(0);
    for (try_number, delay) in [(1, 60), (2, 120), (3, 240)] {
        let claimed = world.claim_one().await;
        assert_eq!(claimed.ti.try_number, try_number);
        world.fail(&claimed).await;
        world.pass().await;
        let t = world.ti(&run, "t").await;
        assert_eq!(t.state, TaskState::UpForRetry, "after try {try_number}");
        assert_eq!(
            t.next_retry_at,
            Some(world.now() + Duration::seconds(delay)),
            "delay after try {try_number}"
        );

        world.clock.advance(Duration::seconds(delay - 1));
        world.pass().await;
        assert_eq!(world.ti(&run, "t").await.state, TaskState::UpForRetry);
        world.clock.advance(Duration::seconds(1));
        world.pass().await;
        assert_eq!(world.ti(&run, "t").await.state, TaskState::Queued);
    }
    let last = world.claim_one().await;
    assert_eq!(last.ti.try_number, 4);
    assert_eq!(world.fail(&last).await, TaskState::Failed);
}

#[tokio::test]
async fn after_the_last_retry_the_task_fails_downstream_is_upstream_failed_and_the_run_fails() {
    let world = world_with(flaky(2, 10, false)).await;
    world.pass().await;
    let run = world.runs("flaky").await.remove(0);
    for try_number in 1..=3 {
        let claimed = world.claim_one().await;
        assert_eq!(claimed.ti.try_number, try_number);
        let state = world.fail(&claimed).await;
        world.pass().await;
        if try_number < 3 {
            assert_eq!(state, TaskState::UpForRetry);
            assert_eq!(world.run(run.id).await.state, DagRunState::Running);
            world.clock.advance(Duration::seconds(10));
            world.pass().await;
        } else {
            assert_eq!(state, TaskState::Failed);
        }
    }
    assert_eq!(world.states(&run).await, "t=failed after=upstream_failed");
    let run = world.run(run.id).await;
    assert_eq!(run.state, DagRunState::Failed);
    assert_eq!(run.end_date, Some(world.now()));
    assert_eq!(world.ti(&run, "t").await.try_number, 3);
}

#[tokio::test]
async fn an_expired_lease_fails_the_try_as_an_infrastructure_failure_and_retries_it() {
    let world = world_with(flaky(1, 60, false)).await;
    world.pass().await;
    let run = world.runs("flaky").await.remove(0);
    let lost = world.claim_one().await;

    // A lease that is renewed does not expire: past the first deadline, the try stands.
    world.clock.advance(LEASE - Duration::seconds(5));
    assert!(world.heartbeat(&lost).await);
    world.clock.advance(LEASE - Duration::seconds(1));
    world.pass().await;
    assert_eq!(world.ti(&run, "t").await.state, TaskState::Running);

    // The worker goes silent. At the deadline itself the try still stands; past it, it fails.
    world.clock.advance(Duration::seconds(1));
    world.pass().await;
    assert_eq!(world.ti(&run, "t").await.state, TaskState::Running);
    world.clock.advance(Duration::seconds(1));
    world.pass().await;
    // A lost try is retried at once and does not use up the task's own retries.
    let t = world.ti(&run, "t").await;
    assert_eq!(t.state, TaskState::Queued);
    assert_eq!(t.infra_failures, 1);
    assert_eq!(t.try_number, 2);

    // The lost worker's late reports are fenced off.
    assert!(!world.heartbeat(&lost).await);
    assert_eq!(
        world.report(&lost, TaskState::Success, None).await,
        TransitionResult::Conflict
    );
    assert_eq!(world.ti(&run, "t").await.state, TaskState::Queued);

    let retry = world.claim_one().await;
    assert_eq!(retry.ti.try_number, 2);
    // The task's one retry is still there: a failure of this try is retried.
    assert_eq!(world.fail(&retry).await, TaskState::UpForRetry);
    world.clock.advance(Duration::seconds(60));
    world.pass().await;
    let retry = world.claim_one().await;
    assert_eq!(retry.ti.try_number, 3);
    world.succeed(&retry).await;
    world.pass().await;
    let after = world.claim_one().await;
    world.succeed(&after).await;
    world.pass().await;
    assert_eq!(world.run(run.id).await.state, DagRunState::Success);
}
