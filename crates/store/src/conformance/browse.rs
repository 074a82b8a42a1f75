//! Checks of the public API's DAG listings: filters, sorts and paging of DAGs with their
//! latest run, tags, run counts, versions and sources, import errors, and the columns the
//! public API added (notes, parse times, job numbers).

use updraft_model::Schedule;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    DagQuery, DagRunState, DagSortField, DagSummary, DagSync, DagUpsert, DagVersionRecord,
    ImportErrorRecord, ImportErrorSortField, JobHeartbeat, JobKind, NewDagRun, Page, Sort, Store,
    StoreError, TaskInstanceQuery, Window,
};

pub(super) fn window(limit: u32, offset: u64) -> Window {
    Window { limit, offset }
}

pub(super) fn sort<F>(field: F, descending: bool) -> Vec<Sort<F>> {
    vec![Sort { field, descending }]
}

/// Microseconds of `at(minutes)`, for SQL that sets up rows.
pub(super) fn micros(minutes: i64) -> i64 {
    at(minutes).timestamp_micros()
}

pub(super) fn assert_not_found<T: std::fmt::Debug>(result: crate::Result<T>, name: &str) {
    match error(result) {
        StoreError::NotFound(message) => assert!(
            message.contains(name),
            "the error should name {name:?}: {message:?}"
        ),
        other => panic!("expected NotFound naming {name:?}, got {other:?}"),
    }
}

fn tagged(dag_id: &str, tags: &[&str]) -> DagUpsert {
    let mut definition = dag(dag_id, Schedule::None, &["a"]);
    definition.tags = tags.iter().map(|t| t.to_string()).collect();
    upsert(definition, "h1")
}

fn every_dag() -> DagQuery {
    DagQuery {
        window: window(100, 0),
        ..DagQuery::default()
    }
}

fn dag_ids(page: &Page<DagSummary>) -> Vec<&str> {
    page.items.iter().map(|s| s.dag.dag_id.as_str()).collect()
}

/// Five DAGs: `stale_one` is inactive (its file is gone), `delta_report` is paused.
async fn five_dags(store: &dyn Store) {
    let active = || {
        vec![
            tagged("alpha_etl", &["etl", "daily"]),
            tagged("Beta_ETL", &["etl", "Prod"]),
            tagged("gamma", &["daily", "ml"]),
            tagged("delta_report", &[]),
        ]
    };
    let mut first = active();
    first.push(tagged("stale_one", &["etl", "old"]));
    sync(store, first).await;
    sync(store, active()).await;
    store.set_paused("delta_report", true).await.unwrap();
}

