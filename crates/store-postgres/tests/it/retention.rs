//! Cleaning old history next to other writers of the same runs: a run whose task instances
//! another transaction holds (a clear in flight) is left for the next clean instead of
//! waiting for it, and clears racing a clean never deadlock nor leave half a run.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use updraft_store::conformance::fixture::*;
use updraft_store::{
    clean_history, CleanBatch, CleanRequest, CleanTable, DagRun, DagRunState, RetentionStore,
    Store, StoreError, TaskState,
};
use updraft_store_postgres::testing::TestPostgres;

async fn old_finished_run(store: &dyn Store, run_id: &str) -> DagRun {
    let run = queued_run(store, "d", run_id, vec![task("a")]).await;
    store
        .force_dag_run_state(run.id, DagRunState::Success, at(5))
        .await
        .expect("force_dag_run_state");
    run
}

fn batch() -> CleanBatch {
    CleanBatch {
        table: CleanTable::DagRun,
        before: at(50),
        after: 0,
        limit: 10,
        archive: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_being_cleared_is_left_for_the_next_clean() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let store = db.open().await;
    let busy = old_finished_run(&store, "busy").await;
    let free = old_finished_run(&store, "free").await;

    // A clear in flight: it holds the run's task instances and will reopen the run.
    let mut clear = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut tx = clear.begin().await.unwrap();
    sqlx::query("UPDATE task_instance SET state = 'none' WHERE dag_run_id = $1")
        .bind(busy.id)
        .execute(&mut *tx)
        .await
        .unwrap();

    let cleaned = tokio::time::timeout(Duration::from_secs(10), store.clean_batch(batch()))
        .await
        .expect("the clean waited for the clear")
        .expect("clean_batch");
    assert_eq!(cleaned.runs, vec![free.id]);

    // The clear goes on without waiting and reopens its run.
    tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::query("UPDATE dag_run SET state = 'queued' WHERE id = $1")
            .bind(busy.id)
            .execute(&mut *tx),
    )
    .await
    .expect("the clear waited for the clean")
    .unwrap();
    tx.commit().await.unwrap();

    let run = store.get_dag_run_by_id(busy.id).await.unwrap();
    assert_eq!(run.state, DagRunState::Queued);
    assert_eq!(ti(&store, busy.id, "a").await.state, TaskState::None);
    let again = store.clean_batch(batch()).await.expect("clean_batch");
    assert_eq!(
        again.runs,
        Vec::<i64>::new(),
        "a reopened run is not finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clears_racing_a_clean_never_deadlock_nor_leave_half_a_run() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(db.open().await);
    let mut runs = Vec::new();
    for i in 0..20 {
        runs.push(old_finished_run(&*store, &format!("r{i}")).await);
    }

    let clean = tokio::spawn({
        let store = db.open().await;
        async move {
            let request = CleanRequest {
                before: at(50),
                tables: vec![CleanTable::DagRun],
                dry_run: false,
                archive: None,
                batch_size: 1,
                log_folder: None,
            };
            clean_history(&store, &request).await
        }
    });
    let clears = tokio::spawn({
        let store = db.open().await;
        let ids: Vec<i64> = runs.iter().rev().map(|r| r.id).collect();
        async move {
            for id in ids {
                store
                    .clear_task_instances(id, &["a".to_string()], at(60))
                    .await?;
            }
            Ok::<_, StoreError>(())
        }
    });
    clean.await.unwrap().expect("the clean failed");
    clears.await.unwrap().expect("a clear failed");

    for run in &runs {
        match store.get_dag_run_by_id(run.id).await {
            Err(StoreError::NotFound(_)) => {
                assert_eq!(store.task_instances(run.id).await.unwrap(), vec![]);
            }
            Ok(kept) => {
                assert_eq!(
                    kept.state,
                    DagRunState::Queued,
                    "{} was cleared",
                    run.run_id
                );
                assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::None);
            }
            Err(e) => panic!("{e}"),
        }
    }
}
