//! Dynamic task mapping through the binary: YAML `expand:` over literals and an upstream
//! result, one real task instance per value, reduced downstream, and the failures Airflow
//! gives.

use serde_json::Value;

use crate::fixture::{state_of, Home};

/// `(map_index, state)` of every instance of `task_id`, by map index.
fn instances(doc: &Value, task_id: &str) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = doc["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ti| ti["task_id"] == task_id)
        .map(|ti| {
            (
                ti["map_index"].as_i64().unwrap(),
                ti["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

const MAPPED: &str = r#"
dag_id: mapped
tasks:
  - task_id: list_names
    bash_command: |
      echo '[{"NAME": "a"}, {"NAME": "b"}, {"NAME": "c"}]'
  - task_id: each
    bash_command: echo "item $NAME at {{ ti.map_index }}"
    expand:
      env: {xcom: list_names}
  - task_id: greet
    expand:
      bash_command: ["echo hello", "echo bonjour"]
  - task_id: total
    bash_command: echo "{{ ti.xcom_pull(task_ids='each') | join(',') }} / {{ ti.xcom_pull(task_ids='greet') | join(',') }}"
    dependencies: [each, greet]
  - task_id: nothing
    expand:
      bash_command: []
  - task_id: after_nothing
    bash_command: echo never
    dependencies: [nothing]
"#;

#[test]
fn mapped_tasks_run_one_instance_per_value_and_reduce_downstream() {
    let home = Home::new();
    home.write_dag("mapped.yaml", MAPPED);
    let doc = home.json(&["dags", "test", "mapped"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    let success = |n: i64| {
        (0..n)
            .map(|i| (i, "success".to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(instances(&doc, "each"), success(3));
    assert_eq!(instances(&doc, "greet"), success(2));
    assert_eq!(instances(&doc, "total"), vec![(-1, "success".to_string())]);
    // Airflow: nothing to map over skips the task, and its downstream by the trigger rule.
    assert_eq!(
        instances(&doc, "nothing"),
        vec![(-1, "skipped".to_string())]
    );
    assert_eq!(state_of(&doc, "after_nothing"), "skipped");

    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&[
        "tasks",
        "logs",
        "mapped",
        run_id,
        "each",
        "--map-index",
        "1",
    ]);
    assert!(log.contains("{stdout} item b at 1"), "{log}");
    let log = home.ok(&["tasks", "logs", "mapped", run_id, "total"]);
    assert!(
        log.contains("{stdout} item a at 0,item b at 1,item c at 2 / hello,bonjour"),
        "{log}"
    );
    let out = home.run(&["tasks", "logs", "mapped", run_id, "each"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no map index -1 in run"),
        "{out:?}"
    );
}

#[test]
fn a_result_that_cannot_be_mapped_over_fails_the_task_that_returned_it() {
    let home = Home::new();
    home.write_dag(
        "bad_map.yaml",
        "tasks:\n  - task_id: produce\n    bash_command: echo not-a-list\n  - task_id: consume\n    expand:\n      bash_command: {xcom: produce}\n",
    );
    let out = home.run(&["dags", "test", "bad_map", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&doc, "produce"), "failed");
    assert_eq!(state_of(&doc, "consume"), "upstream_failed");
    let log = home.ok(&[
        "tasks",
        "logs",
        "bad_map",
        doc["run_id"].as_str().unwrap(),
        "produce",
    ]);
    assert!(
        log.contains(
            "task 'consume' can only map over a list or a dict, but task 'produce' returned a string"
        ),
        "{log}"
    );
}

const MAPPED_PY: &str = r#"
from datetime import datetime
from airflow.decorators import dag, task
from airflow.operators.bash import BashOperator


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def mapped_py():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def add(x, y, ti=None):
        print(f"instance {ti.map_index} adds {x} and {y}")
        return x + y

    @task
    def total(values, ti=None):
        print(f"total {sum(values)} of {list(values)}")
        one = ti.xcom_pull(task_ids="add", map_indexes=1)
        print(f"picked {one} and {ti.xcom_pull(task_ids='add', map_indexes=[0, 2])}")
        return sum(values)

    total(add.partial(y=10).expand(x=numbers()))
    BashOperator.partial(task_id="echo").expand(bash_command=["echo one", "echo two"])


mapped_py()
"#;

#[test]
fn python_taskflow_mapping_runs_and_reduces() {
    let home = Home::new();
    home.write_dag("mapped_py.py", MAPPED_PY);
    let doc = home.json(&["dags", "test", "mapped_py"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    let success = |n: i64| {
        (0..n)
            .map(|i| (i, "success".to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(instances(&doc, "add"), success(3));
    assert_eq!(instances(&doc, "echo"), success(2));
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&[
        "tasks",
        "logs",
        "mapped_py",
        run_id,
        "add",
        "--map-index",
        "2",
    ]);
    assert!(log.contains("instance 2 adds 3 and 10"), "{log}");
    let log = home.ok(&["tasks", "logs", "mapped_py", run_id, "total"]);
    assert!(log.contains("total 36 of [11, 12, 13]"), "{log}");
    assert!(log.contains("picked 12 and [11, 13]"), "{log}");
    let log = home.ok(&[
        "tasks",
        "logs",
        "mapped_py",
        run_id,
        "echo",
        "--map-index",
        "1",
    ]);
    assert!(log.contains("{stdout} two"), "{log}");
}
