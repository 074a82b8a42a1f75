//! The trace of a claimed try: the `TRACEPARENT` its process gets, and the span the worker
//! records when the try ends, a child of its run's span (ids from `updraft-telemetry`).

use chrono::{DateTime, Utc};
use updraft_model::TaskState;
use updraft_store::{ClaimedTask, FinishReport};
use updraft_telemetry::{RunIdentity, TryIdentity, TrySpan, TRACEPARENT_ENV};

use super::LocalWorker;

impl LocalWorker {
    /// `TRACEPARENT` for the try's process, naming the try's span; nothing when traces are off.
    pub(super) fn traceparent(&self, claimed: &ClaimedTask) -> Option<(String, String)> {
        let header = self
            .config
            .traces
            .traceparent(&run_of(claimed), try_of(claimed))?;
        Some((TRACEPARENT_ENV.to_owned(), header))
    }

    /// Records the span of a try that ran from `start` to its report. A sensor's poke that
    /// found nothing (rescheduled) is not the end of its try: its span comes with the poke
    /// that ends it.
    pub(super) fn trace_try_end(
        &self,
        claimed: &ClaimedTask,
        report: &FinishReport,
        start: DateTime<Utc>,
    ) {
        if report.state == TaskState::UpForReschedule {
            return;
        }
        let ti = &claimed.ti;
        self.config.traces.try_ended(&TrySpan {
            run: run_of(claimed),
            attempt: try_of(claimed),
            task_id: &ti.task_id,
            map_index: ti.map_index,
            state: report.state.as_str(),
            hostname: &self.config.hostname,
            start,
            end: report.end_date.max(start),
        });
    }
}

fn run_of(claimed: &ClaimedTask) -> RunIdentity<'_> {
    RunIdentity {
        dag_id: &claimed.dag_run.dag_id,
        run_id: &claimed.dag_run.run_id,
        id: claimed.dag_run.id,
    }
}

fn try_of(claimed: &ClaimedTask) -> TryIdentity {
    TryIdentity {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
    }
}
