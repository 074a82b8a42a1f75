//! Checks of [`Store::watch`](crate::Store::watch): every commit of the store reaches its
//! watchers right after it commits, and nothing that did not commit does.

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;

use super::fixture::*;
use super::TestDatabase;
use crate::{Change, QueueItem, TaskState, TransitionResult};

/// What the watcher was sent so far (own commits are sent before the call returns).
fn sent(rx: &mut Receiver<Change>) -> Vec<Change> {
    let mut changes = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(change) => changes.push(change),
            Err(TryRecvError::Empty) => return changes,
            Err(e) => panic!("watcher failed: {e}"),
        }
    }
}

pub async fn watchers_see_a_trigger_queueing_a_claim_and_a_finish(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    publish(&*store, &["d"]).await;
    assert_eq!(sent(&mut rx), vec![Change::Everything], "a new DAG");

    let run = create(&*store, new_run("d", "r", vec![task_in("a", "gpu", 1)])).await;
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "a trigger");

    let a = ti(&*store, run.id, "a").await;
    apply(&*store, transition(&a, TaskState::Scheduled)).await;
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "scheduled");
    let results = store
        .queue(
            vec![QueueItem {
                ti_id: a.id,
                try_number: a.try_number,
                dag_id: "d".into(),
                pool: "default_pool".into(),
                max_active_tasks: 16,
            }],
            at(1),
        )
        .await
        .expect("queue");
    assert_eq!(results, vec![TransitionResult::Applied]);
    let mut queued = sent(&mut rx);
    queued.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        queued,
        vec![
            Change::Runs(vec![run.id]),
            Change::WorkQueued(vec!["gpu".into()])
        ],
        "queued"
    );

    let claimed = claim_one(&*store, "w").await;
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "a claim");
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Applied
    );
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "a finish");
}

pub async fn watchers_see_a_clear_and_a_pause(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    finish(&*store, report(&claimed, TaskState::Failed)).await;
    sent(&mut rx);

    let cleared = store
        .clear_task_instances(run.id, &["a".to_string()], at(6))
        .await
        .expect("clear_task_instances");
    assert_eq!(cleared, 1);
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "a clear");

    store.set_paused("d", true).await.expect("set_paused");
    assert_eq!(sent(&mut rx), vec![Change::Everything], "a pause");
}

pub async fn writes_that_change_nothing_are_not_announced(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    let a = ti(&*store, run.id, "a").await;
    sent(&mut rx);

    // Failed, rolled back, or a compare-and-set that lost: no change committed.
    assert!(store
        .create_dag_run(new_run("d", "r", vec![task("a")]))
        .await
        .is_err());
    assert!(store.set_paused("unknown", true).await.is_err());
    let stale = crate::Transition {
        from: TaskState::Scheduled,
        ..transition(&a, TaskState::Queued)
    };
    assert_eq!(
        store
            .apply_transitions(vec![stale])
            .await
            .expect("apply_transitions"),
        vec![TransitionResult::Conflict]
    );
    assert!(claim(&*store, claim_request("w", None, 5)).await.is_empty());
    // A rescan that finds what is stored already.
    publish(&*store, &["d"]).await;
    assert_eq!(sent(&mut rx), vec![]);
}
