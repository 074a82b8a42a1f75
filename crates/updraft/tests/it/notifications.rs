//! Notifications end to end through `standalone`: task and DAG callbacks reach a webhook, a
//! Slack incoming webhook and an SMTP server that the tests run on loopback; a receiver that
//! is down gets the delivery once it is up; a delivery that keeps failing is in the event
//! log and changes no state; a deadline alert fires once for a late run and not for a prompt
//! one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use updraft_store::{EventLogQuery, EventLogStore, NotificationState, NotificationStore};
use updraft_store_sqlite::SqliteStore;

use crate::fixture::{eventually, state_of, Home};

/// One request the HTTP receiver took: its path and JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Posted {
    pub path: String,
    pub body: Value,
}

pub(crate) type Received = Arc<Mutex<Vec<Posted>>>;

/// An HTTP server on `listener` that records every request and answers 200 (500 for paths
/// under `/broken`).
pub(crate) fn http_receiver(listener: TcpListener) -> Received {
    let seen: Received = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.trim_end().split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if path.starts_with("/broken") {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            record.lock().unwrap().push(Posted {
                path,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            let _ = write!(
                reader.into_inner(),
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    seen
}

/// One message the SMTP receiver took.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A plain SMTP server (RFC 5321's commands a sender needs, no TLS) that keeps every message.
fn smtp_receiver() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let record = mails.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let record = record.clone();
            std::thread::spawn(move || smtp_session(stream, &record));
        }
    });
    (port, mails)
}

fn smtp_session(stream: TcpStream, record: &Mutex<Vec<Mail>>) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let _ = out.write_all(b"220 localhost test SMTP\r\n");
    let mut mail = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 localhost\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_owned();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            let _ = out.write_all(b"354 go ahead\r\n");
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mail.data = data;
            record.lock().unwrap().push(mail.clone());
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = out.write_all(b"221 bye\r\n");
            return;
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        let _ = out.write_all(reply);
    }
}

/// Fast retries and polling, so the tests wait for seconds, not minutes.
pub(crate) fn fast_delivery(home: &Home, max_attempts: u32) {
    std::fs::write(
        home.path().join("updraft.toml"),
        format!(
            "[notifications]\npoll_interval = \"0.1\"\nretry_delay = \"0.3\"\nmax_retry_delay = \"0.6\"\nmax_attempts = {max_attempts}\ntimeout = \"5s\"\n"
        ),
    )
    .unwrap();
}

pub(crate) fn posted(seen: &Received, path: &str) -> Vec<Posted> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|p| p.path == path)
        .cloned()
        .collect()
}

fn wait_for_post(seen: &Received, path: &str) -> Posted {
    eventually(Duration::from_secs(20), || {
        posted(seen, path).into_iter().next()
    })
    .unwrap_or_else(|| {
        let paths: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.path.clone())
            .collect();
        panic!("nothing was posted to {path}; posted: {paths:?}")
    })
}

pub(crate) fn store(home: &Home) -> (SqliteStore, tokio::runtime::Runtime) {
    let store = SqliteStore::open(&home.path().join("updraft.db")).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (store, runtime)
}

