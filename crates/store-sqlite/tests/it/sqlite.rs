//! What only the SQLite backend has: the file, its schema version and locking between processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use rusqlite::Connection;
use updraft_store::{Store, StoreError};
use updraft_store_sqlite::{SqliteStore, SCHEMA_VERSION};

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("updraft.db")
}

fn user_version(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn reopening_a_file_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.set_variable("k", "v").await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_variable("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home").join("deeper").join("updraft.db");
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    assert!(path.exists());
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    for _ in 0..3 {
        SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION);
    }
    let conn = Connection::open(&path).unwrap();
    let pools: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pool WHERE name = 'default_pool'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pools, 1, "seed rows are written once");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    SqliteStore::open(&path).unwrap();
    let newer = SCHEMA_VERSION + 7;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        Err(other) => panic!("expected SchemaTooNew, got {other:?}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    assert_eq!(
        user_version(&path),
        newer,
        "the newer database is left alone"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_database_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::write(
        &path,
        b"this is not a SQLite database, it is a text file. ".repeat(100),
    )
    .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Database(_)) => {}
        Err(other) => panic!("expected a database error, got {other:?}"),
        Ok(_) => panic!("a text file was opened as a database"),
    }
}

#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let barrier = Arc::new(Barrier::new(8));
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let (path, barrier) = (path.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                SqliteStore::open(&path).map(|_| ())
            })
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().expect("concurrent open");
    }
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_two_handles_do_not_fail_with_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let handles = [
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    ];
    let mut writers = Vec::new();
    for (h, store) in handles.iter().enumerate() {
        for w in 0..4 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..50 {
                    let key = format!("h{h}.w{w}.{i}");
                    store.set_variable(&key, "v").await?;
                    store.get_variable(&key).await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
    }
    for writer in writers {
        writer
            .await
            .unwrap()
            .expect("no SQLITE_BUSY under contention");
    }
    assert_eq!(handles[1].list_variables().await.unwrap().len(), 2 * 4 * 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_another_process_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();

    // Another process (the CLI next to `standalone`) holds the write lock for a while.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let other_path = path.clone();
    let other = std::thread::spawn(move || {
        let mut conn = Connection::open(&other_path).unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "INSERT INTO variable (key, val) VALUES ('other', 'first')",
            [],
        )
        .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    // Reads go on during the write (WAL), and see only committed data.
    assert_eq!(store.get_variable("other").await.unwrap(), None);
    store.set_variable("mine", "second").await.unwrap();
    other.join().unwrap();
    assert_eq!(
        store.list_variables().await.unwrap(),
        vec![
            ("mine".to_string(), "second".to_string()),
            ("other".to_string(), "first".to_string()),
        ]
    );
}
