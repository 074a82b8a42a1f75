//! Which of this process's commits made without waiting for the disk are on it by now, learned
//! from the durable commits it makes anyway.
//!
//! PostgreSQL writes its log in order, so a durable commit flushes every commit that returned
//! before it began. A finish commits without waiting for the disk (the schedulers act on it at
//! once) but must be on disk before the worker is told; on a busy API server the next durable
//! commit (a worker's claim, often of the very task the finish let the scheduler queue) comes
//! within milliseconds and flushes it for free. A finish waits for one for a short while and
//! only then flushes on its own: a chain of tasks pays one disk write per hop instead of two
//! in a row, and a busy server one per claim instead of one per claim and one per finish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How long a finish waits for another durable commit to flush it before it flushes itself.
/// A chain's next claim comes within a few milliseconds; the worker only waits for the answer
/// to forget its report (its slot is free already).
pub(crate) const PATIENCE: Duration = Duration::from_millis(10);

/// The commits made without waiting for the disk, numbered as they return, and the highest
/// number known to be on disk.
#[derive(Debug)]
pub(crate) struct Flushes {
    deferred: AtomicU64,
    durable: watch::Sender<u64>,
}

/// Taken before a durable commit begins: every deferred commit numbered up to it returned
/// before, so the durable commit flushes them all once it returns.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct Mark(u64);

impl Default for Flushes {
    fn default() -> Self {
        Flushes {
            deferred: AtomicU64::new(0),
            durable: watch::Sender::new(0),
        }
    }
}

impl Flushes {
    /// Numbers a commit made without waiting for the disk, once it has returned.
    pub(crate) fn deferred_committed(&self) -> u64 {
        self.deferred.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// To be taken just before a durable commit (one that writes) begins.
    pub(crate) fn before_durable_commit(&self) -> Mark {
        Mark(self.deferred.load(Ordering::SeqCst))
    }

    /// A durable commit that began at `mark` returned: what it flushed is on disk.
    pub(crate) fn durable_commit_returned(&self, mark: Mark) {
        self.durable.send_if_modified(|durable| {
            let moved = mark.0 > *durable;
            *durable = (*durable).max(mark.0);
            moved
        });
    }

    /// Waits up to `patience` for deferred commit `number` to be on disk (not at all when it
    /// is already known to be); whether it is.
    pub(crate) async fn wait_on_disk(&self, number: u64, patience: Duration) -> bool {
        let mut durable = self.durable.subscribe();
        let waited =
            tokio::time::timeout(patience, durable.wait_for(|&on_disk| on_disk >= number)).await;
        matches!(waited, Ok(Ok(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deferred_commit_is_on_disk_once_a_durable_commit_begun_after_it_returns() {
        let flushes = Flushes::default();
        let before = flushes.before_durable_commit();
        let first = flushes.deferred_committed();
        // Began before the first returned: flushes nothing of it.
        flushes.durable_commit_returned(before);
        assert!(!flushes.wait_on_disk(first, Duration::from_millis(5)).await);

        let after = flushes.before_durable_commit();
        let second = flushes.deferred_committed();
        flushes.durable_commit_returned(after);
        assert!(flushes.wait_on_disk(first, Duration::ZERO).await);
        assert!(!flushes.wait_on_disk(second, Duration::ZERO).await);
        // A later mark moves the count on; an earlier one, returning late, never back.
        let later = flushes.before_durable_commit();
        flushes.durable_commit_returned(later);
        flushes.durable_commit_returned(before);
        assert!(flushes.wait_on_disk(second, Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_waiting_finish_hears_of_the_durable_commit_that_flushed_it() {
        let flushes = std::sync::Arc::new(Flushes::default());
        let number = flushes.deferred_committed();
        let waiting = tokio::spawn({
            let flushes = flushes.clone();
            async move { flushes.wait_on_disk(number, Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        let mark = flushes.before_durable_commit();
        flushes.durable_commit_returned(mark);
        assert!(waiting.await.expect("the waiting task"));
    }
}
