//! Failing the tries of workers whose lease ran out.

use chrono::{DateTime, Utc};
use tracing::{debug, warn};
use updraft_model::{retry, NotificationEvent, TaskState};
use updraft_store::{notifications_for, EventSubject, FinishReport, TaskInstance};

use crate::{Scheduler, SchedulerError};

impl Scheduler {
    /// Fails (for that try) the tasks whose worker stopped renewing its lease.
    pub(crate) async fn expire_leases(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        let grace = chrono::Duration::from_std(self.config.worker_lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let last_failure = self.last_failure.lock().ok().and_then(|l| *l);
        if last_failure.is_some_and(|failed| now < failed + grace) {
            debug!(
                "the database was out of reach a moment ago; workers get a lease to renew first"
            );
            return Ok(());
        }
        let expired = self.store.expired_claims(now).await?;
        self.fail_lost_tries(&expired, "worker lease expired", now)
            .await?;
        Ok(())
    }

    /// Fails the current tries of `tis`, lost to the infrastructure (their worker died or was
    /// fenced off): retried at once without using up the tasks' retries, within the
    /// infrastructure budget. Returns how many tries were resolved.
    pub async fn fail_lost_tries(
        &self,
        tis: &[TaskInstance],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, SchedulerError> {
        let mut reports = Vec::new();
        for ti in tis {
            let Some(claim_id) = ti.claim_id.clone() else {
                continue;
            };
            let run = self.store.get_dag_run_by_id(ti.dag_run_id).await?;
            let graph = self.run_graph(&run, now).await?;
            let task = graph.as_ref().and_then(|g| g.dag.task(&ti.task_id));
            let (state, next_retry_at) = match task {
                Some(task) => {
                    retry::after_infrastructure_failure(task, ti.try_number, ti.infra_failures, now)
                }
                None => (TaskState::Failed, None),
            };
            // A try that fails for good this way calls the task's on_failure_callback, as
            // Airflow does for a zombie task; stored with the finish below.
            let mut effects = updraft_store::TryEffects::default();
            if let (Some(task), TaskState::Failed) = (task, state) {
                let event = NotificationEvent::TaskFailure;
                let mut details = serde_json::Map::new();
                details.insert("exception".into(), why.into());
                let subject = EventSubject {
                    run: &run,
                    task_id: Some(&ti.task_id),
                    map_index: Some(ti.map_index),
                    try_number: Some(ti.try_number),
                    state: state.as_str(),
                };
                effects.notifications = notifications_for(
                    event,
                    &task.callbacks.notifiers(event),
                    subject,
                    details,
                    None,
                    now,
                );
            }
            warn!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, new_state = %state, "{why}; failing the try");
            reports.push(FinishReport {
                ti_id: ti.id,
                try_number: ti.try_number,
                claim_id,
                state,
                end_date: now,
                next_retry_at,
                xcom: None,
                infrastructure_failure: true,
                log_tail: None,
                effects,
            });
        }
        if reports.is_empty() {
            return Ok(0);
        }
        let resolved = reports.len();
        self.store.finish(reports).await?;
        self.signal.runs_changed(tis.iter().map(|ti| ti.dag_run_id));
        Ok(resolved)
    }
}
