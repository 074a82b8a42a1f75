//! Checks of DAG runs: creation with their task instances, lookups, and run state changes.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    ClaimRequest, DagRun, DagRunState, NewDagRun, RunStart, RunType, Store, StoreError,
    TaskInstance, TaskState, TransitionResult,
};

pub async fn create_dag_run_creates_task_instances_in_state_none(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let conf = json!({"n": 3, "nested": {"list": [1, "two", null]}, "s": "é"});
    let run = create(
        &*store,
        NewDagRun {
            conf: conf.as_object().unwrap().clone(),
            logical_date: at(60),
            data_interval_start: at(0),
            data_interval_end: at(60),
            now: at(61),
            ..new_run(
                "d",
                "manual__1",
                vec![task_in("first", "default", 3), task_in("second", "gpu", 7)],
            )
        },
    )
    .await;
    assert_eq!(
        run,
        DagRun {
            id: run.id,
            dag_id: "d".into(),
            run_id: "manual__1".into(),
            run_type: RunType::Manual,
            state: DagRunState::Queued,
            logical_date: at(60),
            data_interval_start: at(0),
            data_interval_end: at(60),
            conf: conf.as_object().unwrap().clone(),
            dag_version: 1,
            queued_at: at(61),
            start_date: None,
            end_date: None,
            runner: None,
            note: None,
        }
    );
    assert_eq!(store.get_dag_run("d", "manual__1").await.unwrap(), run);
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap(), run);

    let mut tis = store.task_instances(run.id).await.unwrap();
    tis.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    let expected = |task_id: &str, queue: &str, priority_weight: i64| TaskInstance {
        id: 0,
        dag_run_id: run.id,
        dag_id: "d".into(),
        run_id: "manual__1".into(),
        task_id: task_id.into(),
        map_index: -1,
        try_number: 0,
        state: TaskState::None,
        queue: queue.into(),
        pool: "default_pool".into(),
        priority_weight,
        hostname: None,
        worker_id: None,
        claim_id: None,
        lease_until: None,
        queued_at: None,
        start_date: None,
        end_date: None,
        next_retry_at: None,
        infra_failures: 0,
        note: None,
    };
    assert_ne!(tis[0].id, tis[1].id);
    let without_ids: Vec<TaskInstance> = tis
        .into_iter()
        .map(|ti| TaskInstance { id: 0, ..ti })
        .collect();
    assert_eq!(
        without_ids,
        vec![
            expected("first", "default", 3),
            expected("second", "gpu", 7)
        ]
    );
    assert_eq!(store.task_instances(run.id + 1000).await.unwrap(), vec![]);
    // A manual run does not move the DAG's schedule.
    assert_eq!(store.get_dag("d").await.unwrap().next_dagrun, None);
    assert_eq!(store.last_scheduled_logical_date("d").await.unwrap(), None);
}

pub async fn create_dag_run_rejects_a_duplicate_run_id(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "e"]).await;
    let first = create(&*store, new_run("d", "r", vec![task("a"), task("b")])).await;
    let err = error(
        store
            .create_dag_run(NewDagRun {
                logical_date: at(5),
                ..new_run("d", "r", vec![task("c")])
            })
            .await,
    );
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(store.list_dag_runs("d").await.unwrap(), vec![first.clone()]);
    assert_eq!(
        task_ids(&store.task_instances(first.id).await.unwrap()).len(),
        2,
        "the rejected run added no task instances"
    );
    // Run ids are unique per DAG only.
    let other = create(&*store, new_run("e", "r", vec![task("a")])).await;
    assert_ne!(other.id, first.id);
    assert_eq!(store.get_dag_run("e", "r").await.unwrap(), other);
}

pub async fn create_dag_run_for_an_unknown_dag_is_not_found(db: &dyn TestDatabase) {
    let store = db.open().await;
    let err = error(
        store
            .create_dag_run(new_run("nope", "r", vec![task("a")]))
            .await,
    );
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_dag_runs("nope").await.unwrap(), vec![]);
}