pub async fn query_dags_filters_by_pattern_tags_pause_and_staleness(db: &dyn TestDatabase) {
    let store = db.open().await;
    five_dags(&*store).await;
    let pattern = |p: &str| DagQuery {
        dag_id_pattern: Some(p.to_string()),
        ..every_dag()
    };
    let tags = |tags: &[&str], all: bool| DagQuery {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        tags_match_all: all,
        ..every_dag()
    };
    let cases: Vec<(&str, DagQuery, Vec<&str>)> = vec![
        (
            "no filter: every DAG, inactive ones too, bytewise dag_id order",
            every_dag(),
            vec![
                "Beta_ETL",
                "alpha_etl",
                "delta_report",
                "gamma",
                "stale_one",
            ],
        ),
        (
            "exclude_stale",
            DagQuery {
                exclude_stale: true,
                ..every_dag()
            },
            vec!["Beta_ETL", "alpha_etl", "delta_report", "gamma"],
        ),
        (
            "substring, any case",
            pattern("etl"),
            vec!["Beta_ETL", "alpha_etl"],
        ),
        (
            "upper-case pattern",
            pattern("ETL"),
            vec!["Beta_ETL", "alpha_etl"],
        ),
        (
            "_ is one character",
            pattern("a_e"),
            vec!["Beta_ETL", "alpha_etl", "stale_one"],
        ),
        (
            "% is any run",
            pattern("l%t"),
            vec!["alpha_etl", "delta_report"],
        ),
        ("no match", pattern("zzz"), vec![]),
        (
            "paused",
            DagQuery {
                paused: Some(true),
                ..every_dag()
            },
            vec!["delta_report"],
        ),
        (
            "unpaused",
            DagQuery {
                paused: Some(false),
                ..every_dag()
            },
            vec!["Beta_ETL", "alpha_etl", "gamma", "stale_one"],
        ),
        (
            "any of one tag",
            tags(&["etl"], false),
            vec!["Beta_ETL", "alpha_etl", "stale_one"],
        ),
        (
            "any of two tags",
            tags(&["etl", "ml"], false),
            vec!["Beta_ETL", "alpha_etl", "gamma", "stale_one"],
        ),
        (
            "all of two tags",
            tags(&["etl", "daily"], true),
            vec!["alpha_etl"],
        ),
        (
            "all of a repeated tag list",
            tags(&["etl", "daily", "etl"], true),
            vec!["alpha_etl"],
        ),
        (
            "tags are exact, with case",
            tags(&["ETL", "prod"], false),
            vec![],
        ),
        ("unknown tag", tags(&["nope"], false), vec![]),
        (
            "filters combine",
            DagQuery {
                exclude_stale: true,
                dag_id_pattern: Some("a".into()),
                ..tags(&["etl"], false)
            },
            vec!["Beta_ETL", "alpha_etl"],
        ),
    ];
    for (name, query, expected) in cases {
        let page = store.query_dags(query).await.unwrap();
        assert_eq!(dag_ids(&page), expected, "{name}");
        assert_eq!(page.total, expected.len() as u64, "{name}: total");
    }
    let page = store
        .query_dags(DagQuery {
            window: window(2, 0),
            ..tags(&["etl"], false)
        })
        .await
        .unwrap();
    assert_eq!(dag_ids(&page), vec!["Beta_ETL", "alpha_etl"]);
    assert_eq!(page.total, 3, "the total ignores the window");
    let summary = &page.items[1];
    assert_eq!(summary.dag.tags, vec!["etl", "daily"]);
    assert_eq!(summary.last_run, None);
}

/// A run of `dag_id` with logical date `at(minutes)`.
fn run_at(dag_id: &str, run_id: &str, minutes: i64) -> NewDagRun {
    NewDagRun {
        logical_date: at(minutes),
        ..new_run(dag_id, run_id, vec![task("a")])
    }
}

