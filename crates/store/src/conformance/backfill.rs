//! Checks of backfills: their record and dates round trip, one active backfill per DAG,
//! taking a date is a compare-and-set (on two handles too), reprocessing clears the existing
//! run, and pausing, cancelling and completing.

use super::fixture::*;
use super::TestDatabase;
use crate::{
    BackfillDate, DagRunState, NewBackfill, ReprocessBehavior, RunType, StoreError,
    TakeBackfillDate, TaskState,
};

fn new_backfill(dag_id: &str, dates: Vec<BackfillDate>) -> NewBackfill {
    let mut conf = serde_json::Map::new();
    conf.insert("k".to_string(), serde_json::json!(1));
    NewBackfill {
        dag_id: dag_id.to_string(),
        from_date: at(0),
        to_date: at(120),
        dag_run_conf: conf,
        reprocess_behavior: ReprocessBehavior::Failed,
        max_active_runs: 2,
        run_backwards: false,
        dates,
        now: at(1),
    }
}

fn date(minutes: i64) -> BackfillDate {
    BackfillDate {
        logical_date: at(minutes),
        dag_run_id: None,
        exception_reason: None,
    }
}

fn backfill_run(dag_id: &str, minutes: i64) -> TakeBackfillDate {
    TakeBackfillDate::Create(Box::new(crate::NewDagRun {
        run_type: RunType::Backfill,
        logical_date: at(minutes),
        data_interval_start: at(minutes),
        data_interval_end: at(minutes),
        ..new_run(dag_id, &format!("backfill__{minutes}"), vec![task("a")])
    }))
}

