//! Checks of what runs that depend on other runs need: timing a run out
//! (`dagrun_timeout`), a run's previous run (`depends_on_past`), the latest runs' states
//! (`max_consecutive_failed_dag_runs`), and queueing within a task's own limits
//! (`max_active_tis_per_dag`, `max_active_tis_per_dagrun`).

use super::fixture::*;
use super::TestDatabase;
use crate::{DagRunState, NewDagRun, QueueItem, RunType, TaskLimits, TaskState, TransitionResult};

pub async fn time_out_dag_run_fails_the_run_and_skips_its_unfinished_tasks(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        new_run(
            "d",
            "r",
            vec![task("done"), task("running"), task("waiting")],
        ),
    )
    .await;
    assert_eq!(
        store
            .start_dag_run(run.id, 16, at(1))
            .await
            .expect("start_dag_run"),
        crate::RunStart::Started
    );
    let done = queue(&*store, &ti(&*store, run.id, "done").await).await;
    let claimed = claim_one(&*store, "w").await;
    assert_eq!(claimed.ti.id, done.id);
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Applied
    );
    queue(&*store, &ti(&*store, run.id, "running").await).await;
    let running = claim_one(&*store, "w").await;

    assert_eq!(
        store
            .time_out_dag_run(run.id, at(7))
            .await
            .expect("time out"),
        TransitionResult::Applied
    );
    let timed_out = store.get_dag_run_by_id(run.id).await.expect("run");
    assert_eq!(
        (timed_out.state, timed_out.end_date),
        (DagRunState::Failed, Some(at(7)))
    );
    let states: Vec<(String, TaskState)> = store
        .task_instances(run.id)
        .await
        .expect("task_instances")
        .into_iter()
        .map(|ti| (ti.task_id, ti.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("done".into(), TaskState::Success),
            ("running".into(), TaskState::Skipped),
            ("waiting".into(), TaskState::Skipped),
        ]
    );
    // The running try lost its claim: its heartbeat says so and its report is refused.
    let lost = store
        .heartbeat(std::slice::from_ref(&running.claim_id), at(20))
        .await
        .expect("heartbeat");
    assert_eq!(lost, vec![running.claim_id.clone()]);
    assert_eq!(
        finish(&*store, report(&running, TaskState::Success)).await,
        TransitionResult::Conflict
    );
    // A compare-and-set: a second scheduler timing it out changes nothing.
    assert_eq!(
        store
            .time_out_dag_run(run.id, at(8))
            .await
            .expect("time out"),
        TransitionResult::Conflict
    );
    assert_eq!(
        store.get_dag_run_by_id(run.id).await.expect("run").end_date,
        Some(at(7))
    );
}

pub async fn time_out_dag_run_leaves_a_run_that_is_not_running(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    assert_eq!(
        store
            .time_out_dag_run(run.id, at(3))
            .await
            .expect("time out"),
        TransitionResult::Conflict
    );
    assert_eq!(
        store.get_dag_run_by_id(run.id).await.expect("run").state,
        DagRunState::Queued
    );
    assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::None);
}

fn run_at(dag_id: &str, run_id: &str, minutes: i64, run_type: RunType) -> NewDagRun {
    NewDagRun {
        run_type,
        logical_date: at(minutes),
        ..new_run(dag_id, run_id, vec![task("a")])
    }
}

pub async fn previous_dag_run_is_the_latest_earlier_logical_date(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "e"]).await;
    create(&*store, run_at("d", "s10", 10, RunType::Scheduled)).await;
    create(&*store, run_at("d", "m20", 20, RunType::Manual)).await;
    create(&*store, run_at("d", "s30", 30, RunType::Scheduled)).await;
    create(&*store, run_at("e", "s25", 25, RunType::Scheduled)).await;
    let previous = |before, scheduled_only| {
        let store = store.clone();
        async move {
            store
                .previous_dag_run("d", at(before), scheduled_only)
                .await
                .expect("previous_dag_run")
                .map(|r| r.run_id)
        }
    };
    assert_eq!(previous(30, false).await.as_deref(), Some("m20"));
    // With catch-up Airflow looks at the runs that are not manual.
    assert_eq!(previous(30, true).await.as_deref(), Some("s10"));
    assert_eq!(previous(40, false).await.as_deref(), Some("s30"));
    assert_eq!(previous(10, false).await, None);
    assert_eq!(
        store
            .previous_dag_run("nothing", at(40), false)
            .await
            .expect("previous_dag_run"),
        None
    );
}

