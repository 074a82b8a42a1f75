//! Checks of deleting old history (`db clean`): which runs and rows go, which stay, dry runs,
//! archive tables and batches.

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    ArchiveStamp, CleanBatch, CleanRequest, CleanSummary, CleanTable, DagRun, DagRunState,
    DeletedTry, JobHeartbeat, JobKind, NewEventLog, Store, StoreError, TaskState,
};

/// Every run of this suite starts before it, except those made at `at(100)`.
fn cutoff() -> chrono::DateTime<chrono::Utc> {
    at(50)
}

fn request(tables: &[CleanTable], dry_run: bool, archive: Option<ArchiveStamp>) -> CleanRequest {
    CleanRequest {
        before: cutoff(),
        tables: tables.to_vec(),
        dry_run,
        archive,
        batch_size: 100,
        log_folder: None,
    }
}

fn rows(summary: &CleanSummary) -> Vec<(&str, u64)> {
    summary
        .rows
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| (t.as_str(), *n))
        .collect()
}

/// A manual run of `d` whose one task ran (a shipped log chunk, an XCom) and succeeded, and
/// that then finished, created at `at(minutes)`.
async fn finished_run(store: &dyn Store, run_id: &str, minutes: i64) -> DagRun {
    let mut new = new_run("d", run_id, vec![task("a")]);
    new.now = at(minutes);
    if store.get_dag("d").await.is_err() {
        publish(store, &["d"]).await;
    }
    let run = create(store, new).await;
    queue(store, &ti(store, run.id, "a").await).await;
    run_try(store, &run, &format!("log of {run_id}\n"), json!(run_id)).await;
    store
        .force_dag_run_state(run.id, DagRunState::Success, at(minutes + 5))
        .await
        .expect("force_dag_run_state");
    store.get_dag_run_by_id(run.id).await.expect("the run")
}

async fn gone(store: &dyn Store, run: &DagRun) -> bool {
    matches!(
        store.get_dag_run_by_id(run.id).await,
        Err(StoreError::NotFound(_))
    )
}

/// Old finished runs go with their task instances, tries, logs and XComs; recent runs,
/// unfinished runs and the latest scheduled run of a DAG stay, whole.
pub async fn clean_deletes_old_finished_runs_and_keeps_the_rest(db: &dyn TestDatabase) {
    let store = db.open().await;
    let old = finished_run(&*store, "old", 0).await;
    let old_ti = ti(&*store, old.id, "a").await;
    let recent = finished_run(&*store, "recent", 100).await;
    let unfinished = queued_run(&*store, "d", "unfinished", vec![task("a")]).await;
    let older_scheduled = create(&*store, scheduled_run("d", 10, None)).await;
    let latest_scheduled = create(&*store, scheduled_run("d", 20, None)).await;
    for run in [&older_scheduled, &latest_scheduled] {
        store
            .force_dag_run_state(run.id, DagRunState::Failed, at(30))
            .await
            .expect("force_dag_run_state");
    }

    let summary = crate::clean_history(&*store, &request(&CleanTable::ALL, false, None))
        .await
        .expect("clean");

    assert_eq!(
        rows(&summary),
        vec![
            ("dag_run", 2),
            ("task_instance", 2),
            ("task_instance_history", 1),
            ("task_log", 1),
            ("xcom", 1),
        ]
    );
    assert!(
        summary.archives.is_empty(),
        "--skip-archive archives nothing"
    );
    assert!(gone(&*store, &old).await);
    assert!(gone(&*store, &older_scheduled).await);
    assert_eq!(store.task_instances(old.id).await.unwrap(), vec![]);
    assert_eq!(store.xcoms_for_run(old.id).await.unwrap(), vec![]);
    assert_eq!(
        store.read_log(old_ti.id, old_ti.try_number).await.unwrap(),
        None
    );
    for kept in [&recent, &unfinished, &latest_scheduled] {
        assert!(!gone(&*store, kept).await, "{} is kept", kept.run_id);
        assert_eq!(store.task_instances(kept.id).await.unwrap().len(), 1);
    }
    let recent_ti = ti(&*store, recent.id, "a").await;
    assert_eq!(
        store
            .read_log(recent_ti.id, recent_ti.try_number)
            .await
            .unwrap()
            .as_deref(),
        Some("log of recent\n")
    );
    assert_eq!(store.xcoms_for_run(recent.id).await.unwrap().len(), 1);
    assert_eq!(
        ti(&*store, unfinished.id, "a").await.state,
        TaskState::Queued,
        "an unfinished run is not touched"
    );

    let again = crate::clean_history(&*store, &request(&CleanTable::ALL, false, None))
        .await
        .expect("clean again");
    assert_eq!(rows(&again), vec![], "a second clean finds nothing");
}