pub async fn backfills_round_trip_with_their_dates(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let skipped = BackfillDate {
        exception_reason: Some("already exists".to_string()),
        ..date(60)
    };
    let created = store
        .create_backfill(new_backfill("d", vec![date(120), skipped, date(0)]))
        .await
        .expect("create_backfill");
    assert_eq!(created.dag_id, "d");
    assert_eq!((created.from_date, created.to_date), (at(0), at(120)));
    assert_eq!(created.dag_run_conf["k"], 1);
    assert_eq!(created.reprocess_behavior, ReprocessBehavior::Failed);
    assert_eq!(created.max_active_runs, 2);
    assert!(!created.is_paused && created.completed_at.is_none());
    assert_eq!(created.created_at, at(1));
    assert_eq!(store.get_backfill(created.id).await.expect("get"), created);
    assert_eq!(
        store.list_backfills(Some("d")).await.expect("list"),
        vec![created.clone()]
    );
    assert!(store
        .list_backfills(Some("other"))
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store.active_backfills().await.expect("active"),
        vec![created.clone()]
    );
    let dates = store.backfill_dag_runs(created.id).await.expect("dates");
    let summary: Vec<_> = dates
        .iter()
        .map(|d| (d.sort_ordinal, d.logical_date, d.is_pending()))
        .collect();
    assert_eq!(
        summary,
        vec![(1, at(120), true), (2, at(60), false), (3, at(0), true)],
        "dates keep the order they were given"
    );
    assert_eq!(dates[1].exception_reason.as_deref(), Some("already exists"));
    assert!(matches!(
        store.get_backfill(created.id + 100).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .create_backfill(new_backfill("unknown", vec![date(0)]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Deleting the DAG deletes its backfills.
    store.delete_dag("d").await.expect("delete_dag");
    assert!(store.list_backfills(None).await.expect("list").is_empty());
}

pub async fn a_dag_has_one_backfill_until_it_completes(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let first = store
        .create_backfill(new_backfill("d", vec![date(0)]))
        .await
        .expect("create_backfill");
    let again = error(
        store
            .create_backfill(new_backfill("d", vec![date(60)]))
            .await,
    );
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert!(store
        .complete_backfill(first.id, at(5))
        .await
        .expect("complete"));
    assert!(!store
        .complete_backfill(first.id, at(6))
        .await
        .expect("complete"));
    assert_eq!(
        store
            .get_backfill(first.id)
            .await
            .expect("get")
            .completed_at,
        Some(at(5))
    );
    assert!(store.active_backfills().await.expect("active").is_empty());
    store
        .create_backfill(new_backfill("d", vec![date(60)]))
        .await
        .expect("a new backfill once the first completed");
}

pub async fn taking_a_date_creates_its_run_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    let other = db.open().await;
    publish(&*store, &["d"]).await;
    let backfill = store
        .create_backfill(new_backfill("d", vec![date(0), date(60)]))
        .await
        .expect("create_backfill");
    let (a, b) = tokio::join!(
        store.take_backfill_date(backfill.id, 1, backfill_run("d", 0)),
        other.take_backfill_date(backfill.id, 1, backfill_run("d", 0)),
    );
    let taken: Vec<_> = [a.expect("take"), b.expect("take")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken.len(), 1, "exactly one handle takes the date");
    let run = store.get_dag_run_by_id(taken[0]).await.expect("run");
    assert_eq!(
        (run.run_type, run.logical_date, run.state),
        (RunType::Backfill, at(0), DagRunState::Queued)
    );
    let runs = store.list_dag_runs("d").await.expect("runs");
    assert_eq!(runs.len(), 1);
    let dates = store.backfill_dag_runs(backfill.id).await.expect("dates");
    assert!(dates[0].taken && dates[0].dag_run_id == Some(run.id));
    assert_eq!(dates[0].run_state, Some(DagRunState::Queued));
    assert!(dates[1].is_pending());

    // A paused backfill gives no dates; unpaused, it does again.
    let paused = store
        .set_backfill_paused(backfill.id, true, at(2))
        .await
        .expect("pause");
    assert!(paused.is_paused && paused.updated_at == at(2));
    assert!(store.active_backfills().await.expect("active").is_empty());
    assert_eq!(
        store
            .take_backfill_date(backfill.id, 2, backfill_run("d", 60))
            .await
            .expect("take"),
        None
    );
    store
        .set_backfill_paused(backfill.id, false, at(3))
        .await
        .expect("unpause");
    assert!(store
        .take_backfill_date(backfill.id, 2, backfill_run("d", 60))
        .await
        .expect("take")
        .is_some());
}

pub async fn reprocessing_a_date_clears_its_existing_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, scheduled_run("d", 0, None)).await;
    store
        .force_dag_run_state(run.id, DagRunState::Failed, at(2))
        .await
        .expect("fail the run");
    let backfill = store
        .create_backfill(new_backfill(
            "d",
            vec![BackfillDate {
                dag_run_id: Some(run.id),
                ..date(0)
            }],
        ))
        .await
        .expect("create_backfill");
    let taken = store
        .take_backfill_date(backfill.id, 1, TakeBackfillDate::Reprocess { now: at(3) })
        .await
        .expect("take");
    assert_eq!(taken, Some(run.id));
    let again = store.get_dag_run_by_id(run.id).await.expect("run");
    assert_eq!(
        (again.state, again.run_type),
        (DagRunState::Queued, RunType::Backfill)
    );
    let tis = store.task_instances(run.id).await.expect("tis");
    assert!(tis.iter().all(|ti| ti.state == TaskState::None), "{tis:?}");
    assert_eq!(store.list_dag_runs("d").await.expect("runs").len(), 1);
}

pub async fn cancelling_a_backfill_fails_its_queued_runs_and_completes_it(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let backfill = store
        .create_backfill(new_backfill("d", vec![date(0), date(60)]))
        .await
        .expect("create_backfill");
    let run = store
        .take_backfill_date(backfill.id, 1, backfill_run("d", 0))
        .await
        .expect("take")
        .expect("taken");
    let cancelled = store
        .cancel_backfill(backfill.id, at(9))
        .await
        .expect("cancel");
    assert_eq!(cancelled.completed_at, Some(at(9)));
    assert!(cancelled.is_paused);
    assert_eq!(
        store.get_dag_run_by_id(run).await.expect("run").state,
        DagRunState::Failed
    );
    assert_eq!(
        store
            .take_backfill_date(backfill.id, 2, backfill_run("d", 60))
            .await
            .expect("take"),
        None
    );
    assert!(matches!(
        store.set_backfill_paused(backfill.id, false, at(10)).await,
        Err(StoreError::Conflict(_))
    ));
    // Cancelling again changes nothing.
    assert_eq!(
        store
            .cancel_backfill(backfill.id, at(11))
            .await
            .expect("cancel"),
        cancelled
    );
}

pub async fn backfill_runs_neither_wait_for_nor_count_against_max_active_runs(
    db: &dyn TestDatabase,
) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let manual = create(&*store, new_run("d", "manual", vec![task("a")])).await;
    let start = |id| {
        let store = store.clone();
        async move { store.start_dag_run(id, 1, at(1)).await.expect("start") }
    };
    assert_eq!(start(manual.id).await, crate::RunStart::Started);
    let backfill = create(
        &*store,
        crate::NewDagRun {
            run_type: RunType::Backfill,
            ..new_run("d", "backfill__1", vec![task("a")])
        },
    )
    .await;
    assert_eq!(
        start(backfill.id).await,
        crate::RunStart::Started,
        "the DAG's limit of one does not hold a backfill run back"
    );
    store
        .force_dag_run_state(manual.id, DagRunState::Success, at(2))
        .await
        .expect("finish the manual run");
    let next = create(&*store, new_run("d", "manual2", vec![task("a")])).await;
    assert_eq!(
        start(next.id).await,
        crate::RunStart::Started,
        "the running backfill run does not count"
    );
}
