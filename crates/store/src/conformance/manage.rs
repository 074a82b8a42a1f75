//! Checks of what users change by hand: notes, deletions, states set by hand, XCom entries
//! and pool usage.

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    ClaimRequest, DagFileOutcome, DagFileRecord, DagRunState, DagSync, FinishReport,
    MarkTaskInstances, PoolUsage, StoreError, TaskState, TransitionResult, Window, XComKey,
    XComQuery,
};

pub async fn notes_are_set_and_removed(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let a = ti(&*store, run.id, "a").await;

    store
        .set_dag_run_note(run.id, Some("looked at it".into()))
        .await
        .unwrap();
    store
        .set_task_instance_note(a.id, Some("flaky ✓".into()))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_dag_run_by_id(run.id)
            .await
            .unwrap()
            .note
            .as_deref(),
        Some("looked at it")
    );
    assert_eq!(
        ti(&*store, run.id, "a").await.note.as_deref(),
        Some("flaky ✓")
    );
    store.set_dag_run_note(run.id, None).await.unwrap();
    store.set_task_instance_note(a.id, None).await.unwrap();
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap().note, None);
    assert_eq!(ti(&*store, run.id, "a").await.note, None);

    assert!(matches!(
        error(
            store
                .set_dag_run_note(run.id + 1000, Some("x".into()))
                .await
        ),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        error(store.set_task_instance_note(a.id + 1000, None).await),
        StoreError::NotFound(_)
    ));
}

pub async fn delete_dag_run_deletes_its_task_instances_xcoms_and_logs(db: &dyn TestDatabase) {
    let store = db.open().await;
    let doomed = queued_run(&*store, "d", "doomed", vec![task("a")]).await;
    let kept = queued_run(&*store, "d", "kept", vec![task("a")]).await;
    let mut claimed = Vec::new();
    for run in [&doomed, &kept] {
        claimed.push(run_try(&*store, run, "hello\n", json!(run.run_id)).await);
    }

    store.delete_dag_run(doomed.id).await.unwrap();
    assert!(matches!(
        error(store.get_dag_run_by_id(doomed.id).await),
        StoreError::NotFound(_)
    ));
    assert_eq!(store.task_instances(doomed.id).await.unwrap(), vec![]);
    assert_eq!(store.xcoms_for_run(doomed.id).await.unwrap(), vec![]);
    let doomed_ti = &claimed[0].ti;
    assert_eq!(
        store
            .read_log(doomed_ti.id, doomed_ti.try_number)
            .await
            .unwrap(),
        None,
        "the run's logs go with it"
    );
    let page = store.query_xcoms(XComQuery::default()).await.unwrap();
    assert_eq!(page.total, 1, "only the kept run's XCom is left");
    assert_eq!(page.items[0].run_id, "kept");

    // The other run is untouched.
    assert_eq!(store.task_instances(kept.id).await.unwrap().len(), 1);
    let kept_ti = &claimed[1].ti;
    assert_eq!(
        store
            .read_log(kept_ti.id, kept_ti.try_number)
            .await
            .unwrap()
            .as_deref(),
        Some("hello\n")
    );
    assert!(matches!(
        error(store.delete_dag_run(doomed.id).await),
        StoreError::NotFound(_)
    ));
}

