//! Checks of [`Store::watch`](crate::Store::watch): every commit of the store reaches its
//! watchers right after it commits, and nothing that did not commit does.

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;

use super::fixture::*;
use super::TestDatabase;
use crate::{Change, JobHeartbeat, JobKind, QueueItem, TaskState, TransitionResult};

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
                queue: a.queue.clone(),
                dag_run_id: a.dag_run_id,
                max_active_tasks: 16,
                task_limits: None,
                resumes: false,
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

pub async fn watchers_see_marks_forced_states_deletes_and_notes(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    claim_one(&*store, "w").await;
    let a = ti(&*store, run.id, "a").await;
    let b = ti(&*store, run.id, "b").await;
    sent(&mut rx);

    let marked = store
        .mark_task_instances(crate::MarkTaskInstances {
            ti_ids: vec![a.id],
            state: TaskState::Success,
            now: at(3),
        })
        .await
        .expect("mark_task_instances");
    assert_eq!(marked.len(), 1);
    assert_eq!(sent(&mut rx), vec![Change::Runs(vec![run.id])], "a mark");

    store
        .set_dag_run_note(run.id, Some("looked at".into()))
        .await
        .expect("set_dag_run_note");
    assert_eq!(
        sent(&mut rx),
        vec![Change::Runs(vec![run.id])],
        "a run's note"
    );
    store
        .set_task_instance_note(b.id, Some("slow".into()))
        .await
        .expect("set_task_instance_note");
    assert_eq!(
        sent(&mut rx),
        vec![Change::Runs(vec![run.id])],
        "a task instance's note"
    );

    store
        .force_dag_run_state(run.id, crate::DagRunState::Failed, at(4))
        .await
        .expect("force_dag_run_state");
    assert_eq!(
        sent(&mut rx),
        vec![Change::Runs(vec![run.id])],
        "a forced state"
    );

    store.delete_dag_run(run.id).await.expect("delete_dag_run");
    assert_eq!(
        sent(&mut rx),
        vec![Change::Runs(vec![run.id])],
        "a deleted run"
    );

    store.delete_dag("d").await.expect("delete_dag");
    assert_eq!(sent(&mut rx), vec![Change::Everything], "a deleted DAG");

    // Failed: nothing committed, nothing announced.
    assert!(store.set_task_instance_note(b.id, None).await.is_err());
    assert!(store.delete_dag_run(run.id).await.is_err());
    assert!(store.delete_dag("d").await.is_err());
    assert_eq!(sent(&mut rx), vec![]);
}

pub async fn a_moved_next_run_is_announced_for_its_dag_only(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    sync(&*store, vec![upsert(hourly("h"), "h1")]).await;
    sent(&mut rx);
    store
        .set_next_dagrun("h", Some(at(60)))
        .await
        .expect("set_next_dagrun");
    // Not "everything": readers' caches of DAG versions, users and run totals stay.
    assert_eq!(sent(&mut rx), vec![Change::Dags(vec!["h".into()])]);
}

/// The UI's health and cluster pages follow heartbeats: a beat and a process's end reach the
/// watchers.
pub async fn heartbeats_and_ended_processes_are_announced(db: &dyn TestDatabase) {
    let (store, mut rx) = db.open_watched().await;
    let beat = JobHeartbeat {
        id: "w1".into(),
        kind: JobKind::Worker,
        hostname: "host".into(),
        queues: vec![],
        state: "running".into(),
        now: at(1),
    };
    store.job_heartbeat(beat).await.expect("heartbeat");
    assert_eq!(sent(&mut rx), vec![Change::Jobs], "a beat");
    store.end_job("w1").await.expect("end");
    assert_eq!(sent(&mut rx), vec![Change::Jobs], "an end");
}
