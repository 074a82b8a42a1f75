//! Wakes the claims that wait for work: from the embedding process's `work_queued` and from the
//! store's change feed, to every waiting claim at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use updraft_store::{Change, Store};

/// How long to wait before asking the store for its change feed again after it failed.
const FEED_RETRY: Duration = Duration::from_secs(5);

/// The signals claims wait on.
pub(crate) struct Wake {
    /// Bumped whenever work may have been queued; each waiting claim holds a receiver.
    generation: watch::Sender<u64>,
    /// Whether the store's change feed is being followed; without it, waiting claims also
    /// look again every second (work queued by another process is not announced).
    feed_live: AtomicBool,
    /// Set once when the server shuts down: waiting claims answer at once.
    closing: watch::Sender<bool>,
}

impl Wake {
    pub fn new() -> Self {
        Wake {
            generation: watch::Sender::new(0),
            feed_live: AtomicBool::new(false),
            closing: watch::Sender::new(false),
        }
    }

    /// Wakes every claim waiting now (and any that subscribed before this call).
    pub fn poke(&self) {
        self.generation.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every [`Wake::poke`] after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn feed_live(&self) -> bool {
        self.feed_live.load(Ordering::Relaxed)
    }
}

/// Aborts the background tasks when the last router clone is dropped.
pub(crate) struct TaskGuard(Vec<AbortHandle>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Spawns the tasks that turn `work_queued` and the store's changes into pokes.
pub(crate) fn spawn(
    wake: &Arc<Wake>,
    store: Arc<dyn Store>,
    work_queued: Arc<Notify>,
    runtime: &tokio::runtime::Handle,
) -> TaskGuard {
    let forward = runtime.spawn(forward(work_queued, wake.clone()));
    let follow = runtime.spawn(follow_changes(store, wake.clone()));
    TaskGuard(vec![forward.abort_handle(), follow.abort_handle()])
}

/// Pokes on every notification of `work_queued`, whether it came with `notify_one` (a stored
/// permit) or `notify_waiters` (caught because the next wait is registered before the poke).
async fn forward(work_queued: Arc<Notify>, wake: Arc<Wake>) {
    let mut notified = Box::pin(work_queued.notified());
    notified.as_mut().enable();
    loop {
        notified.as_mut().await;
        let mut next = Box::pin(work_queued.notified());
        next.as_mut().enable();
        notified = next;
        wake.poke();
    }
}

/// Follows the store's change feed, when it has one, poking on queued work.
async fn follow_changes(store: Arc<dyn Store>, wake: Arc<Wake>) {
    loop {
        match store.changes().await {
            Ok(None) => {
                tracing::debug!("the store has no change feed: waiting claims poll every second");
                return;
            }
            Ok(Some(mut changes)) => {
                wake.feed_live.store(true, Ordering::Relaxed);
                // Work queued before we listened was not announced to us.
                wake.poke();
                while let Some(change) = changes.recv().await {
                    match change {
                        Change::WorkQueued(_) | Change::Everything => wake.poke(),
                        Change::Runs(_)
                        | Change::TriesFinished { .. }
                        | Change::PlacesFree
                        | Change::Dags(_)
                        | Change::Jobs => {}
                    }
                }
                wake.feed_live.store(false, Ordering::Relaxed);
                tracing::warn!("the store's change feed ended; following it again");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the store's change feed; retrying");
            }
        }
        tokio::time::sleep(FEED_RETRY).await;
    }
}
