//! Checks of task instance state changes: compare-and-set batches, the scheduler's queries
//! (scheduled tasks, occupancy, retries) and clearing.

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    DagRunState, FinishReport, StoreError, TaskInstance, TaskState, Transition, TransitionResult,
};

pub async fn apply_transitions_is_a_compare_and_set(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a"), task("b")])).await;
    let a = ti(&*store, run.id, "a").await;
    let b = ti(&*store, run.id, "b").await;
    assert_eq!(store.apply_transitions(vec![]).await.unwrap(), vec![]);

    let results = store
        .apply_transitions(vec![
            transition(&a, TaskState::Scheduled),
            // Another scheduler decided the same thing from the same snapshot: it loses.
            transition(&a, TaskState::Skipped),
            Transition {
                try_number: 7,
                ..transition(&b, TaskState::Scheduled)
            },
            Transition {
                from: TaskState::Scheduled,
                ..transition(&b, TaskState::Queued)
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![
            TransitionResult::Applied,
            TransitionResult::Conflict,
            TransitionResult::Conflict,
            TransitionResult::Conflict,
        ],
        "one result per transition, in order"
    );
    assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::Scheduled);
    assert_eq!(
        ti(&*store, run.id, "b").await,
        b,
        "a conflict changes nothing"
    );

    let unknown = Transition {
        ti_id: a.id + b.id + 1000,
        ..transition(&a, TaskState::Scheduled)
    };
    assert_eq!(
        store.apply_transitions(vec![unknown]).await.unwrap(),
        vec![TransitionResult::Conflict]
    );
}

pub async fn apply_transitions_with_new_try_increments_the_try_number(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a")])).await;
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(a.try_number, 0);
    apply(&*store, transition(&a, TaskState::Scheduled)).await;
    let scheduled = ti(&*store, run.id, "a").await;
    assert_eq!(scheduled.try_number, 0, "without new_try the try stays");
    apply(
        &*store,
        Transition {
            new_try: true,
            now: at(3),
            ..transition(&scheduled, TaskState::Queued)
        },
    )
    .await;
    let queued = ti(&*store, run.id, "a").await;
    assert_eq!(queued.state, TaskState::Queued);
    assert_eq!(queued.try_number, 1);
    assert_eq!(queued.queued_at, Some(at(3)));

    // The old try number no longer matches.
    let stale = Transition {
        try_number: 0,
        ..transition(&queued, TaskState::Failed)
    };
    assert_eq!(
        store.apply_transitions(vec![stale]).await.unwrap(),
        vec![TransitionResult::Conflict]
    );
    // A retry starts try 2.
    apply(
        &*store,
        Transition {
            next_retry_at: Some(at(30)),
            ..transition(&queued, TaskState::UpForRetry)
        },
    )
    .await;
    let waiting = ti(&*store, run.id, "a").await;
    assert_eq!(waiting.try_number, 1);
    assert_eq!(waiting.next_retry_at, Some(at(30)));
    apply(&*store, transition(&waiting, TaskState::Scheduled)).await;
    let rescheduled = ti(&*store, run.id, "a").await;
    apply(
        &*store,
        Transition {
            new_try: true,
            ..transition(&rescheduled, TaskState::Queued)
        },
    )
    .await;
    assert_eq!(ti(&*store, run.id, "a").await.try_number, 2);
}

pub async fn apply_transitions_rejects_an_illegal_transition_and_changes_nothing(
    db: &dyn TestDatabase,
) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("a"), task("b")])).await;
    let before = store.task_instances(run.id).await.unwrap();
    let a = ti(&*store, run.id, "a").await;
    let b = ti(&*store, run.id, "b").await;
    let err = error(
        store
            .apply_transitions(vec![
                transition(&a, TaskState::Scheduled),
                // Only a claim may start a task.
                transition(&b, TaskState::Running),
            ])
            .await,
    );
    match err {
        StoreError::IllegalTransition(e) => {
            assert_eq!((e.from, e.to), (TaskState::None, TaskState::Running));
        }
        other => panic!("expected IllegalTransition, got {other:?}"),
    }
    assert_eq!(
        store.task_instances(run.id).await.unwrap(),
        before,
        "the whole batch is rejected"
    );

    // Illegal even when the row is not in `from`.
    let err = error(
        store
            .apply_transitions(vec![Transition {
                from: TaskState::Success,
                ..transition(&a, TaskState::Running)
            }])
            .await,
    );
    assert!(matches!(err, StoreError::IllegalTransition(_)), "{err:?}");
    assert_eq!(store.task_instances(run.id).await.unwrap(), before);
}