#[test]
fn task_and_dag_callbacks_of_every_kind_reach_their_webhooks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    let home = Home::new();
    fast_delivery(&home, 5);
    home.write_dag(
        "callbacks.yaml",
        &format!(
            r#"dag_id: callbacks
notifiers:
  hook:
    kind: webhook
    url: "http://127.0.0.1:{port}/hook/{{{{ event }}}}/{{{{ task_id }}}}"
on_failure_callback: hook
default_args:
  on_execute_callback: hook
tasks:
  - task_id: boom
    bash_command: "echo going down; exit 3"
    retries: 1
    retry_delay: 0
    on_retry_callback: hook
    on_failure_callback: [hook]
  - task_id: fine
    bash_command: "true"
    on_success_callback: hook
  - task_id: passed_over
    bash_command: "exit 99"
    on_skipped_callback: hook
"#
        ),
    );
    home.write_dag(
        "slack_success.yaml",
        &format!(
            r#"dag_id: slack_success
on_success_callback:
  kind: slack
  webhook_url: "http://127.0.0.1:{port}/slack"
  text: "{{{{ dag.dag_id }}}} run {{{{ run_id }}}} ended {{{{ state }}}} ({{{{ reason }}}})"
tasks:
  - task_id: only
    bash_command: "true"
"#
        ),
    );
    let _standalone = home.standalone();
    let failing = home.trigger("callbacks");
    let succeeding = home.trigger("slack_success");
    let states = home.wait_for_run("callbacks", &failing, Duration::from_secs(30));
    assert_eq!(states["state"], "failed");
    assert_eq!(state_of(&states, "boom"), "failed");
    assert_eq!(state_of(&states, "passed_over"), "skipped");
    home.wait_for_run("slack_success", &succeeding, Duration::from_secs(30));

    let retry = wait_for_post(&seen, "/hook/task_retry/boom");
    assert_eq!(retry.body["event"], "task_retry");
    assert_eq!(retry.body["context"]["try_number"], 1);
    assert_eq!(retry.body["context"]["state"], "up_for_retry");
    assert_eq!(retry.body["context"]["exception"], "exited with code 3");
    let failure = wait_for_post(&seen, "/hook/task_failure/boom");
    assert_eq!(failure.body["context"]["try_number"], 2);
    assert_eq!(failure.body["context"]["run_id"], failing.as_str());
    assert_eq!(failure.body["context"]["exception"], "exited with code 3");
    let success = wait_for_post(&seen, "/hook/task_success/fine");
    assert_eq!(success.body["context"]["state"], "success");
    let skipped = wait_for_post(&seen, "/hook/task_skipped/passed_over");
    assert_eq!(skipped.body["context"]["state"], "skipped");
    let dag_failure = wait_for_post(&seen, "/hook/dag_failure/");
    assert_eq!(dag_failure.body["context"]["reason"], "task_failure");
    assert_eq!(dag_failure.body["context"]["dag_id"], "callbacks");
    let slack = wait_for_post(&seen, "/slack");
    assert_eq!(
        slack.body["text"],
        format!("slack_success run {succeeding} ended success (success)")
    );
    // on_execute_callback, from default_args: once per try of every task that ran.
    eventually(Duration::from_secs(10), || {
        (posted(&seen, "/hook/task_execute/boom").len() == 2).then_some(())
    })
    .expect("two tries of boom, two execute callbacks");
    assert_eq!(posted(&seen, "/hook/task_execute/fine").len(), 1);
    // Each event once: nothing was delivered twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(posted(&seen, "/hook/task_failure/boom").len(), 1);
    assert_eq!(posted(&seen, "/hook/dag_failure/").len(), 1);
    assert_eq!(posted(&seen, "/slack").len(), 1);
}