pub async fn scheduled_runs_move_next_dagrun(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("h"), "h1")]).await;
    store.set_next_dagrun("h", Some(at(60))).await.unwrap();
    assert_eq!(store.due_dags(at(60)).await.unwrap().len(), 1);

    let run = create(&*store, scheduled_run("h", 60, Some(at(120)))).await;
    assert_eq!(run.run_type, RunType::Scheduled);
    let dag = store.get_dag("h").await.unwrap();
    assert_eq!(dag.next_dagrun, Some(at(120)));
    assert_eq!(store.due_dags(at(60)).await.unwrap(), vec![]);
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), Some(at(120)));
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
    assert_eq!(
        store.last_scheduled_logical_date("h").await.unwrap(),
        Some(at(60))
    );

    // A run without a next run leaves the schedule where it is.
    create(
        &*store,
        NewDagRun {
            logical_date: at(90),
            ..new_run("h", "manual__90", vec![task("a")])
        },
    )
    .await;
    assert_eq!(store.get_dag("h").await.unwrap().next_dagrun, Some(at(120)));

    // The last scheduled run (end_date reached): no next run.
    create(&*store, scheduled_run("h", 120, None)).await;
    assert_eq!(store.get_dag("h").await.unwrap().next_dagrun, None);
    assert_eq!(store.due_dags(at(10_000)).await.unwrap(), vec![]);
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), None);
}

pub async fn last_scheduled_logical_date_is_the_newest_scheduled_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(
        &*store,
        vec![upsert(hourly("h"), "h1"), upsert(hourly("other"), "h1")],
    )
    .await;
    assert_eq!(store.last_scheduled_logical_date("h").await.unwrap(), None);
    create(&*store, scheduled_run("h", 180, Some(at(240)))).await;
    create(&*store, scheduled_run("h", 60, Some(at(120)))).await;
    create(&*store, scheduled_run("other", 600, Some(at(660)))).await;
    for (run_id, run_type) in [("manual", RunType::Manual), ("backfill", RunType::Backfill)] {
        create(
            &*store,
            NewDagRun {
                run_type,
                logical_date: at(1000),
                ..new_run("h", run_id, vec![task("a")])
            },
        )
        .await;
    }
    assert_eq!(
        store.last_scheduled_logical_date("h").await.unwrap(),
        Some(at(180))
    );
    assert_eq!(
        store.last_scheduled_logical_date("nope").await.unwrap(),
        None
    );
}

pub async fn unknown_runs_are_not_found(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    for result in [
        store.get_dag_run("d", "other").await,
        store.get_dag_run("other", "r").await,
        store.get_dag_run_by_id(run.id + 1000).await,
    ] {
        let err = error(result);
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    assert_eq!(store.list_dag_runs("other").await.unwrap(), vec![]);
}

pub async fn runs_are_listed_oldest_first(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "e"]).await;
    let mut made = Vec::new();
    for (dag_id, run_id, minutes) in [
        ("d", "late", 30),
        ("d", "early", 10),
        ("e", "middle", 20),
        ("d", "done", 0),
    ] {
        let run = create(
            &*store,
            NewDagRun {
                logical_date: at(minutes),
                ..new_run(dag_id, run_id, vec![task("a")])
            },
        )
        .await;
        made.push(run);
    }
    let done = made.iter().find(|r| r.run_id == "done").unwrap().id;
    let running = made.iter().find(|r| r.run_id == "late").unwrap().id;
    for (id, expected, to) in [
        (done, DagRunState::Queued, DagRunState::Running),
        (done, DagRunState::Running, DagRunState::Success),
        (running, DagRunState::Queued, DagRunState::Running),
    ] {
        let result = store.set_dag_run_state(id, expected, to, at(40)).await;
        assert_eq!(result.unwrap(), TransitionResult::Applied);
    }

    let names = |runs: Vec<DagRun>| -> Vec<String> { runs.into_iter().map(|r| r.run_id).collect() };
    assert_eq!(
        names(store.list_dag_runs("d").await.unwrap()),
        vec!["done", "early", "late"]
    );
    assert_eq!(
        names(store.unfinished_dag_runs().await.unwrap()),
        vec!["early", "middle", "late"],
        "queued and running runs of every DAG, oldest logical date first"
    );
}

