//! What only a database shared by several processes has: concurrent queueing within limits,
//! run ownership races, concurrent migrations, and change notifications between handles.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::sync::Barrier;
use updraft_store::conformance::fixture::*;
use updraft_store::{
    Change, FinishedTry, OwnRuns, PoolRecord, QueueItem, Store, StoreError, TaskState,
    TransitionResult,
};
use updraft_store_postgres::testing::TestPostgres;
use updraft_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};

const HANDLES: usize = 4;

async fn handles(db: &TestPostgres, n: usize) -> Vec<Arc<PostgresStore>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(db.open().await));
    }
    out
}

/// Moves every `none` task of `run` to `scheduled`; returns its queue items.
async fn schedule_all(
    store: &dyn Store,
    dag_run_id: i64,
    pool: &str,
    max_active_tasks: u32,
) -> Vec<QueueItem> {
    let mut items = Vec::new();
    for ti in store.task_instances(dag_run_id).await.unwrap() {
        let ti = if ti.state == TaskState::None {
            apply(store, transition(&ti, TaskState::Scheduled)).await;
            self::ti(store, dag_run_id, &ti.task_id).await
        } else {
            ti
        };
        if ti.state == TaskState::Scheduled {
            items.push(QueueItem {
                ti_id: ti.id,
                try_number: ti.try_number,
                dag_id: ti.dag_id.clone(),
                pool: pool.to_string(),
                queue: ti.queue.clone(),
                dag_run_id: ti.dag_run_id,
                max_active_tasks,
                task_limits: None,
                resumes: false,
            });
        }
    }
    items
}

/// Several schedulers queue the same tasks at once, round after round with workers finishing
/// what was queued in between: together they never exceed a pool's slots or a DAG's
/// `max_active_tasks`, and they fill exactly the room there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_queueing_never_exceeds_pool_slots_or_max_active_tasks() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let stores = handles(&db, HANDLES).await;
    let setup = &*stores[0];
    const SLOTS: u32 = 3;
    const MAX_ACTIVE: u32 = 4;
    setup
        .set_pool(PoolRecord {
            name: "small".into(),
            slots: SLOTS,
            description: None,
        })
        .await
        .unwrap();
    publish(setup, &["pooled", "limited"]).await;
    // Counts are of the pool the task instances were created in: items name the same.
    let tasks = |pool: &str| -> Vec<_> {
        (0..10)
            .map(|i| updraft_store::NewTaskInstance {
                pool: pool.to_string(),
                ..task(&format!("t{i}"))
            })
            .collect()
    };
    let mut runs = Vec::new();
    for r in 0..3 {
        // One pool: the pool is the limit.
        let pooled = create(setup, new_run("pooled", &format!("r{r}"), tasks("small"))).await;
        // No pool row (unlimited): the DAG's max_active_tasks is the limit.
        let limited = create(
            setup,
            new_run("limited", &format!("r{r}"), tasks("nowhere")),
        )
        .await;
        runs.push((pooled.id, "small", 100));
        runs.push((limited.id, "nowhere", MAX_ACTIVE));
    }

    for round in 0..4 {
        let mut items = Vec::new();
        for &(run, pool, max) in &runs {
            items.extend(schedule_all(setup, run, pool, max).await);
        }
        let occupancy = setup.occupancy().await.unwrap();
        let room_pool = SLOTS - occupancy.per_pool.get("small").copied().unwrap_or(0);
        let room_dag = MAX_ACTIVE - occupancy.per_dag.get("limited").copied().unwrap_or(0);

        let barrier = Arc::new(Barrier::new(stores.len()));
        let mut joins = Vec::new();
        for (h, store) in stores.iter().enumerate() {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            let mut mine = items.clone();
            // Each scheduler sees the candidates in another order.
            mine.rotate_left((h * 7) % items.len().max(1));
            if h % 2 == 1 {
                mine.reverse();
            }
            joins.push(tokio::spawn(async move {
                barrier.wait().await;
                let results = store.queue(mine.clone(), at(10 + round)).await.unwrap();
                mine.into_iter()
                    .zip(results)
                    .filter(|(_, r)| *r == TransitionResult::Applied)
                    .map(|(item, _)| item)
                    .collect::<Vec<_>>()
            }));
        }
        let mut admitted = Vec::new();
        for join in joins {
            admitted.extend(join.await.unwrap());
        }
        let ids: HashSet<i64> = admitted.iter().map(|i| i.ti_id).collect();
        assert_eq!(ids.len(), admitted.len(), "a task was queued twice");
        let count = |dag: &str| admitted.iter().filter(|i| i.dag_id == dag).count() as u32;
        assert_eq!(
            count("pooled"),
            room_pool,
            "round {round}: the pool's free slots"
        );
        assert_eq!(
            count("limited"),
            room_dag,
            "round {round}: the DAG's free room"
        );
        let occupancy = setup.occupancy().await.unwrap();
        assert_eq!(occupancy.per_pool.get("small").copied(), Some(SLOTS));
        assert_eq!(occupancy.per_dag.get("limited").copied(), Some(MAX_ACTIVE));

        // Workers run all of it and finish two of each: two places free up in each limit.
        let claimed = setup.claim(claim_request("w", None, 100)).await.unwrap();
        assert_eq!(
            claimed.len(),
            admitted.len(),
            "every queued task is claimed"
        );
        for dag in ["pooled", "limited"] {
            for c in claimed.iter().filter(|c| c.ti.dag_id == dag).take(2) {
                assert_eq!(
                    finish(setup, report(c, TaskState::Success)).await,
                    TransitionResult::Applied
                );
            }
        }
    }
}

