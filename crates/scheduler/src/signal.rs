//! How the rest of the process wakes the scheduler: runs that changed, tries that finished,
//! or everything.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use updraft_model::TaskState;
use updraft_store::FinishReport;

/// How other parts of the process tell the scheduler there is something to look at.
#[derive(Default)]
pub struct SchedulerSignal {
    pub(crate) notify: Notify,
    dirty_runs: Mutex<HashSet<i64>>,
    finished: Mutex<Vec<FinishedTry>>,
    full_pass: Mutex<bool>,
}

/// A try whose end was committed by this process's worker: the scheduler applies it to the
/// task states it keeps for the run instead of reading the whole run again.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTry {
    pub dag_run_id: i64,
    pub ti_id: i64,
    pub try_number: u32,
    pub state: TaskState,
    pub next_retry_at: Option<DateTime<Utc>>,
}

impl FinishedTry {
    pub fn from_report(dag_run_id: i64, report: &FinishReport) -> Self {
        FinishedTry {
            dag_run_id,
            ti_id: report.ti_id,
            try_number: report.try_number,
            state: report.state,
            next_retry_at: report.next_retry_at,
        }
    }
}

impl SchedulerSignal {
    /// These tries ended (as committed): evaluate their downstream.
    pub fn tries_finished(&self, tries: impl IntoIterator<Item = FinishedTry>) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.extend(tries);
        }
        self.notify.notify_one();
    }

    /// Tasks of these runs changed in ways the scheduler did not see: read the runs again and
    /// evaluate them.
    pub fn runs_changed(&self, runs: impl IntoIterator<Item = i64>) {
        if let Ok(mut dirty) = self.dirty_runs.lock() {
            dirty.extend(runs);
        }
        self.notify.notify_one();
    }

    /// Something changed outside this process (a trigger, a clear, a pause): look at everything.
    pub fn everything_changed(&self) {
        if let Ok(mut full) = self.full_pass.lock() {
            *full = true;
        }
        self.notify.notify_one();
    }

    pub(crate) fn take(&self) -> (bool, HashSet<i64>, Vec<FinishedTry>) {
        let full = self
            .full_pass
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or(true);
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
        (full, dirty, finished)
    }
}