pub async fn query_dags_answers_each_dags_latest_run_and_filters_on_its_state(
    db: &dyn TestDatabase,
) {
    let store = db.open().await;
    publish(&*store, &["a", "b", "c"]).await;
    create(&*store, run_at("a", "r10", 10)).await;
    let a_latest = create(&*store, run_at("a", "r30", 30)).await;
    // Created last, but not the latest logical date.
    create(&*store, run_at("a", "r20", 20)).await;
    // Equal logical dates: the newer run counts as the latest.
    create(&*store, run_at("c", "first", 40)).await;
    let c_latest = create(&*store, run_at("c", "second", 40)).await;
    db.execute(
        "UPDATE dag_run SET state = 'success' WHERE run_id IN ('r10', 'r20', 'second'); \
         UPDATE dag_run SET state = 'failed' WHERE run_id IN ('r30', 'first');",
    )
    .await;

    let page = store.query_dags(every_dag()).await.unwrap();
    let latest: Vec<(&str, Option<&str>)> = page
        .items
        .iter()
        .map(|s| {
            (
                s.dag.dag_id.as_str(),
                s.last_run.as_ref().map(|r| r.run_id.as_str()),
            )
        })
        .collect();
    assert_eq!(
        latest,
        vec![("a", Some("r30")), ("b", None), ("c", Some("second"))]
    );
    let a_run = page.items[0].last_run.clone().unwrap();
    assert_eq!(a_run.id, a_latest.id);
    assert_eq!(a_run.state, DagRunState::Failed);
    assert_eq!(a_run.logical_date, at(30));
    assert_eq!(page.items[2].last_run.as_ref().unwrap().id, c_latest.id);

    for (state, expected) in [
        (DagRunState::Failed, vec!["a"]),
        (DagRunState::Success, vec!["c"]),
        (DagRunState::Running, vec![]),
    ] {
        let page = store
            .query_dags(DagQuery {
                last_dag_run_state: Some(state),
                ..every_dag()
            })
            .await
            .unwrap();
        assert_eq!(dag_ids(&page), expected, "last run {state:?}");
        assert_eq!(
            page.total,
            expected.len() as u64,
            "last run {state:?}: total"
        );
    }

    // Without the latest runs: none answered, but filters and sorts on them still apply.
    let lean = |query: DagQuery| DagQuery {
        without_last_run: true,
        ..query
    };
    let page = store.query_dags(lean(every_dag())).await.unwrap();
    assert_eq!(dag_ids(&page), vec!["a", "b", "c"]);
    assert!(page.items.iter().all(|s| s.last_run.is_none()));
    let failed = store
        .query_dags(lean(DagQuery {
            last_dag_run_state: Some(DagRunState::Failed),
            ..every_dag()
        }))
        .await
        .unwrap();
    assert_eq!(dag_ids(&failed), vec!["a"]);
    assert_eq!(
        failed.items[0].last_run.as_ref().map(|r| r.id),
        Some(a_latest.id)
    );

    // Each DAG says whether its file has an import error now.
    assert!(page.items.iter().all(|s| !s.has_import_errors));
    let b_file = page.items[1].dag.fileloc.replace('\'', "''");
    db.execute(&format!(
        "INSERT INTO import_error (filename, error, timestamp) VALUES ('{b_file}', 'boom', 0)"
    ))
    .await;
    let page = store.query_dags(lean(every_dag())).await.unwrap();
    let flagged: Vec<bool> = page.items.iter().map(|s| s.has_import_errors).collect();
    assert_eq!(flagged, vec![false, true, false]);
}

pub async fn query_dags_sorts_by_each_field_both_ways(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["d1", "d2", "d3", "d4"]).await;
    for (dag_id, next) in [
        ("d1", Some(30)),
        ("d2", None),
        ("d3", Some(10)),
        ("d4", Some(20)),
    ] {
        store.set_next_dagrun(dag_id, next.map(at)).await.unwrap();
    }
    for dag_id in ["d1", "d2", "d4"] {
        create(&*store, run_at(dag_id, "r", 0)).await;
    }
    db.execute(&format!(
        "UPDATE dag_run SET state = 'running', start_date = {} WHERE dag_id = 'd1'; \
         UPDATE dag_run SET state = 'success', start_date = {} WHERE dag_id = 'd2';",
        micros(5),
        micros(1)
    ))
    .await;
    let cases = [
        (DagSortField::DagId, false, ["d1", "d2", "d3", "d4"]),
        (DagSortField::DagId, true, ["d4", "d3", "d2", "d1"]),
        // Rows without a value come last either way, in id order of the last key's direction.
        (DagSortField::NextDagrun, false, ["d3", "d4", "d1", "d2"]),
        (DagSortField::NextDagrun, true, ["d1", "d4", "d3", "d2"]),
        (DagSortField::LastRunState, false, ["d4", "d1", "d2", "d3"]),
        (DagSortField::LastRunState, true, ["d2", "d1", "d4", "d3"]),
        (
            DagSortField::LastRunStartDate,
            false,
            ["d2", "d1", "d3", "d4"],
        ),
        (
            DagSortField::LastRunStartDate,
            true,
            ["d1", "d2", "d4", "d3"],
        ),
    ];
    for (field, descending, expected) in cases {
        let page = store
            .query_dags(DagQuery {
                sort: sort(field, descending),
                ..every_dag()
            })
            .await
            .unwrap();
        assert_eq!(
            dag_ids(&page),
            expected,
            "{field:?} descending={descending}"
        );
    }
    let page = store.query_dags(every_dag()).await.unwrap();
    assert_eq!(
        dag_ids(&page),
        ["d1", "d2", "d3", "d4"],
        "default: by dag_id"
    );
}

