//! Clearing finished task instances: they run again as a new try and the run finishes again.

use updraft_model::{DagRunState, TaskState};
use updraft_store::Store;

use crate::fixture::{bash, dag, new_year, World};

/// Claims and finishes every queued task instance with success, then passes, until none is left.
async fn run_to_the_end(world: &World) {
    loop {
        let claimed = world.claim(100).await;
        if claimed.is_empty() {
            return;
        }
        for c in &claimed {
            world.succeed(c).await;
        }
        world.pass().await;
    }
}

#[tokio::test]
async fn clearing_a_finished_task_and_its_downstream_reruns_them_and_the_run_succeeds_again() {
    let world = World::at(new_year()).await;
    world
        .publish(vec![dag(
            "chain",
            "@daily",
            vec![bash("a", &[]), bash("b", &["a"])],
        )])
        .await;
    world.pass().await;
    run_to_the_end(&world).await;
    let run = world.runs("chain").await.remove(0);
    assert_eq!(world.run(run.id).await.state, DagRunState::Success);

    let cleared = world
        .store
        .clear_task_instances(run.id, &["a".to_string(), "b".to_string()], world.now())
        .await
        .unwrap();
    assert_eq!(cleared, 2);
    assert_eq!(world.run(run.id).await.state, DagRunState::Queued);
    assert_eq!(world.states(&run).await, "a=none b=none");

    world.pass().await;
    assert_eq!(world.run(run.id).await.state, DagRunState::Running);
    assert_eq!(world.states(&run).await, "a=queued b=none");
    assert_eq!(world.ti(&run, "a").await.try_number, 2);
    run_to_the_end(&world).await;
    assert_eq!(world.states(&run).await, "a=success b=success");
    assert_eq!(world.ti(&run, "b").await.try_number, 2);
    assert_eq!(world.run(run.id).await.state, DagRunState::Success);
}

#[tokio::test]
async fn clearing_the_failed_leaf_of_a_failed_run_lets_it_succeed() {
    let world = World::at(new_year()).await;
    world
        .publish(vec![dag(
            "chain",
            "@daily",
            vec![bash("a", &[]), bash("b", &["a"])],
        )])
        .await;
    world.pass().await;
    let a = world.claim_one().await;
    world.succeed(&a).await;
    world.pass().await;
    let b = world.claim_one().await;
    assert_eq!(world.fail(&b).await, TaskState::Failed);
    world.pass().await;
    let run = world.runs("chain").await.remove(0);
    assert_eq!(world.run(run.id).await.state, DagRunState::Failed);

    world
        .store
        .clear_task_instances(run.id, &["b".to_string()], world.now())
        .await
        .unwrap();
    world.pass().await;
    assert_eq!(world.states(&run).await, "a=success b=queued");
    let b = world.claim_one().await;
    assert_eq!(b.ti.try_number, 2);
    world.succeed(&b).await;
    world.pass().await;
    let run = world.run(run.id).await;
    assert_eq!(run.state, DagRunState::Success);
    assert_eq!(
        world.ti(&run, "a").await.try_number,
        1,
        "a did not run again"
    );
}
