//! What hand-made changes announce to the other processes of a cluster: the schedulers must
//! re-evaluate runs whose tasks or state a user set, and forget what was deleted.

use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use updraft_store::conformance::fixture::*;
use updraft_store::{Change, DagRunState, ManageStore, MarkTaskInstances, Store, TaskState};
use updraft_store_postgres::testing::TestPostgres;

async fn next(rx: &mut Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no change announced within 10 s")
        .expect("the change stream ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hand_made_changes_are_announced() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let a = db.open().await;
    let b = db.open().await;
    let mut heard_by_b = b
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");

    let run = queued_run(&a, "d", "r", vec![task("x"), task("y")]).await;
    let other = create(&a, new_run("d", "other", vec![task("x")])).await;
    // Drain what setting up announced.
    while tokio::time::timeout(Duration::from_millis(300), heard_by_b.recv())
        .await
        .is_ok()
    {}

    let x = ti(&a, run.id, "x").await;
    a.mark_task_instances(MarkTaskInstances {
        ti_ids: vec![x.id],
        state: TaskState::Success,
        now: at(3),
    })
    .await
    .unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));

    a.force_dag_run_state(run.id, DagRunState::Failed, at(4))
        .await
        .unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));

    a.delete_dag_run(other.id).await.unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![other.id]));

    a.delete_dag("d").await.unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
}
