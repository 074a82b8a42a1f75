//! Python callbacks end to end through `standalone`: functions and a `BaseNotifier` subclass
//! given as task and DAG callbacks in a Python DAG file are called, in a child that runs the
//! DAG file at the run's version, with Airflow's context; one that raises is in the event log
//! and changes no state.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use updraft_store::{EventLogQuery, EventLogStore, NotificationState, NotificationStore};

use crate::fixture::{eventually, state_of, Home};
use crate::notifications::{fast_delivery, store};

/// A DAG file whose callbacks write what they got to files in `out`.
fn dag_file(out: &Path) -> String {
    format!(
        r#"import json, os
from airflow.sdk import DAG
from airflow.notifications.basenotifier import BaseNotifier
from airflow.providers.standard.operators.bash import BashOperator

OUT = {out:?}


def write(name, seen):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(seen, f)


def task_failed(context):
    print("task_failed called")
    write("task_failed.json", {{
        "dag": context["dag"].dag_id,
        "task": context["task"].task_id,
        "ti": [context["ti"].task_id, context["ti"].try_number, context["ti"].state],
        "run_id": context["dag_run"].run_id,
        "ds": context["ds"],
        "params": context["params"],
        "exception": str(context["exception"]),
    }})


def dag_succeeded(context):
    write("dag_succeeded.json", {{
        "dag": context["dag"].dag_id,
        "run": [context["dag_run"].run_id, context["dag_run"].state],
        "reason": context.get("reason"),
        "has_ti": "ti" in context,
    }})


def boom(context):
    raise RuntimeError("callback broke")


class FileNotifier(BaseNotifier):
    template_fields = ("message",)

    def __init__(self, message):
        self.message = message

    def notify(self, context):
        with open(os.path.join(OUT, "notifier.txt"), "w") as f:
            f.write(self.message)


with DAG("py_cb_fail", params={{"who": "ops"}}):
    BashOperator(
        task_id="breaks",
        bash_command="exit 3",
        on_failure_callback=[task_failed, FileNotifier("{{{{ ti.task_id }}}} in {{{{ run_id }}}}")],
    )

with DAG("py_cb_ok", on_success_callback=[boom, dag_succeeded]):
    BashOperator(task_id="fine", bash_command="true", on_success_callback=boom)
"#
    )
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[test]
fn python_callables_and_custom_notifiers_are_called_with_airflows_context() {
    if !crate::python_dags::python_ready() {
        return;
    }
    let home = Home::new();
    fast_delivery(&home, 3);
    let out = home.path().join("callbacks-out");
    std::fs::create_dir_all(&out).unwrap();
    home.write_dag("py_callbacks.py", &dag_file(&out));
    let _standalone = home.standalone();

    let failed_run = home.trigger("py_cb_fail");
    let states = home.wait_for_run("py_cb_fail", &failed_run, Duration::from_secs(60));
    assert_eq!(states["state"], "failed");
    let seen = eventually(Duration::from_secs(30), || {
        read_json(&out.join("task_failed.json"))
    })
    .expect("on_failure_callback was not called");
    assert_eq!(seen["dag"], "py_cb_fail");
    assert_eq!(seen["task"], "breaks");
    assert_eq!(seen["ti"], serde_json::json!(["breaks", 1, "failed"]));
    assert_eq!(seen["run_id"], failed_run.as_str());
    assert_eq!(seen["params"], serde_json::json!({"who": "ops"}));
    assert!(seen["ds"].as_str().unwrap().len() == 10, "{seen}");
    assert!(
        seen["exception"].as_str().unwrap().contains("exit"),
        "{seen}"
    );
    let message = eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(out.join("notifier.txt")).ok()
    })
    .expect("the custom notifier was not called");
    assert_eq!(message, format!("breaks in {failed_run}"));

    let ok_run = home.trigger("py_cb_ok");
    let states = home.wait_for_run("py_cb_ok", &ok_run, Duration::from_secs(60));
    assert_eq!(states["state"], "success");
    let seen = eventually(Duration::from_secs(30), || {
        read_json(&out.join("dag_succeeded.json"))
    })
    .expect("the DAG's on_success_callback was not called");
    assert_eq!(
        seen,
        serde_json::json!({
            "dag": "py_cb_ok", "run": [ok_run, "success"], "reason": "success", "has_ti": false,
        })
    );

    // The callbacks that raised: each given up once (Airflow calls a callback once), in the
    // event log with the error; the task and the run kept their states.
    let (store, runtime) = store(&home);
    let failures = eventually(Duration::from_secs(30), || {
        let page = runtime
            .block_on(store.query_event_logs(EventLogQuery {
                event: Some("notification_failed".into()),
                dag_id: Some("py_cb_ok".into()),
                ..EventLogQuery::default()
            }))
            .ok()?;
        (page.items.len() >= 2).then_some(page.items)
    })
    .expect("no notification_failed rows for the callbacks that raised");
    let mut tasks: Vec<Option<String>> = failures.iter().map(|f| f.event.task_id.clone()).collect();
    tasks.sort();
    assert_eq!(tasks, vec![None, Some("fine".to_string())]);
    for failure in &failures {
        let extra: Value = serde_json::from_str(failure.event.extra.as_deref().unwrap()).unwrap();
        assert_eq!(extra["notifier"], "python");
        assert_eq!(extra["attempts"], 1, "{extra}");
        let error = extra["error"].as_str().unwrap();
        assert!(
            error.ends_with("boom raised RuntimeError: callback broke"),
            "{error}"
        );
    }
    // The deliverer writes the event log row before it marks the notification given up.
    let notifications = eventually(Duration::from_secs(30), || {
        let notifications = runtime
            .block_on(store.list_notifications(Some("py_cb_ok"), 10))
            .ok()?;
        let failed = notifications
            .iter()
            .filter(|n| n.state == NotificationState::Failed)
            .count();
        (failed >= 2).then_some(notifications)
    })
    .expect("the callbacks that raised were not marked given up");
    let states_of: Vec<NotificationState> = notifications.iter().map(|n| n.state).collect();
    assert_eq!(notifications.len(), 3, "{notifications:?}");
    assert_eq!(
        states_of
            .iter()
            .filter(|s| **s == NotificationState::Failed)
            .count(),
        2,
        "{notifications:?}"
    );
    let states = home.json(&["tasks", "states-for-dag-run", "py_cb_ok", &ok_run]);
    assert_eq!(states["state"], "success");
    assert_eq!(state_of(&states, "fine"), "success");
}

