//! Checks of the public API's run listings: every filter, every sort key in both directions,
//! stable paging; and the runs and task instances the task instance checks browse.

use std::cmp::Ordering;

use super::browse::{micros, sort, window};
use super::fixture::*;
use super::TestDatabase;
use crate::{
    DagRun, DagRunQuery, DagRunSortField, NewDagRun, NewTaskInstance, RunType, Store, TimeRange,
};

/// (dag_id, run_id, run type, logical date, queued at), created in this order.
const RUNS: [(&str, &str, RunType, i64, i64); 6] = [
    ("a", "manual__1", RunType::Manual, 10, 11),
    ("a", "scheduled__20", RunType::Scheduled, 20, 21),
    ("a", "backfill__30", RunType::Backfill, 30, 31),
    ("a", "Manual__2", RunType::Manual, 20, 22),
    ("b", "scheduled__10", RunType::Scheduled, 10, 12),
    ("b", "manual__40", RunType::Manual, 40, 41),
];

fn tasks() -> Vec<NewTaskInstance> {
    vec![
        task_in("extract", "default", 1),
        NewTaskInstance {
            pool: "p2".into(),
            ..task_in("load", "gpu", 5)
        },
        NewTaskInstance {
            pool: "p2".into(),
            ..task_in("Transform", "default", 3)
        },
    ]
}

/// The runs of [`RUNS`] (DAG `c` has none) with varied states and dates, and three task
/// instances each whose states, tries and dates vary (some without dates).
pub(super) async fn world(db: &dyn TestDatabase, store: &dyn Store) -> Vec<DagRun> {
    publish(store, &["a", "b", "c"]).await;
    let mut runs = Vec::new();
    for (i, (dag_id, run_id, run_type, logical, queued)) in RUNS.into_iter().enumerate() {
        let run = create(
            store,
            NewDagRun {
                run_type,
                logical_date: at(logical),
                data_interval_start: at(100 - logical),
                data_interval_end: at(logical + 1),
                now: at(queued),
                dag_version: 1 + i as i64 % 2,
                ..new_run(dag_id, run_id, tasks())
            },
        )
        .await;
        runs.push(run);
    }
    let mut sql = String::new();
    for (run_id, state, start, end) in [
        ("manual__1", "success", Some(12), Some(15)),
        ("scheduled__20", "failed", Some(22), Some(30)),
        ("backfill__30", "running", Some(32), None),
        ("scheduled__10", "success", Some(13), Some(14)),
        ("manual__40", "running", Some(42), None),
    ] {
        let opt = |m: Option<i64>| m.map_or("NULL".to_string(), |m| micros(m).to_string());
        sql.push_str(&format!(
            "UPDATE dag_run SET state = '{state}', start_date = {}, end_date = {} \
             WHERE run_id = '{run_id}';",
            opt(start),
            opt(end)
        ));
    }
    let states = [
        "success",
        "failed",
        "running",
        "none",
        "queued",
        "up_for_retry",
    ];
    for (i, run) in runs.iter().enumerate() {
        for (j, ti) in store
            .task_instances(run.id)
            .await
            .unwrap()
            .iter()
            .enumerate()
        {
            let k = i + j;
            let start = (k % 4 != 3).then(|| micros(100 + (i * 10 + j) as i64));
            let end = start
                .filter(|_| k % 5 != 4)
                .map(|s| s + ((j + 1) * (i % 3 + 1)) as i64 * 60_000_000);
            let opt = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
            sql.push_str(&format!(
                "UPDATE task_instance SET state = '{}', try_number = {}, start_date = {}, \
                 end_date = {} WHERE id = {};",
                states[k % states.len()],
                (i * j) % 3,
                opt(start),
                opt(end),
                ti.id
            ));
        }
    }
    db.execute(&sql).await;
    let mut stored = Vec::new();
    for run in &runs {
        stored.push(store.get_dag_run_by_id(run.id).await.unwrap());
    }
    stored
}

fn every_run() -> DagRunQuery {
    DagRunQuery {
        window: window(100, 0),
        ..DagRunQuery::default()
    }
}

