//! Checks of DAG publishing (`sync_dags`), pausing and the next-run bookkeeping.

use updraft_model::Schedule;

use super::fixture::*;
use super::TestDatabase;
use crate::{
    DagFileOutcome, DagFileRecord, DagRecord, DagSync, DagUpsert, ImportErrorRecord, StoreError,
    SyncReport,
};

fn ids(dags: &[DagRecord]) -> Vec<&str> {
    let mut ids: Vec<&str> = dags.iter().map(|d| d.dag_id.as_str()).collect();
    ids.sort();
    ids
}

fn report(added: &[&str], updated: &[&str], deactivated: &[&str]) -> SyncReport {
    let owned = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
    SyncReport {
        added: owned(added),
        updated: owned(updated),
        deactivated: owned(deactivated),
    }
}

pub async fn sync_adds_new_dags(db: &dyn TestDatabase) {
    let store = db.open().await;
    let b = dag("b", Schedule::None, &["x", "y"]);
    let a = hourly("a");
    let got = sync(
        &*store,
        vec![upsert(b.clone(), "hb"), upsert(a.clone(), "ha")],
    )
    .await;
    assert_eq!(got, report(&["a", "b"], &[], &[]));

    let listed = store.list_dags().await.unwrap();
    assert_eq!(
        listed,
        vec![
            DagRecord {
                dag_id: "a".into(),
                fileloc: "dags/a.yaml".into(),
                is_paused: false,
                is_active: true,
                version: 1,
                schedule: "0 * * * *".into(),
                tags: vec!["conformance".into()],
                description: Some("the a DAG".into()),
                next_dagrun: None,
                last_parsed_at: at(0),
            },
            DagRecord {
                dag_id: "b".into(),
                fileloc: "dags/b.yaml".into(),
                is_paused: false,
                is_active: true,
                version: 1,
                schedule: "None".into(),
                tags: vec!["conformance".into()],
                description: Some("the b DAG".into()),
                next_dagrun: None,
                last_parsed_at: at(0),
            },
        ],
        "list_dags is every active DAG, by dag_id"
    );
    assert_eq!(store.get_dag("b").await.unwrap(), listed[1]);
    assert_eq!(*store.get_dag_version("a", 1).await.unwrap(), a);
    assert_eq!(*store.get_dag_version("b", 1).await.unwrap(), b);
    assert!(matches!(
        error(store.get_dag("nope").await),
        StoreError::NotFound(_)
    ));
}

pub async fn sync_with_unchanged_content_changes_nothing(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    let before = store.get_dag("a").await.unwrap();
    let got = sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    assert_eq!(got, SyncReport::default());
    assert_eq!(store.get_dag("a").await.unwrap(), before);
    assert!(matches!(
        error(store.get_dag_version("a", 2).await),
        StoreError::NotFound(_)
    ));

    // The same content in another file is the same version at a new place.
    let moved = crate::DagUpsert {
        fileloc: "dags/moved/a.yaml".into(),
        ..upsert(hourly("a"), "h1")
    };
    let got = sync(&*store, vec![moved]).await;
    assert_eq!(got, report(&[], &["a"], &[]));
    let record = store.get_dag("a").await.unwrap();
    assert_eq!(record.fileloc, "dags/moved/a.yaml");
    assert_eq!(record.version, 1);
}

pub async fn a_published_version_is_one_copy_for_the_readers_of_the_process(db: &dyn TestDatabase) {
    let store = db.open().await;
    let written = upsert(hourly("a"), "h1");
    let published = written.dag.clone();
    sync(&*store, vec![written]).await;
    let read = store.get_dag_version("a", 1).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&read, &published),
        "the publisher's copy"
    );
    let again = store.get_dag_version("a", 1).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&read, &again));
    drop((read, again, published));
    // Held by nobody: read from the database, the same definition.
    assert_eq!(*store.get_dag_version("a", 1).await.unwrap(), hourly("a"));
}

pub async fn sync_with_changed_content_adds_a_version(db: &dyn TestDatabase) {
    let store = db.open().await;
    let old = hourly("a");
    sync(&*store, vec![upsert(old.clone(), "h1")]).await;
    let mut new = dag("a", Schedule::Cron("30 * * * *".into()), &["a", "b"]);
    new.description = Some("changed".into());
    new.tags = vec!["one".into(), "two".into()];
    let got = sync(&*store, vec![upsert(new.clone(), "h2")]).await;
    assert_eq!(got, report(&[], &["a"], &[]));

    let record = store.get_dag("a").await.unwrap();
    assert_eq!(record.version, 2);
    assert_eq!(record.schedule, "30 * * * *");
    assert_eq!(record.description.as_deref(), Some("changed"));
    assert_eq!(record.tags, vec!["one".to_string(), "two".to_string()]);
    assert!(record.is_active);
    // Runs are pinned to the version they started with: the old definition stays readable.
    assert_eq!(*store.get_dag_version("a", 1).await.unwrap(), old);
    assert_eq!(*store.get_dag_version("a", 2).await.unwrap(), new);
    assert!(matches!(
        error(store.get_dag_version("a", 3).await),
        StoreError::NotFound(_)
    ));
}

