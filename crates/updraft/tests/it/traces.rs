//! OpenTelemetry traces from `updraft standalone`: a run is one trace, its run span the root
//! and one child span per try, exported to a collector the test runs on loopback; a task
//! process gets a `TRACEPARENT` naming its try's span.

use std::collections::BTreeMap;
use std::time::Duration;

use updraft_telemetry::testing::{Collector, ReceivedSpan};
use updraft_telemetry::{RunIdentity, TryIdentity};

use crate::fixture::{state_of, Home};
use crate::python_dags::python_ready;
use crate::python_fork_server::return_value;

/// Turns traces on in `home`'s configuration, sent to `endpoint` at most `interval` after a
/// span ends, as service `updraft-it`.
fn traces_on(home: &Home, endpoint: &str, interval: &str) {
    std::fs::write(
        home.path().join("updraft.toml"),
        format!(
            "[traces]\non = true\notlp_endpoint = \"{endpoint}\"\nservice_name = \"updraft-it\"\nexport_interval = \"{interval}\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_run_is_one_trace_with_a_span_per_try_and_tasks_see_their_traceparent() {
    let collector = Collector::start().unwrap();
    let home = Home::new();
    traces_on(&home, collector.address(), "0.2");
    let seen = home.path().join("traceparent");
    let marker = home.path().join("failed-once");
    home.write_dag(
        "traced.yaml",
        &format!(
            "tasks:\n  - task_id: extract\n    bash_command: 'echo \"$TRACEPARENT\" > {seen}'\n  - task_id: flaky\n    retries: 1\n    retry_delay: 0\n    bash_command: 'if [ -e {marker} ]; then echo ok; else touch {marker}; exit 3; fi'\n    dependencies: [extract]\n  - task_id: load\n    bash_command: echo load\n    dependencies: [flaky]\n",
            seen = seen.display(),
            marker = marker.display()
        ),
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("traced");
    let states = home.wait_for_run("traced", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "load"), "success");

    // Four tries (flaky ran twice) and the run.
    let spans = collector.wait_for(Duration::from_secs(20), |s| s.len() >= 5);
    assert_eq!(
        spans.len(),
        5,
        "{spans:#?}\nrejected: {:?}",
        collector.rejected()
    );
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let run_db_id: i64 = db
        .query_row(
            "SELECT id FROM dag_run WHERE dag_id = 'traced' AND run_id = ?1",
            [&run_id],
            |row| row.get(0),
        )
        .unwrap();
    let run = RunIdentity {
        dag_id: "traced",
        run_id: &run_id,
        id: run_db_id,
    };
    // Anyone derives the trace from the run's identity.
    let trace_id = run.trace_id().to_string();
    assert!(spans.iter().all(|s| s.trace_id == trace_id), "{spans:#?}");
    assert!(spans.iter().all(|s| s.service_name == "updraft-it"));

    let roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    let root = roots[0];
    assert_eq!(root.span_id, run.span_id().to_string());
    assert_eq!(root.name, "traced");
    let expected: BTreeMap<String, String> = [
        ("dag_id", "traced"),
        ("run_id", run_id.as_str()),
        ("run_type", "manual"),
        ("state", "success"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(root.attributes, expected);

    let ti = |task_id: &str| -> (i64, String) {
        db.query_row(
            "SELECT id, hostname FROM task_instance WHERE task_id = ?1",
            [task_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    };
    let mut tries: Vec<(String, String, String)> = Vec::new();
    for span in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
        assert_eq!(span.parent_span_id, root.span_id, "{span:#?}");
        let task_id = span.attributes["task_id"].clone();
        assert_eq!(span.name, task_id);
        let (ti_id, hostname) = ti(&task_id);
        let try_number: u32 = span.attributes["try_number"].parse().unwrap();
        assert_eq!(
            span.span_id,
            TryIdentity { ti_id, try_number }.span_id().to_string(),
            "{span:#?}"
        );
        assert_eq!(span.attributes["dag_id"], "traced");
        assert_eq!(span.attributes["run_id"], run_id);
        assert_eq!(span.attributes["map_index"], "-1");
        assert_eq!(span.attributes["hostname"], hostname);
        assert!(span.start_unix_nano <= span.end_unix_nano, "{span:#?}");
        assert!(root.start_unix_nano <= span.start_unix_nano, "{span:#?}");
        tries.push((
            task_id,
            try_number.to_string(),
            span.attributes["state"].clone(),
        ));
    }
    tries.sort();
    let owned = |t: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        t.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    };
    assert_eq!(
        tries,
        owned(&[
            ("extract", "1", "success"),
            ("flaky", "1", "up_for_retry"),
            ("flaky", "2", "success"),
            ("load", "1", "success"),
        ])
    );

    // The task process joined its try's span.
    let traceparent = std::fs::read_to_string(&seen).unwrap();
    let (extract_id, _) = ti("extract");
    let extract_span = TryIdentity {
        ti_id: extract_id,
        try_number: 1,
    }
    .span_id();
    assert_eq!(
        traceparent.trim(),
        format!("00-{trace_id}-{extract_span}-01")
    );
    assert!(standalone.sigterm().success());
}

#[test]
fn without_traces_a_task_gets_no_traceparent() {
    let home = Home::new();
    let seen = home.path().join("traceparent");
    home.write_dag(
        "plain.yaml",
        &format!(
            "tasks:\n  - task_id: t\n    bash_command: 'echo \"[${{TRACEPARENT-unset}}]\" > {}'\n",
            seen.display()
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("plain");
    let states = home.wait_for_run("plain", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), "[unset]");
}

#[test]
fn a_collector_that_is_down_fails_no_run() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = Home::new();
    traces_on(&home, &format!("http://127.0.0.1:{port}"), "0.1");
    home.write_dag(
        "p.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n  - task_id: b\n    bash_command: echo b\n    dependencies: [a]\n",
    );
    let mut standalone = home.standalone();
    for _ in 0..3 {
        let run_id = home.trigger("p");
        let states = home.wait_for_run("p", &run_id, Duration::from_secs(30));
        assert_eq!(states["state"], "success", "{states:#}");
    }
    assert!(
        standalone.sigterm().success(),
        "a clean shutdown all the same"
    );
    // The operator learns why no traces arrive.
    let log = std::fs::read_to_string(home.path().join("standalone.log")).unwrap();
    assert!(log.contains("ExportError"), "{log}");
}

const PYTHON_TRACED: &str = r#"
import os
from datetime import datetime

from airflow.decorators import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def py_traced():
    @task
    def first():
        return os.environ.get("TRACEPARENT")

    @task
    def second(_):
        return os.environ.get("TRACEPARENT")

    second(first())


py_traced()
"#;

#[test]
fn python_tries_of_dags_test_see_their_own_traceparent_and_their_spans_are_sent_before_exit() {
    if !python_ready() {
        return;
    }
    let collector = Collector::start().unwrap();
    let home = Home::new();
    // A long interval: only the flush at the end of `dags test` can send the spans in time.
    traces_on(&home, collector.address(), "1h");
    home.write_dag("py_traced.py", PYTHON_TRACED);
    let doc = home.json(&["dags", "test", "py_traced"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    let run_id = doc["run_id"].as_str().unwrap();
    // Sent before the command returned.
    let spans = collector.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let traceparent_of = |task_id: &str| return_value(&home, run_id, task_id);
    for task_id in ["first", "second"] {
        let span = spans
            .iter()
            .find(|s| s.name == task_id)
            .unwrap_or_else(|| panic!("no span of {task_id}: {spans:#?}"));
        assert_eq!(
            traceparent_of(task_id),
            serde_json::Value::from(format!("00-{}-{}-01", span.trace_id, span.span_id))
        );
    }
}

#[test]
fn an_http_try_sends_its_traceparent_to_the_service_it_calls() {
    let (port, seen) = crate::http_tasks::serve();
    let collector = Collector::start().unwrap();
    let home = Home::new();
    traces_on(&home, collector.address(), "1h");
    home.write_dag(
        "http_traced.yaml",
        "tasks:\n  - task_id: call\n    operator: http\n    http:\n      http_conn_id: items_api\n      method: GET\n      endpoint: items\n",
    );
    let out = home
        .command()
        .args(["dags", "test", "http_traced", "--output", "json"])
        .env("AIRFLOW_CONN_ITEMS_API", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["state"], "success", "{doc:#}");
    let spans = collector.spans();
    let call = spans
        .iter()
        .find(|s| s.name == "call")
        .unwrap_or_else(|| panic!("no span of the try: {spans:#?}"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let sent: Vec<&str> = seen[0]
        .headers
        .iter()
        .filter(|(name, _)| name == "traceparent")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        sent,
        [format!("00-{}-{}-01", call.trace_id, call.span_id).as_str()]
    );
}
