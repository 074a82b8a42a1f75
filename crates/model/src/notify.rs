//! Notifications: the callbacks of tasks and DAGs (Airflow's `on_failure_callback` and its
//! siblings), the notifiers they name (a webhook, a Slack incoming webhook, an email) and
//! deadline alerts (Airflow 3.1's `DeadlineAlert`).
//!
//! A callback never decides a state: when a task or a run reaches the state a callback is for,
//! one notification per notifier is written to the store's outbox with the state change, and
//! delivered later, off the scheduler's and the worker's path.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Airflow's default connection of `SlackWebhookNotifier`.
pub const DEFAULT_SLACK_CONN_ID: &str = "slack_default";
/// Airflow's default connection of `SmtpNotifier` and of `email_on_failure`.
pub const DEFAULT_SMTP_CONN_ID: &str = "smtp_default";

/// Where a notification goes. Text fields are templates, rendered with the event's context
/// when it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Notifier {
    /// A JSON `POST` of the event (its kind and context) to `url`, or to the host of an `http`
    /// connection (`http_conn_id`) joined with `endpoint`.
    Webhook {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http_conn_id: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        endpoint: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// A Slack incoming webhook (Airflow's `SlackWebhookNotifier`): `{"text": …}` posted to
    /// `webhook_url`, or to the connection's webhook (its password, a URL or the token after
    /// `https://hooks.slack.com/services/`).
    Slack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_url: Option<String>,
        #[serde(default = "default_slack_conn")]
        slack_webhook_conn_id: String,
        #[serde(default = "default_slack_text")]
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachments: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unfurl_links: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unfurl_media: Option<bool>,
    },
    /// An email through SMTP (Airflow's `SmtpNotifier`, and what `email_on_failure` /
    /// `email_on_retry` send).
    Smtp {
        to: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_email: Option<String>,
        #[serde(default = "default_smtp_conn")]
        smtp_conn_id: String,
        #[serde(default = "default_subject")]
        subject: String,
        #[serde(default = "default_html_content")]
        html_content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cc: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bcc: Vec<String>,
    },
    /// A callback of a Python DAG file that is Python code (a callable, or a `BaseNotifier`
    /// subclass with its own `notify`): where the SDK finds it again in the DAG file, run at
    /// the run's pinned version with the event's context. The SDK writes it; a YAML file
    /// cannot.
    Python {
        /// The task whose callback it is; `None` for the DAG's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        /// The argument that gave it (`on_failure_callback`, …).
        callback: String,
        /// Its position in that argument's list (0 for a single callable).
        index: u32,
    },
}

fn default_slack_conn() -> String {
    DEFAULT_SLACK_CONN_ID.into()
}
fn default_smtp_conn() -> String {
    DEFAULT_SMTP_CONN_ID.into()
}
fn default_slack_text() -> String {
    "{{ event }}: DAG {{ dag_id }}{% if task_id %}, task {{ task_id }}{% endif %}, run {{ run_id }}"
        .into()
}
fn default_subject() -> String {
    "DAG {{ dag_id }}{% if task_id %} - Task {{ task_id }}{% endif %} - Run ID {{ run_id }} in State {{ state }}".into()
}
fn default_html_content() -> String {
    "<p>{{ event }}: DAG <b>{{ dag_id }}</b>{% if task_id %}, task <b>{{ task_id }}</b> \
     (try {{ try_number }}){% endif %}, run <b>{{ run_id }}</b>, state <b>{{ state }}</b>.</p>\
     {% if exception %}<p>Exception:<br><pre>{{ exception }}</pre></p>{% endif %}\
     {% if reason %}<p>Reason: {{ reason }}</p>{% endif %}"
        .into()
}

impl Notifier {
    /// Every kind a DAG file may name in `kind:`.
    pub const KINDS: [&'static str; 3] = ["slack", "smtp", "webhook"];
    /// The kind of a Python callback, which only the Python SDK writes.
    pub const PYTHON_KIND: &'static str = "python";

    pub fn kind(&self) -> &'static str {
        match self {
            Notifier::Webhook { .. } => "webhook",
            Notifier::Slack { .. } => "slack",
            Notifier::Smtp { .. } => "smtp",
            Notifier::Python { .. } => Self::PYTHON_KIND,
        }
    }