pub async fn sync_without_a_dag_deactivates_it(db: &dyn TestDatabase) {
    let store = db.open().await;
    let gone = hourly("gone");
    sync(
        &*store,
        vec![upsert(gone.clone(), "h1"), upsert(hourly("kept"), "h1")],
    )
    .await;
    let got = sync(&*store, vec![upsert(hourly("kept"), "h1")]).await;
    assert_eq!(got, report(&[], &[], &["gone"]));

    assert_eq!(ids(&store.list_dags().await.unwrap()), vec!["kept"]);
    assert!(matches!(
        error(store.get_dag("gone").await),
        StoreError::NotFound(_)
    ));
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["kept"]
    );
    // Its runs may still need the definition.
    assert_eq!(*store.get_dag_version("gone", 1).await.unwrap(), gone);
    // Deactivating is reported once.
    let again = sync(&*store, vec![upsert(hourly("kept"), "h1")]).await;
    assert_eq!(again, SyncReport::default());
}

pub async fn sync_reactivates_a_dag_whose_file_reappears(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    store.set_next_dagrun("a", Some(at(60))).await.unwrap();
    sync(&*store, vec![]).await;

    let got = sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    assert_eq!(got, report(&[], &["a"], &[]));
    let record = store.get_dag("a").await.unwrap();
    assert!(record.is_active);
    assert_eq!(record.version, 1, "same content: no new version");
    assert_eq!(ids(&store.list_dags().await.unwrap()), vec!["a"]);
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["a"],
        "a reactivated DAG needs its next run computed again"
    );

    // Reappearing with new content is a new version, active again.
    sync(&*store, vec![]).await;
    let got = sync(&*store, vec![upsert(hourly("a"), "h2")]).await;
    assert_eq!(got, report(&[], &["a"], &[]));
    let record = store.get_dag("a").await.unwrap();
    assert!(record.is_active);
    assert_eq!(record.version, 2);
}

pub async fn sync_replaces_and_clears_import_errors(db: &dyn TestDatabase) {
    let store = db.open().await;
    let err = |file: &str, text: &str| ImportErrorRecord {
        filename: file.into(),
        error: text.into(),
    };
    assert_eq!(store.list_import_errors().await.unwrap(), vec![]);
    let first = vec![
        err("dags/b.yaml", "b:1: bad"),
        err("dags/a.yaml", "a:3: worse"),
    ];
    store
        .sync_dags(DagSync {
            import_errors: first,
            ..scan(vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        store.list_import_errors().await.unwrap(),
        vec![
            err("dags/a.yaml", "a:3: worse"),
            err("dags/b.yaml", "b:1: bad")
        ],
        "import errors are listed by file name"
    );

    store
        .sync_dags(DagSync {
            import_errors: vec![err("dags/a.yaml", "a:4: changed")],
            ..scan(vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        store.list_import_errors().await.unwrap(),
        vec![err("dags/a.yaml", "a:4: changed")]
    );

    store.sync_dags(scan(vec![])).await.unwrap();
    assert_eq!(store.list_import_errors().await.unwrap(), vec![]);
}

pub async fn sync_pauses_only_new_dags_when_paused_at_creation(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("old"), "h1")]).await;
    let got = store
        .sync_dags(DagSync {
            paused_at_creation: true,
            ..scan(vec![
                upsert(hourly("old"), "h2"),
                upsert(hourly("new"), "h1"),
            ])
        })
        .await
        .unwrap();
    assert_eq!(got, report(&["new"], &["old"], &[]));
    assert!(store.get_dag("new").await.unwrap().is_paused);
    assert!(!store.get_dag("old").await.unwrap().is_paused);
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["old"]
    );
}

pub async fn set_paused_pauses_and_unpauses(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    store.set_paused("a", true).await.unwrap();
    assert!(store.get_dag("a").await.unwrap().is_paused);
    // Pausing twice is not an error.
    store.set_paused("a", true).await.unwrap();
    // A paused DAG stays paused when its file changes.
    sync(&*store, vec![upsert(hourly("a"), "h2")]).await;
    assert!(store.get_dag("a").await.unwrap().is_paused);
    store.set_paused("a", false).await.unwrap();
    assert!(!store.get_dag("a").await.unwrap().is_paused);
}