#[test]
fn email_on_failure_and_an_smtp_notifier_send_mail_through_smtp_default() {
    let (smtp_port, mails) = smtp_receiver();
    let home = Home::new();
    fast_delivery(&home, 5);
    let uri = format!(
        "smtp://127.0.0.1:{smtp_port}?disable_ssl=true&disable_tls=true&from_email=updraft%40example.com"
    );
    home.ok(&["connections", "add", "smtp_default", "--conn-uri", &uri]);
    home.write_dag(
        "mail.yaml",
        r#"dag_id: mail
default_args:
  email: [oncall@example.com]
  email_on_retry: false
on_success_callback:
  kind: smtp
  to: [nobody@example.com]
tasks:
  - task_id: flaky
    bash_command: "exit 4"
"#,
    );
    home.write_dag(
        "mail_ok.yaml",
        r#"dag_id: mail_ok
on_success_callback:
  kind: smtp
  to: [team@example.com]
  cc: [boss@example.com]
  subject: "{{ dag.dag_id }} is done"
  html_content: "<p>run {{ run_id }}: {{ state }}</p>"
tasks:
  - task_id: fine
    bash_command: "true"
"#,
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("mail");
    let ok_run = home.trigger("mail_ok");
    let states = home.wait_for_run("mail", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "failed");
    home.wait_for_run("mail_ok", &ok_run, Duration::from_secs(30));
    let got = eventually(Duration::from_secs(20), || {
        let mails = mails.lock().unwrap();
        (mails.len() >= 2).then(|| mails.clone())
    })
    .expect("two mails did not arrive");
    let to = |address: &str| {
        got.iter()
            .find(|m| m.to.contains(&format!("<{address}>")))
            .unwrap_or_else(|| panic!("no mail to {address}: {got:?}"))
    };
    let done = to("team@example.com");
    assert!(
        done.to.contains(&"<boss@example.com>".to_string()),
        "{done:?}"
    );
    assert!(
        done.data.contains("Subject: mail_ok is done"),
        "{}",
        done.data
    );
    assert!(
        done.data.contains(&format!("<p>run {ok_run}: success</p>")),
        "{}",
        done.data
    );
    let alert = to("oncall@example.com");
    assert_eq!(alert.from, "<updraft@example.com>");

    assert!(
        alert
            .data
            .contains("Subject: Airflow alert: mail.flaky failed"),
        "{}",
        alert.data
    );
    assert!(alert.data.contains("exited with code 4"), "{}", alert.data);
    // The `mail` run failed: its DAG's on_success_callback sends nothing.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(mails.lock().unwrap().len(), 2);
}

#[test]
fn a_receiver_that_is_down_gets_the_delivery_once_it_is_up() {
    // A port that nothing listens on until the test binds it again.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let home = Home::new();
    fast_delivery(&home, 50);
    home.write_dag(
        "late_receiver.yaml",
        &format!(
            "dag_id: late_receiver\non_failure_callback:\n  kind: webhook\n  url: http://127.0.0.1:{port}/late\ntasks:\n  - task_id: t\n    bash_command: exit 1\n"
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("late_receiver");
    home.wait_for_run("late_receiver", &run_id, Duration::from_secs(30));
    let (store, runtime) = store(&home);
    let retried = eventually(Duration::from_secs(20), || {
        let all = runtime
            .block_on(store.list_notifications(Some("late_receiver"), 10))
            .ok()?;
        let n = all.into_iter().next()?;
        (n.attempts >= 2 && n.state == NotificationState::Pending).then_some(n)
    })
    .expect("the delivery was not retried while the receiver was down");
    assert!(
        retried
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("/late"),
        "{retried:?}"
    );
    let seen = http_receiver(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let delivered = wait_for_post(&seen, "/late");
    assert_eq!(delivered.body["event"], "dag_failure");
    let stored = eventually(Duration::from_secs(10), || {
        let n = runtime
            .block_on(store.list_notifications(Some("late_receiver"), 10))
            .ok()?
            .into_iter()
            .next()?;
        (n.state == NotificationState::Delivered).then_some(n)
    })
    .expect("the delivery was not recorded");
    assert!(stored.attempts > retried.attempts);
}

#[test]
fn a_delivery_that_keeps_failing_is_in_the_event_log_and_changes_no_state() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    let home = Home::new();
    fast_delivery(&home, 2);
    home.write_dag(
        "broken_hook.yaml",
        &format!(
            "dag_id: broken_hook\ntasks:\n  - task_id: t\n    bash_command: \"true\"\n    on_success_callback:\n      kind: webhook\n      url: http://127.0.0.1:{port}/broken\n"
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("broken_hook");
    let states = home.wait_for_run("broken_hook", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success");
    let (store, runtime) = store(&home);
    let failed = eventually(Duration::from_secs(20), || {
        let page = runtime
            .block_on(store.query_event_logs(EventLogQuery {
                event: Some("notification_failed".into()),
                ..EventLogQuery::default()
            }))
            .ok()?;
        page.items.into_iter().next()
    })
    .expect("no notification_failed row in the event log");
    assert_eq!(failed.event.dag_id.as_deref(), Some("broken_hook"));
    assert_eq!(failed.event.task_id.as_deref(), Some("t"));
    let extra: Value = serde_json::from_str(failed.event.extra.as_deref().unwrap()).unwrap();
    assert_eq!(extra["attempts"], 2);
    assert!(extra["error"].as_str().unwrap().contains("500"), "{extra}");
    assert_eq!(
        posted(&seen, "/broken").len(),
        2,
        "two attempts, then given up"
    );
    let notification = &runtime
        .block_on(store.list_notifications(Some("broken_hook"), 10))
        .unwrap()[0];
    assert_eq!(notification.state, NotificationState::Failed);
    // The task and the run kept their states.
    let states = home.json(&["tasks", "states-for-dag-run", "broken_hook", &run_id]);
    assert_eq!(states["state"], "success");
    assert_eq!(state_of(&states, "t"), "success");
}

#[test]
fn a_deadline_alert_fires_once_for_a_late_run_and_not_for_a_prompt_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    let home = Home::new();
    fast_delivery(&home, 5);
    for (dag_id, interval, command) in [("late", "1s", "sleep 4"), ("prompt", "1m", "true")] {
        home.write_dag(
            &format!("{dag_id}.yaml"),
            &format!(
                "dag_id: {dag_id}\ndeadline:\n  reference: dagrun_queued_at\n  interval: {interval}\n  callback:\n    kind: webhook\n    url: http://127.0.0.1:{port}/deadline/{{{{ dag_id }}}}\ntasks:\n  - task_id: t\n    bash_command: \"{command}\"\n"
            ),
        );
    }
    let _standalone = home.standalone();
    let late = home.trigger("late");
    let prompt = home.trigger("prompt");
    let missed = wait_for_post(&seen, "/deadline/late");
    assert_eq!(missed.body["event"], "deadline_missed");
    assert_eq!(missed.body["context"]["run_id"], late.as_str());
    assert_eq!(missed.body["context"]["state"], "running");
    assert!(missed.body["context"]["deadline"].is_string());
    home.wait_for_run("late", &late, Duration::from_secs(30));
    home.wait_for_run("prompt", &prompt, Duration::from_secs(30));
    // More sweeps pass: the alert is not sent again, and the prompt run sends none.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(posted(&seen, "/deadline/late").len(), 1);
    assert!(posted(&seen, "/deadline/prompt").is_empty());
}

#[test]
fn a_callback_naming_an_undefined_notifier_is_an_import_error() {
    let home = Home::new();
    home.write_dag(
        "typo.yaml",
        "dag_id: typo\nnotifiers:\n  hook: {kind: webhook, url: \"http://127.0.0.1:9/\"}\ntasks:\n  - task_id: t\n    bash_command: \"true\"\n    on_failure_callback: hoook\n",
    );
    home.write_dag(
        "bad_kind.yaml",
        "dag_id: bad_kind\non_failure_callback: {kind: pager, url: x}\ntasks:\n  - task_id: t\n    bash_command: \"true\"\n",
    );
    let errors = home.ok(&["dags", "list-import-errors"]);
    assert!(
        errors
            .contains("names notifier `hoook`, which `notifiers:` does not define (defined: hook)"),
        "{errors}"
    );
    assert!(errors.contains("unknown notifier kind `pager`"), "{errors}");
}

#[test]
fn a_python_dags_notifiers_and_deadline_are_delivered() {
    if !crate::python_dags::python_ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    let home = Home::new();
    fast_delivery(&home, 5);
    // Airflow's Slack connection: the webhook is the password.
    home.ok(&[
        "connections",
        "add",
        "chat",
        "--conn-type",
        "slackwebhook",
        "--conn-password",
        &format!("http://127.0.0.1:{port}/slack-conn"),
    ]);
    home.write_dag(
        "py_notify.py",
        &format!(
            r#"from datetime import timedelta
from airflow.sdk import DAG
from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from updraft.notifications import WebhookNotifier

with DAG(
    "py_notify",
    on_failure_callback=WebhookNotifier("http://127.0.0.1:{port}/py/dag_failure"),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=1),
        callback=AsyncCallback(SlackWebhookNotifier, kwargs={{
            "slack_webhook_conn_id": "chat", "text": "{{{{ dag_run.run_id }}}} is late"}}),
    ),
):
    BashOperator(
        task_id="slow_fail",
        bash_command="sleep 3; exit 2",
        on_failure_callback=[SlackWebhookNotifier(
            slack_webhook_conn_id="chat",
            text="{{{{ ti.task_id }}}} failed: {{{{ exception }}}}")],
    )
"#
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("py_notify");
    let states = home.wait_for_run("py_notify", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "failed");
    wait_for_post(&seen, "/py/dag_failure");
    let slack: Vec<String> = eventually(Duration::from_secs(20), || {
        let texts: Vec<String> = posted(&seen, "/slack-conn")
            .into_iter()
            .filter_map(|p| p.body["text"].as_str().map(str::to_string))
            .collect();
        (texts.len() >= 2).then_some(texts)
    })
    .expect("the task's and the deadline's Slack messages");
    assert!(slack.contains(&format!("{run_id} is late")), "{slack:?}");
    assert!(
        slack.contains(&"slow_fail failed: exited with code 2".to_string()),
        "{slack:?}"
    );
}

#[test]
fn dags_test_delivers_the_runs_callbacks_before_it_exits() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    let home = Home::new();
    home.write_dag(
        "tested.yaml",
        &format!(
            "dag_id: tested\non_success_callback: {{kind: webhook, url: \"http://127.0.0.1:{port}/tested\"}}\ntasks:\n  - task_id: t\n    bash_command: \"true\"\n    on_success_callback: {{kind: webhook, url: \"http://127.0.0.1:{port}/tested/t\"}}\n"
        ),
    );
    home.ok(&["dags", "test", "tested", "2024-01-01"]);
    // No standalone runs: the command itself delivered them.
    assert_eq!(posted(&seen, "/tested").len(), 1);
    assert_eq!(posted(&seen, "/tested/t").len(), 1);
    assert_eq!(posted(&seen, "/tested")[0].body["event"], "dag_success");
}
