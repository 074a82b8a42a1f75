//! Checks of the worker side: claims, leases and heartbeats, finished tries and their fencing.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    ClaimRequest, FinishReport, NewDagRun, PushedXCom, StoreError, TaskState, Transition,
    TransitionResult, TryEffects, XCom,
};

pub async fn claim_takes_highest_priority_first_up_to_the_limit(db: &dyn TestDatabase) {
    let store = db.open().await;
    queued_run(
        &*store,
        "d",
        "r",
        vec![
            task_in("low", "default", 1),
            task_in("high", "default", 9),
            task_in("mid", "default", 5),
            task_in("mid_later", "default", 5),
        ],
    )
    .await;
    assert_eq!(claim(&*store, claim_request("w", None, 0)).await.len(), 0);
    let first = claim(&*store, claim_request("w", None, 3)).await;
    let names: Vec<&str> = first.iter().map(|c| c.ti.task_id.as_str()).collect();
    assert_eq!(names, vec!["high", "mid", "mid_later"]);
    let rest = claim(&*store, claim_request("w", None, 3)).await;
    let names: Vec<&str> = rest.iter().map(|c| c.ti.task_id.as_str()).collect();
    assert_eq!(names, vec!["low"]);
    assert!(claim(&*store, claim_request("w", None, 3)).await.is_empty());
}

pub async fn claim_filters_by_queue(db: &dyn TestDatabase) {
    let store = db.open().await;
    queued_run(
        &*store,
        "d",
        "r",
        vec![
            task_in("cpu", "default", 1),
            task_in("gpu", "gpu", 1),
            task_in("big", "bigmem", 1),
        ],
    )
    .await;
    assert!(
        claim(&*store, claim_request("w", Some(&[]), 10))
            .await
            .is_empty(),
        "no queues serve nothing"
    );
    assert!(claim(&*store, claim_request("w", Some(&["other"]), 10))
        .await
        .is_empty());
    let gpu = claim(&*store, claim_request("w", Some(&["gpu"]), 10)).await;
    assert_eq!(gpu.len(), 1);
    assert_eq!(gpu[0].ti.task_id, "gpu");
    assert_eq!(gpu[0].ti.queue, "gpu");
    // `None` serves every queue.
    let mut all: Vec<String> = claim(&*store, claim_request("w", None, 10))
        .await
        .into_iter()
        .map(|c| c.ti.task_id)
        .collect();
    all.sort();
    assert_eq!(all, vec!["big", "cpu"]);
}

pub async fn claim_filters_by_dag_run(db: &dyn TestDatabase) {
    let store = db.open().await;
    let one = queued_run(&*store, "d", "one", vec![task_in("a", "default", 1)]).await;
    let two = queued_run(&*store, "d", "two", vec![task_in("a", "default", 9)]).await;
    let claimed = claim(
        &*store,
        ClaimRequest {
            dag_run_id: Some(one.id),
            ..claim_request("w", Some(&["default"]), 10)
        },
    )
    .await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].ti.dag_run_id, one.id);
    assert_eq!(claimed[0].dag_run.id, one.id);
    assert_eq!(ti(&*store, two.id, "a").await.state, TaskState::Queued);
}

pub async fn claim_records_the_worker_and_the_lease(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let queued = ti(&*store, run.id, "a").await;
    let claimed = claim_one(&*store, "worker-1").await;

    assert!(!claimed.claim_id.is_empty());
    assert_eq!(
        claimed.dag_run,
        store.get_dag_run_by_id(run.id).await.unwrap()
    );
    let stored = ti(&*store, run.id, "a").await;
    assert_eq!(claimed.ti, stored, "the claimed task is returned as stored");
    assert_eq!(stored.state, TaskState::Running);
    assert_eq!(
        stored.try_number, queued.try_number,
        "claiming keeps the try"
    );
    assert_eq!(stored.claim_id.as_deref(), Some(claimed.claim_id.as_str()));
    assert_eq!(stored.worker_id.as_deref(), Some("worker-1"));
    assert_eq!(stored.hostname.as_deref(), Some("worker-1.example"));
    assert_eq!(stored.lease_until, Some(at(10)));
    assert_eq!(stored.start_date, Some(at(2)));
    assert_eq!(stored.end_date, None);
    assert_eq!(stored.queued_at, queued.queued_at);
}