pub async fn delete_dag_deletes_its_runs_versions_and_file_records(db: &dyn TestDatabase) {
    let store = db.open().await;
    let record = DagFileRecord {
        fileloc: "dags/d.yaml".into(),
        mtime: Some(at(-1)),
        size: 10,
        content_hash: "h1".into(),
        recorded_at: at(0),
        parser_version: "1".into(),
        outcome: DagFileOutcome::Dag("d".into()),
    };
    let published = |files| DagSync {
        folder: Some("dags".into()),
        files,
        ..scan(vec![
            upsert(dag("d", updraft_model::Schedule::None, &["a"]), "h1"),
            upsert(dag("e", updraft_model::Schedule::None, &["a"]), "h1"),
        ])
    };
    store
        .sync_dags(published(Some(vec![record.clone()])))
        .await
        .unwrap();
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    let other = create(&*store, new_run("e", "r", vec![task("a")])).await;
    let queued = queue(&*store, &ti(&*store, run.id, "a").await).await;
    let claimed = claim_one(&*store, "w").await;
    assert_eq!(claimed.ti.id, queued.id);
    finish(
        &*store,
        FinishReport {
            xcom: Some(json!(1)),
            ..report(&claimed, TaskState::Success)
        },
    )
    .await;

    store.delete_dag("d").await.unwrap();
    assert!(matches!(
        error(store.get_dag("d").await),
        StoreError::NotFound(_)
    ));
    assert!(store.get_dag_version("d", 1).await.is_err());
    assert_eq!(store.list_dag_runs("d").await.unwrap(), vec![]);
    assert!(store.get_dag_run_by_id(run.id).await.is_err());
    assert_eq!(store.task_instances(run.id).await.unwrap(), vec![]);
    assert_eq!(store.xcoms_for_run(run.id).await.unwrap(), vec![]);
    // Another DAG is untouched.
    assert_eq!(store.get_dag("e").await.unwrap().version, 1);
    assert_eq!(store.get_dag_run_by_id(other.id).await.unwrap().run_id, "r");
    assert!(matches!(
        error(store.delete_dag("d").await),
        StoreError::NotFound(_)
    ));

    // The DAG comes back when its file is parsed again; its old file record is gone, so a
    // new process parses the file again instead of trusting it. Its versions are numbered
    // past the deleted ones: a process that cached version 1 of the deleted DAG must never
    // take it for the new DAG's.
    store.sync_dags(published(None)).await.unwrap();
    assert_eq!(store.get_dag("d").await.unwrap().version, 2);
    assert!(store.get_dag_version("d", 1).await.is_err());
    assert_eq!(
        store.get_dag_version("d", 2).await.unwrap().dag_id,
        "d",
        "the new DAG's version"
    );
    assert_eq!(store.list_dag_runs("d").await.unwrap(), vec![]);
    assert_eq!(store.dag_files("dags").await.unwrap(), vec![]);
    // Deleted and created once more: past every version there ever was.
    store.delete_dag("d").await.unwrap();
    store.sync_dags(published(None)).await.unwrap();
    assert_eq!(store.get_dag("d").await.unwrap().version, 3);
    // A DAG never deleted starts at 1.
    assert_eq!(store.get_dag("e").await.unwrap().version, 1);
}

