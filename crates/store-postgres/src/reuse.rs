//! Connections handed straight to the next caller of the same process, and transactions on
//! them.
//!
//! sqlx pings every connection it takes back into its pool (a round trip that wakes a
//! PostgreSQL backend for nothing), and not configurably: on a busy process that is one extra
//! round trip per store call. A connection given back here goes on a stack instead and is
//! handed, unpinged, to the next caller within [`FRESH_FOR`]. The sqlx pool stays the one
//! that opens, counts, tests and closes connections: a connection that rested longer, and
//! every connection given back while a caller waits on the pool, goes back to it.
//!
//! Why skipping that ping is safe for PostgreSQL: what a cancelled statement left behind (its
//! unread replies, its unsent bytes) is dealt with by the connection itself before its next
//! statement; and a [`Tx`] dropped before its commit is rolled back before its connection is
//! handed on (or the connection is closed, which ends the transaction on the server). What
//! a lost connection leaves is caught by the pool's ping instead: after any error that may
//! have broken a connection ([`note_failure`]), the connections given back go to the pool.
//!
//! What it changes besides: a connection goes back to the pool at least every
//! [`BACK_TO_THE_POOL_EVERY`] (so the pool's maximum lifetime still applies), and one whose
//! statement was cancelled midway makes the next caller wait for that statement's end (sqlx's
//! ping waited for it in the background); store statements are short. `PostgresStore::pool`'s
//! users bypass the stack.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Executor, Postgres};
use updraft_store::Result;

use crate::db_err;

/// How long a given-back connection is handed on without the pool's checks; also how long
/// the pool hands out an idle connection without pinging it.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(1);

/// How long a connection may go from call to call on the stack before it goes back to the
/// pool once, so that the pool's own rules (its connections' maximum lifetime) still apply.
const BACK_TO_THE_POOL_EVERY: Duration = Duration::from_secs(60);

/// Errors of this process that may have broken a connection (`db_err` counts them). Shared by
/// every store of the process: an error elsewhere only costs a few pings.
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts an error that may have broken a connection: a lost connection, a server going down,
/// a reply sqlx could not read.
pub(crate) fn note_failure() {
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

fn failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// The pool, with the stack of connections given back and not yet returned to it.
pub(crate) struct Connections {
    pool: PgPool,
    resting: Arc<Mutex<Resting>>,
}

#[derive(Default)]
struct Resting {
    /// Newest last.
    stack: Vec<Given>,
    /// Callers waiting on the pool: a connection given back meanwhile goes to them, through it.
    waiting: usize,
}

impl Drop for Resting {
    fn drop(&mut self) {
        // Given back to the pool, a connection needs a runtime for the pool's ping (sqlx
        // panics without one): outside any, close them instead.
        if tokio::runtime::Handle::try_current().is_err() {
            for given in self.stack.drain(..) {
                drop(given.conn.detach());
            }
        }
    }
}

impl Connections {
    pub(crate) fn new(pool: PgPool) -> Self {
        Connections {
            pool,
            resting: Arc::default(),
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connection given back last, if it is fresh; else one from the pool.
    pub(crate) async fn acquire(&self) -> Result<Conn> {
        let mut stale = Vec::new();
        {
            let mut resting = lock(&self.resting);
            if let Some(given) = resting.stack.pop() {
                if given.at.elapsed() < FRESH_FOR && given.failures_then == failures() {
                    return Ok(self.conn(given.conn, given.from_pool_at));
                }
                // The newest is stale, or a failure since may have broken them all: the pool
                // checks them.
                stale.push(given.conn);
                stale.extend(resting.stack.drain(..).map(|given| given.conn));
            }
            resting.waiting += 1;
        }
        let waiting = Waiting(&self.resting);
        drop(stale);
        let conn = self.pool.acquire().await.map_err(db_err);
        drop(waiting);
        Ok(self.conn(conn?, Instant::now()))
    }

    /// A transaction on a connection of [`acquire`](Self::acquire), begun by `begin` (a
    /// `BEGIN`, with settings of the transaction after it).
    pub(crate) async fn begin(&self, begin: &'static str) -> Result<Tx> {
        // Open from the start: a `BEGIN` that failed part-way is rolled back too.
        let mut tx = Tx {
            conn: self.acquire().await?,
            open: true,
        };
        tx.conn.execute(begin).await.map_err(db_err)?;
        Ok(tx)
    }

    fn conn(&self, conn: PoolConnection<Postgres>, from_pool_at: Instant) -> Conn {
        Conn {
            conn: Some(conn),
            resting: Arc::clone(&self.resting),
            failures_then: failures(),
            from_pool_at,
        }
    }
}

fn lock(resting: &Mutex<Resting>) -> MutexGuard<'_, Resting> {
    // The stack stays consistent through a panic (each change is one push or pop).
    resting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection given back: when, [`failures`] then, and when it left the pool.
struct Given {
    conn: PoolConnection<Postgres>,
    at: Instant,
    failures_then: u64,
    from_pool_at: Instant,
}

/// Counts a caller as waiting on the pool while it does (also when its wait is cancelled).
struct Waiting<'a>(&'a Mutex<Resting>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.0).waiting -= 1;
    }
}