pub async fn apply_transitions_records_dates(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        new_run("d", "r", vec![task("empty"), task("skipped"), task("late")]),
    )
    .await;
    // The empty operator succeeds where it stands: it starts and ends at once.
    let empty = ti(&*store, run.id, "empty").await;
    apply(
        &*store,
        Transition {
            now: at(4),
            ..transition(&empty, TaskState::Success)
        },
    )
    .await;
    let done = ti(&*store, run.id, "empty").await;
    assert_eq!(done.state, TaskState::Success);
    assert_eq!(done.start_date, Some(at(4)));
    assert_eq!(done.end_date, Some(at(4)));

    let skipped = ti(&*store, run.id, "skipped").await;
    apply(
        &*store,
        Transition {
            now: at(5),
            ..transition(&skipped, TaskState::Skipped)
        },
    )
    .await;
    let skipped = ti(&*store, run.id, "skipped").await;
    assert_eq!(skipped.state, TaskState::Skipped);
    assert_eq!(skipped.end_date, Some(at(5)));

    // A queued task that cannot start fails with an end date, and back to none clears it.
    let late = queue(&*store, &ti(&*store, run.id, "late").await).await;
    apply(
        &*store,
        Transition {
            now: at(6),
            ..transition(&late, TaskState::Failed)
        },
    )
    .await;
    let failed = ti(&*store, run.id, "late").await;
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.end_date, Some(at(6)));
    apply(&*store, transition(&failed, TaskState::None)).await;
    let reset = ti(&*store, run.id, "late").await;
    assert_eq!(reset.state, TaskState::None);
    assert_eq!(reset.start_date, None);
    assert_eq!(reset.end_date, None);
    assert_eq!(reset.claim_id, None);
}

pub async fn occupancy_counts_queued_and_running_tasks(db: &dyn TestDatabase) {
    let store = db.open().await;
    let empty = store.occupancy().await.unwrap();
    assert_eq!(empty.total, 0);
    assert!(empty.per_dag.is_empty() && empty.per_pool.is_empty());
    assert_eq!(empty.pool_slots.get("default_pool"), Some(&128));

    let pooled = |task_id: &str, pool: &str| crate::NewTaskInstance {
        pool: pool.to_string(),
        ..task(task_id)
    };
    publish(&*store, &["d", "e", "f"]).await;
    queued_run(
        &*store,
        "d",
        "r",
        vec![
            pooled("a", "default_pool"),
            pooled("b", "db"),
            pooled("c", "db"),
        ],
    )
    .await;
    let e = queued_run(&*store, "e", "r", vec![task("a"), task("b")]).await;
    // Tasks not yet queued, and finished ones, do not count.
    create(&*store, new_run("f", "r", vec![task("a")])).await;
    let claimed = claim(
        &*store,
        crate::ClaimRequest {
            dag_run_id: Some(e.id),
            ..claim_request("w", None, 2)
        },
    )
    .await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        finish(&*store, report(&claimed[0], TaskState::Success)).await,
        TransitionResult::Applied
    );

    let occupancy = store.occupancy().await.unwrap();
    assert_eq!(occupancy.total, 4);
    assert_eq!(occupancy.per_dag.get("d"), Some(&3));
    assert_eq!(occupancy.per_dag.get("e"), Some(&1));
    assert_eq!(occupancy.per_dag.get("f"), None);
    assert_eq!(occupancy.per_pool.get("default_pool"), Some(&2));
    assert_eq!(occupancy.per_pool.get("db"), Some(&2));
    assert_eq!(occupancy.pool_slots.get("default_pool"), Some(&128));
}

pub async fn earliest_retry_is_the_first_retry_of_an_unfinished_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.earliest_retry().await.unwrap(), None);
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b"), task("c")]).await;
    let dead = queued_run(&*store, "e", "dead", vec![task("a")]).await;
    for (run_id, task_id, retry_at) in [
        (run.id, "a", at(50)),
        (run.id, "b", at(20)),
        (dead.id, "a", at(10)),
    ] {
        let queued = ti(&*store, run_id, task_id).await;
        apply(
            &*store,
            Transition {
                next_retry_at: Some(retry_at),
                ..transition(&queued, TaskState::UpForRetry)
            },
        )
        .await;
    }
    assert_eq!(store.earliest_retry().await.unwrap(), Some(at(10)));
    for (from, to) in [
        (DagRunState::Queued, DagRunState::Running),
        (DagRunState::Running, DagRunState::Failed),
    ] {
        let result = store.set_dag_run_state(dead.id, from, to, at(3)).await;
        assert_eq!(result.unwrap(), TransitionResult::Applied);
    }
    assert_eq!(
        store.earliest_retry().await.unwrap(),
        Some(at(20)),
        "retries of finished runs never wake the scheduler"
    );
    // Once retried, a task no longer waits.
    let b = ti(&*store, run.id, "b").await;
    apply(&*store, transition(&b, TaskState::Scheduled)).await;
    assert_eq!(store.earliest_retry().await.unwrap(), Some(at(50)));
}

