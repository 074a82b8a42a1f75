//! One broken run must not stop the scheduler from running every other run.

use updraft_model::{Dag, DagRunState, Schedule};
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::Store;

use crate::fixture::{bash, dag, new_year, World};

#[tokio::test]
async fn a_run_whose_dag_version_is_missing_fails_and_the_others_still_run() {
    let world = World::at(new_year()).await;
    let good = Dag {
        schedule: Schedule::None,
        ..dag("good", "@daily", vec![bash("t", &[])])
    };
    let orphan = Dag {
        schedule: Schedule::None,
        ..dag("orphan", "@daily", vec![bash("t", &[])])
    };
    world.publish(vec![good.clone(), orphan.clone()]).await;

    // Version 99 was never published (a database written by a newer updraft, say).
    let broken = world
        .store
        .create_dag_run(new_dag_run(
            &orphan,
            99,
            TriggerRequest::manual(),
            world.now(),
            None,
        ))
        .await
        .unwrap();
    let fine = world
        .store
        .create_dag_run(new_dag_run(
            &good,
            1,
            TriggerRequest::manual(),
            world.now(),
            None,
        ))
        .await
        .unwrap();

    world.pass().await;
    assert_eq!(world.run(broken.id).await.state, DagRunState::Failed);
    assert_eq!(world.run(fine.id).await.state, DagRunState::Running);
    let claimed = world.claim_one().await;
    assert_eq!(claimed.ti.dag_run_id, fine.id);
    world.succeed(&claimed).await;
    world.pass().await;
    assert_eq!(world.run(fine.id).await.state, DagRunState::Success);
}