pub async fn set_paused_of_an_unknown_dag_is_not_found(db: &dyn TestDatabase) {
    let store = db.open().await;
    for paused in [true, false] {
        assert!(matches!(
            error(store.set_paused("nope", paused).await),
            StoreError::NotFound(_)
        ));
    }
    sync(&*store, vec![upsert(hourly("gone"), "h1")]).await;
    sync(&*store, vec![]).await;
    assert!(matches!(
        error(store.set_paused("gone", true).await),
        StoreError::NotFound(_)
    ));
}

pub async fn next_dagrun_bookkeeping(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(
        &*store,
        vec![
            upsert(hourly("hourly"), "h1"),
            upsert(dag("manual", Schedule::None, &["a"]), "h1"),
            upsert(hourly("paused"), "h1"),
            upsert(dag("every", Schedule::Every(600), &["a"]), "h1"),
        ],
    )
    .await;
    store.set_paused("paused", true).await.unwrap();
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["every", "hourly"],
        "new, scheduled, unpaused DAGs need their next run"
    );
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), None);
    assert_eq!(store.due_dags(at(10_000)).await.unwrap(), vec![]);

    store.set_next_dagrun("hourly", Some(at(60))).await.unwrap();
    store.set_next_dagrun("every", Some(at(10))).await.unwrap();
    store.set_next_dagrun("paused", Some(at(5))).await.unwrap();
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
    assert_eq!(
        store.get_dag("hourly").await.unwrap().next_dagrun,
        Some(at(60))
    );
    assert_eq!(
        store.earliest_next_dagrun().await.unwrap(),
        Some(at(10)),
        "paused DAGs do not wake the scheduler"
    );
    assert_eq!(store.due_dags(at(9)).await.unwrap(), vec![]);
    assert_eq!(ids(&store.due_dags(at(10)).await.unwrap()), vec!["every"]);
    assert_eq!(ids(&store.due_dags(at(59)).await.unwrap()), vec!["every"]);
    let due: Vec<String> = store
        .due_dags(at(60))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.dag_id)
        .collect();
    assert_eq!(due, vec!["every", "hourly"], "due DAGs, earliest first");

    // Unpausing asks for the next run again (it may have moved while paused).
    store.set_paused("paused", false).await.unwrap();
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["paused"]
    );
    store.set_next_dagrun("paused", Some(at(5))).await.unwrap();
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), Some(at(5)));
    assert_eq!(
        ids(&store.due_dags(at(60)).await.unwrap()),
        vec!["every", "hourly", "paused"]
    );

    // No next run (past end_date): never due.
    store.set_next_dagrun("paused", None).await.unwrap();
    store.set_next_dagrun("every", None).await.unwrap();
    assert_eq!(store.get_dag("every").await.unwrap().next_dagrun, None);
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), Some(at(60)));
    assert_eq!(
        ids(&store.due_dags(at(10_000)).await.unwrap()),
        vec!["hourly"]
    );
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
}

pub async fn changed_dags_need_their_next_run_again(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    store.set_next_dagrun("a", Some(at(60))).await.unwrap();
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
    sync(
        &*store,
        vec![upsert(dag("a", Schedule::Every(300), &["a"]), "h2")],
    )
    .await;
    assert_eq!(
        ids(&store.dags_needing_next_run().await.unwrap()),
        vec!["a"]
    );
    store.set_next_dagrun("a", Some(at(5))).await.unwrap();
    assert_eq!(ids(&store.due_dags(at(5)).await.unwrap()), vec!["a"]);

    // A DAG whose schedule was removed no longer needs one.
    sync(
        &*store,
        vec![upsert(dag("a", Schedule::None, &["a"]), "h3")],
    )
    .await;
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
    assert_eq!(store.due_dags(at(10_000)).await.unwrap(), vec![]);
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), None);
}

pub async fn deactivated_dags_are_never_due(db: &dyn TestDatabase) {
    let store = db.open().await;
    sync(&*store, vec![upsert(hourly("a"), "h1")]).await;
    store.set_next_dagrun("a", Some(at(60))).await.unwrap();
    assert_eq!(ids(&store.due_dags(at(60)).await.unwrap()), vec!["a"]);
    sync(&*store, vec![]).await;
    assert_eq!(store.due_dags(at(10_000)).await.unwrap(), vec![]);
    assert_eq!(store.earliest_next_dagrun().await.unwrap(), None);
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
}

