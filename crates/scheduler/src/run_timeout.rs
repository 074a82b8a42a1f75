//! Airflow's `dagrun_timeout` and `max_consecutive_failed_dag_runs`: a running run that ran
//! too long is failed, and a DAG whose latest runs all failed is paused.

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use updraft_model::DagRunState;
use updraft_store::{DagRun, NewEventLog, TransitionResult};

use crate::{earliest, PassOutcome, Scheduler, SchedulerError};

/// When a run started at `start` times out under `timeout`; `None` without either.
pub fn times_out_at(
    start: Option<DateTime<Utc>>,
    timeout: Option<std::time::Duration>,
) -> Option<DateTime<Utc>> {
    let timeout = chrono::Duration::from_std(timeout?).ok()?;
    start?.checked_add_signed(timeout)
}

/// Whether the latest runs' states (newest first, at most `limit`) are `limit` failures.
pub fn all_failed(latest: &[DagRunState], limit: u32) -> bool {
    limit > 0 && latest.len() >= limit as usize && latest.iter().all(|s| *s == DagRunState::Failed)
}

impl Scheduler {
    /// Fails the `running` runs that are past their DAG's `dagrun_timeout` (skipping their
    /// unfinished task instances, in the store's one transaction) and notes when the others
    /// will be. Returns the runs that timed out.
    pub(crate) async fn time_out_runs(
        &self,
        running: &[DagRun],
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<Vec<i64>, SchedulerError> {
        let mut timed_out = Vec::new();
        for run in running {
            let Some(graph) = self.run_graph(run, now).await? else {
                continue;
            };
            let Some(at) = times_out_at(run.start_date, graph.dag.dagrun_timeout) else {
                continue;
            };
            if at > now {
                outcome.next_due = earliest(outcome.next_due, Some(at));
                continue;
            }
            // A compare-and-set on the run: another scheduler (or the run's end) got there
            // first when it is a conflict.
            if self.store.time_out_dag_run(run.id, now).await? == TransitionResult::Applied {
                info!(dag_id = %run.dag_id, run_id = %run.run_id, "dag run timed out (dagrun_timeout); failed, unfinished tasks skipped");
                self.trace_run_end(run, DagRunState::Failed, now);
                if let (Some(metrics), Some(start)) = (updraft_metrics::get(), run.start_date) {
                    let took = (now - start).to_std().unwrap_or_default();
                    metrics.dag_run_ended(&run.dag_id, DagRunState::Failed.as_str(), took);
                }
                // Airflow calls the DAG's on_failure_callback with reason `timed_out`. Stored
                // after the timeout's own transaction (the store's timeout takes none), under
                // a key, so a second scheduler's attempt stores nothing.
                let mut notifications = crate::deadlines::run_end_notifications(
                    &graph.dag,
                    run,
                    DagRunState::Failed,
                    "timed_out",
                    now,
                );
                for (index, n) in notifications.iter_mut().enumerate() {
                    n.dedupe_key = Some(format!("timed_out:{}:{index}", run.id));
                }
                if !notifications.is_empty() {
                    self.store.add_notifications(notifications).await?;
                }
                self.kept().remove(&run.id);
                self.forget_past_waiter(run);
                timed_out.push(run.id);
            }
        }
        Ok(timed_out)
    }

    /// Pauses `dag_id` if its latest `limit` runs all failed (Airflow's
    /// `max_consecutive_failed_dag_runs`), with an event-log entry saying why.
    pub(crate) async fn pause_after_failures(
        &self,
        dag_id: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        let latest = self.store.latest_dag_run_states(dag_id, limit).await?;
        if !all_failed(&latest, limit) {
            return Ok(());
        }
        warn!(
            dag_id,
            limit,
            "pausing the DAG: its last {limit} runs failed (max_consecutive_failed_dag_runs)"
        );
        self.store.set_paused(dag_id, true).await?;
        if let Ok(mut paused) = self.paused.lock() {
            paused.insert(dag_id.to_string(), true);
        }
        self.store
            .add_event_log(NewEventLog {
                when: now,
                event: "paused".into(),
                owner: Some("scheduler".into()),
                dag_id: Some(dag_id.to_string()),
                extra: Some(
                    serde_json::json!({
                        "is_paused": true,
                        "reason": format!("the last {limit} DAG runs failed (max_consecutive_failed_dag_runs)"),
                    })
                    .to_string(),
                ),
                ..NewEventLog::default()
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_run_times_out_its_timeout_after_its_start() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let timeout = std::time::Duration::from_secs(90);
        assert_eq!(
            times_out_at(Some(start), Some(timeout)),
            Some(start + chrono::Duration::seconds(90))
        );
        assert_eq!(times_out_at(None, Some(timeout)), None);
        assert_eq!(times_out_at(Some(start), None), None);
    }

    #[test]
    fn only_as_many_failures_as_the_limit_pause() {
        use DagRunState::*;
        assert!(all_failed(&[Failed, Failed], 2));
        assert!(!all_failed(&[Failed], 2));
        assert!(!all_failed(&[Failed, Success], 2));
        assert!(!all_failed(&[Failed, Running], 2));
        assert!(!all_failed(&[], 0));
    }
}