pub async fn mark_task_instances_sets_states_and_kills_running_claims(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(
        &*store,
        "d",
        "r",
        vec![task("running"), task("queued"), task("done")],
    )
    .await;
    let running = claim(
        &*store,
        ClaimRequest {
            dag_run_id: Some(run.id),
            ..claim_request("w", None, 1)
        },
    )
    .await
    .remove(0);
    assert_eq!(running.ti.task_id, "running");
    let queued = ti(&*store, run.id, "queued").await;
    let done = ti(&*store, run.id, "done").await;
    store
        .mark_task_instances(MarkTaskInstances {
            ti_ids: vec![done.id],
            state: TaskState::Success,
            now: at(3),
        })
        .await
        .unwrap();

    let marked = store
        .mark_task_instances(MarkTaskInstances {
            ti_ids: vec![running.ti.id, queued.id, done.id, done.id + 1000],
            state: TaskState::Success,
            now: at(4),
        })
        .await
        .unwrap();
    assert_eq!(
        task_ids(&marked),
        vec!["running", "queued"],
        "only those that changed, as stored now; unknown ids are left out"
    );
    for ti in &marked {
        assert_eq!(ti.state, TaskState::Success);
        assert_eq!(ti.claim_id, None);
        assert_eq!(ti.lease_until, None);
        assert_eq!(ti.end_date, Some(at(4)));
    }
    assert_eq!(
        marked[0].start_date,
        Some(at(2)),
        "a started try keeps its start"
    );
    assert_eq!(
        marked[1].start_date,
        Some(at(4)),
        "a task that never started"
    );
    assert_eq!(marked, store.task_instances(run.id).await.unwrap()[..2]);

    // The worker learns at its next heartbeat that the claim is lost, and its report is
    // refused.
    assert_eq!(
        store
            .heartbeat(std::slice::from_ref(&running.claim_id), at(20))
            .await
            .unwrap(),
        vec![running.claim_id.clone()]
    );
    assert_eq!(
        finish(&*store, report(&running, TaskState::Failed)).await,
        TransitionResult::Conflict
    );
    assert_eq!(
        ti(&*store, run.id, "running").await.state,
        TaskState::Success
    );

    // Marking failed what succeeded works whatever the state; marking a non-final state
    // does not.
    let failed = store
        .mark_task_instances(MarkTaskInstances {
            ti_ids: vec![done.id],
            state: TaskState::Failed,
            now: at(6),
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, TaskState::Failed);
    assert!(matches!(
        error(
            store
                .mark_task_instances(MarkTaskInstances {
                    ti_ids: vec![done.id],
                    state: TaskState::Running,
                    now: at(7),
                })
                .await
        ),
        StoreError::IllegalTransition(_)
    ));
    assert_eq!(ti(&*store, run.id, "done").await.state, TaskState::Failed);
}

pub async fn mark_kills_the_claim_of_a_restarting_task(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    store
        .clear_task_instances(run.id, &["a".to_string()], at(3))
        .await
        .unwrap();
    assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::Restarting);
    let marked = store
        .mark_task_instances(MarkTaskInstances {
            ti_ids: vec![claimed.ti.id],
            state: TaskState::Skipped,
            now: at(4),
        })
        .await
        .unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].state, TaskState::Skipped);
    assert_eq!(marked[0].claim_id, None);
    assert_eq!(
        store
            .heartbeat(std::slice::from_ref(&claimed.claim_id), at(20))
            .await
            .unwrap(),
        vec![claimed.claim_id.clone()]
    );
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Conflict
    );
    assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::Skipped);
}

pub async fn force_dag_run_state_sets_the_state_and_dates(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    store
        .set_dag_run_state(run.id, DagRunState::Queued, DagRunState::Running, at(1))
        .await
        .unwrap();

    store
        .force_dag_run_state(run.id, DagRunState::Failed, at(5))
        .await
        .unwrap();
    let failed = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(failed.state, DagRunState::Failed);
    assert_eq!(failed.start_date, Some(at(1)));
    assert_eq!(failed.end_date, Some(at(5)));

    store
        .force_dag_run_state(run.id, DagRunState::Success, at(6))
        .await
        .unwrap();
    let succeeded = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(succeeded.state, DagRunState::Success);
    assert_eq!(succeeded.end_date, Some(at(6)));

    store
        .force_dag_run_state(run.id, DagRunState::Queued, at(7))
        .await
        .unwrap();
    let requeued = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(requeued.state, DagRunState::Queued);
    assert_eq!((requeued.start_date, requeued.end_date), (None, None));
    assert!(store
        .unfinished_dag_runs()
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == run.id));

    assert!(matches!(
        error(
            store
                .force_dag_run_state(run.id + 1000, DagRunState::Success, at(8))
                .await
        ),
        StoreError::NotFound(_)
    ));
}

pub async fn delete_dag_refuses_while_its_task_instances_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    assert!(matches!(
        error(store.delete_dag("d").await),
        StoreError::Conflict(_)
    ));
    // Nothing was deleted: the worker's report still lands.
    assert_eq!(store.get_dag("d").await.unwrap().dag_id, "d");
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Applied
    );
    store.delete_dag("d").await.unwrap();
    assert!(store.get_dag_run_by_id(run.id).await.is_err());
}