pub async fn set_dag_run_state_is_a_compare_and_set(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;

    let lost = store
        .set_dag_run_state(run.id, DagRunState::Running, DagRunState::Success, at(1))
        .await
        .unwrap();
    assert_eq!(lost, TransitionResult::Conflict);
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap(), run);

    let started = store
        .set_dag_run_state(run.id, DagRunState::Queued, DagRunState::Running, at(2))
        .await
        .unwrap();
    assert_eq!(started, TransitionResult::Applied);
    let running = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(running.state, DagRunState::Running);
    assert_eq!(running.start_date, Some(at(2)));
    assert_eq!(running.end_date, None);

    // A second scheduler that saw the run queued loses.
    let again = store
        .set_dag_run_state(run.id, DagRunState::Queued, DagRunState::Running, at(3))
        .await
        .unwrap();
    assert_eq!(again, TransitionResult::Conflict);
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap(), running);

    let failed = store
        .set_dag_run_state(run.id, DagRunState::Running, DagRunState::Failed, at(4))
        .await
        .unwrap();
    assert_eq!(failed, TransitionResult::Applied);
    let finished = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(finished.state, DagRunState::Failed);
    assert_eq!(finished.start_date, Some(at(2)));
    assert_eq!(finished.end_date, Some(at(4)));
    assert_eq!(store.unfinished_dag_runs().await.unwrap(), vec![]);

    let missing = store
        .set_dag_run_state(
            run.id + 1000,
            DagRunState::Queued,
            DagRunState::Running,
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(missing, TransitionResult::Conflict);
}

pub async fn times_round_trip_with_microsecond_precision(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("d"), "h1")]).await;
    let base = Utc.with_ymd_and_hms(2031, 7, 9, 23, 59, 58).unwrap();
    let t = |micros: i64| base + Duration::microseconds(micros);
    store.set_next_dagrun("d", Some(t(1))).await.unwrap();
    assert_eq!(store.get_dag("d").await.unwrap().next_dagrun, Some(t(1)));
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), Some(t(1)));
    assert!(store.due_dags(t(0)).await.unwrap().is_empty());
    assert_eq!(store.due_dags(t(1)).await.unwrap().len(), 1);

    let run = create(
        &*store,
        NewDagRun {
            logical_date: t(123_456),
            data_interval_start: t(-999_999),
            data_interval_end: t(123_456),
            now: t(654_321),
            run_type: RunType::Scheduled,
            next_dagrun: Some(Some(t(3_600_000_001))),
            ..new_run("d", "r", vec![task("a")])
        },
    )
    .await;
    let stored = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(stored.logical_date, t(123_456));
    assert_eq!(stored.data_interval_start, t(-999_999));
    assert_eq!(stored.data_interval_end, t(123_456));
    assert_eq!(stored.queued_at, t(654_321));
    assert_eq!(
        store.last_scheduled_logical_date("d").await.unwrap(),
        Some(t(123_456))
    );
    assert_eq!(
        store.get_dag("d").await.unwrap().next_dagrun,
        Some(t(3_600_000_001))
    );

    let ti = ti(&*store, run.id, "a").await;
    apply(
        &*store,
        crate::Transition {
            now: t(700_001),
            ..transition(&ti, TaskState::Scheduled)
        },
    )
    .await;
    let scheduled = self::ti(&*store, run.id, "a").await;
    apply(
        &*store,
        crate::Transition {
            now: t(700_002),
            new_try: true,
            ..transition(&scheduled, TaskState::Queued)
        },
    )
    .await;
    let claimed = claim(
        &*store,
        ClaimRequest {
            now: t(700_003),
            lease_until: t(60_000_007),
            ..claim_request("w", None, 1)
        },
    )
    .await;
    assert_eq!(claimed.len(), 1);
    let stored = self::ti(&*store, run.id, "a").await;
    assert_eq!(stored.queued_at, Some(t(700_002)));
    assert_eq!(stored.start_date, Some(t(700_003)));
    assert_eq!(stored.lease_until, Some(t(60_000_007)));
    assert_eq!(store.expired_claims(t(60_000_007)).await.unwrap(), vec![]);
    assert_eq!(store.expired_claims(t(60_000_008)).await.unwrap().len(), 1);
    let result = finish(
        &*store,
        crate::FinishReport {
            end_date: t(800_009),
            next_retry_at: Some(t(900_011)),
            ..report(&claimed[0], TaskState::UpForRetry)
        },
    )
    .await;
    assert_eq!(result, TransitionResult::Applied);
    let stored = self::ti(&*store, run.id, "a").await;
    assert_eq!(stored.end_date, Some(t(800_009)));
    assert_eq!(stored.next_retry_at, Some(t(900_011)));
    assert_eq!(store.earliest_retry().await.unwrap(), Some(t(900_011)));
}