pub async fn sync_of_another_folder_does_not_deactivate_dags_outside_it(db: &dyn TestDatabase) {
    let store = db.open().await;
    // fixture files live under `dags/`.
    sync(&*store, vec![upsert(hourly("kept"), "h1")]).await;
    let report = store
        .sync_dags(DagSync {
            folder: Some("elsewhere".into()),
            ..scan(vec![])
        })
        .await
        .expect("sync_dags");
    assert!(report.deactivated.is_empty(), "{report:?}");
    assert!(store.get_dag("kept").await.is_ok());
    let report = store
        .sync_dags(DagSync {
            folder: Some("dags".into()),
            ..scan(vec![])
        })
        .await
        .expect("sync_dags");
    assert_eq!(report.deactivated, vec!["kept".to_string()]);
}

/// The record of `fileloc` with content hash `hash`, read at `at(0)`; its mtime has
/// microseconds and its size does not fit 32 bits, so that both must round-trip exactly.
fn file(fileloc: &str, hash: &str, outcome: DagFileOutcome) -> DagFileRecord {
    DagFileRecord {
        fileloc: fileloc.into(),
        mtime: Some(at(-60) + chrono::Duration::microseconds(123_457)),
        size: 5_000_000_123,
        content_hash: hash.into(),
        recorded_at: at(0),
        parser_version: "1.2.3".into(),
        outcome,
    }
}

/// The record of `dags/<dag_id>.yaml`, as [`upsert`] places it.
fn dag_file(dag_id: &str, hash: &str) -> DagFileRecord {
    file(
        &format!("dags/{dag_id}.yaml"),
        hash,
        DagFileOutcome::Dag(dag_id.into()),
    )
}

fn import_error(filename: &str, error: &str) -> ImportErrorRecord {
    ImportErrorRecord {
        filename: filename.into(),
        error: error.into(),
    }
}

/// A scan of the folder `dags` that recorded `files`.
fn scan_of_dags(dags: Vec<DagUpsert>, files: Vec<DagFileRecord>) -> DagSync {
    DagSync {
        folder: Some("dags".into()),
        files: Some(files),
        ..scan(dags)
    }
}

pub async fn dag_files_round_trip_and_are_replaced_per_folder(db: &dyn TestDatabase) {
    let store = db.open().await;
    let other = DagUpsert {
        fileloc: "other/x.yaml".into(),
        ..upsert(hourly("x"), "hx")
    };
    let other_file = file("other/x.yaml", "hx", DagFileOutcome::Dag("x".into()));
    store
        .sync_dags(DagSync {
            folder: Some("other".into()),
            files: Some(vec![other_file.clone()]),
            ..scan(vec![other])
        })
        .await
        .expect("sync_dags");

    let a = dag_file("a", "h1");
    let broken = DagFileRecord {
        mtime: None,
        size: 0,
        ..file(
            "dags/broken.yaml",
            "hb",
            DagFileOutcome::ImportError("line 1: bad".into()),
        )
    };
    let got = store
        .sync_dags(DagSync {
            import_errors: vec![import_error("dags/broken.yaml", "line 1: bad")],
            ..scan_of_dags(
                vec![upsert(hourly("a"), "h1")],
                vec![broken.clone(), a.clone()],
            )
        })
        .await
        .expect("sync_dags");
    assert_eq!(got, report(&["a"], &[], &[]), "x lies outside `dags`");
    assert_eq!(
        store.dag_files("dags").await.unwrap(),
        vec![a.clone(), broken.clone()],
        "records under the folder, by file name"
    );
    assert_eq!(store.dag_files("other").await.unwrap(), vec![other_file]);
    assert_eq!(store.dag_files("elsewhere").await.unwrap(), vec![]);

    // The next scan's records replace them: a touched file gets a new record, a deleted
    // file loses its record.
    let touched = DagFileRecord {
        mtime: Some(at(30)),
        recorded_at: at(31),
        ..a.clone()
    };
    let got = store
        .sync_dags(scan_of_dags(vec![], vec![touched.clone()]))
        .await
        .expect("sync_dags");
    assert_eq!(got, SyncReport::default(), "a is unchanged");
    assert_eq!(store.dag_files("dags").await.unwrap(), vec![touched]);
    assert_eq!(store.get_dag("a").await.unwrap().version, 1);
    assert_eq!(store.list_import_errors().await.unwrap(), vec![]);
    assert_eq!(store.get_dag("x").await.unwrap().fileloc, "other/x.yaml");
}

