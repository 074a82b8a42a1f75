//! The store's transactions: durable ones, those whose commits a crash may lose because the
//! next pass decides them again, those of the statements run for every task instance, and
//! their commits with the announcements of what they changed.

use sqlx::{Postgres, Transaction};
use updraft_store::{Change, Result};

use crate::changes::{self, Announce, TriesEnded};
use crate::{db_err, PostgresStore};

impl PostgresStore {
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.inner.pool.begin().await.map_err(db_err)
    }

    /// A transaction of what a scheduler decides and would decide again from what is durable
    /// (its plans, its queueing): its commit returns without waiting for the disk. A database
    /// crash may lose the last such commits, but never one that a durable commit acted on,
    /// since the write-ahead log is flushed in order: a claim of a queued task flushes the
    /// queueing with it. What a lost commit decided is decided again by the next pass.
    pub(crate) async fn begin_rederivable(&self) -> Result<Transaction<'static, Postgres>> {
        self.inner
            .pool
            .begin_with(
                "BEGIN; SET LOCAL synchronous_commit = off; \
                 SET LOCAL plan_cache_mode = force_generic_plan",
            )
            .await
            .map_err(db_err)
    }

    /// A transaction of the statements run for every task instance (a finish): their
    /// parameters are ids and arrays of them, for which a plan made once per connection is
    /// as good as one made for each call, so they are not planned again on every call (the
    /// plan cache would, since a custom plan looks cheaper to it). Same round trip as `BEGIN`.
    pub(crate) async fn begin_per_task(&self) -> Result<Transaction<'static, Postgres>> {
        self.inner
            .pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await
            .map_err(db_err)
    }

    /// Announces `change` (if any) inside `tx`, commits, then tells this process's watchers.
    pub(crate) async fn commit(
        &self,
        tx: Transaction<'static, Postgres>,
        change: Option<Announce>,
    ) -> Result<()> {
        self.commit_touching(tx, change, Vec::new()).await
    }

    /// [`commit`](Self::commit), announcing also `runs` whose task instances changed (for
    /// the watchers of every process; not a change of its own for schedulers).
    pub(crate) async fn commit_touching(
        &self,
        tx: Transaction<'static, Postgres>,
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
        mut tx: Transaction<'static, Postgres>,
        change: Option<Announce>,
        runs: Vec<i64>,
        ended: TriesEnded<'_>,
    ) -> Result<()> {
        if let Some(change) = &change {
            changes::notify(&mut tx, &self.inner.origin, change, &runs, ended).await?;
        }
        tx.commit().await.map_err(db_err)?;
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
        mut tx: Transaction<'static, Postgres>,
        change: Option<Announce>,
    ) -> Result<()> {
        if let Some(change) = &change {
            changes::notify_watchers(&mut tx, &self.inner.origin, change).await?;
        }
        tx.commit().await.map_err(db_err)?;
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