pub async fn force_dag_run_state_marks_its_task_instances(db: &dyn TestDatabase) {
    let store = db.open().await;
    let tasks = || vec![task("running"), task("queued"), task("done")];
    let failing = queued_run(&*store, "d", "failing", tasks()).await;
    let running = claim(
        &*store,
        ClaimRequest {
            dag_run_id: Some(failing.id),
            ..claim_request("w", None, 1)
        },
    )
    .await
    .remove(0);
    let done = ti(&*store, failing.id, "done").await;
    store
        .mark_task_instances(MarkTaskInstances {
            ti_ids: vec![done.id],
            state: TaskState::Success,
            now: at(3),
        })
        .await
        .unwrap();

    // Failed: the running task fails, the other unfinished ones are skipped, finished ones stay.
    store
        .force_dag_run_state(failing.id, DagRunState::Failed, at(5))
        .await
        .unwrap();
    let states = |run_id| {
        let store = store.clone();
        async move {
            let mut tis = store.task_instances(run_id).await.unwrap();
            tis.sort_by(|a, b| a.task_id.cmp(&b.task_id));
            tis.into_iter()
                .map(|t| (t.task_id, t.state))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        states(failing.id).await,
        vec![
            ("done".to_string(), TaskState::Success),
            ("queued".to_string(), TaskState::Skipped),
            ("running".to_string(), TaskState::Failed),
        ]
    );
    assert_eq!(
        store
            .heartbeat(std::slice::from_ref(&running.claim_id), at(6))
            .await
            .unwrap(),
        vec![running.claim_id.clone()],
        "the running try's claim is lost, so its worker kills it"
    );

    // Success: every unfinished task instance succeeds.
    let succeeding = queued_run(&*store, "d", "succeeding", tasks()).await;
    store
        .force_dag_run_state(succeeding.id, DagRunState::Success, at(7))
        .await
        .unwrap();
    assert!(states(succeeding.id)
        .await
        .iter()
        .all(|(_, state)| *state == TaskState::Success));
    assert_eq!(
        store.get_dag_run_by_id(succeeding.id).await.unwrap().state,
        DagRunState::Success
    );
}

fn xcom_key(run_id: &str, task_id: &str, key: &str) -> XComKey {
    XComKey {
        dag_id: "d".into(),
        run_id: run_id.into(),
        task_id: task_id.into(),
        map_index: -1,
        key: key.into(),
    }
}

pub async fn xcoms_can_be_put_queried_and_deleted(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    create(&*store, new_run_at("d", "early", 0)).await;
    create(&*store, new_run_at("d", "late", 60)).await;

    // Written out of order; listed by logical date, task, key.
    for (run_id, task_id, key, minute) in [
        ("late", "a", "k", 1),
        ("early", "b", "k", 2),
        ("early", "a", "z", 3),
        ("early", "a", "k", 4),
    ] {
        let entry = store
            .put_xcom(
                xcom_key(run_id, task_id, key),
                json!({ "from": format!("{run_id}/{task_id}/{key}") }),
                at(minute),
            )
            .await
            .unwrap();
        assert_eq!(entry.timestamp, Some(at(minute)));
    }
    let all = store.query_xcoms(XComQuery::default()).await.unwrap();
    assert_eq!(all.total, 4);
    let order: Vec<String> = all
        .items
        .iter()
        .map(|x| format!("{}/{}/{}", x.run_id, x.task_id, x.key))
        .collect();
    assert_eq!(order, ["early/a/k", "early/a/z", "early/b/k", "late/a/k"]);
    assert_eq!(all.items[3].logical_date, at(60));
    assert_eq!(all.items[0].value, json!({"from": "early/a/k"}));
    assert_eq!(all.items[0].timestamp, Some(at(4)));

    // Replacing keeps one entry, with the new value and time.
    store
        .put_xcom(xcom_key("early", "a", "k"), json!([1, 2]), at(9))
        .await
        .unwrap();
    let filtered = store
        .query_xcoms(XComQuery {
            dag_id: Some("d".into()),
            run_id: Some("early".into()),
            task_id: Some("a".into()),
            key: Some("k".into()),
            ..XComQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.total, 1);
    assert_eq!(filtered.items[0].value, json!([1, 2]));
    assert_eq!(filtered.items[0].timestamp, Some(at(9)));

    let page = store
        .query_xcoms(XComQuery {
            window: Window {
                limit: 2,
                offset: 1,
            },
            ..XComQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 4, "the total counts every match, not the page");
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].key, "z");
    let none = store
        .query_xcoms(XComQuery {
            dag_id: Some("other".into()),
            ..XComQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));
    let mapped = store
        .query_xcoms(XComQuery {
            map_index: Some(3),
            ..XComQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(mapped.total, 0);

    // A run or task instance that does not exist cannot hold one.
    for key in [
        xcom_key("nope", "a", "k"),
        xcom_key("early", "nope", "k"),
        XComKey {
            map_index: 3,
            ..xcom_key("early", "a", "k")
        },
    ] {
        assert!(matches!(
            error(store.put_xcom(key, json!(1), at(10)).await),
            StoreError::NotFound(_)
        ));
    }

    assert!(store
        .delete_xcom(xcom_key("early", "a", "z"))
        .await
        .unwrap());
    assert!(!store
        .delete_xcom(xcom_key("early", "a", "z"))
        .await
        .unwrap());
    assert_eq!(
        store.query_xcoms(XComQuery::default()).await.unwrap().total,
        3
    );
}

/// A manual run of `d` (tasks `a`, `b`) with logical date `at(minutes)`.
fn new_run_at(dag_id: &str, run_id: &str, minutes: i64) -> crate::NewDagRun {
    crate::NewDagRun {
        logical_date: at(minutes),
        ..new_run(dag_id, run_id, vec![task("a"), task("b")])
    }
}

pub async fn a_finished_try_records_when_its_xcom_was_written(db: &dyn TestDatabase) {
    let store = db.open().await;
    queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    finish(
        &*store,
        FinishReport {
            xcom: Some(json!("out")),
            ..report(&claimed, TaskState::Success)
        },
    )
    .await;
    let page = store.query_xcoms(XComQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].key, "return_value");
    assert_eq!(page.items[0].value, json!("out"));
    assert_eq!(
        page.items[0].timestamp,
        Some(at(5)),
        "the finish's end date"
    );
}

pub async fn pool_usage_counts_running_queued_and_scheduled_tasks(db: &dyn TestDatabase) {
    let store = db.open().await;
    let in_pool = |task_id: &str, pool: &str| crate::NewTaskInstance {
        pool: pool.into(),
        ..task(task_id)
    };
    let run = queued_run(
        &*store,
        "d",
        "r",
        vec![
            in_pool("run1", "p"),
            in_pool("run2", "p"),
            in_pool("wait", "p"),
            in_pool("other", "default_pool"),
        ],
    )
    .await;
    let claimed = claim(&*store, claim_request("w", None, 2)).await;
    assert_eq!(claimed.len(), 2);
    let second = create(
        &*store,
        new_run(
            "d",
            "second",
            vec![in_pool("later", "p"), in_pool("idle", "p")],
        ),
    )
    .await;
    apply(
        &*store,
        transition(&ti(&*store, second.id, "later").await, TaskState::Scheduled),
    )
    .await;
    // A restarting task still holds its slot.
    store
        .clear_task_instances(run.id, &[claimed[0].ti.task_id.clone()], at(3))
        .await
        .unwrap();

    let usage = store.pool_usage().await.unwrap();
    let p = usage.get("p").copied().unwrap_or_default();
    let default_pool = usage.get("default_pool").copied().unwrap_or_default();
    let claimed_in_p = claimed.iter().filter(|c| c.ti.pool == "p").count() as u32;
    assert_eq!(
        p,
        PoolUsage {
            running: claimed_in_p,
            queued: 3 - claimed_in_p,
            scheduled: 1,
        }
    );
    assert_eq!(
        default_pool,
        PoolUsage {
            running: 2 - claimed_in_p,
            queued: 1 - (2 - claimed_in_p),
            scheduled: 0,
        }
    );
}