/// Runs `task_ids` of a one-run DAG to success with an XCom each, and finishes the run.
async fn finished_run(store: &dyn crate::Store, task_ids: &[&str]) -> crate::DagRun {
    let run = queued_run(
        store,
        "d",
        "r",
        task_ids.iter().map(|id| task(id)).collect(),
    )
    .await;
    for _ in task_ids {
        let claimed = claim_one(store, "w").await;
        let result = finish(
            store,
            FinishReport {
                xcom: Some(json!({"from": claimed.ti.task_id})),
                ..report(&claimed, TaskState::Success)
            },
        )
        .await;
        assert_eq!(result, TransitionResult::Applied);
    }
    for (from, to) in [
        (DagRunState::Queued, DagRunState::Running),
        (DagRunState::Running, DagRunState::Success),
    ] {
        let result = store.set_dag_run_state(run.id, from, to, at(8)).await;
        assert_eq!(result.unwrap(), TransitionResult::Applied);
    }
    run
}

pub async fn clear_resets_finished_tasks_and_reopens_the_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = finished_run(&*store, &["a", "b", "c"]).await;
    assert_eq!(store.xcoms_for_run(run.id).await.unwrap().len(), 3);

    let cleared = store
        .clear_task_instances(run.id, &["a".to_string(), "b".to_string()], at(20))
        .await
        .unwrap();
    assert_eq!(cleared, 2);
    for task_id in ["a", "b"] {
        let ti = ti(&*store, run.id, task_id).await;
        assert_eq!(ti.state, TaskState::None, "{task_id}");
        assert_eq!(
            ti.try_number, 1,
            "clearing keeps the try; queueing starts the next"
        );
        assert_eq!((ti.start_date, ti.end_date), (None, None));
        assert_eq!(ti.claim_id, None);
        assert_eq!(ti.next_retry_at, None);
    }
    assert_eq!(ti(&*store, run.id, "c").await.state, TaskState::Success);
    let reopened = store.get_dag_run_by_id(run.id).await.unwrap();
    assert_eq!(reopened.state, DagRunState::Queued);
    assert_eq!(reopened.end_date, None);
    // As in Airflow: the run starts afresh, so its `dagrun_timeout` counts from then.
    assert_eq!(reopened.start_date, None);
    assert_eq!(reopened.queued_at, at(20));
    assert_eq!(
        store.unfinished_dag_runs().await.unwrap(),
        vec![reopened.clone()]
    );
    let xcoms = store.xcoms_for_run(run.id).await.unwrap();
    assert_eq!(
        xcoms.iter().map(|x| x.task_id.as_str()).collect::<Vec<_>>(),
        vec!["c"],
        "the XComs of cleared tasks are deleted"
    );

    // A cleared task runs again as the next try.
    let a = ti(&*store, run.id, "a").await;
    assert_eq!(queue(&*store, &a).await.try_number, 2);

    // Nothing to clear: the run stays as it is.
    assert_eq!(
        store
            .clear_task_instances(run.id, &["nope".to_string()], at(30))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap(), reopened);
}

pub async fn clear_makes_running_tasks_restarting(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let started = store
        .set_dag_run_state(run.id, DagRunState::Queued, DagRunState::Running, at(2))
        .await
        .unwrap();
    assert_eq!(started, TransitionResult::Applied);

    let cleared = store
        .clear_task_instances(run.id, &["a".to_string()], at(3))
        .await
        .unwrap();
    assert_eq!(cleared, 1);
    let restarting = ti(&*store, run.id, "a").await;
    assert_eq!(restarting.state, TaskState::Restarting);
    assert_eq!(
        restarting.claim_id.as_deref(),
        Some(claimed.claim_id.as_str()),
        "the claim stays so that the worker's next report is fenced"
    );
    assert_eq!(restarting.try_number, claimed.ti.try_number);
    assert_eq!(
        store.get_dag_run_by_id(run.id).await.unwrap().state,
        DagRunState::Running,
        "a running run stays running"
    );
    assert_eq!(
        store
            .heartbeat(std::slice::from_ref(&claimed.claim_id), at(20))
            .await
            .unwrap(),
        vec![claimed.claim_id.clone()],
        "the worker learns that it lost the task"
    );
    let running = store.running_task_instances().await.unwrap();
    assert_eq!(
        task_ids(&running),
        vec!["a"],
        "still running until it stops"
    );
}

pub async fn clear_keeps_a_restarting_task_restarting(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    for _ in 0..2 {
        store
            .clear_task_instances(run.id, &["a".to_string()], at(3))
            .await
            .unwrap();
    }
    // Its process may still run: it must not be scheduled again before the worker reports.
    let restarting: TaskInstance = ti(&*store, run.id, "a").await;
    assert_eq!(restarting.state, TaskState::Restarting);
    assert_eq!(
        restarting.claim_id.as_deref(),
        Some(claimed.claim_id.as_str())
    );
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Conflict
    );
    assert_eq!(ti(&*store, run.id, "a").await.state, TaskState::None);
}