pub async fn query_dags_pages_are_stable_and_totals_ignore_the_window(db: &dyn TestDatabase) {
    let store = db.open().await;
    let all = ["a", "b", "c", "d", "e", "f", "g"];
    publish(&*store, &all).await;
    // Every key ties (no DAG has a run): only the tie-breaker orders them.
    let query = |limit: u32, offset: u64| DagQuery {
        sort: sort(DagSortField::LastRunState, true),
        window: window(limit, offset),
        ..DagQuery::default()
    };
    let mut paged = Vec::new();
    for offset in (0..9).step_by(3) {
        let page = store.query_dags(query(3, offset)).await.unwrap();
        assert_eq!(page.total, 7, "page at {offset}");
        paged.extend(page.items.into_iter().map(|s| s.dag.dag_id));
    }
    let mut expected: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    expected.reverse();
    assert_eq!(
        paged, expected,
        "pages cover every DAG once, ties by dag_id descending"
    );
    let past = store.query_dags(query(3, 100)).await.unwrap();
    assert_eq!((past.items.len(), past.total), (0, 7));
    let none = store.query_dags(query(0, 0)).await.unwrap();
    assert_eq!((none.items.len(), none.total), (0, 7));
}

pub async fn dag_tags_are_the_distinct_tags_of_active_dags(db: &dyn TestDatabase) {
    let store = db.open().await;
    five_dags(&*store).await;
    let tags = |pattern: Option<&str>, w: Window| {
        let store = store.clone();
        let pattern = pattern.map(str::to_string);
        async move { store.dag_tags(pattern, w).await.unwrap() }
    };
    let cases: Vec<(Option<&str>, Window, Vec<&str>, u64)> = vec![
        // `old` belongs to the inactive DAG only; bytewise order puts `Prod` first.
        (None, window(100, 0), vec!["Prod", "daily", "etl", "ml"], 4),
        (Some("L"), window(100, 0), vec!["daily", "etl", "ml"], 3),
        (Some("D%Y"), window(100, 0), vec!["daily"], 1),
        (Some("_t"), window(100, 0), vec!["etl"], 1),
        (Some("prod"), window(100, 0), vec!["Prod"], 1),
        (None, window(2, 1), vec!["daily", "etl"], 4),
        (Some("nothing"), window(100, 0), vec![], 0),
    ];
    for (pattern, w, expected, total) in cases {
        let page = tags(pattern, w).await;
        assert_eq!(page.items, expected, "pattern {pattern:?}, {w:?}");
        assert_eq!(page.total, total, "pattern {pattern:?}: total");
    }
}

