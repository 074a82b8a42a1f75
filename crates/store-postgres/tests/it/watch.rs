//! `Store::watch` across processes: a watcher hears its own store's commits and, through the
//! database, every other store's — including the runs of work queued elsewhere, the
//! scheduler's own transitions, claims and notes, which a scheduler's change stream leaves
//! out; a scheduler hears the tries a finish ended instead of the finish's runs.

use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use updraft_store::conformance::fixture::*;
use updraft_store::{
    AuthStore, Change, ManageStore, QueueItem, Store, TaskState, TransitionResult,
};
use updraft_store_postgres::testing::TestPostgres;

/// The next change, failing the test if none comes in a long while.
async fn next(rx: &mut Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no change arrived")
        .expect("the watch ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_hear_changes_committed_through_another_store() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let here = db.open().await;
    let elsewhere = db.open().await;
    let mut rx = here.watch();
    // Until its listener listens, a watcher cannot know what others committed.
    assert_eq!(next(&mut rx).await, Change::Everything);
    let mut scheduler = here
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");

    publish(&elsewhere, &["d"]).await;
    assert_eq!(next(&mut rx).await, Change::Everything, "a new DAG");

    let run = create(&elsewhere, new_run("d", "r", vec![task_in("a", "gpu", 1)])).await;
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "a trigger");

    let a = ti(&elsewhere, run.id, "a").await;
    apply(&elsewhere, transition(&a, TaskState::Scheduled)).await;
    assert_eq!(
        next(&mut rx).await,
        Change::Runs(vec![run.id]),
        "a scheduler's transition"
    );
    let item = QueueItem {
        ti_id: a.id,
        try_number: a.try_number,
        dag_id: "d".into(),
        pool: "default_pool".into(),
        queue: a.queue.clone(),
        dag_run_id: a.dag_run_id,
        max_active_tasks: 16,
        task_limits: None,
        resumes: false,
    };
    let results = elsewhere.queue(vec![item], at(1)).await.unwrap();
    assert_eq!(results, vec![TransitionResult::Applied]);
    assert_eq!(next(&mut rx).await, Change::WorkQueued(vec!["gpu".into()]));
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "queued");

    let claimed = claim_one(&elsewhere, "w").await;
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "a claim");
    finish(&elsewhere, report(&claimed, TaskState::Failed)).await;
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "a finish");

    elsewhere
        .clear_task_instances(run.id, &["a".into()], at(6))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "a clear");

    elsewhere
        .set_dag_run_note(run.id, Some("seen".into()))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Runs(vec![run.id]), "a note");

    elsewhere.set_paused("d", true).await.unwrap();
    assert_eq!(next(&mut rx).await, Change::Everything, "a pause");

    // Another server's heartbeat and end: the UI's cluster page follows them.
    elsewhere
        .job_heartbeat(updraft_store::JobHeartbeat {
            id: "w9".into(),
            kind: updraft_store::JobKind::Worker,
            hostname: "elsewhere".into(),
            queues: vec![],
            state: "running".into(),
            now: at(7),
        })
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Jobs, "a heartbeat");
    elsewhere.end_job("w9").await.unwrap();
    assert_eq!(next(&mut rx).await, Change::Jobs, "an end");

    // Its own commits once each (not again through the database).
    here.set_paused("d", false).await.unwrap();
    assert_eq!(next(&mut rx).await, Change::Everything);
    let own = create(&here, new_run("d", "own", vec![task("a")])).await;
    assert_eq!(next(&mut rx).await, Change::Runs(vec![own.id]));
    let last = create(&elsewhere, new_run("d", "last", vec![task("a")])).await;
    assert_eq!(next(&mut rx).await, Change::Runs(vec![last.id]));

    // The scheduler's stream is as before: work queued elsewhere without its runs.
    let mut heard = Vec::new();
    while let Ok(Some(change)) =
        tokio::time::timeout(Duration::from_millis(300), scheduler.recv()).await
    {
        heard.push(change);
    }
    assert!(heard.contains(&Change::WorkQueued(vec!["gpu".into()])));
    assert!(!heard.contains(&Change::Runs(vec![own.id])), "its own run");
    let runs = heard
        .iter()
        .filter(|c| matches!(c, Change::Runs(ids) if *ids == vec![run.id]))
        .count();
    // Transitions, claims and notes concern watchers only.
    assert_eq!(runs, 2, "trigger and clear: {heard:?}");
    // A finish says which tries ended, so that the scheduler need not read the run again.
    let finished = heard
        .iter()
        .find_map(|c| match c {
            Change::TriesFinished { tries, reread } => Some((tries, reread)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no finished try heard: {heard:?}"));
    assert_eq!(finished.0.len(), 1, "{heard:?}");
    let ended = &finished.0[0];
    assert_eq!(
        (ended.dag_run_id, ended.ti_id, ended.try_number, ended.state),
        (run.id, a.id, claimed.ti.try_number, TaskState::Failed)
    );
    assert!(finished.1.is_empty(), "nothing to read again: {heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_server_hears_a_logout_or_a_user_change_made_through_another() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let here = db.open().await;
    let elsewhere = db.open().await;
    let mut rx = here.watch();
    assert_eq!(next(&mut rx).await, Change::Everything);
    // An api-server caches who a token acts as; these announcements drop that cache on
    // every server, so a revoked token or a removed user stops working everywhere at once.
    elsewhere
        .revoke_token("jti-1", at(60), at(0))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Everything, "a logout");
    let ada = updraft_store::UserRecord {
        username: "ada".into(),
        password_hash: "hash".into(),
        role: "Viewer".into(),
        email: None,
        first_name: None,
        last_name: None,
        active: true,
        created_at: at(0),
        last_login: None,
    };
    elsewhere.create_user(ada.clone()).await.unwrap();
    assert_eq!(next(&mut rx).await, Change::Everything, "a new user");
    elsewhere
        .update_user(updraft_store::UserRecord {
            role: "Admin".into(),
            ..ada
        })
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, Change::Everything, "a role change");
    assert!(elsewhere.delete_user("ada").await.unwrap());
    assert_eq!(next(&mut rx).await, Change::Everything, "a deletion");
}

/// A claim of tasks of so many runs that their ids do not fit in one announcement: announced
/// as "everything", and the claim goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_of_more_runs_than_an_announcement_holds_is_announced_as_everything() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let here = db.open().await;
    let elsewhere = db.open().await;
    publish(&elsewhere, &["d"]).await;
    // Eleven-digit run ids: 700 of them are past PostgreSQL's 8000 bytes.
    sqlx::query("ALTER TABLE dag_run ALTER COLUMN id RESTART WITH 10000000000")
        .execute(elsewhere.pool())
        .await
        .unwrap();
    for i in 0..700 {
        let run = create(&elsewhere, new_run("d", &format!("r{i}"), vec![task("a")])).await;
        queue(&elsewhere, &ti(&elsewhere, run.id, "a").await).await;
    }
    let mut rx = here.watch();
    assert_eq!(next(&mut rx).await, Change::Everything, "listening");
    let claimed = claim(&elsewhere, claim_request("w", None, 1000)).await;
    assert_eq!(claimed.len(), 700);
    assert_eq!(next(&mut rx).await, Change::Everything, "the claim");
}