/// A connection of [`Connections`]: given back on drop.
pub(crate) struct Conn {
    /// `None` only while it is dropped.
    conn: Option<PoolConnection<Postgres>>,
    resting: Arc<Mutex<Resting>>,
    /// [`failures`] when it was handed out.
    failures_then: u64,
    from_pool_at: Instant,
}

impl Conn {
    /// Closes the connection instead of giving it back.
    fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            // Dropping the connection itself (outside the pool) closes its socket.
            drop(conn.detach());
        }
    }
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn
            .as_deref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let now = Instant::now();
        let failures_now = failures();
        let mut stale = Vec::new();
        {
            let mut resting = lock(&self.resting);
            if resting.waiting > 0
                || failures_now != self.failures_then
                || now.duration_since(self.from_pool_at) >= BACK_TO_THE_POOL_EVERY
            {
                stale.push(conn);
            } else {
                let fresh_from = resting
                    .stack
                    .iter()
                    .position(|given| now.duration_since(given.at) < FRESH_FOR)
                    .unwrap_or(resting.stack.len());
                stale.extend(resting.stack.drain(..fresh_from).map(|given| given.conn));
                resting.stack.push(Given {
                    conn,
                    at: now,
                    failures_then: failures_now,
                    from_pool_at: self.from_pool_at,
                });
            }
        }
        // Back to the pool (which pings it) outside the lock.
        drop(stale);
    }
}

/// A transaction on a [`Conn`]. Dropped uncommitted, it is rolled back before its connection
/// is given back (in a task of its own), or its connection is closed.
pub(crate) struct Tx {
    conn: Conn,
    open: bool,
}

impl Tx {
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.conn.execute("COMMIT").await.map_err(db_err)?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let placeholder = Conn {
            conn: None,
            resting: Arc::clone(&self.conn.resting),
            failures_then: self.conn.failures_then,
            from_pool_at: self.conn.from_pool_at,
        };
        let conn = std::mem::replace(&mut self.conn, placeholder);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close();
            return;
        };
        // Closes the connection unless the rollback succeeds, also when the task is dropped
        // unfinished (its runtime shutting down).
        let mut unless_rolled_back = CloseOnDrop(Some(conn));
        runtime.spawn(async move {
            let Some(conn) = unless_rolled_back.0.as_mut() else {
                return;
            };
            // Also reads what a cancelled statement left unread first.
            match conn.execute("ROLLBACK").await.map_err(db_err) {
                Ok(_) => drop(unless_rolled_back.0.take()),
                Err(e) => tracing::debug!(error = %e, "closing a connection whose rollback failed"),
            }
        });
    }
}

