//! The sync plan from what the database holds and what a scan found.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use updraft_model::{Dag, Schedule};

use super::*;

fn dag(dag_id: &str) -> Dag {
    Dag::new(dag_id, Schedule::None)
}

fn found(dag_id: &str, fileloc: &str, hash: &str) -> DagUpsert {
    DagUpsert {
        dag: std::sync::Arc::new(dag(dag_id)),
        fileloc: fileloc.to_string(),
        content_hash: hash.to_string(),
        source: String::new(),
    }
}

fn published(dag_id: &str, active: bool, version: i64, hash: &str, fileloc: &str) -> PublishedDag {
    PublishedDag {
        dag_id: dag_id.to_string(),
        is_active: active,
        version,
        content_hash: hash.to_string(),
        fileloc: fileloc.to_string(),
    }
}

fn scan(dags: Vec<DagUpsert>) -> DagSync {
    DagSync {
        dags,
        ..DagSync::default()
    }
}

fn error(file: &str, text: &str) -> ImportErrorRecord {
    ImportErrorRecord {
        filename: file.to_string(),
        error: text.to_string(),
    }
}

/// The plan's writes as (kind, dag_id, version).
fn writes(plan: &SyncPlan) -> Vec<(&'static str, String, i64)> {
    plan.writes
        .iter()
        .map(|w| match w {
            DagWrite::Reactivate(u) => ("reactivate", u.dag.dag_id.clone(), 0),
            DagWrite::NewVersion { upsert, version } => {
                ("new_version", upsert.dag.dag_id.clone(), *version)
            }
            DagWrite::Create { upsert, version } => ("create", upsert.dag.dag_id.clone(), *version),
        })
        .collect()
}

#[test]
fn a_dag_created_again_after_its_deletion_numbers_its_version_past_the_deleted_ones() {
    let sync = scan(vec![
        found("again", "dags/again.yaml", "new"),
        found("fresh", "dags/fresh.yaml", "h"),
    ]);
    let deleted = HashMap::from([("again".to_string(), 7), ("other".to_string(), 2)]);
    let plan = plan_sync(&sync, &[], &[], &deleted);
    assert_eq!(
        writes(&plan),
        vec![
            ("create", "again".to_string(), 8),
            ("create", "fresh".to_string(), 1),
        ]
    );
    let written: Vec<(String, i64)> = plan
        .versions_written()
        .iter()
        .map(|(dag, version)| (dag.dag_id.clone(), *version))
        .collect();
    assert_eq!(
        written,
        vec![("again".to_string(), 8), ("fresh".to_string(), 1)]
    );
}