/// Schedulers adopting runs at the same moment never own the same run, also when every lease
/// ran out and they race for each other's runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_own_dag_runs_never_own_the_same_run() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    const SCHEDULERS: usize = 5;
    const MAX_OWNED: usize = 8;
    const RUNS: usize = 30;
    let stores = handles(&db, SCHEDULERS).await;
    publish(&*stores[0], &["d"]).await;
    for r in 0..RUNS {
        create(
            &*stores[0],
            updraft_store::NewDagRun {
                logical_date: at(r as i64),
                ..new_run("d", &format!("r{r:02}"), vec![task("a")])
            },
        )
        .await;
    }
    // Round 0 adopts free runs; later rounds start after every lease ran out.
    for round in 0..4i64 {
        let now = 100 * round;
        let barrier = Arc::new(Barrier::new(stores.len()));
        let mut joins = Vec::new();
        for (s, store) in stores.iter().enumerate() {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            joins.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .own_dag_runs(OwnRuns {
                        scheduler_id: format!("s{s}"),
                        now: at(now),
                        lease_until: at(now + 50),
                        max_owned: MAX_OWNED,
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut seen = HashSet::new();
        for (s, join) in joins.into_iter().enumerate() {
            let owned = join.await.unwrap();
            assert!(owned.len() <= MAX_OWNED, "s{s} owns {}", owned.len());
            let order: Vec<_> = owned.iter().map(|r| (r.logical_date, r.id)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(order, sorted, "oldest logical date first");
            for run in &owned {
                assert!(
                    seen.insert(run.id),
                    "round {round}: run {} owned twice (s{s})",
                    run.run_id
                );
            }
        }
        assert_eq!(
            seen.len(),
            RUNS,
            "round {round}: every run is owned (room for {})",
            SCHEDULERS * MAX_OWNED
        );
    }
}

/// Several processes starting at once on an empty database migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_on_a_fresh_database_succeed() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let mut joins = Vec::new();
    for _ in 0..6 {
        let url = db.url().to_string();
        joins.push(tokio::spawn(
            async move { PostgresStore::connect(&url).await },
        ));
    }
    let mut stores = Vec::new();
    for join in joins {
        stores.push(
            join.await
                .unwrap()
                .expect("a concurrent start must migrate or wait"),
        );
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM updraft_schema_version ORDER BY version")
            .fetch_all(stores[0].pool())
            .await
            .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert_eq!(stores[3].migrate().await.unwrap(), SCHEMA_VERSION);
    stores[5].ping().await.unwrap();
}

/// A database migrated by an older binary gets the hot path's functions as they are now: the
/// migration that replaces their bodies runs on functions that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_replaces_the_bodies_of_existing_functions() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let store = db.open().await;
    const FUNCTIONS: [&str; 3] = ["updraft_queue", "updraft_finish", "updraft_queue_planned"];
    for function in FUNCTIONS {
        let definition: String =
            sqlx::query_scalar(&format!("SELECT pg_get_functiondef('{function}'::regproc)"))
                .fetch_one(store.pool())
                .await
                .unwrap();
        let old = definition.replacen("BEGIN", "BEGIN\n    RAISE EXCEPTION 'an old body';", 1);
        sqlx::raw_sql(&old).execute(store.pool()).await.unwrap();
    }
    let old_bodies: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_proc WHERE prosrc LIKE '%an old body%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(old_bodies, 3);
    sqlx::query("DELETE FROM updraft_schema_version WHERE version = $1")
        .bind(SCHEMA_VERSION)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT prosrc FROM pg_proc WHERE proname = ANY($1)")
            .bind(FUNCTIONS)
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(bodies.len(), 3);
    assert!(bodies.iter().all(|body| !body.contains("an old body")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let store = db.open().await;
    sqlx::query("INSERT INTO updraft_schema_version (version) VALUES ($1)")
        .bind(SCHEMA_VERSION + 5)
        .execute(store.pool())
        .await
        .unwrap();
    match PostgresStore::connect(db.url()).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 5, SCHEMA_VERSION));
        }
        Err(other) => panic!("expected SchemaTooNew, got {other:?}"),
        Ok(_) => panic!("expected SchemaTooNew, got a store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_database_error() {
    // sqlx retries a refused connection until the acquire timeout (30 s by default).
    let options = PostgresOptions {
        acquire_timeout: Duration::from_secs(1),
        ..PostgresOptions::default()
    };
    match PostgresStore::connect_with("postgres://postgres@127.0.0.1:1/nothing", options).await {
        Err(StoreError::Database(e)) => {
            assert!(e.message.contains("127.0.0.1:1"), "{e}");
            assert_eq!(e.failure, updraft_store::DatabaseFailure::Unreachable);
        }
        Err(other) => panic!("expected a database error, got {other:?}"),
        Ok(_) => panic!("nothing listens on port 1"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_test_database_removes_it() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let name = db.name().to_string();
    let store = db.open().await;
    store.ping().await.unwrap();
    drop(db);
    let admin = TestPostgres::create()
        .await
        .expect("the server is still there");
    let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(admin.open().await.pool())
        .await
        .unwrap();
    assert_eq!(found, 0);
}

async fn next(rx: &mut Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no change announced within 10 s")
        .expect("the change stream ended")
}

async fn nothing_more(rx: &mut Receiver<Change>) {
    if let Ok(change) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected change {change:?}");
    }
}

/// A finish that changed its run beyond its tries (a try that skipped tasks, a cleared try
/// whose end only resets it) asks schedulers to read those runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finishes_that_change_more_than_their_tries_ask_for_a_reread() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let a = db.open().await;
    let b = db.open().await;
    let mut heard_by_b = b.changes().await.unwrap().expect("changes");
    publish(&a, &["d"]).await;
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
    let branching = create(&a, new_run("d", "branch", vec![task("x"), task("y")])).await;
    let cleared = create(&a, new_run("d", "cleared", vec![task("z")])).await;
    for run in [&branching, &cleared] {
        assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));
    }
    let x = ti(&a, branching.id, "x").await;
    apply(&a, transition(&x, TaskState::Scheduled)).await;
    let mut items = schedule_all(&a, cleared.id, "default_pool", 16).await;
    items.extend(
        schedule_all(&a, branching.id, "default_pool", 16)
            .await
            .into_iter()
            .filter(|item| item.ti_id == x.id),
    );
    a.queue(items, at(1)).await.unwrap();
    let claimed = claim(&a, claim_request("w", None, 2)).await;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().any(|c| c.ti.dag_run_id == cleared.id));
    a.clear_task_instances(cleared.id, &["z".into()], at(2))
        .await
        .unwrap();
    let reports = claimed
        .iter()
        .map(|c| {
            let mut r = report(c, TaskState::Success);
            if c.ti.id == x.id {
                r.effects.skip = vec!["y".into()];
            }
            r
        })
        .collect();
    let results = a.finish(reports).await.unwrap();
    assert_eq!(results.len(), 2);
    let heard = loop {
        match next(&mut heard_by_b).await {
            Change::TriesFinished { tries, reread } => break (tries, reread),
            Change::WorkQueued(_) | Change::Runs(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    let (tries, mut reread) = heard;
    reread.sort();
    let mut both = vec![branching.id, cleared.id];
    both.sort();
    assert_eq!(reread, both, "the skip and the reset");
    assert_eq!(tries.len(), 1, "only x's try ended: {tries:?}");
    assert_eq!((tries[0].ti_id, tries[0].state), (x.id, TaskState::Success));
    assert_eq!(ti(&a, branching.id, "y").await.state, TaskState::Skipped);
    assert_eq!(ti(&a, cleared.id, "z").await.state, TaskState::None);
}

/// A handle hears what other handles commit, and not what it did itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_of_other_handles_are_announced() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let a = db.open().await;
    let b = db.open().await;
    let mut heard_by_a = a
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");
    let mut heard_by_b = b
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");

    publish(&a, &["d"]).await;
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
    // Unchanged DAGs: nothing to announce.
    publish(&a, &["d"]).await;

    let run = create(
        &a,
        new_run("d", "r", vec![task_in("x", "gpu", 1), task("y")]),
    )
    .await;
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));

    let items = schedule_all(&a, run.id, "default_pool", 16).await;
    let results = a.queue(items, at(1)).await.unwrap();
    assert_eq!(results, vec![TransitionResult::Applied; 2]);
    assert_eq!(
        next(&mut heard_by_b).await,
        Change::WorkQueued(vec!["default".into(), "gpu".into()])
    );

    let claimed = claim(&a, claim_request("w", None, 2)).await;
    let reports = claimed
        .iter()
        .map(|c| report(c, TaskState::Success))
        .collect();
    a.finish(reports).await.unwrap();
    // The tries themselves, so that a scheduler need not read the run again.
    let ended: Vec<FinishedTry> = claimed
        .iter()
        .map(|c| FinishedTry::from_report(run.id, &report(c, TaskState::Success)))
        .collect();
    assert_eq!(
        next(&mut heard_by_b).await,
        Change::TriesFinished {
            tries: ended,
            reread: vec![]
        }
    );

    a.set_paused("d", true).await.unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
    a.release_dag_run(run.id).await.unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
    a.release_owned_dag_runs("s1").await.unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Everything);
    a.clear_task_instances(run.id, &["x".into()], at(9))
        .await
        .unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));
    a.set_dag_run_state(
        run.id,
        updraft_store::DagRunState::Queued,
        updraft_store::DagRunState::Running,
        at(9),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut heard_by_b).await, Change::Runs(vec![run.id]));
    // A rolled-back write announces nothing.
    assert!(a.set_paused("nope", true).await.is_err());
    nothing_more(&mut heard_by_b).await;

    // B's own writes reach A only.
    let other = create(&b, new_run("d", "other", vec![task("a")])).await;
    assert_eq!(next(&mut heard_by_a).await, Change::Runs(vec![other.id]));
    nothing_more(&mut heard_by_a).await;
    nothing_more(&mut heard_by_b).await;

    // Dropping the store ends its stream.
    drop(b);
    let ended = tokio::time::timeout(Duration::from_secs(10), heard_by_b.recv()).await;
    assert_eq!(ended.expect("the stream ends with the store"), None);
}

/// After the listening connection was lost, a handle hears `Everything` (it missed what
/// happened in between), then changes as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_listener_connection_announces_everything() {
    let Some(db) = TestPostgres::create().await else {
        return;
    };
    let a = db.open().await;
    let b = db.open().await;
    let mut heard = b
        .changes()
        .await
        .unwrap()
        .expect("PostgreSQL announces changes");
    publish(&a, &["d"]).await;
    assert_eq!(next(&mut heard).await, Change::Everything);

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "one listening connection");
    assert_eq!(next(&mut heard).await, Change::Everything);

    // Listening again: later changes arrive.
    let mut run_id = None;
    for attempt in 0..50 {
        let run = create(&a, new_run("d", &format!("r{attempt}"), vec![task("a")])).await;
        match tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
            Ok(Some(Change::Runs(ids))) => {
                run_id = Some((ids, run.id));
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => continue,
        }
    }
    let (ids, created) = run_id.expect("changes are heard again after reconnecting");
    assert_eq!(ids, vec![created]);
}