    /// What Airflow sends for `email_on_failure` / `email_on_retry` to `to`.
    pub fn email(to: Vec<String>) -> Notifier {
        Notifier::Smtp {
            to,
            from_email: None,
            smtp_conn_id: default_smtp_conn(),
            subject: "Airflow alert: {{ dag_id }}.{{ task_id }} {{ state }}".into(),
            html_content: default_html_content(),
            cc: Vec::new(),
            bcc: Vec::new(),
        }
    }

    /// What is wrong with it, if anything (a webhook needs somewhere to go, an email a
    /// recipient).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Notifier::Webhook {
                url, http_conn_id, ..
            } if url.is_none() && http_conn_id.is_none() => {
                Err("a webhook notifier needs `url` or `http_conn_id`".into())
            }
            Notifier::Smtp { to, .. } if to.is_empty() => {
                Err("an smtp notifier needs at least one address in `to`".into())
            }
            _ => Ok(()),
        }
    }
}

/// What happened, which callbacks it calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    TaskFailure,
    TaskSuccess,
    TaskRetry,
    TaskExecute,
    TaskSkipped,
    DagSuccess,
    DagFailure,
    DeadlineMissed,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 8] = [
        NotificationEvent::TaskFailure,
        NotificationEvent::TaskSuccess,
        NotificationEvent::TaskRetry,
        NotificationEvent::TaskExecute,
        NotificationEvent::TaskSkipped,
        NotificationEvent::DagSuccess,
        NotificationEvent::DagFailure,
        NotificationEvent::DeadlineMissed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NotificationEvent::TaskFailure => "task_failure",
            NotificationEvent::TaskSuccess => "task_success",
            NotificationEvent::TaskRetry => "task_retry",
            NotificationEvent::TaskExecute => "task_execute",
            NotificationEvent::TaskSkipped => "task_skipped",
            NotificationEvent::DagSuccess => "dag_success",
            NotificationEvent::DagFailure => "dag_failure",
            NotificationEvent::DeadlineMissed => "deadline_missed",
        }
    }

    pub fn from_name(name: &str) -> Option<NotificationEvent> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The Airflow argument that names this event's callbacks.
    pub fn callback_key(self) -> &'static str {
        match self {
            NotificationEvent::TaskFailure | NotificationEvent::DagFailure => "on_failure_callback",
            NotificationEvent::TaskSuccess | NotificationEvent::DagSuccess => "on_success_callback",
            NotificationEvent::TaskRetry => "on_retry_callback",
            NotificationEvent::TaskExecute => "on_execute_callback",
            NotificationEvent::TaskSkipped => "on_skipped_callback",
            NotificationEvent::DeadlineMissed => "deadline",
        }
    }
}

/// A task's callbacks, each a list of notifiers, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCallbacks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_retry_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_execute_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_skipped_callback: Vec<Notifier>,
    /// Airflow's `email`: who `email_on_failure` and `email_on_retry` write to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email: Vec<String>,
    /// Airflow's `email_on_failure` (default true; only with `email`).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub email_on_failure: bool,
    /// Airflow's `email_on_retry` (default true; only with `email`).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub email_on_retry: bool,
}

fn yes() -> bool {
    true
}

impl TaskCallbacks {
    pub fn new() -> Self {
        TaskCallbacks {
            email_on_failure: true,
            email_on_retry: true,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == TaskCallbacks::new()
    }

    /// The notifiers a task's `event` calls, the email of `email_on_*` last.
    pub fn notifiers(&self, event: NotificationEvent) -> Vec<Notifier> {
        let (listed, email) = match event {
            NotificationEvent::TaskFailure => (&self.on_failure_callback, self.email_on_failure),
            NotificationEvent::TaskRetry => (&self.on_retry_callback, self.email_on_retry),
            NotificationEvent::TaskSuccess => (&self.on_success_callback, false),
            NotificationEvent::TaskExecute => (&self.on_execute_callback, false),
            NotificationEvent::TaskSkipped => (&self.on_skipped_callback, false),
            _ => return Vec::new(),
        };
        let mut out = listed.clone();
        if email && !self.email.is_empty() {
            out.push(Notifier::email(self.email.clone()));
        }
        out
    }
}

/// A DAG's own callbacks and deadline alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagCallbacks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure_callback: Vec<Notifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deadline: Vec<DeadlineAlert>,
}

