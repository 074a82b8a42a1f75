//! Checks of dynamic task mapping: a placeholder expands into its instances with the
//! transition that decides it is ready, once, and mapped instances keep their own XComs.

use serde_json::json;

use super::fixture::*;
use super::TestDatabase;
use crate::{Expansion, TaskState, Transition, TransitionResult, XCom};

pub async fn apply_plan_expands_a_placeholder_once(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(
        &*store,
        new_run("d", "r", vec![task_in("m", "q", 5), task("other")]),
    )
    .await;
    let placeholder = ti(&*store, run.id, "m").await;
    assert_eq!(placeholder.map_index, -1);
    let decide = transition(&placeholder, TaskState::Scheduled);
    let expansion = Expansion {
        ti_id: placeholder.id,
        count: 3,
    };
    let results = store
        .apply_plan(vec![decide.clone()], vec![expansion.clone()])
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Applied]);

    // A second scheduler that decided the same from the same snapshot loses, and adds nothing.
    let results = store
        .apply_plan(vec![decide], vec![expansion.clone()])
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Conflict]);

    let mut mapped: Vec<_> = store
        .task_instances(run.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|ti| ti.task_id == "m")
        .collect();
    mapped.sort_by_key(|ti| ti.map_index);
    assert_eq!(
        mapped.iter().map(|ti| ti.map_index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        mapped[0].id, placeholder.id,
        "the placeholder is instance 0"
    );
    for instance in &mapped {
        assert_eq!(instance.state, TaskState::Scheduled);
        assert_eq!(
            (instance.queue.as_str(), instance.priority_weight),
            ("q", 5)
        );
        assert_eq!(instance.try_number, 0);
    }
    assert_eq!(ti(&*store, run.id, "other").await.map_index, -1);

    // An expansion whose transition does not apply expands nothing.
    let other = ti(&*store, run.id, "other").await;
    let results = store
        .apply_plan(
            vec![Transition {
                try_number: 9,
                ..transition(&other, TaskState::Scheduled)
            }],
            vec![Expansion {
                ti_id: other.id,
                count: 4,
            }],
        )
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Conflict]);
    assert_eq!(store.task_instances(run.id).await.unwrap().len(), 4);
}

pub async fn mapped_instances_keep_their_own_xcoms(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("m")])).await;
    let placeholder = ti(&*store, run.id, "m").await;
    store
        .apply_plan(
            vec![transition(&placeholder, TaskState::Scheduled)],
            vec![Expansion {
                ti_id: placeholder.id,
                count: 3,
            }],
        )
        .await
        .unwrap();
    for instance in store.task_instances(run.id).await.unwrap() {
        apply(
            &*store,
            Transition {
                new_try: true,
                ..transition(&instance, TaskState::Queued)
            },
        )
        .await;
    }
    let mut claimed = claim(&*store, claim_request("w", None, 3)).await;
    assert_eq!(claimed.len(), 3);
    // Finished in reverse order: the reduce is by map index, not by finish.
    claimed.sort_by_key(|c| std::cmp::Reverse(c.ti.map_index));
    for c in &claimed {
        let result = finish(
            &*store,
            crate::FinishReport {
                xcom: Some(json!(c.ti.map_index * 10)),
                ..report(c, TaskState::Success)
            },
        )
        .await;
        assert_eq!(result, TransitionResult::Applied);
    }
    let stored = store.xcoms_for_run(run.id).await.unwrap();
    let mut indexes: Vec<i64> = stored.iter().map(|x| x.map_index).collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2]);
    assert_eq!(
        XCom::as_seen_downstream(stored),
        vec![XCom {
            task_id: "m".into(),
            map_index: -1,
            key: "return_value".into(),
            value: json!([0, 10, 20]),
        }]
    );
}

/// Airflow's clear of `[task_id, map_index]`: only that instance and its XCom; and a task
/// whose upstream ran again with more values grows from instance 0, keeping the others.
pub async fn one_mapped_instance_is_cleared_and_a_task_expands_again(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d"]).await;
    let run = create(&*store, new_run("d", "r", vec![task("m")])).await;
    let placeholder = ti(&*store, run.id, "m").await;
    store
        .apply_plan(
            vec![transition(&placeholder, TaskState::Scheduled)],
            vec![Expansion {
                ti_id: placeholder.id,
                count: 3,
            }],
        )
        .await
        .unwrap();
    for instance in store.task_instances(run.id).await.unwrap() {
        apply(
            &*store,
            Transition {
                new_try: true,
                ..transition(&instance, TaskState::Queued)
            },
        )
        .await;
    }
    for c in claim(&*store, claim_request("w", None, 3)).await {
        let report = crate::FinishReport {
            xcom: Some(json!(c.ti.map_index)),
            ..report(&c, TaskState::Success)
        };
        finish(&*store, report).await;
    }
    let now = chrono::Utc::now();
    let cleared = store
        .clear_mapped_task_instances(run.id, &[("m".to_string(), 1)], now)
        .await
        .unwrap();
    assert_eq!(cleared, 1);
    let by_index = |tis: Vec<crate::TaskInstance>| {
        let mut tis: Vec<_> = tis.into_iter().filter(|t| t.task_id == "m").collect();
        tis.sort_by_key(|t| t.map_index);
        tis
    };
    let tis = by_index(store.task_instances(run.id).await.unwrap());
    let states: Vec<TaskState> = tis.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        vec![TaskState::Success, TaskState::None, TaskState::Success]
    );
    let mut pushed: Vec<i64> = store
        .xcoms_for_run(run.id)
        .await
        .unwrap()
        .iter()
        .map(|x| x.map_index)
        .collect();
    pushed.sort();
    assert_eq!(pushed, vec![0, 2]);

    // Instance 0 cleared and ready again, the task now maps over five values.
    store
        .clear_mapped_task_instances(run.id, &[("m".to_string(), 0)], now)
        .await
        .unwrap();
    let first = ti_at(&*store, run.id, "m", 0).await;
    let results = store
        .apply_plan(
            vec![transition(&first, TaskState::Scheduled)],
            vec![Expansion {
                ti_id: first.id,
                count: 5,
            }],
        )
        .await
        .unwrap();
    assert_eq!(results, vec![TransitionResult::Applied]);
    let tis = by_index(store.task_instances(run.id).await.unwrap());
    let seen: Vec<(i64, TaskState, u32)> = tis
        .iter()
        .map(|t| (t.map_index, t.state, t.try_number))
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, TaskState::Scheduled, 1),
            (1, TaskState::None, 1),
            (2, TaskState::Success, 1),
            (3, TaskState::Scheduled, 0),
            (4, TaskState::Scheduled, 0),
        ]
    );
}

async fn ti_at(
    store: &dyn crate::Store,
    run_id: i64,
    task_id: &str,
    map_index: i64,
) -> crate::TaskInstance {
    store
        .task_instances(run_id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.task_id == task_id && t.map_index == map_index)
        .unwrap()
}