#[test]
fn a_yaml_dag_cannot_name_a_python_callback() {
    let home = Home::new();
    home.write_dag(
        "yaml_py.yaml",
        "dag_id: yaml_py\ntasks:\n  - task_id: t\n    bash_command: \"true\"\n    on_failure_callback:\n      kind: python\n      callback: on_failure_callback\n      index: 0\n",
    );
    let errors = home.ok(&["dags", "list-import-errors"]);
    assert!(
        errors.contains("kind `python` names a callback of a Python DAG file"),
        "{errors}"
    );
}

#[test]
fn dags_test_calls_a_python_callback_before_it_exits() {
    if !crate::python_dags::python_ready() {
        return;
    }
    let home = Home::new();
    let out = home.path().join("called.txt");
    home.write_dag(
        "tested_py.py",
        &format!(
            r#"from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator


def done(context):
    with open({out:?}, "w") as f:
        f.write(context["dag_run"].run_id + " " + context["reason"])


with DAG("tested_py", on_success_callback=done):
    BashOperator(task_id="t", bash_command="true")
"#
        ),
    );
    home.ok(&["dags", "test", "tested_py", "2024-01-01"]);
    // No standalone runs: the command itself called it.
    let text = std::fs::read_to_string(&out).expect("the callback did not run");
    assert!(text.ends_with(" success"), "{text}");
}