#[test]
fn only_dags_the_database_does_not_know_are_asked_for_their_deleted_versions() {
    let existing = [published("known", true, 3, "h", "dags/known.yaml")];
    let sync = scan(vec![
        found("known", "dags/known.yaml", "changed"),
        found("again", "dags/again.yaml", "h"),
    ]);
    assert_eq!(unknown_dag_ids(&sync, &existing), vec!["again"]);
    assert!(unknown_dag_ids(&scan(Vec::new()), &existing).is_empty());
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_dag_found_is_created_versioned_reactivated_or_left_alone() {
    let existing = [
        published("same", true, 3, "h", "dags/same.yaml"),
        published("changed", true, 3, "old", "dags/changed.yaml"),
        published("back", false, 2, "h", "dags/back.yaml"),
        published("moved", true, 1, "h", "dags/old_place.yaml"),
        published("inactive_changed", false, 5, "old", "dags/ic.yaml"),
    ];
    let sync = scan(vec![
        found("same", "dags/same.yaml", "h"),
        found("changed", "dags/changed.yaml", "new"),
        found("back", "dags/back.yaml", "h"),
        found("moved", "dags/new_place.yaml", "h"),
        found("inactive_changed", "dags/ic.yaml", "new"),
        found("fresh", "dags/fresh.yaml", "h"),
    ]);
    let plan = plan_sync(&sync, &existing, &[], &HashMap::new());
    assert_eq!(
        writes(&plan),
        vec![
            ("new_version", "changed".to_string(), 4),
            ("reactivate", "back".to_string(), 0),
            ("reactivate", "moved".to_string(), 0),
            ("new_version", "inactive_changed".to_string(), 6),
            ("create", "fresh".to_string(), 1),
        ]
    );
    assert_eq!(plan.report.added, ids(&["fresh"]));
    assert_eq!(
        plan.report.updated,
        ids(&["back", "changed", "inactive_changed", "moved"])
    );
    assert!(plan.deactivate.is_empty());
    assert_eq!(
        plan.rows_written,
        ids(&["back", "changed", "inactive_changed", "moved"])
    );
    assert!(plan.changes_anything());
}

#[test]
fn a_scan_that_finds_what_is_published_writes_nothing() {
    let existing = [published("a", true, 1, "h", "dags/a.yaml")];
    let stored = [error("dags/bad.yaml", "boom")];
    let mut sync = scan(vec![found("a", "dags/a.yaml", "h")]);
    sync.import_errors = vec![error("dags/bad.yaml", "boom")];
    let plan = plan_sync(&sync, &existing, &stored, &HashMap::new());
    assert!(plan.writes.is_empty());
    assert!(plan.rows_written.is_empty());
    assert_eq!(plan.import_errors, None);
    assert_eq!(plan.report, SyncReport::default());
    assert!(!plan.changes_anything());
}

#[test]
fn only_active_dags_missing_under_the_scanned_folder_are_deactivated() {
    let existing = [
        published("gone", true, 1, "h", "/dags/gone.yaml"),
        published("elsewhere", true, 1, "h", "/other/elsewhere.yaml"),
        published("already_inactive", false, 1, "h", "/dags/x.yaml"),
        published("unchanged_file", true, 1, "h", "/dags/kept.yaml"),
        published("b_gone", true, 1, "h", "/dags/sub/b.yaml"),
    ];
    let mut sync = scan(Vec::new());
    sync.folder = Some("/dags".to_string());
    // A file the scan did not parse again because it did not change keeps its DAG.
    sync.files = Some(vec![DagFileRecord {
        fileloc: "/dags/kept.yaml".to_string(),
        mtime: None,
        size: 1,
        content_hash: "h".to_string(),
        recorded_at: Utc.timestamp_opt(0, 0).unwrap(),
        parser_version: "1".to_string(),
        outcome: DagFileOutcome::Dag("unchanged_file".to_string()),
    }]);
    let plan = plan_sync(&sync, &existing, &[], &HashMap::new());
    assert_eq!(plan.deactivate, ids(&["b_gone", "gone"]));
    assert_eq!(plan.report.deactivated, ids(&["b_gone", "gone"]));
    assert_eq!(plan.rows_written, ids(&["b_gone", "gone"]));

    // Without a folder, any missing DAG is.
    let everywhere = scan(Vec::new());
    let plan = plan_sync(&everywhere, &existing, &[], &HashMap::new());
    assert_eq!(
        plan.deactivate,
        ids(&["b_gone", "elsewhere", "gone", "unchanged_file"])
    );
}

#[test]
fn import_errors_are_replaced_only_when_they_differ_and_one_per_file_is_kept() {
    let stored = [error("a.yaml", "one"), error("b.yaml", "two")];
    let check = |scanned: Vec<ImportErrorRecord>, expected: Option<Vec<ImportErrorRecord>>| {
        let mut sync = scan(Vec::new());
        sync.import_errors = scanned.clone();
        let plan = plan_sync(&sync, &[], &stored, &HashMap::new());
        assert_eq!(plan.import_errors, expected, "scanned {scanned:?}");
        assert_eq!(plan.changes_anything(), expected.is_some());
    };
    // The same errors in another order.
    check(vec![error("b.yaml", "two"), error("a.yaml", "one")], None);
    check(vec![], Some(vec![]));
    check(
        vec![error("b.yaml", "changed"), error("a.yaml", "one")],
        Some(vec![error("a.yaml", "one"), error("b.yaml", "changed")]),
    );
    // Two errors for one file: the last one scanned.
    check(
        vec![
            error("a.yaml", "first"),
            error("b.yaml", "two"),
            error("a.yaml", "last"),
        ],
        Some(vec![error("a.yaml", "last"), error("b.yaml", "two")]),
    );
}

#[test]
fn file_records_are_written_when_new_or_changed_and_deleted_when_gone() {
    let record = |file: &str, hash: &str| DagFileRecord {
        fileloc: file.to_string(),
        mtime: None,
        size: 10,
        content_hash: hash.to_string(),
        recorded_at: Utc.timestamp_opt(0, 0).unwrap(),
        parser_version: "1".to_string(),
        outcome: DagFileOutcome::Dag("d".to_string()),
    };
    let stored: HashMap<String, Option<DagFileRecord>> = [
        ("same".to_string(), Some(record("same", "h"))),
        ("changed".to_string(), Some(record("changed", "old"))),
        ("unreadable".to_string(), None),
        ("gone_b".to_string(), Some(record("gone_b", "h"))),
        ("gone_a".to_string(), None),
    ]
    .into_iter()
    .collect();
    let files = [
        record("changed", "new"),
        record("same", "h"),
        record("unreadable", "h"),
        record("new", "h"),
    ];
    let plan = plan_file_records(stored, &files);
    let upserted: Vec<&str> = plan.upsert.iter().map(|f| f.fileloc.as_str()).collect();
    assert_eq!(upserted, ["changed", "unreadable", "new"]);
    assert_eq!(plan.delete, ids(&["gone_a", "gone_b"]));
}

#[test]
fn under_compares_whole_path_components() {
    assert!(under(None, "/anything.yaml"));
    assert!(under(Some("/dags"), "/dags/a.yaml"));
    assert!(under(Some("/dags"), "/dags/sub/a.yaml"));
    assert!(!under(Some("/dags"), "/dags2/a.yaml"));
    assert!(!under(Some("/dags"), "/other/a.yaml"));
}
