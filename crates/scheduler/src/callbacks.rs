//! The callbacks of the tries the scheduler ends itself, without a worker: a wait it held (a
//! time sensor, an `ExternalTaskSensor`) and a task with nothing to run. Airflow runs the
//! callbacks of such a task as of any try (it runs an empty task that has callbacks), so
//! their notifications are stored with the plan's transitions, as a worker's finish stores
//! its own.

use chrono::{DateTime, Utc};
use updraft_model::{NotificationEvent, TaskState};
use updraft_store::{notifications_for, DagRun, EventSubject, TransitionNotifications};

use crate::kept_states::KeptRun;
use crate::{DagGraph, RunPlan};

/// The notifications of `plan`'s transitions that end a try here.
pub(crate) fn plan_notifications(
    graph: &DagGraph,
    run: &DagRun,
    kept: &KeptRun,
    plan: &RunPlan,
    now: DateTime<Utc>,
) -> Vec<TransitionNotifications> {
    let ending = |from: TaskState, to: TaskState| match (from, to) {
        (TaskState::Deferred, TaskState::Success | TaskState::Failed | TaskState::Skipped) => true,
        // A task with nothing to run, or a wait whose instant had passed.
        (TaskState::None | TaskState::Scheduled, TaskState::Success) => true,
        _ => false,
    };
    let mut ends = plan
        .transitions
        .iter()
        .filter(|t| ending(t.from, t.to))
        .peekable();
    if ends.peek().is_none() || !graph.any_callbacks {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in ends {
        let Some(ti) = kept.get(t.ti_id) else {
            continue;
        };
        let Some(task) = graph.index.get(&ti.task_id).map(|&i| &graph.dag.tasks[i]) else {
            continue;
        };
        if task.callbacks.is_empty() {
            continue;
        }
        let ended = match t.to {
            TaskState::Success => NotificationEvent::TaskSuccess,
            TaskState::Failed => NotificationEvent::TaskFailure,
            _ => NotificationEvent::TaskSkipped,
        };
        let why = plan
            .external_endings
            .iter()
            .find(|(task_id, _, _)| *task_id == ti.task_id)
            .map(|(_, _, why)| why.clone());
        let try_number = ti.try_number + u32::from(t.new_try);
        let mut notifications = Vec::new();
        for event in [NotificationEvent::TaskExecute, ended] {
            let mut details = serde_json::Map::new();
            if let (NotificationEvent::TaskFailure, Some(why)) = (event, &why) {
                details.insert("exception".into(), why.clone().into());
            }
            let state = match event {
                NotificationEvent::TaskExecute => TaskState::Running,
                _ => t.to,
            };
            let subject = EventSubject {
                run,
                task_id: Some(&ti.task_id),
                map_index: Some(ti.map_index),
                try_number: Some(try_number),
                state: state.as_str(),
            };
            notifications.extend(notifications_for(
                event,
                &task.callbacks.notifiers(event),
                subject,
                details,
                None,
                now,
            ));
        }
        if !notifications.is_empty() {
            out.push(TransitionNotifications {
                ti_id: t.ti_id,
                notifications,
            });
        }
    }
    out
}