impl DagCallbacks {
    pub fn is_empty(&self) -> bool {
        *self == DagCallbacks::default()
    }

    pub fn notifiers(&self, event: NotificationEvent) -> &[Notifier] {
        match event {
            NotificationEvent::DagSuccess => &self.on_success_callback,
            NotificationEvent::DagFailure => &self.on_failure_callback,
            _ => &[],
        }
    }
}

/// Airflow 3.1's `DeadlineAlert`: a run that has not finished by `reference + interval` calls
/// `callback` once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineAlert {
    pub reference: DeadlineReference,
    #[serde(with = "duration_secs")]
    pub interval: Duration,
    pub callback: Vec<Notifier>,
}

/// What a deadline counts from (Airflow's `DeadlineReference`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeadlineReference {
    /// `DeadlineReference.DAGRUN_LOGICAL_DATE`.
    DagrunLogicalDate,
    /// `DeadlineReference.DAGRUN_QUEUED_AT`.
    DagrunQueuedAt,
    /// `DeadlineReference.FIXED_DATETIME(when)`.
    FixedDatetime { datetime: DateTime<Utc> },
}

impl DeadlineReference {
    pub const NAMES: [&'static str; 3] =
        ["dagrun_logical_date", "dagrun_queued_at", "fixed_datetime"];
}

impl DeadlineAlert {
    /// When a run with this logical date and queued time must have finished; `None` when the
    /// reference is missing (a run without a logical date).
    pub fn due(
        &self,
        logical_date: Option<DateTime<Utc>>,
        queued_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let reference = match &self.reference {
            DeadlineReference::DagrunLogicalDate => logical_date?,
            DeadlineReference::DagrunQueuedAt => queued_at?,
            DeadlineReference::FixedDatetime { datetime } => *datetime,
        };
        let interval = chrono::Duration::from_std(self.interval).ok()?;
        reference.checked_add_signed(interval)
    }
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_on_failure_adds_an_email_after_the_callbacks() {
        let mut callbacks = TaskCallbacks::new();
        callbacks.on_failure_callback = vec![Notifier::Webhook {
            url: Some("http://127.0.0.1:1/".into()),
            http_conn_id: None,
            endpoint: String::new(),
            headers: BTreeMap::new(),
        }];
        callbacks.email = vec!["ops@example.com".into()];
        let notifiers = callbacks.notifiers(NotificationEvent::TaskFailure);
        assert_eq!(notifiers.len(), 2);
        assert_eq!(notifiers[1].kind(), "smtp");
        callbacks.email_on_retry = false;
        assert!(callbacks.notifiers(NotificationEvent::TaskRetry).is_empty());
        assert!(callbacks
            .notifiers(NotificationEvent::TaskSuccess)
            .is_empty());
    }

    #[test]
    fn a_deadline_counts_from_its_reference() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let alert = DeadlineAlert {
            reference: DeadlineReference::DagrunQueuedAt,
            interval: Duration::from_secs(90),
            callback: Vec::new(),
        };
        assert_eq!(
            alert.due(None, Some(t("2026-01-01T00:00:00Z"))),
            Some(t("2026-01-01T00:01:30Z"))
        );
        assert_eq!(alert.due(Some(t("2026-01-01T00:00:00Z")), None), None);
    }

    #[test]
    fn notifiers_read_from_json_and_refuse_unknown_keys() {
        let n: Notifier =
            serde_json::from_str(r#"{"kind": "slack", "webhook_url": "http://x/"}"#).unwrap();
        assert_eq!(n.kind(), "slack");
        let err = serde_json::from_str::<Notifier>(r#"{"kind": "webhook", "urll": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }
}
