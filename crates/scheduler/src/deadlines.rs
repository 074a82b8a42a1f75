//! Deadline alerts (Airflow 3.1's `DeadlineAlert`) and the DAG's own callbacks: a run not
//! finished by its deadline (its logical date, its queued time or a fixed time, plus an
//! interval) gets its alert's notifications, once; a run that ends gets its DAG's
//! `on_success_callback` / `on_failure_callback`. Both only write to the notification outbox;
//! the delivery loop sends them.

use chrono::{DateTime, Utc};
use tracing::info;
use updraft_model::{Dag, DagRunState, NotificationEvent};
use updraft_store::{notifications_for, DagRun, EventSubject, NewNotification};

use crate::{earliest, PassOutcome, Scheduler, SchedulerError};

/// The notifications of `dag`'s callback for `run` ending in `state`, with Airflow's
/// `reason` (`success`, `task_failure`, `timed_out`).
pub fn run_end_notifications(
    dag: &Dag,
    run: &DagRun,
    state: DagRunState,
    reason: &str,
    now: DateTime<Utc>,
) -> Vec<NewNotification> {
    let event = match state {
        DagRunState::Success => NotificationEvent::DagSuccess,
        DagRunState::Failed => NotificationEvent::DagFailure,
        _ => return Vec::new(),
    };
    let subject = EventSubject {
        run,
        task_id: None,
        map_index: None,
        try_number: None,
        state: state.as_str(),
    };
    let mut details = serde_json::Map::new();
    details.insert("reason".into(), reason.into());
    details.insert("end_date".into(), now.to_rfc3339().into());
    notifications_for(
        event,
        dag.callbacks.notifiers(event),
        subject,
        details,
        None,
        now,
    )
}

impl Scheduler {
    /// Fires the deadline alerts of the unfinished `runs` whose deadline passed, and notes
    /// when the next one is due. Each (run, alert) is stored once whoever fires it (the
    /// outbox's dedupe key), so several schedulers and restarts never send it twice.
    pub(crate) async fn check_deadlines(
        &self,
        runs: &[&DagRun],
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<(), SchedulerError> {
        for run in runs {
            let Some(graph) = self.run_graph(run, now).await? else {
                continue;
            };
            for (index, alert) in graph.dag.callbacks.deadline.iter().enumerate() {
                let Some(due) = alert.due(Some(run.logical_date), Some(run.queued_at)) else {
                    continue;
                };
                if due > now {
                    outcome.next_due = earliest(outcome.next_due, Some(due));
                    continue;
                }
                let key = format!("deadline:{}:{index}", run.id);
                let subject = EventSubject {
                    run,
                    task_id: None,
                    map_index: None,
                    try_number: None,
                    state: run.state.as_str(),
                };
                let mut details = serde_json::Map::new();
                details.insert("reason".into(), "deadline_missed".into());
                details.insert("deadline".into(), due.to_rfc3339().into());
                let notifications = notifications_for(
                    NotificationEvent::DeadlineMissed,
                    &alert.callback,
                    subject,
                    details,
                    Some(&key),
                    now,
                );
                let stored = self.store.add_notifications(notifications).await?;
                if !stored.is_empty() {
                    info!(dag_id = %run.dag_id, run_id = %run.run_id, deadline = %due, "dag run missed its deadline");
                }
            }
        }
        Ok(())
    }
}
