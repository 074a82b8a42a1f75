//! The store conformance suite against a `SqliteStore` on a fresh file in a temporary directory.

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use updraft_store::conformance::TestDatabase;
use updraft_store::{Cipher, Store};
use updraft_store_sqlite::SqliteStore;

/// A database file that lives as long as the test; every `open` is a new connection to it.
struct SqliteFile {
    dir: TempDir,
}

#[async_trait]
impl TestDatabase for SqliteFile {
    async fn open(&self) -> Arc<dyn Store> {
        let path = self.dir.path().join("updraft.db");
        Arc::new(SqliteStore::open(&path).expect("open the test database"))
    }
    async fn open_with_cipher(&self, cipher: Arc<dyn Cipher>) -> Arc<dyn Store> {
        let path = self.dir.path().join("updraft.db");
        Arc::new(
            SqliteStore::open(&path)
                .expect("open the test database")
                .with_cipher(cipher),
        )
    }
    async fn execute(&self, sql: &str) {
        let path = self.dir.path().join("updraft.db");
        let conn = rusqlite::Connection::open(path).expect("open the test database");
        conn.execute_batch(sql)
            .expect("run SQL on the test database");
    }
}

async fn fresh() -> Option<SqliteFile> {
    Some(SqliteFile {
        dir: tempfile::tempdir().expect("create a temporary directory"),
    })
}

updraft_store::store_conformance_tests!(fresh);
