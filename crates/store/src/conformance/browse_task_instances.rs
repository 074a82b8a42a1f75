//! Checks of the public API's task instance listings (one run's, or across runs): every
//! filter, every sort key in both directions with paging, and a task instance's tries.

use super::browse::{assert_not_found, sort, window};
use super::browse_runs::{expected_order, range, time, world, Key};
use super::fixture::*;
use super::TestDatabase;
use crate::{
    TaskInstanceQuery, TaskInstanceRow, TaskInstanceSortField, TaskInstanceSummary, TaskState,
    Transition, TransitionResult,
};

fn every_ti() -> TaskInstanceQuery {
    TaskInstanceQuery {
        window: window(100, 0),
        ..TaskInstanceQuery::default()
    }
}

fn duration(row: &TaskInstanceRow) -> Option<i64> {
    (row.ti.end_date? - row.ti.start_date?).num_microseconds()
}

type TiCase = (
    &'static str,
    TaskInstanceQuery,
    Box<dyn Fn(&TaskInstanceRow) -> bool>,
);

pub async fn query_task_instances_applies_every_filter(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = world(db, &*store).await;
    let all = store.query_task_instances(every_ti()).await.unwrap();
    assert_eq!(all.total, 18);
    let mut ids: Vec<i64> = all.items.iter().map(|r| r.ti.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        all.items.iter().map(|r| r.ti.id).collect::<Vec<_>>(),
        "default: by id"
    );
    for row in &all.items {
        let run = runs.iter().find(|r| r.id == row.ti.dag_run_id).unwrap();
        assert_eq!(
            (row.ti.dag_id.as_str(), row.ti.run_id.as_str()),
            (run.dag_id.as_str(), run.run_id.as_str())
        );
        assert_eq!(
            (row.logical_date, row.dag_version),
            (run.logical_date, run.dag_version)
        );
        assert_eq!(
            row.ti,
            store
                .task_instances(run.id)
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.id == row.ti.id)
                .unwrap()
        );
    }
    let list = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cases: Vec<TiCase> = vec![
        (
            "one DAG",
            TaskInstanceQuery {
                dag_ids: list(&["b"]),
                ..every_ti()
            },
            Box::new(|r| r.ti.dag_id == "b"),
        ),
        (
            "one run",
            TaskInstanceQuery {
                dag_ids: list(&["a"]),
                run_ids: list(&["Manual__2"]),
                ..every_ti()
            },
            Box::new(|r| r.ti.run_id == "Manual__2"),
        ),
        (
            "runs of any DAG",
            TaskInstanceQuery {
                run_ids: list(&["scheduled__10", "scheduled__20"]),
                ..every_ti()
            },
            Box::new(|r| r.ti.run_id.starts_with("scheduled")),
        ),
        (
            "no run",
            TaskInstanceQuery {
                run_ids: list(&[]),
                ..every_ti()
            },
            Box::new(|_| false),
        ),
        (
            "task ids",
            TaskInstanceQuery {
                task_ids: list(&["extract", "load"]),
                ..every_ti()
            },
            Box::new(|r| r.ti.task_id != "Transform"),
        ),
        (
            "task_id substring in any case",
            TaskInstanceQuery {
                task_id_pattern: Some("TRANS".into()),
                ..every_ti()
            },
            Box::new(|r| r.ti.task_id == "Transform"),
        ),
        (
            "task_id wildcards",
            TaskInstanceQuery {
                task_id_pattern: Some("t%a".into()),
                ..every_ti()
            },
            Box::new(|r| r.ti.task_id != "load"),
        ),
        (
            "states",
            TaskInstanceQuery {
                states: vec![TaskState::Success, TaskState::UpForRetry],
                ..every_ti()
            },
            Box::new(|r| matches!(r.ti.state, TaskState::Success | TaskState::UpForRetry)),
        ),
        (
            "pools",
            TaskInstanceQuery {
                pools: vec!["p2".into()],
                ..every_ti()
            },
            Box::new(|r| r.ti.pool == "p2"),
        ),
        (
            "queues",
            TaskInstanceQuery {
                queues: vec!["gpu".into()],
                ..every_ti()
            },
            Box::new(|r| r.ti.queue == "gpu"),
        ),
        (
            "the run's logical date",
            TaskInstanceQuery {
                logical_date: range(Some(20), None, None, Some(40)),
                ..every_ti()
            },
            Box::new(|r| r.logical_date >= at(20) && r.logical_date < at(40)),
        ),
        (
            "start_date",
            TaskInstanceQuery {
                start_date: range(None, Some(120), None, None),
                ..every_ti()
            },
            Box::new(|r| r.ti.start_date.is_some_and(|t| t > at(120))),
        ),
        (
            "end_date",
            TaskInstanceQuery {
                end_date: range(None, None, Some(130), None),
                ..every_ti()
            },
            Box::new(|r| r.ti.end_date.is_some_and(|t| t <= at(130))),
        ),
        (
            "duration at least",
            TaskInstanceQuery {
                duration_gte: Some(180.0),
                ..every_ti()
            },
            Box::new(|r| duration(r).is_some_and(|d| d >= 180_000_000)),
        ),
        (
            "duration at most, fractional",
            TaskInstanceQuery {
                duration_lte: Some(120.5),
                ..every_ti()
            },
            Box::new(|r| duration(r).is_some_and(|d| d <= 120_500_000)),
        ),
        (
            "filters combine",
            TaskInstanceQuery {
                dag_ids: list(&["a"]),
                pools: vec!["p2".into()],
                duration_gte: Some(60.0),
                duration_lte: Some(360.0),
                ..every_ti()
            },
            Box::new(|r| {
                r.ti.dag_id == "a"
                    && r.ti.pool == "p2"
                    && duration(r).is_some_and(|d| (60_000_000..=360_000_000).contains(&d))
            }),
        ),
    ];
    for (name, query, keep) in cases {
        let expected: Vec<i64> = all
            .items
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.ti.id)
            .collect();
        if query.run_ids.as_ref().is_none_or(|r| !r.is_empty()) {
            assert!(
                !expected.is_empty() && expected.len() < all.items.len(),
                "{name}: the data must discriminate"
            );
        }
        let page = store.query_task_instances(query).await.unwrap();
        let got: Vec<i64> = page.items.iter().map(|r| r.ti.id).collect();
        assert_eq!(got, expected, "{name}");
        assert_eq!(page.total, expected.len() as u64, "{name}: total");
    }
}

