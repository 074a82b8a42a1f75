//! The PostgreSQL backend's tests: the shared conformance suite, and what only a database
//! shared by several processes has (concurrent queueing, run ownership, migrations, change
//! notifications). Each test gets a fresh database (`TestPostgres`); without a reachable
//! server they say so and pass, except under CI.

mod cluster;
mod finish;
mod manage;
mod retention;
mod watch;

mod conformance {
    use std::sync::Arc;

    use updraft_store::conformance::TestDatabase;
    use updraft_store::Store;
    use updraft_store_postgres::testing::TestPostgres;

    struct Fresh(TestPostgres);

    #[async_trait::async_trait]
    impl TestDatabase for Fresh {
        async fn open(&self) -> Arc<dyn Store> {
            Arc::new(self.0.open().await)
        }
        async fn open_with_cipher(&self, cipher: Arc<dyn updraft_store::Cipher>) -> Arc<dyn Store> {
            Arc::new(self.0.open().await.with_cipher(cipher))
        }
        async fn open_watched(
            &self,
        ) -> (
            Arc<dyn Store>,
            tokio::sync::broadcast::Receiver<updraft_store::Change>,
        ) {
            let store = self.open().await;
            let mut rx = store.watch();
            // The listener says when it listens; what comes after is what the store commits.
            let first = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
                .await
                .expect("the watchers' listener did not start")
                .expect("the watch ended");
            assert_eq!(first, updraft_store::Change::Everything);
            (store, rx)
        }
        async fn execute(&self, sql: &str) {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(self.0.url())
                .await
                .expect("connect to the test database");
            conn.execute(sql)
                .await
                .expect("run SQL on the test database");
        }
    }

    async fn fresh() -> Option<Fresh> {
        TestPostgres::create().await.map(Fresh)
    }

    updraft_store::store_conformance_tests!(fresh);
}
