//! The span of a run this scheduler ended: the root of the run's trace, whose children the
//! workers emitted as the tries ended.

use chrono::{DateTime, Utc};
use updraft_model::DagRunState;
use updraft_store::DagRun;
use updraft_telemetry::{RunIdentity, RunSpan};

use crate::Scheduler;

impl Scheduler {
    /// Records the span of `run`, which ended in `state` at `now` (queued only: never waits).
    pub(crate) fn trace_run_end(&self, run: &DagRun, state: DagRunState, now: DateTime<Utc>) {
        self.config.traces.run_ended(&RunSpan {
            run: RunIdentity {
                dag_id: &run.dag_id,
                run_id: &run.run_id,
                id: run.id,
            },
            run_type: run.run_type.as_str(),
            state: state.as_str(),
            start: run.start_date.unwrap_or(run.queued_at),
            end: now,
        });
    }
}
