//! How the rest of the process wakes the scheduler: runs that changed, tries that finished,
//! places another scheduler left free, or everything.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;
pub use updraft_store::FinishedTry;

/// How other parts of the process tell the scheduler there is something to look at.
#[derive(Default)]
pub struct SchedulerSignal {
    pub(crate) notify: Notify,
    dirty_runs: Mutex<HashSet<i64>>,
    finished: Mutex<Vec<FinishedTry>>,
    full_pass: Mutex<FullPass>,
    places_free: AtomicBool,
    read_runs: AtomicBool,
}

/// What the scheduler was told since it last looked.
pub(crate) struct Told {
    pub(crate) full: FullPass,
    pub(crate) dirty: HashSet<i64>,
    pub(crate) finished: Vec<FinishedTry>,
    /// Another scheduler left places free: fill them if this one can.
    pub(crate) places_free: bool,
    /// A pass that reads the unfinished runs was asked for (a queued run may start).
    pub(crate) read_runs: bool,
}

impl Told {
    /// Nothing to answer: the wake-up was left by a signal taken with another.
    pub(crate) fn is_empty(&self) -> bool {
        !self.full.due
            && !self.places_free
            && !self.read_runs
            && self.dirty.is_empty()
            && self.finished.is_empty()
    }
}

/// A full pass asked for, and whether it must read the kept runs' states again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FullPass {
    pub(crate) due: bool,
    pub(crate) reread: bool,
}

impl SchedulerSignal {
    /// These tries ended (as committed, by this process's worker or announced by another
    /// process): applied to the task states kept for their runs instead of reading the whole
    /// runs again, then their downstream is evaluated.
    pub fn tries_finished(&self, tries: impl IntoIterator<Item = FinishedTry>) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.extend(tries);
        }
        self.notify.notify_one();
    }

    /// Tasks of these runs changed in ways the scheduler did not see: read the runs again and
    /// evaluate them. With no run named: a pass that reads the unfinished runs (one of them
    /// may start now).
    pub fn runs_changed(&self, runs: impl IntoIterator<Item = i64>) {
        if let Ok(mut dirty) = self.dirty_runs.lock() {
            dirty.extend(runs);
        }
        self.read_runs.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Another scheduler's pass left places free that it could not fill: queue into them.
    pub fn places_free(&self) {
        self.places_free.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Something changed outside this process (a trigger, a clear, a pause): look at everything.
    pub fn everything_changed(&self) {
        self.ask(FullPass {
            due: true,
            reread: true,
        });
    }

    /// The sweep's time, or a due instant's, came: a full pass, which plans the runs from the
    /// states kept of them (nothing says they changed unseen).
    pub(crate) fn sweep_due(&self) {
        self.ask(FullPass {
            due: true,
            reread: false,
        });
    }

    fn ask(&self, pass: FullPass) {
        if let Ok(mut full) = self.full_pass.lock() {
            full.due = true;
            full.reread |= pass.reread;
        }
        self.notify.notify_one();
    }

    pub(crate) fn take(&self) -> Told {
        let full = self
            .full_pass
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or(FullPass {
                due: true,
                reread: true,
            });
        let dirty = self
            .dirty_runs
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let finished = self
            .finished
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default();
        Told {
            full,
            dirty,
            finished,
            places_free: self.places_free.swap(false, Ordering::Relaxed),
            read_runs: self.read_runs.swap(false, Ordering::Relaxed),
        }
    }
}