pub async fn has_earlier_task_instance_looks_at_earlier_runs_only(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "e"]).await;
    create(&*store, run_at("d", "s10", 10, RunType::Scheduled)).await;
    create(&*store, run_at("e", "s5", 5, RunType::Scheduled)).await;
    let earlier = |dag_id: &'static str, task_id: &'static str, before| {
        let store = store.clone();
        async move {
            store
                .has_earlier_task_instance(dag_id, task_id, at(before))
                .await
                .expect("has_earlier_task_instance")
        }
    };
    assert!(earlier("d", "a", 20).await);
    assert!(!earlier("d", "a", 10).await, "only runs before");
    assert!(!earlier("d", "new", 20).await, "another task");
    assert!(earlier("e", "a", 20).await);
    assert!(!earlier("nothing", "a", 20).await);
}

pub async fn latest_dag_run_states_are_newest_first(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    for (minutes, run_id) in [(30, "c"), (10, "a"), (20, "b")] {
        let run = create(&*store, run_at("d", run_id, minutes, RunType::Scheduled)).await;
        if run_id != "c" {
            store
                .force_dag_run_state(run.id, DagRunState::Failed, at(40))
                .await
                .expect("force_dag_run_state");
        }
    }
    let latest = |limit| {
        let store = store.clone();
        async move {
            store
                .latest_dag_run_states("d", limit)
                .await
                .expect("latest_dag_run_states")
        }
    };
    assert_eq!(
        latest(2).await,
        vec![DagRunState::Queued, DagRunState::Failed]
    );
    assert_eq!(
        latest(5).await,
        vec![
            DagRunState::Queued,
            DagRunState::Failed,
            DagRunState::Failed
        ]
    );
}

fn limited(ti: &crate::TaskInstance, per_dag: Option<u32>, per_run: Option<u32>) -> QueueItem {
    QueueItem {
        ti_id: ti.id,
        try_number: ti.try_number,
        dag_id: ti.dag_id.clone(),
        pool: ti.pool.clone(),
        queue: ti.queue.clone(),
        dag_run_id: ti.dag_run_id,
        max_active_tasks: 16,
        task_limits: Some(TaskLimits {
            task_id: ti.task_id.clone(),
            dag_run_id: ti.dag_run_id,
            per_dag,
            per_run,
        }),
        resumes: false,
    }
}

/// Two runs of `d`, each with tasks `a` and `b` scheduled; the task instances by run.
async fn two_scheduled_runs(store: &dyn crate::Store) -> Vec<Vec<crate::TaskInstance>> {
    publish(store, &["d"]).await;
    let mut runs = Vec::new();
    for run_id in ["r1", "r2"] {
        let run = create(store, new_run("d", run_id, vec![task("a"), task("b")])).await;
        let mut tis = Vec::new();
        for name in ["a", "b"] {
            apply(
                store,
                transition(&ti(store, run.id, name).await, TaskState::Scheduled),
            )
            .await;
            tis.push(ti(store, run.id, name).await);
        }
        runs.push(tis);
    }
    runs
}

pub async fn queue_admits_within_max_active_tis_per_dag(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = two_scheduled_runs(&*store).await;
    let items = vec![
        limited(&runs[0][0], Some(1), None),
        limited(&runs[1][0], Some(1), None),
        limited(&runs[1][1], Some(1), None),
    ];
    let results = store.queue(items.clone(), at(1)).await.expect("queue");
    use TransitionResult::*;
    // `a` of the second run waits for `a` of the first; `b` is another task.
    assert_eq!(results, vec![Applied, Conflict, Applied]);
    // Running counts as well; a finished instance frees its place.
    let claimed = claim(&*store, claim_request("w", None, 10)).await;
    let again = store
        .queue(items[1..2].to_vec(), at(3))
        .await
        .expect("queue");
    assert_eq!(again, vec![Conflict]);
    let a = claimed
        .iter()
        .find(|c| c.ti.id == runs[0][0].id)
        .expect("a of the first run was claimed");
    assert_eq!(
        finish(&*store, report(a, TaskState::Success)).await,
        Applied
    );
    let again = store
        .queue(items[1..2].to_vec(), at(6))
        .await
        .expect("queue");
    assert_eq!(again, vec![Applied]);
}

pub async fn queue_admits_within_max_active_tis_per_dagrun(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = two_scheduled_runs(&*store).await;
    let items = vec![
        limited(&runs[0][0], None, Some(1)),
        limited(&runs[1][0], None, Some(1)),
    ];
    let results = store.queue(items, at(1)).await.expect("queue");
    // One per run: the runs do not count against each other.
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Applied]
    );
}
