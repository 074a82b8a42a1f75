//! The notification outbox: what callbacks must be told, written in the transaction of the
//! state change that causes it, and delivered later by a delivery loop that claims entries
//! (each by one deliverer at a time, for a lease), retries them with backoff and records the
//! outcome.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{DagRunState, NotificationEvent, Notifier};

use crate::{Result, TransitionResult};

/// One notification to deliver: an event, where it goes, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    pub event: NotificationEvent,
    pub dag_id: String,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    pub notifier: Notifier,
    /// The event's context: the run's and task's identity and dates, state, `exception`,
    /// `reason`, and (for a Python callback) the DAG version and where the callback was
    /// given. What templates and the webhook's body see.
    pub context: serde_json::Value,
    /// At most one notification with a given key is ever stored (a deadline fires once even
    /// when several schedulers see it missed); a second insert is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting for its next attempt (`next_attempt_at`), or being delivered (claimed).
    Pending,
    Delivered,
    /// Gave up after the last attempt.
    Failed,
}

impl NotificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<NotificationState> {
        match name {
            "pending" => Some(NotificationState::Pending),
            "delivered" => Some(NotificationState::Delivered),
            "failed" => Some(NotificationState::Failed),
            _ => None,
        }
    }
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    #[serde(flatten)]
    pub new: NewNotification,
    pub state: NotificationState,
    /// Attempts made so far (a claim counts as one).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// The deliverer holding it and until when; an expired claim may be taken by another.
    pub claimed_by: Option<String>,
    pub claim_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What a deliverer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationClaim {
    pub deliverer: String,
    pub now: DateTime<Utc>,
    /// How long the claim holds: a deliverer that dies leaves its entries to others after it.
    pub lease: Duration,
    pub limit: u32,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at `retry_at`.
    Retry {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// No attempt is left (or the failure cannot pass): the notification is `failed`.
    GaveUp {
        error: String,
    },
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores notifications on their own (a missed deadline); one whose `dedupe_key` is
    /// already stored is left out. Returns the ids of those stored.
    async fn add_notifications(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>>;
    /// Claims up to `limit` pending notifications that are due (`next_attempt_at <= now`) and
    /// not claimed by anyone whose claim still holds, oldest first, counting an attempt for
    /// each. Concurrent claims never share a notification.
    async fn claim_notifications(&self, claim: NotificationClaim) -> Result<Vec<Notification>>;
    /// Records an attempt's outcome and releases the claim. A claim that was lost (expired
    /// and taken by another deliverer) is a `Conflict` and changes nothing.
    async fn finish_notification(
        &self,
        id: i64,
        deliverer: &str,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult>;
    /// The notifications of a DAG (all with `None`), oldest first, at most `limit`.
    async fn list_notifications(
        &self,
        dag_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Notification>>;
    /// When the next pending notification is due (claimed ones count from their claim's end).
    async fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>>;
    /// A run's end (`set_dag_run_state`) and the notifications it causes (its DAG's
    /// callbacks), in one transaction: the notifications are stored only if the change is.
    async fn end_dag_run(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
        notifications: Vec<NewNotification>,
    ) -> Result<TransitionResult>;
}

/// What a notification is about: a run, and the task instance for a task's event.
#[derive(Debug, Clone, Copy)]
pub struct EventSubject<'a> {
    pub run: &'a crate::DagRun,
    pub task_id: Option<&'a str>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    /// The state the task or run ended in (`failed`, `up_for_retry`, …); for a deadline, the
    /// run's state when it was missed.
    pub state: &'a str,
}

/// One notification per notifier for `event` of `subject`. The context is what templates and
/// webhooks see: the identity of the run and task, their dates, the state, and `details`
/// (`exception`, `reason`, `deadline`). With `dedupe_key`, the n-th notifier's key is
/// `dedupe_key:n` (a deadline fires once).
pub fn notifications_for(
    event: NotificationEvent,
    notifiers: &[Notifier],
    subject: EventSubject<'_>,
    details: serde_json::Map<String, serde_json::Value>,
    dedupe_key: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<NewNotification> {
    if notifiers.is_empty() {
        return Vec::new();
    }
    let run = subject.run;
    let mut context = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        context.insert(key.to_string(), value);
    };
    put("event", event.name().into());
    put("dag_id", run.dag_id.clone().into());
    put("run_id", run.run_id.clone().into());
    put("run_type", run.run_type.as_str().into());
    put("logical_date", run.logical_date.to_rfc3339().into());
    put("ds", run.logical_date.format("%Y-%m-%d").to_string().into());
    put("ts", run.logical_date.to_rfc3339().into());
    put(
        "data_interval_start",
        run.data_interval_start.to_rfc3339().into(),
    );
    put(
        "data_interval_end",
        run.data_interval_end.to_rfc3339().into(),
    );
    put("queued_at", run.queued_at.to_rfc3339().into());
    put("start_date", run.start_date.map(|t| t.to_rfc3339()).into());
    put("conf", serde_json::Value::Object(run.conf.clone()));
    // A run's event has no task: left out rather than null, so templates see it undefined.
    if let Some(task_id) = subject.task_id {
        put("task_id", task_id.into());
    }
    if let Some(map_index) = subject.map_index {
        put("map_index", map_index.into());
    }
    if let Some(try_number) = subject.try_number {
        put("try_number", try_number.into());
    }
    put("state", subject.state.into());
    for (key, value) in details {
        put(&key, value);
    }
    let context = serde_json::Value::Object(context);
    notifiers
        .iter()
        .enumerate()
        .map(|(index, notifier)| NewNotification {
            event,
            dag_id: run.dag_id.clone(),
            run_id: Some(run.run_id.clone()),
            task_id: subject.task_id.map(str::to_string),
            map_index: subject.map_index,
            try_number: subject.try_number,
            notifier: notifier.clone(),
            context: context.clone(),
            dedupe_key: dedupe_key.map(|key| format!("{key}:{index}")),
            created_at: now,
        })
        .collect()
}

/// The delay before attempt `attempt + 1` after `attempt` failed ones: `base` doubled per
/// attempt, at most `max`.
pub fn retry_backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_limit() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(10);
        let delays: Vec<u64> = (1..=6)
            .map(|a| retry_backoff(a, base, max).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
    }
}