/// A dry run counts what would go, table by table, and deletes nothing.
pub async fn clean_dry_run_counts_and_deletes_nothing(db: &dyn TestDatabase) {
    let store = db.open().await;
    let old = finished_run(&*store, "old", 0).await;
    finished_run(&*store, "recent", 100).await;
    store
        .add_event_log(NewEventLog {
            when: at(1),
            event: "trigger".into(),
            ..NewEventLog::default()
        })
        .await
        .expect("add_event_log");

    let summary = crate::clean_history(&*store, &request(&CleanTable::ALL, true, None))
        .await
        .expect("dry run");

    assert_eq!(
        rows(&summary),
        vec![
            ("dag_run", 1),
            ("task_instance", 1),
            ("task_instance_history", 1),
            ("task_log", 1),
            ("xcom", 1),
            ("log", 1),
        ]
    );
    assert_eq!(summary.batches, 0);
    assert!(!gone(&*store, &old).await);
    assert_eq!(store.xcoms_for_run(old.id).await.unwrap().len(), 1);
}

/// Unless archiving is skipped, every deleted row is copied into
/// `_updraft_deleted__<table>__<stamp>` first: copied back, the run is whole again; the
/// archive tables are listed and dropped.
pub async fn clean_archives_what_it_deletes(db: &dyn TestDatabase) {
    let store = db.open().await;
    let old = finished_run(&*store, "old", 0).await;
    let old_ti = ti(&*store, old.id, "a").await;
    let stamp = ArchiveStamp::new(at(60));

    let summary = crate::clean_history(
        &*store,
        &request(&[CleanTable::DagRun], false, Some(stamp.clone())),
    )
    .await
    .expect("clean");

    let names = [
        ("dag_run", "dag_run"),
        ("task_instance", "task_instance"),
        ("task_instance_history", "task_try"),
        ("task_log", "task_log"),
        ("xcom", "xcom"),
    ];
    let mut archives = summary.archives.clone();
    archives.sort();
    let mut expected: Vec<String> = names.iter().map(|(n, _)| stamp.table(n)).collect();
    expected.sort();
    assert_eq!(archives, expected);
    assert_eq!(
        stamp.table("xcom"),
        "_updraft_deleted__xcom__20240101010000"
    );
    assert!(gone(&*store, &old).await);

    for (name, source) in names {
        db.execute(&format!(
            "INSERT INTO {source} SELECT * FROM {}",
            stamp.table(name)
        ))
        .await;
    }
    assert_eq!(store.get_dag_run_by_id(old.id).await.unwrap().run_id, "old");
    assert_eq!(ti(&*store, old.id, "a").await.state, TaskState::Success);
    assert_eq!(store.xcoms_for_run(old.id).await.unwrap().len(), 1);
    assert_eq!(
        store
            .read_log(old_ti.id, old_ti.try_number)
            .await
            .unwrap()
            .as_deref(),
        Some("log of old\n")
    );

    // `db drop-archived`: the archive tables are listed, and dropped one by one.
    assert_eq!(store.archive_tables().await.unwrap(), expected);
    store
        .drop_archive_table(&stamp.table("xcom"))
        .await
        .expect("drop");
    let left = store.archive_tables().await.unwrap();
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&stamp.table("xcom")));
    for not in [stamp.table("xcom"), "dag_run".to_string()] {
        assert!(matches!(
            error(store.drop_archive_table(&not).await),
            StoreError::NotFound(_)
        ));
    }
    assert!(store.get_dag_run_by_id(old.id).await.is_ok());
}