pub async fn claim_takes_each_task_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    let first = claim(&*store, claim_request("w1", None, 10)).await;
    assert_eq!(first.len(), 2);
    assert!(claim(&*store, claim_request("w2", None, 10))
        .await
        .is_empty());
    assert_ne!(first[0].claim_id, first[1].claim_id);

    // A task queued again for its next try gets a new claim.
    let a = first.iter().find(|c| c.ti.task_id == "a").unwrap();
    let result = finish(
        &*store,
        FinishReport {
            next_retry_at: Some(at(6)),
            ..report(a, TaskState::UpForRetry)
        },
    )
    .await;
    assert_eq!(result, TransitionResult::Applied);
    let waiting = ti(&*store, run.id, "a").await;
    apply(&*store, transition(&waiting, TaskState::Scheduled)).await;
    let scheduled = ti(&*store, run.id, "a").await;
    apply(
        &*store,
        Transition {
            new_try: true,
            ..transition(&scheduled, TaskState::Queued)
        },
    )
    .await;
    let again = claim_one(&*store, "w1").await;
    assert_eq!(again.ti.id, a.ti.id);
    assert_eq!(again.ti.try_number, a.ti.try_number + 1);
    assert_ne!(again.claim_id, a.claim_id);
}

pub async fn concurrent_claims_on_two_handles_never_share_a_task(db: &dyn TestDatabase) {
    const RUNS: usize = 4;
    const TASKS: usize = 15;
    const CLAIMERS_PER_HANDLE: usize = 3;
    let handles = [db.open().await, db.open().await];
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| task_in(&format!("t{i:02}"), "default", (i % 4) as i64))
        .collect();
    for r in 0..RUNS {
        queued_run(&*handles[0], "d", &format!("r{r}"), tasks.clone()).await;
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(2 * CLAIMERS_PER_HANDLE));
    let mut joins = Vec::new();
    for (h, store) in handles.iter().enumerate() {
        for c in 0..CLAIMERS_PER_HANDLE {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            let worker_id = format!("w{h}.{c}");
            joins.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let limit = 1 + (mine.len() + c) % 3;
                    let got = store
                        .claim(claim_request(&worker_id, None, limit))
                        .await
                        .expect("a concurrent claim must not fail");
                    assert!(got.len() <= limit);
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(
                        got.into_iter()
                            .map(|c| (c.ti.id, c.claim_id, worker_id.clone())),
                    );
                }
                mine
            }));
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for join in joins {
        for (ti_id, claim_id, worker_id) in join.await.expect("claimer panicked") {
            total += 1;
            assert!(seen.insert(ti_id), "task instance {ti_id} claimed twice");
            let running = handles[1].claims_of_worker(&worker_id).await.unwrap();
            let owned = running.iter().find(|ti| ti.id == ti_id);
            assert_eq!(
                owned.and_then(|ti| ti.claim_id.as_deref()),
                Some(claim_id.as_str()),
                "the stored claim is the one returned"
            );
        }
    }
    assert_eq!(total, RUNS * TASKS, "every queued task is claimed");
    assert_eq!(
        handles[0].running_task_instances().await.unwrap().len(),
        RUNS * TASKS
    );
}

