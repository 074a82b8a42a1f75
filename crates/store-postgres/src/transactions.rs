//! The store's transactions: durable ones, those whose commits a crash may lose because the
//! next pass decides them again, those of the statements run for every task instance, and
//! their commits with the announcements of what they changed.

use updraft_store::{Change, Result};

use crate::changes::{self, Announce, TriesEnded};
use crate::flushes;
use crate::reuse::Tx;
use crate::{db_err, PostgresStore};

impl PostgresStore {
    pub(crate) async fn begin(&self) -> Result<Tx> {
        self.inner.connections.begin("BEGIN").await
    }

    /// A transaction of what a scheduler decides and would decide again from what is durable
    /// (its plans, its queueing): its commit returns without waiting for the disk. A database
    /// crash may lose the last such commits, but never one that a durable commit acted on,
    /// since the write-ahead log is flushed in order: a claim of a queued task flushes the
    /// queueing with it. What a lost commit decided is decided again by the next pass.
    pub(crate) async fn begin_rederivable(&self) -> Result<Tx> {
        self.inner
            .connections
            .begin(
                "BEGIN; SET LOCAL synchronous_commit = off; \
                 SET LOCAL plan_cache_mode = force_generic_plan",
            )
            .await
    }

    /// A transaction of the statements run for every task instance (a finish): their
    /// parameters are ids and arrays of them, for which a plan made once per connection is
    /// as good as one made for each call, so they are not planned again on every call (the
    /// plan cache would, since a custom plan looks cheaper to it). Same round trip as `BEGIN`.
    /// Its commit does not wait for the disk, so the schedulers hear of it (and queue what
    /// follows) one disk write sooner: the caller numbers it (`Flushes::deferred_committed`)
    /// and awaits [`on_disk`](Self::on_disk) before it tells anyone outside the database.
    pub(crate) async fn begin_per_task(&self) -> Result<Tx> {
        self.inner
            .connections
            .begin(
                "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
                 SET LOCAL synchronous_commit = off",
            )
            .await
    }

    /// Returns once deferred commit `number` (`Flushes::deferred_committed`) is on disk:
    /// at once if a durable commit of this process flushed it already, as soon as one does
    /// within `flushes::PATIENCE`, else after [`flush_commits`](Self::flush_commits).
    pub(crate) async fn on_disk(&self, number: u64) -> Result<()> {
        if self
            .inner
            .flushes
            .wait_on_disk(number, flushes::PATIENCE)
            .await
        {
            return Ok(());
        }
        self.flush_commits().await
    }

    /// Returns once every commit that returned before this call is on disk (also those made
    /// without waiting for it, on any connection): one transaction that writes a record to
    /// the write-ahead log and commits durably, which flushes the log up to its own commit,
    /// past all of theirs. The record is a transactional logical message that no one decodes
    /// (any user may write one; it needs no table and locks nothing, so concurrent flushes
    /// never wait for each other's locks, only share the disk's writes).
    pub(crate) async fn flush_commits(&self) -> Result<()> {
        let mark = self.inner.flushes.before_durable_commit();
        sqlx::query("SELECT pg_logical_emit_message(true, 'updraft', '')")
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        self.inner.flushes.durable_commit_returned(mark);
        Ok(())
    }

    /// Announces `change` (if any) inside `tx`, commits, then tells this process's watchers.
    pub(crate) async fn commit(&self, tx: Tx, change: Option<Announce>) -> Result<()> {
        self.commit_touching(tx, change, Vec::new()).await
    }

    /// [`commit`](Self::commit), announcing also `runs` whose task instances changed (for
    /// the watchers of every process; not a change of its own for schedulers).
    pub(crate) async fn commit_touching(
        &self,
        tx: Tx,
        change: Option<Announce>,
        runs: Vec<i64>,
    ) -> Result<()> {
        self.commit_announcing(tx, change, runs, TriesEnded::default())
            .await
    }

    /// [`commit_touching`](Self::commit_touching), announcing also the tries that `ended` (for
    /// schedulers, which apply them rather than read their runs again).
    pub(crate) async fn commit_announcing(
        &self,
        mut tx: Tx,
        change: Option<Announce>,
        runs: Vec<i64>,
        ended: TriesEnded<'_>,
    ) -> Result<()> {
        if let Some(change) = &change {
            changes::notify(&mut tx, &self.inner.origin, change, &runs, ended).await?;
        }
        tx.commit().await?;
        self.changed(change.map(Change::from));
        if !runs.is_empty() {
            self.changed([Change::Runs(runs)]);
        }
        Ok(())
    }

    /// Announces `change` (if any) inside `tx` to the watchers of every process only (not to
    /// schedulers nor claim waiters), commits, then tells this process's watchers.
    pub(crate) async fn commit_for_watchers(
        &self,
        mut tx: Tx,
        change: Option<Announce>,
    ) -> Result<()> {
        if let Some(change) = &change {
            changes::notify_watchers(&mut tx, &self.inner.origin, change).await?;
        }
        tx.commit().await?;
        self.changed(change.map(Change::from));
        Ok(())
    }

    /// Tells this process's watchers of changes it committed (after the commit).
    pub(crate) fn changed(&self, changes: impl IntoIterator<Item = Change>) {
        if self.inner.watchers.receiver_count() == 0 {
            return;
        }
        for change in changes {
            // An error only means that nobody watches.
            let _ = self.inner.watchers.send(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestPostgres;

    /// What the flush is for: a commit that did not wait for the disk is on it once a flush
    /// started after it returns. (Without the flush, the log is written to disk by
    /// PostgreSQL's WAL writer within `wal_writer_delay`, 200 ms by default: well after
    /// the check below, unless another database's durable commit flushed it meanwhile.)
    #[tokio::test]
    async fn a_flush_puts_commits_made_without_waiting_for_the_disk_on_it() {
        let Some(db) = TestPostgres::create().await else {
            return;
        };
        let store = db.open().await;
        let mut conn = store.conn().await.expect("a connection");
        sqlx::raw_sql(
            "CREATE TABLE flushed (v INT); \
             BEGIN; SET LOCAL synchronous_commit = off; INSERT INTO flushed VALUES (1); COMMIT",
        )
        .execute(&mut *conn)
        .await
        .expect("an asynchronous commit");
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut *conn)
            .await
            .expect("the log's end");
        store.flush_commits().await.expect("a flush");
        let on_disk: bool =
            sqlx::query_scalar("SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(&mut *conn)
                .await
                .expect("the flushed end");
        assert!(
            on_disk,
            "the log up to {written} is not on disk after a flush"
        );
    }
}