pub async fn dag_run_counts_count_runs_per_state_for_every_dag_asked(db: &dyn TestDatabase) {
    let store = db.open().await;
    publish(&*store, &["a", "b", "c", "gone"]).await;
    for (dag_id, run_id) in [
        ("a", "1"),
        ("a", "2"),
        ("a", "3"),
        ("b", "1"),
        ("b", "2"),
        ("gone", "1"),
    ] {
        create(&*store, run_at(dag_id, run_id, 0)).await;
    }
    db.execute(
        "UPDATE dag_run SET state = 'success' WHERE dag_id = 'a' AND run_id IN ('1', '2'); \
         UPDATE dag_run SET state = 'failed' WHERE dag_id = 'a' AND run_id = '3'; \
         UPDATE dag_run SET state = 'running' WHERE dag_id = 'b' AND run_id = '2';",
    )
    .await;
    publish(&*store, &["a", "b", "c"]).await;
    let counts = |q: u64, r: u64, s: u64, f: u64| {
        vec![
            (DagRunState::Queued, q),
            (DagRunState::Running, r),
            (DagRunState::Success, s),
            (DagRunState::Failed, f),
        ]
    };
    let every = store.dag_run_counts(None).await.unwrap();
    let every: Vec<(&str, Vec<(DagRunState, u64)>)> = every
        .iter()
        .map(|c| (c.dag_id.as_str(), c.counts.clone()))
        .collect();
    assert_eq!(
        every,
        vec![
            ("a", counts(0, 0, 2, 1)),
            ("b", counts(1, 1, 0, 0)),
            ("c", counts(0, 0, 0, 0)),
        ],
        "every active DAG, one without runs too"
    );
    let asked = store
        .dag_run_counts(Some(vec!["gone".into(), "c".into(), "gone".into()]))
        .await
        .unwrap();
    let asked: Vec<(&str, Vec<(DagRunState, u64)>)> = asked
        .iter()
        .map(|c| (c.dag_id.as_str(), c.counts.clone()))
        .collect();
    assert_eq!(
        asked,
        vec![("c", counts(0, 0, 0, 0)), ("gone", counts(1, 0, 0, 0))],
        "each DAG asked, once, by dag_id"
    );
    assert!(store.dag_run_counts(Some(vec![])).await.unwrap().is_empty());
}

pub async fn dag_versions_and_sources_are_kept_per_version(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("d"), "h1")]).await;
    store
        .sync_dags(DagSync {
            now: at(5),
            ..scan(vec![upsert(hourly("d"), "h2")])
        })
        .await
        .unwrap();
    let version = |v: i64, hash: &str, minutes: i64| DagVersionRecord {
        dag_id: "d".into(),
        version: v,
        content_hash: hash.into(),
        created_at: at(minutes),
    };
    let page = store.dag_versions("d", window(100, 0)).await.unwrap();
    assert_eq!(page.items, vec![version(1, "h1", 0), version(2, "h2", 5)]);
    assert_eq!(page.total, 2);
    let second = store.dag_versions("d", window(1, 1)).await.unwrap();
    assert_eq!((second.items, second.total), (vec![version(2, "h2", 5)], 2));
    assert_eq!(store.dag_source("d", 1).await.unwrap(), "# d h1");
    assert_eq!(store.dag_source("d", 2).await.unwrap(), "# d h2");
    assert_not_found(store.dag_source("d", 3).await, "d/3");
    assert_not_found(store.dag_source("nope", 1).await, "nope/1");
    assert_not_found(store.dag_versions("nope", window(10, 0)).await, "nope");
}