fn run_ids(runs: &[DagRun]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

pub(super) fn range(
    gte: Option<i64>,
    gt: Option<i64>,
    lte: Option<i64>,
    lt: Option<i64>,
) -> TimeRange {
    TimeRange {
        gte: gte.map(at),
        gt: gt.map(at),
        lte: lte.map(at),
        lt: lt.map(at),
    }
}

pub async fn query_dag_runs_applies_every_filter(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = world(db, &*store).await;
    let all = store.query_dag_runs(every_run()).await.unwrap();
    assert_eq!(all.items, runs, "default: every run, by id");
    let ids = |v: Vec<&str>| Some(v.into_iter().map(String::from).collect::<Vec<_>>());
    let cases: Vec<(&str, DagRunQuery, Vec<&str>)> = vec![
        (
            "one DAG",
            DagRunQuery {
                dag_ids: ids(vec!["a"]),
                ..every_run()
            },
            vec!["manual__1", "scheduled__20", "backfill__30", "Manual__2"],
        ),
        (
            "no DAG",
            DagRunQuery {
                dag_ids: ids(vec![]),
                ..every_run()
            },
            vec![],
        ),
        (
            "two DAGs, one without runs",
            DagRunQuery {
                dag_ids: ids(vec!["b", "c"]),
                ..every_run()
            },
            vec!["scheduled__10", "manual__40"],
        ),
        (
            "run_id substring in any case",
            DagRunQuery {
                run_id_pattern: Some("MANUAL".into()),
                ..every_run()
            },
            vec!["manual__1", "Manual__2", "manual__40"],
        ),
        (
            "run_id wildcards",
            DagRunQuery {
                run_id_pattern: Some("%__2".into()),
                ..every_run()
            },
            vec!["scheduled__20", "Manual__2"],
        ),
        (
            "states",
            DagRunQuery {
                states: vec![crate::DagRunState::Running, crate::DagRunState::Queued],
                ..every_run()
            },
            vec!["backfill__30", "Manual__2", "manual__40"],
        ),
        (
            "run types",
            DagRunQuery {
                run_types: vec![RunType::Scheduled],
                ..every_run()
            },
            vec!["scheduled__20", "scheduled__10"],
        ),
        (
            "logical_date >=",
            DagRunQuery {
                logical_date: range(Some(20), None, None, None),
                ..every_run()
            },
            vec!["scheduled__20", "backfill__30", "Manual__2", "manual__40"],
        ),
        (
            "logical_date >",
            DagRunQuery {
                logical_date: range(None, Some(20), None, None),
                ..every_run()
            },
            vec!["backfill__30", "manual__40"],
        ),
        (
            "logical_date <=",
            DagRunQuery {
                logical_date: range(None, None, Some(20), None),
                ..every_run()
            },
            vec!["manual__1", "scheduled__20", "Manual__2", "scheduled__10"],
        ),
        (
            "logical_date <",
            DagRunQuery {
                logical_date: range(None, None, None, Some(20)),
                ..every_run()
            },
            vec!["manual__1", "scheduled__10"],
        ),
        (
            "logical_date between",
            DagRunQuery {
                logical_date: range(Some(20), None, None, Some(40)),
                ..every_run()
            },
            vec!["scheduled__20", "backfill__30", "Manual__2"],
        ),
        (
            "start_date (runs without one never match)",
            DagRunQuery {
                start_date: range(Some(20), None, None, None),
                ..every_run()
            },
            vec!["scheduled__20", "backfill__30", "manual__40"],
        ),
        (
            "start_date <",
            DagRunQuery {
                start_date: range(None, None, None, Some(14)),
                ..every_run()
            },
            vec!["manual__1", "scheduled__10"],
        ),
        (
            "end_date <=",
            DagRunQuery {
                end_date: range(None, None, Some(15), None),
                ..every_run()
            },
            vec!["manual__1", "scheduled__10"],
        ),
        (
            "queued_at >",
            DagRunQuery {
                queued_at: range(None, Some(21), None, None),
                ..every_run()
            },
            vec!["backfill__30", "Manual__2", "manual__40"],
        ),
        (
            "filters combine",
            DagRunQuery {
                dag_ids: ids(vec!["a"]),
                states: vec![crate::DagRunState::Success, crate::DagRunState::Failed],
                logical_date: range(Some(15), None, None, None),
                ..every_run()
            },
            vec!["scheduled__20"],
        ),
    ];
    for (name, query, expected) in cases {
        let page = store.query_dag_runs(query).await.unwrap();
        assert_eq!(run_ids(&page.items), expected, "{name}");
        assert_eq!(page.total, expected.len() as u64, "{name}: total");
    }
}

/// A sort key as the documented order compares it: strings bytewise, missing values last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    Int(i64),
    Text(String),
    Missing,
}