/// A batch takes at most its limit of runs, in one transaction each; the batches of a clean
/// go through every run once and answer the tries whose log files go.
pub async fn clean_goes_in_batches(db: &dyn TestDatabase) {
    let store = db.open().await;
    let mut runs = Vec::new();
    for i in 0..5 {
        runs.push(finished_run(&*store, &format!("old{i}"), i).await);
    }

    let first = store
        .clean_batch(CleanBatch {
            table: CleanTable::DagRun,
            before: cutoff(),
            after: 0,
            limit: 2,
            archive: None,
        })
        .await
        .expect("one batch");
    assert_eq!(first.runs, vec![runs[0].id, runs[1].id]);
    assert_eq!(first.last, Some(runs[1].id));
    assert_eq!(
        first.tries,
        vec![
            DeletedTry {
                dag_id: "d".into(),
                run_id: "old0".into(),
                task_id: "a".into(),
                map_index: -1,
                try_number: 1,
            },
            DeletedTry {
                dag_id: "d".into(),
                run_id: "old1".into(),
                task_id: "a".into(),
                map_index: -1,
                try_number: 1,
            },
        ]
    );
    assert!(gone(&*store, &runs[1]).await);
    assert!(!gone(&*store, &runs[2]).await);

    let mut rest = request(&[CleanTable::DagRun], false, None);
    rest.batch_size = 2;
    let summary = crate::clean_history(&*store, &rest).await.expect("clean");
    assert_eq!(summary.batches, 2, "three runs left, two per batch");
    assert_eq!(rows(&summary)[0], ("dag_run", 3));
    for run in &runs {
        assert!(gone(&*store, run).await);
    }
}

/// Cleaning only a part of runs (`xcom`, `task_instance_history`) keeps the runs and their
/// other rows.
pub async fn clean_of_a_run_part_keeps_the_runs(db: &dyn TestDatabase) {
    let store = db.open().await;
    let old = finished_run(&*store, "old", 0).await;
    let old_ti = ti(&*store, old.id, "a").await;

    let xcoms = crate::clean_history(&*store, &request(&[CleanTable::Xcom], false, None))
        .await
        .expect("clean xcom");
    assert_eq!(rows(&xcoms), vec![("xcom", 1)]);
    assert_eq!(store.xcoms_for_run(old.id).await.unwrap(), vec![]);
    assert!(store.read_log(old_ti.id, 1).await.unwrap().is_some());

    let history = crate::clean_history(
        &*store,
        &request(&[CleanTable::TaskInstanceHistory], false, None),
    )
    .await
    .expect("clean history");
    assert_eq!(
        rows(&history),
        vec![("task_instance_history", 1), ("task_log", 1)]
    );
    assert_eq!(store.read_log(old_ti.id, 1).await.unwrap(), None);
    assert_eq!(ti(&*store, old.id, "a").await.state, TaskState::Success);
    assert!(!gone(&*store, &old).await);
}

/// Tables outside runs go by their own age: audit log entries, heartbeat records of
/// processes, asset events, and notifications delivered or given up (never pending ones).
pub async fn clean_of_other_tables_goes_by_their_age(db: &dyn TestDatabase) {
    let store = db.open().await;
    for minutes in [1, 2, 100] {
        store
            .add_event_log(NewEventLog {
                when: at(minutes),
                event: "trigger".into(),
                ..NewEventLog::default()
            })
            .await
            .expect("add_event_log");
    }
    for (id, minutes) in [("gone:1", 1), ("alive:2", 100)] {
        store
            .job_heartbeat(JobHeartbeat {
                id: id.into(),
                kind: JobKind::Scheduler,
                hostname: "h".into(),
                queues: Vec::new(),
                state: "running".into(),
                now: at(minutes),
            })
            .await
            .expect("job_heartbeat");
    }
    db.execute(
        "INSERT INTO notification (event, dag_id, notifier, context, state, next_attempt_at, \
         created_at) VALUES \
         ('task_failure', 'd', '{\"kind\": \"webhook\"}', '{}', 'delivered', 0, 60000000), \
         ('task_failure', 'd', '{\"kind\": \"webhook\"}', '{}', 'failed', 0, 60000000), \
         ('task_failure', 'd', '{\"kind\": \"webhook\"}', '{}', 'pending', 0, 60000000)",
    )
    .await;

    let summary = crate::clean_history(&*store, &request(&CleanTable::ALL, false, None))
        .await
        .expect("clean");

    assert_eq!(
        rows(&summary),
        vec![("log", 2), ("job", 1), ("notification", 2)]
    );
    let jobs = store.list_jobs(None, at(0)).await.expect("list_jobs");
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec!["alive:2"]
    );
    let left = store
        .list_notifications(Some("d"), 10)
        .await
        .expect("list_notifications");
    assert_eq!(left.len(), 1, "the pending notification stays");
}