pub async fn start_dag_run_keeps_max_active_runs(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d", "other"]).await;
    let mut runs = Vec::new();
    for r in 0..3 {
        runs.push(create(&*store, new_run("d", &format!("r{r}"), vec![task("a")])).await);
    }
    let other = create(&*store, new_run("other", "r", vec![task("a")])).await;

    let start = |id: i64, t: i64| {
        let store = Arc::clone(&store);
        async move { store.start_dag_run(id, 2, at(t)).await.unwrap() }
    };
    assert_eq!(start(runs[0].id, 1).await, RunStart::Started);
    assert_eq!(start(runs[0].id, 1).await, RunStart::NotQueued);
    assert_eq!(start(runs[1].id, 2).await, RunStart::Started);
    assert_eq!(start(runs[2].id, 3).await, RunStart::AtLimit);
    let waiting = store.get_dag_run_by_id(runs[2].id).await.unwrap();
    assert_eq!(
        (waiting.state, waiting.start_date),
        (DagRunState::Queued, None)
    );
    let started = store.get_dag_run_by_id(runs[1].id).await.unwrap();
    assert_eq!(
        (started.state, started.start_date),
        (DagRunState::Running, Some(at(2)))
    );
    assert_eq!(
        start(other.id, 3).await,
        RunStart::Started,
        "another DAG's runs do not count"
    );

    let done = store
        .set_dag_run_state(
            runs[0].id,
            DagRunState::Running,
            DagRunState::Success,
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(done, TransitionResult::Applied);
    assert_eq!(
        start(runs[2].id, 5).await,
        RunStart::Started,
        "a finished run frees its place"
    );
    assert_eq!(start(runs[2].id + 1000, 6).await, RunStart::NotQueued);
}

/// Schedulers on separate connections start queued runs of one DAG at the same moment: the
/// DAG's `max_active_runs` holds between them.
pub async fn concurrent_run_starts_never_exceed_max_active_runs(db: &dyn TestDatabase) {
    const HANDLES: usize = 3;
    const RUNS: usize = 9;
    const LIMIT: u32 = 2;
    let mut handles: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..HANDLES {
        handles.push(db.open().await);
    }
    publish(&*handles[0], &["d"]).await;
    for round in 0..4 {
        let mut ids = Vec::new();
        for r in 0..RUNS {
            let run = create(
                &*handles[0],
                new_run("d", &format!("round{round}-r{r}"), vec![task("a")]),
            )
            .await;
            ids.push(run.id);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(RUNS));
        let mut joins = Vec::new();
        for (i, id) in ids.iter().copied().enumerate() {
            let store = Arc::clone(&handles[i % HANDLES]);
            let barrier = Arc::clone(&barrier);
            joins.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .start_dag_run(id, LIMIT, at(1))
                    .await
                    .expect("a concurrent start must not fail")
            }));
        }
        let mut started = 0;
        for join in joins {
            if join.await.expect("starter panicked") == RunStart::Started {
                started += 1;
            }
        }
        assert_eq!(started, LIMIT, "round {round}: runs started at once");
        let running: Vec<_> = handles[0]
            .unfinished_dag_runs()
            .await
            .unwrap()
            .into_iter()
            .filter(|run| run.state == DagRunState::Running)
            .collect();
        assert_eq!(running.len(), LIMIT as usize, "round {round}");
        for run in running {
            handles[0]
                .set_dag_run_state(run.id, DagRunState::Running, DagRunState::Success, at(2))
                .await
                .unwrap();
        }
        for id in ids {
            let _ = handles[0]
                .set_dag_run_state(id, DagRunState::Queued, DagRunState::Failed, at(2))
                .await
                .unwrap();
        }
    }
}