fn compare(a: &Key, b: &Key, descending: bool) -> Ordering {
    match (a, b) {
        (Key::Missing, Key::Missing) => Ordering::Equal,
        (Key::Missing, _) => Ordering::Greater,
        (_, Key::Missing) => Ordering::Less,
        _ if descending => b.cmp(a),
        _ => a.cmp(b),
    }
}

/// `rows` ordered by `key` then by `id`, in the key's direction.
pub(super) fn expected_order<T>(
    rows: &[T],
    key: impl Fn(&T) -> Key,
    id: impl Fn(&T) -> i64,
    descending: bool,
) -> Vec<i64> {
    let mut sorted: Vec<&T> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        compare(&key(a), &key(b), descending).then_with(|| {
            let by_id = id(a).cmp(&id(b));
            if descending {
                by_id.reverse()
            } else {
                by_id
            }
        })
    });
    sorted.into_iter().map(id).collect()
}

pub(super) fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Key {
    t.map_or(Key::Missing, |t| Key::Int(t.timestamp_micros()))
}

fn run_key(field: DagRunSortField, run: &DagRun) -> Key {
    let text = |s: &str| Key::Text(s.to_string());
    match field {
        DagRunSortField::Id => Key::Int(run.id),
        DagRunSortField::DagId => text(&run.dag_id),
        DagRunSortField::RunId => text(&run.run_id),
        DagRunSortField::State => text(run.state.as_str()),
        DagRunSortField::RunType => text(run.run_type.as_str()),
        DagRunSortField::LogicalDate => time(Some(run.logical_date)),
        DagRunSortField::QueuedAt => time(Some(run.queued_at)),
        DagRunSortField::StartDate => time(run.start_date),
        DagRunSortField::EndDate => time(run.end_date),
        DagRunSortField::DataIntervalStart => time(Some(run.data_interval_start)),
        DagRunSortField::DataIntervalEnd => time(Some(run.data_interval_end)),
    }
}

pub async fn query_dag_runs_sorts_by_each_field_both_ways(db: &dyn TestDatabase) {
    let store = db.open().await;
    let runs = world(db, &*store).await;
    use DagRunSortField::*;
    for field in [
        Id,
        DagId,
        RunId,
        State,
        RunType,
        LogicalDate,
        QueuedAt,
        StartDate,
        EndDate,
        DataIntervalStart,
        DataIntervalEnd,
    ] {
        for descending in [false, true] {
            let page = store
                .query_dag_runs(DagRunQuery {
                    sort: sort(field, descending),
                    ..every_run()
                })
                .await
                .unwrap();
            let got: Vec<i64> = page.items.iter().map(|r| r.id).collect();
            let expected = expected_order(&runs, |r| run_key(field, r), |r| r.id, descending);
            assert_eq!(got, expected, "{field:?} descending={descending}");
        }
    }
    // A second key orders what the first leaves tied.
    let page = store
        .query_dag_runs(DagRunQuery {
            sort: vec![
                crate::Sort {
                    field: DagId,
                    descending: true,
                },
                crate::Sort {
                    field: LogicalDate,
                    descending: false,
                },
            ],
            ..every_run()
        })
        .await
        .unwrap();
    assert_eq!(
        run_ids(&page.items),
        [
            "scheduled__10",
            "manual__40",
            "manual__1",
            "scheduled__20",
            "Manual__2",
            "backfill__30"
        ]
    );
}

pub async fn query_dag_runs_pages_newest_first_without_gaps_or_repeats(db: &dyn TestDatabase) {
    let store = db.open().await;
    world(db, &*store).await;
    let query = |limit: u32, offset: u64| DagRunQuery {
        sort: sort(DagRunSortField::LogicalDate, true),
        window: window(limit, offset),
        ..DagRunQuery::default()
    };
    let expected = [
        "manual__40",
        "backfill__30",
        "Manual__2",
        "scheduled__20",
        "scheduled__10",
        "manual__1",
    ];
    let full = store.query_dag_runs(query(100, 0)).await.unwrap();
    assert_eq!(
        run_ids(&full.items),
        expected,
        "equal dates: newest id first"
    );
    for limit in [1, 4] {
        let mut paged = Vec::new();
        for offset in (0..6).step_by(limit as usize) {
            let page = store.query_dag_runs(query(limit, offset)).await.unwrap();
            assert_eq!(page.total, 6);
            paged.extend(page.items.into_iter().map(|r| r.run_id));
        }
        assert_eq!(paged, expected, "pages of {limit}");
    }
}