pub async fn dag_files_leave_out_records_the_database_no_longer_matches(db: &dyn TestDatabase) {
    let store = db.open().await;
    let errors = vec![
        import_error("dags/e.yaml", "bad"),
        import_error("dags/f.yaml", "bad"),
    ];
    let error_file = |name: &str| {
        file(
            &format!("dags/{name}.yaml"),
            "he",
            DagFileOutcome::ImportError("bad".into()),
        )
    };
    let files = vec![
        dag_file("a", "h1"),
        dag_file("b", "h1"),
        dag_file("c", "h1"),
        dag_file("d", "h1"),
        error_file("e"),
        error_file("f"),
    ];
    let dags = ["a", "b", "c", "d"]
        .iter()
        .map(|id| upsert(hourly(id), "h1"))
        .collect();
    store
        .sync_dags(DagSync {
            import_errors: errors.clone(),
            ..scan_of_dags(dags, files)
        })
        .await
        .expect("sync_dags");
    assert_eq!(store.dag_files("dags").await.unwrap().len(), 6);

    // Another process, without records: a has new content, b lives in another file now, c
    // is gone, e's error changed and f's is cleared; d is as recorded.
    let moved = DagUpsert {
        fileloc: "dags/moved/b.yaml".into(),
        ..upsert(hourly("b"), "h1")
    };
    store
        .sync_dags(DagSync {
            import_errors: vec![import_error("dags/e.yaml", "worse")],
            ..scan(vec![
                upsert(hourly("a"), "h2"),
                moved,
                upsert(hourly("d"), "h1"),
            ])
        })
        .await
        .expect("sync_dags");
    assert_eq!(
        store.dag_files("dags").await.unwrap(),
        vec![dag_file("d", "h1")]
    );
}

pub async fn sync_keeps_the_dags_of_unchanged_files(db: &dyn TestDatabase) {
    let store = db.open().await;
    let files = vec![dag_file("a", "h1"), dag_file("b", "h1")];
    store
        .sync_dags(scan_of_dags(
            vec![upsert(hourly("a"), "h1"), upsert(hourly("b"), "h1")],
            files.clone(),
        ))
        .await
        .expect("sync_dags");
    store.set_next_dagrun("a", Some(at(60))).await.unwrap();
    let before = store.get_dag("a").await.unwrap();

    // Both files unchanged: nothing to publish, nothing changes.
    let got = store
        .sync_dags(scan_of_dags(vec![], files))
        .await
        .expect("sync_dags");
    assert_eq!(got, SyncReport::default());
    assert_eq!(store.get_dag("a").await.unwrap(), before);
    assert_eq!(ids(&store.list_dags().await.unwrap()), vec!["a", "b"]);

    // b's file is gone: b is deactivated, a is kept as it is.
    let got = store
        .sync_dags(scan_of_dags(vec![], vec![dag_file("a", "h1")]))
        .await
        .expect("sync_dags");
    assert_eq!(got, report(&[], &[], &["b"]));
    assert_eq!(store.get_dag("a").await.unwrap(), before);
    assert_eq!(ids(&store.list_dags().await.unwrap()), vec!["a"]);
    assert_eq!(store.dags_needing_next_run().await.unwrap(), vec![]);
    assert_eq!(
        store.dag_files("dags").await.unwrap(),
        vec![dag_file("a", "h1")]
    );
}

/// A record damaged by hand (a negative size here) is a stale cache entry: left out of
/// `dag_files`, never an error, and rewritten by the next sync of its file.
pub async fn unreadable_dag_file_records_are_left_out_and_rewritten(db: &dyn TestDatabase) {
    let store = db.open().await;
    let (a, b) = (dag_file("a", "h1"), dag_file("b", "h2"));
    let sync = || {
        scan_of_dags(
            vec![upsert(hourly("a"), "h1"), upsert(hourly("b"), "h2")],
            vec![a.clone(), b.clone()],
        )
    };
    store.sync_dags(sync()).await.expect("sync_dags");
    db.execute("UPDATE dag_file SET size = -1 WHERE fileloc = 'dags/a.yaml'")
        .await;

    assert_eq!(
        store.dag_files("dags").await.expect("dag_files"),
        vec![b.clone()]
    );
    store
        .sync_dags(sync())
        .await
        .expect("a sync over an unreadable record");
    assert_eq!(
        store.dag_files("dags").await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    db.execute("UPDATE dag_file SET size = -1 WHERE fileloc = 'dags/a.yaml'")
        .await;
    store
        .sync_dags(scan_of_dags(
            vec![upsert(hourly("b"), "h2")],
            vec![b.clone()],
        ))
        .await
        .expect("a sync after the file is gone");
    assert_eq!(store.dag_files("dags").await.unwrap(), vec![b]);
}
