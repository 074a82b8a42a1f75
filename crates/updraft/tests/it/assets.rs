//! Assets through the binary on SQLite: a producer's success triggers its consumer, `&`/`|`
//! conditions wait for what they need, `cron` with `assets` runs on both, an event recorded
//! through the REST API triggers its consumers, the tasks see `triggering_asset_events`
//! (templates and Python's context), and `assets list|details|materialize`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fixture::Home;
use crate::python_dags::python_ready;

/// The runs of `dag_id` of `run_type`.
fn runs_of(home: &Home, dag_id: &str, run_type: &str) -> Vec<Value> {
    home.json(&["dags", "list-runs", dag_id])
        .as_array()
        .expect("a list of runs")
        .iter()
        .filter(|r| r["run_type"] == run_type)
        .cloned()
        .collect()
}

/// Waits until `dag_id` has `n` finished runs of `run_type`; answers them.
fn wait_for_runs(home: &Home, dag_id: &str, run_type: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = runs_of(home, dag_id, run_type);
        let done = runs
            .iter()
            .filter(|r| r["state"] == "success" || r["state"] == "failed")
            .count();
        if done >= n {
            return runs;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(home.path().join("standalone.log")).unwrap_or_default();
            panic!("{dag_id} has not {n} finished {run_type} runs: {runs:#?}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Triggers `dag_id` and waits for that run to succeed.
fn produce(home: &Home, dag_id: &str) {
    let run_id = home.trigger(dag_id);
    let states = home.wait_for_run(dag_id, &run_id, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
}

#[test]
fn a_producers_success_triggers_its_consumer_with_the_events() {
    let home = Home::new();
    let out = home.path().join("seen.txt");
    home.write_dag(
        "producer.yaml",
        "dag_id: producer\ntasks:\n  - task_id: load\n    bash_command: 'true'\n    \
         outlets: [\"s3://raw/orders\"]\n",
    );
    home.write_dag(
        "consumer.yaml",
        &format!(
            "dag_id: consumer\nschedule: [\"s3://raw/orders\"]\ntasks:\n  - task_id: use\n    \
             bash_command: >-\n      echo \"{{{{ run_id.split('__')[0] }}}} \
             {{{{ (triggering_asset_events['s3://raw/orders'] | first).source_dag_id }}}} \
             {{{{ (triggering_asset_events.values() | first | first).source_task_id }}}}\" > {}\n",
            out.display()
        ),
    );
    let _standalone = home.standalone();
    produce(&home, "producer");
    let runs = wait_for_runs(&home, "consumer", "asset_triggered", 1);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["state"], "success");
    let seen = std::fs::read_to_string(&out).expect("the consumer wrote its file");
    assert_eq!(seen.trim(), "asset_triggered producer load");

    // The asset, its event and the consumer, as the CLI shows them.
    let assets = home.json(&["assets", "list"]);
    assert_eq!(assets[0]["uri"], "s3://raw/orders");
    assert_eq!(assets[0]["scheduled_dags"][0]["dag_id"], "consumer");
    assert_eq!(assets[0]["producing_tasks"][0]["task_id"], "load");
    assert!(!assets[0]["last_event"].is_null());
    let details = home.json(&["assets", "details", "--uri", "s3://raw/orders"]);
    assert_eq!(details[0]["name"], "s3://raw/orders");
    let missing = home.run(&["assets", "details", "--name", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("asset with name \"nope\" not found"));

    // Materializing runs the producer, whose success triggers the consumer again.
    let run = home.json(&["assets", "materialize", "--uri", "s3://raw/orders"]);
    assert_eq!(run[0]["dag_id"], "producer");
    wait_for_runs(&home, "consumer", "asset_triggered", 2);
}

#[test]
fn conditions_wait_for_all_and_any_and_cron_or_assets_runs_on_both() {
    let home = Home::new();
    for name in ["a", "b", "c"] {
        home.write_dag(
            &format!("make_{name}.yaml"),
            &format!(
                "dag_id: make_{name}\ntasks:\n  - task_id: t\n    bash_command: 'true'\n    \
                 outlets: [{name}]\n"
            ),
        );
    }
    home.write_dag(
        "needs.yaml",
        "dag_id: needs\nschedule:\n  all:\n    - a\n    - any: [b, c]\n\
         tasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    home.write_dag(
        "either.yaml",
        "dag_id: either\nstart_date: 2024-01-01\ncatchup: false\n\
         schedule: {cron: \"@daily\", assets: [c]}\ntasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let _standalone = home.standalone();
    // The time schedule alone makes the latest daily run.
    wait_for_runs(&home, "either", "scheduled", 1);

    produce(&home, "make_c");
    // `either` runs on c; `needs` still waits for a.
    wait_for_runs(&home, "either", "asset_triggered", 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs_of(&home, "needs", "asset_triggered").is_empty());
    produce(&home, "make_a");
    let runs = wait_for_runs(&home, "needs", "asset_triggered", 1);
    assert_eq!(runs.len(), 1);
    // Consumed: b alone is not enough now.
    produce(&home, "make_b");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs_of(&home, "needs", "asset_triggered").len(), 1);
}

#[test]
fn an_event_posted_to_the_api_triggers_the_consumers() {
    let home = Home::new();
    home.write_dag(
        "consumer.yaml",
        "dag_id: consumer\nschedule: [{name: orders, uri: \"s3://raw/orders\"}]\n\
         tasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let standalone = home.standalone();
    let base = standalone.base_url();
    let auth = standalone.admin_bearer(&home);
    let headers = [("Authorization", auth.as_str())];
    let (status, body) =
        crate::users::http("GET", &format!("{base}/api/v2/assets"), &headers, None);
    assert_eq!(status, 200, "{body}");
    let assets: Value = serde_json::from_str(&body).unwrap();
    let id = assets["assets"][0]["id"].as_i64().expect("the asset");

    let event = json!({"asset_id": id, "extra": {"from": "outside"}}).to_string();
    let (status, body) = crate::users::http(
        "POST",
        &format!("{base}/api/v2/assets/events"),
        &headers,
        Some(&event),
    );
    assert_eq!(status, 200, "{body}");
    let runs = wait_for_runs(&home, "consumer", "asset_triggered", 1);
    assert_eq!(runs[0]["state"], "success");

    // The event lists the run it triggered; the run has no logical date (Airflow 3).
    let (_, body) = crate::users::http(
        "GET",
        &format!("{base}/api/v2/assets/events?asset_id={id}"),
        &headers,
        None,
    );
    let events: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        events["asset_events"][0]["extra"],
        json!({"from": "outside"})
    );
    assert_eq!(
        events["asset_events"][0]["created_dagruns"][0]["run_id"],
        runs[0]["run_id"]
    );
    let (_, body) = crate::users::http(
        "GET",
        &format!("{base}/api/v2/dags/consumer/dagRuns"),
        &headers,
        None,
    );
    let api_runs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api_runs["dag_runs"][0]["triggered_by"], "asset");
    assert!(api_runs["dag_runs"][0]["logical_date"].is_null());

    // A bad request answers 4xx with a message.
    let (status, body) = crate::users::http(
        "POST",
        &format!("{base}/api/v2/assets/events"),
        &headers,
        Some("{\"asset_id\": 9999}"),
    );
    assert_eq!(status, 404, "{body}");
}

const PY_PRODUCER: &str = r#"
from datetime import datetime
from airflow.sdk import DAG, Asset, task

with DAG("py_producer", schedule=None, start_date=datetime(2024, 1, 1)):
    @task(outlets=[Asset("s3://py/out")])
    def make():
        return 1

    make()
"#;

const PY_CONSUMER: &str = r#"
from datetime import datetime
from airflow.sdk import DAG, Asset, task, get_current_context

with DAG("py_consumer", schedule=Asset("s3://py/out") | Asset("never"), start_date=datetime(2024, 1, 1)):
    @task
    def read():
        events = get_current_context()["triggering_asset_events"]
        [event] = events[Asset("s3://py/out")]
        with open(OUT, "w") as f:
            f.write(f"{event.source_dag_id} {event.asset.uri} {event.source_task_id}")

    read()
"#;

#[test]
fn python_dags_produce_and_consume_assets() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    let out = home.path().join("py_seen.txt");
    home.write_dag("py_producer.py", PY_PRODUCER);
    home.write_dag(
        "py_consumer.py",
        &format!("OUT = {:?}\n{PY_CONSUMER}", out.display().to_string()),
    );
    let _standalone = home.standalone();
    produce(&home, "py_producer");
    let runs = wait_for_runs(&home, "py_consumer", "asset_triggered", 1);
    assert_eq!(runs[0]["state"], "success", "{runs:#?}");
    let seen = std::fs::read_to_string(&out).expect("the consumer wrote its file");
    assert_eq!(seen, "py_producer s3://py/out make");
}