pub async fn import_errors_are_paged_sorted_and_found_by_id(db: &dyn TestDatabase) {
    let store = db.open().await;
    let error = |filename: &str| ImportErrorRecord {
        filename: filename.into(),
        error: format!("{filename}: bad indentation"),
    };
    store
        .sync_dags(DagSync {
            import_errors: vec![error("b.yaml"), error("a.yaml"), error("c.yaml")],
            now: at(3),
            ..scan(vec![])
        })
        .await
        .unwrap();
    let query = |field: ImportErrorSortField, descending: bool| {
        let store = store.clone();
        async move {
            store
                .query_import_errors(sort(field, descending), window(100, 0))
                .await
                .unwrap()
        }
    };
    let by_id = store
        .query_import_errors(vec![], window(100, 0))
        .await
        .unwrap();
    assert_eq!(by_id.total, 3);
    let ids: Vec<i64> = by_id.items.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "default: by id {ids:?}"
    );
    let mut descending_ids = ids.clone();
    descending_ids.reverse();
    for row in &by_id.items {
        assert_eq!(row.error, format!("{}: bad indentation", row.filename));
        assert_eq!(row.timestamp, at(3));
        assert_eq!(&store.get_import_error(row.id).await.unwrap(), row);
    }
    let names = |page: &Page<crate::ImportErrorRow>| -> Vec<String> {
        page.items.iter().map(|e| e.filename.clone()).collect()
    };
    let ids_of = |page: &Page<crate::ImportErrorRow>| -> Vec<i64> {
        page.items.iter().map(|e| e.id).collect()
    };
    assert_eq!(
        names(&query(ImportErrorSortField::Filename, false).await),
        ["a.yaml", "b.yaml", "c.yaml"]
    );
    assert_eq!(
        names(&query(ImportErrorSortField::Filename, true).await),
        ["c.yaml", "b.yaml", "a.yaml"]
    );
    assert_eq!(
        ids_of(&query(ImportErrorSortField::Id, true).await),
        descending_ids
    );
    // Equal timestamps: the id decides, in the key's direction.
    assert_eq!(
        ids_of(&query(ImportErrorSortField::Timestamp, false).await),
        ids
    );
    assert_eq!(
        ids_of(&query(ImportErrorSortField::Timestamp, true).await),
        descending_ids
    );
    let page = store
        .query_import_errors(sort(ImportErrorSortField::Filename, false), window(1, 1))
        .await
        .unwrap();
    assert_eq!((names(&page), page.total), (vec!["b.yaml".to_string()], 3));
    let unknown = ids.iter().max().unwrap() + 1000;
    assert_not_found(store.get_import_error(unknown).await, &unknown.to_string());
}

pub async fn notes_parse_times_and_job_numbers_are_read_back(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("d"), "h1")]).await;
    store
        .sync_dags(DagSync {
            now: at(7),
            ..scan(vec![upsert(hourly("d"), "h2")])
        })
        .await
        .unwrap();
    let page = store.query_dags(every_dag()).await.unwrap();
    assert_eq!(page.items[0].dag.last_parsed_at, at(7));
    assert_eq!(store.get_dag("d").await.unwrap().last_parsed_at, at(7));

    let run = create(&*store, run_at("d", "r", 0)).await;
    assert_eq!(run.note, None);
    db.execute(
        "UPDATE dag_run SET note = 'rerun after the outage'; \
         UPDATE task_instance SET note = 'flaky';",
    )
    .await;
    let stored = store.get_dag_run("d", "r").await.unwrap();
    assert_eq!(stored.note.as_deref(), Some("rerun after the outage"));
    let runs = store
        .query_dag_runs(crate::DagRunQuery::default())
        .await
        .unwrap();
    assert_eq!(runs.items, vec![stored.clone()]);
    let page = store.query_dags(every_dag()).await.unwrap();
    assert_eq!(page.items[0].last_run.as_ref(), Some(&stored));
    let tis = store
        .query_task_instances(TaskInstanceQuery::default())
        .await
        .unwrap();
    assert_eq!(tis.items[0].ti.note.as_deref(), Some("flaky"));
    assert_eq!(
        store.task_instances(run.id).await.unwrap()[0]
            .note
            .as_deref(),
        Some("flaky")
    );

    let beat = |id: &str, minutes: i64| JobHeartbeat {
        id: id.into(),
        kind: JobKind::Worker,
        hostname: "host".into(),
        queues: vec![],
        state: "running".into(),
        now: at(minutes),
    };
    store.job_heartbeat(beat("w1", 1)).await.unwrap();
    store.job_heartbeat(beat("w2", 1)).await.unwrap();
    let numbers =
        |jobs: Vec<crate::JobRecord>| -> Vec<i64> { jobs.iter().map(|j| j.number).collect() };
    let first = numbers(store.list_jobs(None, at(0)).await.unwrap());
    assert_eq!(first.len(), 2);
    assert_ne!(first[0], first[1], "job numbers are unique");
    store.job_heartbeat(beat("w1", 2)).await.unwrap();
    assert_eq!(
        numbers(store.list_jobs(None, at(0)).await.unwrap()),
        first,
        "a job keeps its number across beats"
    );
}