pub async fn heartbeat_extends_leases_and_reports_lost_claims(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    let claimed = claim(&*store, claim_request("w", None, 2)).await;
    let ids: Vec<String> = claimed.iter().map(|c| c.claim_id.clone()).collect();
    assert_eq!(
        store.heartbeat(&[], at(20)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.heartbeat(&ids, at(20)).await.unwrap(),
        Vec::<String>::new()
    );
    for task_id in ["a", "b"] {
        assert_eq!(ti(&*store, run.id, task_id).await.lease_until, Some(at(20)));
    }

    let finished = &claimed[0];
    assert_eq!(
        finish(&*store, report(finished, TaskState::Success)).await,
        TransitionResult::Applied
    );
    let with_unknown = vec![ids[0].clone(), ids[1].clone(), "no-such-claim".to_string()];
    let lost = store.heartbeat(&with_unknown, at(30)).await.unwrap();
    assert_eq!(lost, vec![ids[0].clone(), "no-such-claim".to_string()]);
    let other = ti(&*store, run.id, &claimed[1].ti.task_id).await;
    assert_eq!(other.lease_until, Some(at(30)));
}

pub async fn finish_records_the_outcome_and_the_xcom(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    let claimed = claim(&*store, claim_request("w", None, 2)).await;
    let value = json!({"rows": 3, "files": ["x", "y"]});
    let results = store
        .finish(vec![
            FinishReport {
                xcom: Some(value.clone()),
                ..report(&claimed[0], TaskState::Success)
            },
            report(&claimed[1], TaskState::Failed),
        ])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![TransitionResult::Applied, TransitionResult::Applied]
    );
    assert_eq!(store.finish(vec![]).await.unwrap(), vec![]);

    let done = ti(&*store, run.id, &claimed[0].ti.task_id).await;
    assert_eq!(done.state, TaskState::Success);
    assert_eq!(done.end_date, Some(at(5)));
    assert_eq!(done.start_date, Some(at(2)));
    assert_eq!(done.lease_until, None);
    assert_eq!(done.try_number, claimed[0].ti.try_number);
    assert_eq!(done.infra_failures, 0);
    let failed = ti(&*store, run.id, &claimed[1].ti.task_id).await;
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.end_date, Some(at(5)));

    assert_eq!(
        store.xcoms_for_run(run.id).await.unwrap(),
        vec![XCom {
            task_id: claimed[0].ti.task_id.clone(),
            map_index: -1,
            key: "return_value".into(),
            value,
        }]
    );
    assert!(store.running_task_instances().await.unwrap().is_empty());
    // A finished try cannot be finished again.
    assert_eq!(
        finish(&*store, report(&claimed[0], TaskState::Failed)).await,
        TransitionResult::Conflict
    );
    assert_eq!(ti(&*store, run.id, &claimed[0].ti.task_id).await, done);
}

pub async fn finish_applies_pushed_xcoms_and_skips_tasks_not_started(db: &dyn TestDatabase) {
    let store = db.open().await;
    // Only `branch` and `ran` are queued; `left` and `right` wait downstream in `none`
    // and `scheduled`.
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        new_run(
            "d",
            "r",
            vec![task("branch"), task("ran"), task("left"), task("right")],
        ),
    )
    .await;
    let branch = queue(&*store, &ti(&*store, run.id, "branch").await).await;
    queue(&*store, &ti(&*store, run.id, "ran").await).await;
    apply(
        &*store,
        transition(&ti(&*store, run.id, "right").await, TaskState::Scheduled),
    )
    .await;
    let claimed = claim(&*store, claim_request("w", None, 2)).await;
    let mine = claimed.iter().find(|c| c.ti.id == branch.id).unwrap();
    let other = claimed.iter().find(|c| c.ti.id != branch.id).unwrap();
    let effects = TryEffects {
        xcoms: vec![PushedXCom {
            key: "picked".into(),
            value: json!(["ran"]),
        }],
        // `ran` is running: not skipped. An unknown id changes nothing.
        skip: vec!["left".into(), "right".into(), "ran".into(), "nope".into()],
        ..TryEffects::default()
    };
    let with_effects = FinishReport {
        xcom: Some(json!("ran")),
        effects: effects.clone(),
        ..report(mine, TaskState::Success)
    };
    assert_eq!(
        finish(&*store, with_effects.clone()).await,
        TransitionResult::Applied
    );
    for task_id in ["left", "right"] {
        let skipped = ti(&*store, run.id, task_id).await;
        assert_eq!(skipped.state, TaskState::Skipped, "{task_id}");
        assert_eq!(skipped.end_date, Some(at(5)), "{task_id}");
    }
    assert_eq!(ti(&*store, run.id, "ran").await.state, TaskState::Running);
    let mut xcoms = store.xcoms_for_run(run.id).await.unwrap();
    xcoms.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        xcoms,
        vec![
            XCom {
                task_id: "branch".into(),
                map_index: -1,
                key: "picked".into(),
                value: json!(["ran"]),
            },
            XCom {
                task_id: "branch".into(),
                map_index: -1,
                key: "return_value".into(),
                value: json!("ran"),
            },
        ]
    );
    // A refused report (the claim is not the try's) applies none of its effects.
    let refused = FinishReport {
        claim_id: "not-the-claim".into(),
        effects: TryEffects {
            xcoms: vec![PushedXCom {
                key: "late".into(),
                value: json!(1),
            }],
            skip: vec!["ran".into()],
            ..TryEffects::default()
        },
        ..report(other, TaskState::Success)
    };
    assert_eq!(finish(&*store, refused).await, TransitionResult::Conflict);
    assert_eq!(ti(&*store, run.id, "ran").await.state, TaskState::Running);
    assert_eq!(store.xcoms_for_run(run.id).await.unwrap().len(), 2);
}

