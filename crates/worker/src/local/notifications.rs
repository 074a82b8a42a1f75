//! The notifications a finished try's report carries: one per notifier of the task's
//! callback for the state it ends in (`on_failure_callback`, `on_retry_callback`, … and the
//! email of `email_on_failure` / `email_on_retry`), and those of `on_execute_callback`, since
//! the try ran. They are stored in the outbox in the finish's transaction and delivered by the
//! delivery loop (`crate::notify`), never here.

use chrono::Utc;
use updraft_model::{NotificationEvent, Task, TaskState};
use updraft_store::{notifications_for, ClaimedTask, EventSubject, FinishReport};

use super::LocalWorker;

impl LocalWorker {
    pub(super) fn with_notifications(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
        mut report: FinishReport,
        error: Option<String>,
    ) -> FinishReport {
        let ended = match report.state {
            TaskState::Failed => Some(NotificationEvent::TaskFailure),
            TaskState::UpForRetry if !report.infrastructure_failure => {
                Some(NotificationEvent::TaskRetry)
            }
            TaskState::Success => Some(NotificationEvent::TaskSuccess),
            TaskState::Skipped => Some(NotificationEvent::TaskSkipped),
            _ => None,
        };
        let ti = &claimed.ti;
        let now = Utc::now();
        for event in [Some(NotificationEvent::TaskExecute), ended]
            .into_iter()
            .flatten()
        {
            let notifiers = task.callbacks.notifiers(event);
            let state = match event {
                NotificationEvent::TaskExecute => TaskState::Running.as_str(),
                _ => report.state.as_str(),
            };
            let mut details = serde_json::Map::new();
            if matches!(
                event,
                NotificationEvent::TaskFailure | NotificationEvent::TaskRetry
            ) {
                if let Some(error) = &error {
                    details.insert("exception".into(), error.clone().into());
                }
            }
            let subject = EventSubject {
                run: &claimed.dag_run,
                task_id: Some(&ti.task_id),
                map_index: Some(ti.map_index),
                try_number: Some(ti.try_number),
                state,
            };
            report.effects.notifications.extend(notifications_for(
                event, &notifiers, subject, details, None, now,
            ));
        }
        report
    }
}
