//! Callbacks, notifiers and deadline alerts: named notifiers and inline ones, `default_args`,
//! the e-mail keys, the JSON a Python DAG file's SDK writes, and the errors that name the key.

use std::time::Duration;

use updraft_dagfile::{parse_dag_source, Format};
use updraft_model::{DeadlineReference, NotificationEvent, Notifier};

use crate::parse::{check_err, check_ok};

#[test]
fn named_and_inline_notifiers_fill_the_callbacks() {
    let dag = check_ok(
        "notifiers:\n\
         \x20 hook: {kind: webhook, url: \"http://127.0.0.1:9/h\"}\n\
         \x20 chat: {kind: slack, text: \"{{ dag.dag_id }} failed\"}\n\
         on_failure_callback: [chat, hook]\n\
         on_success_callback: {kind: smtp, to: [team@example.com]}\n\
         default_args: {on_retry_callback: hook, email: ops@example.com, email_on_retry: false}\n\
         deadline:\n\
         \x20 reference: dagrun_queued_at\n\
         \x20 interval: 15m\n\
         \x20 callback: chat\n\
         tasks:\n\
         \x20 - {task_id: a, bash_command: x, on_execute_callback: hook, on_retry_callback: null}\n\
         \x20 - {task_id: b, bash_command: x}\n",
    );
    let callbacks = &dag.callbacks;
    assert_eq!(callbacks.on_failure_callback.len(), 2);
    assert_eq!(callbacks.on_failure_callback[0].kind(), "slack");
    match &callbacks.on_failure_callback[0] {
        Notifier::Slack {
            text,
            slack_webhook_conn_id,
            ..
        } => {
            assert_eq!(text, "{{ dag.dag_id }} failed");
            assert_eq!(slack_webhook_conn_id, "slack_default");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(callbacks.on_success_callback[0].kind(), "smtp");
    let deadline = &callbacks.deadline[0];
    assert_eq!(deadline.reference, DeadlineReference::DagrunQueuedAt);
    assert_eq!(deadline.interval, Duration::from_secs(900));
    assert_eq!(deadline.callback[0].kind(), "slack");

    let (a, b) = (&dag.tasks[0].callbacks, &dag.tasks[1].callbacks);
    assert_eq!(a.on_execute_callback[0].kind(), "webhook");
    assert!(a.on_retry_callback.is_empty(), "null clears the default");
    assert_eq!(b.on_retry_callback[0].kind(), "webhook");
    assert_eq!(b.email, vec!["ops@example.com".to_string()]);
    // email_on_failure (default true) sends to `email`; email_on_retry was turned off.
    let on_failure = b.notifiers(NotificationEvent::TaskFailure);
    assert_eq!(on_failure.len(), 1);
    assert_eq!(on_failure[0].kind(), "smtp");
    assert_eq!(b.notifiers(NotificationEvent::TaskRetry).len(), 1);
}

#[test]
fn the_python_sdks_documents_load() {
    let dag = parse_dag_source(
        r#"{"dag_id": "py", "on_failure_callback": [{"kind": "webhook", "url": "http://h/",
            "headers": {"X-Token": "t"}}],
            "deadline": [{"reference": {"fixed_datetime": "2026-01-01T06:00:00+00:00"},
                          "interval": 3600.0, "callback": [{"kind": "slack",
                          "slack_webhook_conn_id": "alerts", "text": "late"}]}],
            "tasks": [{"task_id": "t", "operator": "bash", "bash_command": "x",
                       "email": ["a@example.com"], "email_on_failure": false,
                       "on_success_callback": [{"kind": "smtp", "to": ["b@example.com"],
                                                "smtp_conn_id": "mail"}]}]}"#,
        "py",
        Format::Json,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let alert = &dag.callbacks.deadline[0];
    assert_eq!(
        alert.reference,
        DeadlineReference::FixedDatetime {
            datetime: "2026-01-01T06:00:00Z".parse().unwrap()
        }
    );
    assert_eq!(alert.interval, Duration::from_secs(3600));
    let task = &dag.tasks[0].callbacks;
    assert!(task.notifiers(NotificationEvent::TaskFailure).is_empty());
    assert_eq!(task.on_success_callback[0].kind(), "smtp");
}

#[test]
fn bad_callbacks_are_import_errors_naming_the_key() {
    check_err(
        "on_failure_callback: nowhere\ntasks:\n  - {task_id: a, bash_command: x}\n",
        &["`on_failure_callback` names notifier `nowhere`, which `notifiers:` does not define"],
    );
    check_err(
        "notifiers:\n  n: {kind: webhook, urll: x}\ntasks:\n  - {task_id: a, bash_command: x}\n",
        &["`notifiers.n`: unknown field `urll`"],
    );
    check_err(
        "notifiers:\n  n: {kind: webhook}\ntasks:\n  - {task_id: a, bash_command: x}\n",
        &["a webhook notifier needs `url` or `http_conn_id`"],
    );
    check_err(
        "tasks:\n  - {task_id: a, bash_command: x, on_success_callback: 3}\n",
        &["task `a`: `on_success_callback` must name a notifier or write one out"],
    );
    check_err(
        "deadline: {reference: dagrun_started_at, interval: 1h, callback: {kind: smtp, to: [x@y.z]}}\ntasks:\n  - {task_id: a, bash_command: x}\n",
        &["unknown deadline reference `dagrun_started_at`"],
    );
    check_err(
        "deadline: {reference: dagrun_queued_at}\ntasks:\n  - {task_id: a, bash_command: x}\n",
        &["`deadline` needs `interval`", "`deadline` needs `callback`"],
    );
}

#[test]
fn python_callbacks_load_from_the_sdks_json_and_not_from_yaml() {
    let dag = parse_dag_source(
        r#"{"dag_id": "py", "on_success_callback": [{"kind": "python",
            "callback": "on_success_callback", "index": 0}],
            "tasks": [{"task_id": "t", "operator": "bash", "bash_command": "x",
                       "on_failure_callback": [{"kind": "webhook", "url": "http://h/"},
                           {"kind": "python", "callback": "on_failure_callback", "index": 1,
                            "task_id": "t"}]}]}"#,
        "py",
        Format::Json,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dag.callbacks.on_success_callback,
        vec![Notifier::Python {
            task_id: None,
            callback: "on_success_callback".into(),
            index: 0
        }]
    );
    assert_eq!(
        dag.tasks[0].callbacks.on_failure_callback[1],
        Notifier::Python {
            task_id: Some("t".into()),
            callback: "on_failure_callback".into(),
            index: 1
        }
    );
    check_err(
        "tasks:\n  - {task_id: a, bash_command: x, on_failure_callback: {kind: python, callback: on_failure_callback, index: 0}}\n",
        &["kind `python` names a callback of a Python DAG file"],
    );
}