pub async fn finish_with_a_stale_claim_is_a_conflict_and_changes_nothing(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let before = ti(&*store, run.id, "a").await;
    let wrong_claim = FinishReport {
        claim_id: format!("{}-impostor", claimed.claim_id),
        xcom: Some(json!(1)),
        ..report(&claimed, TaskState::Success)
    };
    let wrong_try = FinishReport {
        try_number: claimed.ti.try_number + 1,
        xcom: Some(json!(2)),
        ..report(&claimed, TaskState::Failed)
    };
    let results = store.finish(vec![wrong_claim, wrong_try]).await.unwrap();
    assert_eq!(
        results,
        vec![TransitionResult::Conflict, TransitionResult::Conflict]
    );
    assert_eq!(ti(&*store, run.id, "a").await, before);
    assert_eq!(store.xcoms_for_run(run.id).await.unwrap(), vec![]);
    // The rightful owner still can.
    assert_eq!(
        finish(&*store, report(&claimed, TaskState::Success)).await,
        TransitionResult::Applied
    );
}

pub async fn finish_rejects_an_illegal_outcome_and_changes_nothing(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b")]).await;
    let claimed = claim(&*store, claim_request("w", None, 2)).await;
    let before = store.task_instances(run.id).await.unwrap();
    let err = error(
        store
            .finish(vec![
                report(&claimed[0], TaskState::Success),
                report(&claimed[1], TaskState::Queued),
            ])
            .await,
    );
    assert!(matches!(err, StoreError::IllegalTransition(_)), "{err:?}");
    assert_eq!(store.task_instances(run.id).await.unwrap(), before);
}

pub async fn finish_of_a_cleared_task_resets_it_to_none(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    store
        .clear_task_instances(run.id, &["a".to_string()], at(3))
        .await
        .unwrap();
    let result = finish(
        &*store,
        FinishReport {
            xcom: Some(json!("stale")),
            ..report(&claimed, TaskState::Success)
        },
    )
    .await;
    assert_eq!(
        result,
        TransitionResult::Conflict,
        "the worker no longer owns a cleared try"
    );
    let reset = ti(&*store, run.id, "a").await;
    assert_eq!(reset.state, TaskState::None);
    assert_eq!(reset.claim_id, None);
    assert_eq!(reset.lease_until, None);
    assert_eq!((reset.start_date, reset.end_date), (None, None));
    assert_eq!(store.xcoms_for_run(run.id).await.unwrap(), vec![]);
    assert!(store.running_task_instances().await.unwrap().is_empty());
    assert_eq!(
        store
            .heartbeat(std::slice::from_ref(&claimed.claim_id), at(20))
            .await
            .unwrap(),
        vec![claimed.claim_id.clone()]
    );
}

pub async fn finish_counts_infrastructure_failures(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let claimed = claim_one(&*store, "w").await;
    let result = finish(
        &*store,
        FinishReport {
            next_retry_at: Some(at(7)),
            infrastructure_failure: true,
            ..report(&claimed, TaskState::UpForRetry)
        },
    )
    .await;
    assert_eq!(result, TransitionResult::Applied);
    let waiting = ti(&*store, run.id, "a").await;
    assert_eq!(waiting.state, TaskState::UpForRetry);
    assert_eq!(waiting.infra_failures, 1);
    assert_eq!(waiting.next_retry_at, Some(at(7)));
    assert_eq!(waiting.end_date, Some(at(5)));
    assert_eq!(store.earliest_retry().await.unwrap(), Some(at(7)));
}