fn ti_key(field: TaskInstanceSortField, row: &TaskInstanceRow) -> Key {
    let text = |s: &str| Key::Text(s.to_string());
    let ti = &row.ti;
    match field {
        TaskInstanceSortField::Id => Key::Int(ti.id),
        TaskInstanceSortField::DagId => text(&ti.dag_id),
        TaskInstanceSortField::RunId => text(&ti.run_id),
        TaskInstanceSortField::TaskId => text(&ti.task_id),
        TaskInstanceSortField::MapIndex => Key::Int(ti.map_index),
        TaskInstanceSortField::State => text(ti.state.as_str()),
        TaskInstanceSortField::TryNumber => Key::Int(i64::from(ti.try_number)),
        TaskInstanceSortField::LogicalDate => time(Some(row.logical_date)),
        TaskInstanceSortField::StartDate => time(ti.start_date),
        TaskInstanceSortField::EndDate => time(ti.end_date),
        TaskInstanceSortField::Duration => duration(row).map_or(Key::Missing, Key::Int),
        TaskInstanceSortField::Pool => text(&ti.pool),
        TaskInstanceSortField::Queue => text(&ti.queue),
        TaskInstanceSortField::PriorityWeight => Key::Int(ti.priority_weight),
    }
}

pub async fn query_task_instances_sorts_by_each_field_both_ways(db: &dyn TestDatabase) {
    let store = db.open().await;
    world(db, &*store).await;
    let all = store.query_task_instances(every_ti()).await.unwrap().items;
    use TaskInstanceSortField::*;
    for field in [
        Id,
        DagId,
        RunId,
        TaskId,
        MapIndex,
        State,
        TryNumber,
        LogicalDate,
        StartDate,
        EndDate,
        Duration,
        Pool,
        Queue,
        PriorityWeight,
    ] {
        for descending in [false, true] {
            let page = store
                .query_task_instances(TaskInstanceQuery {
                    sort: sort(field, descending),
                    ..every_ti()
                })
                .await
                .unwrap();
            let got: Vec<i64> = page.items.iter().map(|r| r.ti.id).collect();
            let expected = expected_order(&all, |r| ti_key(field, r), |r| r.ti.id, descending);
            assert_eq!(got, expected, "{field:?} descending={descending}");
            // Paging the same order in pages of 5 gives the same rows.
            let mut paged = Vec::new();
            for offset in (0..18).step_by(5) {
                let page = store
                    .query_task_instances(TaskInstanceQuery {
                        sort: sort(field, descending),
                        window: window(5, offset),
                        ..TaskInstanceQuery::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(page.total, 18);
                paged.extend(page.items.iter().map(|r| r.ti.id));
            }
            assert_eq!(paged, expected, "{field:?} descending={descending}, paged");
        }
    }
}

pub async fn task_tries_are_the_finished_tries_oldest_first(db: &dyn TestDatabase) {
    let store = db.open().await;
    let run = queued_run(&*store, "d", "r", vec![task("a")]).await;
    let first = claim_one(&*store, "w1").await;
    let retry = crate::FinishReport {
        next_retry_at: Some(at(6)),
        ..report(&first, TaskState::UpForRetry)
    };
    assert_eq!(finish(&*store, retry).await, TransitionResult::Applied);
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
    let second = claim_one(&*store, "w2").await;
    assert_eq!(second.ti.try_number, 2);
    assert_eq!(
        finish(&*store, report(&second, TaskState::Success)).await,
        TransitionResult::Applied
    );
    let tries = store.task_tries(first.ti.id).await.unwrap();
    let summary: Vec<(u32, TaskState, Option<&str>, Option<&str>)> = tries
        .iter()
        .map(|t| {
            (
                t.try_number,
                t.state,
                t.hostname.as_deref(),
                t.worker_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, TaskState::UpForRetry, Some("w1.example"), Some("w1")),
            (2, TaskState::Success, Some("w2.example"), Some("w2")),
        ]
    );
    for t in &tries {
        assert_eq!(t.ti_id, first.ti.id);
        assert_eq!((t.start_date, t.end_date), (Some(at(2)), Some(at(5))));
        assert!(!t.infrastructure_failure);
    }
    let other = create(&*store, new_run("d", "fresh", vec![task("a")])).await;
    let untried = ti(&*store, other.id, "a").await;
    assert_eq!(store.task_tries(untried.id).await.unwrap(), vec![]);
    let unknown = untried.id + 1000;
    assert_not_found(store.task_tries(unknown).await, &unknown.to_string());
}

pub async fn task_instances_page_by_id_after_the_last_one_without_a_total(db: &dyn TestDatabase) {
    let store = db.open().await;
    world(db, &*store).await;
    let all = store.query_task_instances(every_ti()).await.unwrap();
    let every_id: Vec<i64> = all.items.iter().map(|r| r.ti.id).collect();
    let mut query = TaskInstanceQuery {
        window: window(5, 0),
        without_total: true,
        ..TaskInstanceQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.query_task_instances(query.clone()).await.unwrap();
        assert_eq!(page.total, 0, "not counted");
        seen.extend(page.items.iter().map(|r| r.ti.id));
        match page.items.last() {
            Some(last) if page.items.len() == 5 => query.id_after = Some(last.ti.id),
            _ => break,
        }
    }
    assert_eq!(seen, every_id, "every task instance once, in id order");
    // Combined with a filter, and counted when asked.
    let after = TaskInstanceQuery {
        id_after: Some(every_id[9]),
        task_ids: Some(vec!["load".into()]),
        ..every_ti()
    };
    let page = store.query_task_instances(after).await.unwrap();
    let expected: Vec<i64> = all
        .items
        .iter()
        .filter(|r| r.ti.id > every_id[9] && r.ti.task_id == "load")
        .map(|r| r.ti.id)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        page.items.iter().map(|r| r.ti.id).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(page.total, expected.len() as u64);
}

pub async fn task_instance_summaries_are_the_runs_task_instances_in_brief(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = world(db, &*store).await;
    let asked = [runs[3].id, runs[0].id, runs[3].id + 10_000];
    let mut expected = Vec::new();
    for id in [runs[0].id, runs[3].id] {
        let mut tis = store.task_instances(id).await.unwrap();
        assert!(!tis.is_empty());
        tis.sort_by(|a, b| (&a.task_id, a.map_index).cmp(&(&b.task_id, b.map_index)));
        expected.extend(tis.into_iter().map(|ti| TaskInstanceSummary {
            dag_run_id: ti.dag_run_id,
            task_id: ti.task_id,
            map_index: ti.map_index,
            state: ti.state,
            start_date: ti.start_date,
            end_date: ti.end_date,
        }));
    }
    assert!(
        expected.iter().any(|s| s.start_date.is_some()),
        "the world has started task instances"
    );
    assert_eq!(
        store.task_instance_summaries(asked.to_vec()).await.unwrap(),
        expected
    );
    assert_eq!(store.task_instance_summaries(vec![]).await.unwrap(), vec![]);
}