/// Closes the connection it holds when dropped.
struct CloseOnDrop(Option<Conn>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use updraft_store::{DatabaseFailure, Store, StoreError};

    use crate::testing::TestPostgres;
    use crate::PostgresOptions;

    fn one_connection() -> PostgresOptions {
        PostgresOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    async fn backend_pid(conn: &mut sqlx::PgConnection) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .expect("the backend's pid")
    }

    /// Its rows and locks are gone before the connection serves anyone else, and the next
    /// caller's statements are not inside it.
    #[tokio::test]
    async fn a_transaction_dropped_uncommitted_is_rolled_back_before_its_connection_is_reused() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db.open_with(one_connection()).await;
        let other = db.open().await;
        sqlx::raw_sql("CREATE TABLE probe (v INT)")
            .execute(other.pool())
            .await
            .expect("a table");
        let mut tx = store.begin().await.expect("a transaction");
        sqlx::raw_sql("INSERT INTO probe VALUES (1); SELECT pg_advisory_xact_lock(7)")
            .execute(&mut *tx)
            .await
            .expect("a row and a lock");
        drop(tx);
        let mut conn = store
            .conn()
            .await
            .expect("the connection, once rolled back");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM probe")
            .fetch_one(&mut *conn)
            .await
            .expect("a count");
        assert_eq!(rows, 0, "the dropped transaction's row is visible");
        sqlx::raw_sql("INSERT INTO probe VALUES (2)")
            .execute(&mut *conn)
            .await
            .expect("a row outside any transaction");
        let (seen, locked): (Vec<i32>, bool) = (
            sqlx::query_scalar("SELECT v FROM probe")
                .fetch_all(other.pool())
                .await
                .expect("the rows"),
            sqlx::query_scalar("SELECT pg_try_advisory_lock(7)")
                .fetch_one(other.pool())
                .await
                .expect("the lock"),
        );
        assert_eq!(
            seen,
            vec![2],
            "the next caller's row is not committed at once"
        );
        assert!(locked, "the dropped transaction's lock is still held");
    }

    /// A caller waiting on the full pool gets the connection given back, not the timeout.
    #[tokio::test]
    async fn a_connection_given_back_goes_to_a_caller_waiting_on_the_pool() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db.open_with(one_connection()).await;
        let held = store.conn().await.expect("the only connection");
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.ping().await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        let waited = waiter.await.expect("the waiting task");
        assert!(waited.is_ok(), "the waiting caller failed: {waited:?}");
    }

    /// What a cancelled statement left on the connection is not read by the next caller as
    /// its own reply.
    #[tokio::test]
    async fn a_statement_cancelled_midway_leaves_nothing_for_the_next_caller() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db.open_with(one_connection()).await;
        let mut conn = store.conn().await.expect("a connection");
        let pid = backend_pid(&mut conn).await;
        let slow =
            sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.5)").fetch_one(&mut *conn);
        let cancelled = tokio::time::timeout(Duration::from_millis(50), slow).await;
        assert!(cancelled.is_err(), "the slow statement was not cancelled");
        drop(conn);
        let mut conn = store.conn().await.expect("the connection again");
        assert_eq!(backend_pid(&mut conn).await, pid, "not the same connection");
        let answer: i32 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&mut *conn)
            .await
            .expect("an answer");
        assert_eq!(answer, 42);
    }

    /// A connection the server ended fails at most its next statement; the connection after
    /// it is a new one. (The first may already get a new one, if the ended connection rested
    /// over a second and went back to the pool, which found it broken.)
    #[tokio::test]
    async fn a_connection_the_server_ended_is_replaced_after_its_failure() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db.open_with(one_connection()).await;
        let other = db.open().await;
        let pid = backend_pid(&mut store.conn().await.expect("a connection")).await;
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(other.pool())
            .await
            .expect("the backend ended");
        assert!(ended);
        match store.ping().await {
            Ok(()) => {}
            Err(StoreError::Database(e)) => assert_eq!(e.failure, DatabaseFailure::Unreachable),
            Err(e) => panic!("the ended connection did not fail as unreachable: {e:?}"),
        }
        store.ping().await.expect("a new connection");
        let new_pid = backend_pid(&mut store.conn().await.expect("a connection")).await;
        assert_ne!(new_pid, pid);
    }

    /// What the stack is for: calls one after another use one connection, where the pool
    /// alone, with that connection still out for its ping, would open another.
    #[tokio::test]
    async fn calls_one_after_another_reuse_one_connection() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db
            .open_with(PostgresOptions {
                max_connections: 4,
                ..one_connection()
            })
            .await;
        let mut pids = std::collections::BTreeSet::new();
        for _ in 0..20 {
            pids.insert(backend_pid(&mut store.conn().await.expect("a connection")).await);
        }
        assert_eq!(pids.len(), 1, "calls used the connections {pids:?}");
    }
}