pub async fn expired_claims_are_running_tasks_past_their_lease(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b"), task("c")]).await;
    let short = claim(&*store, claim_request("w", None, 1)).await;
    let long = claim(
        &*store,
        ClaimRequest {
            lease_until: at(100),
            ..claim_request("w", None, 1)
        },
    )
    .await;
    assert_eq!((short.len(), long.len()), (1, 1));
    // The third task stays queued: it has no lease to expire.
    assert_eq!(store.expired_claims(at(10)).await.unwrap(), vec![]);
    let expired = store.expired_claims(at(11)).await.unwrap();
    assert_eq!(task_ids(&expired), vec![short[0].ti.task_id.as_str()]);
    assert_eq!(
        expired[0].claim_id.as_deref(),
        Some(short[0].claim_id.as_str())
    );

    assert!(store
        .heartbeat(std::slice::from_ref(&short[0].claim_id), at(50))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.expired_claims(at(11)).await.unwrap(), vec![]);
    let mut both = task_ids(&store.expired_claims(at(101)).await.unwrap())
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    both.sort();
    let mut expected = vec![short[0].ti.task_id.clone(), long[0].ti.task_id.clone()];
    expected.sort();
    assert_eq!(both, expected);

    // A restarting task whose worker died expires too.
    store
        .clear_task_instances(run.id, &[long[0].ti.task_id.clone()], at(60))
        .await
        .unwrap();
    let expired = store.expired_claims(at(101)).await.unwrap();
    assert_eq!(expired.len(), 2);
    assert!(expired.iter().any(|ti| ti.state == TaskState::Restarting));
    // A finished try holds no lease.
    finish(&*store, report(&short[0], TaskState::Success)).await;
    assert_eq!(store.expired_claims(at(101)).await.unwrap().len(), 1);
}

pub async fn claims_of_worker_and_running_task_instances(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a"), task("b"), task("c")]).await;
    let w1 = claim(&*store, claim_request("w1", None, 2)).await;
    let w2 = claim(&*store, claim_request("w2", None, 1)).await;
    assert_eq!((w1.len(), w2.len()), (2, 1));

    let mut of_w1: Vec<i64> = store
        .claims_of_worker("w1")
        .await
        .unwrap()
        .iter()
        .map(|ti| ti.id)
        .collect();
    of_w1.sort();
    let mut expected: Vec<i64> = w1.iter().map(|c| c.ti.id).collect();
    expected.sort();
    assert_eq!(of_w1, expected);
    assert_eq!(store.claims_of_worker("w3").await.unwrap(), vec![]);
    assert_eq!(store.running_task_instances().await.unwrap().len(), 3);

    // Restarting still belongs to its worker; finished does not.
    store
        .clear_task_instances(run.id, &[w1[0].ti.task_id.clone()], at(3))
        .await
        .unwrap();
    finish(&*store, report(&w1[1], TaskState::Success)).await;
    let left = store.claims_of_worker("w1").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, w1[0].ti.id);
    assert_eq!(left[0].state, TaskState::Restarting);
    let mut running: Vec<i64> = store
        .running_task_instances()
        .await
        .unwrap()
        .iter()
        .map(|ti| ti.id)
        .collect();
    running.sort();
    let mut expected = vec![w1[0].ti.id, w2[0].ti.id];
    expected.sort();
    assert_eq!(running, expected);
}

pub async fn runs_with_a_runner_are_left_to_it_until_released(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        NewDagRun {
            runner: Some("tester".into()),
            ..new_run(
                "d",
                "test",
                vec![task_in("a", "default", 1), task_in("b", "default", 1)],
            )
        },
    )
    .await;
    assert_eq!(run.runner.as_deref(), Some("tester"));
    for ti in store.task_instances(run.id).await.expect("task_instances") {
        queue(&*store, &ti).await;
    }
    assert!(claim(&*store, claim_request("other", None, 10))
        .await
        .is_empty());
    let mine = claim(
        &*store,
        ClaimRequest {
            dag_run_id: Some(run.id),
            ..claim_request("tester", None, 1)
        },
    )
    .await;
    assert_eq!(mine.len(), 1);
    store.release_dag_run(run.id).await.expect("release");
    assert_eq!(store.get_dag_run_by_id(run.id).await.unwrap().runner, None);
    let taken_over = claim(&*store, claim_request("other", None, 10)).await;
    assert_eq!(taken_over.len(), 1);
    assert_ne!(taken_over[0].ti.task_id, mine[0].ti.task_id);
}
