//! Setup and teardown tasks through the binary: a teardown runs after its work failed, its
//! own failure does not fail the run, and clearing a work task clears its setup and teardown.

use crate::fixture::{state_of, Home};

/// create (setup) >> query >> delete (teardown of create); `query` runs `$QUERY`, `delete`
/// runs `$DELETE`, both given per DAG file.
fn dag(query: &str, delete: &str) -> String {
    format!(
        "tasks:\n  - {{task_id: create, bash_command: 'echo create', setup: true}}\n  - {{task_id: query, bash_command: '{query}', dependencies: [create]}}\n  - {{task_id: delete, bash_command: '{delete}', dependencies: [query], teardown: true, setups: [create]}}\n"
    )
}

#[test]
fn a_teardown_runs_after_its_work_failed_and_the_work_decides_the_run() {
    let home = Home::new();
    home.write_dag("failing_work.yaml", &dag("exit 3", "echo deleted"));
    let out = home.run(&["dags", "test", "failing_work", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "failed");
    assert_eq!(state_of(&doc, "create"), "success");
    assert_eq!(state_of(&doc, "query"), "failed");
    assert_eq!(state_of(&doc, "delete"), "success");

    home.write_dag("failing_teardown.yaml", &dag("echo query", "exit 4"));
    let doc = home.json(&["dags", "test", "failing_teardown"]);
    assert_eq!(doc["state"], "success");
    assert_eq!(state_of(&doc, "delete"), "failed");
}

#[test]
fn a_failed_setup_leaves_its_work_and_teardown_upstream_failed() {
    let home = Home::new();
    home.write_dag(
        "failing_setup.yaml",
        "tasks:\n  - {task_id: create, bash_command: 'exit 1', setup: true}\n  - {task_id: query, bash_command: 'echo q', dependencies: [create]}\n  - {task_id: delete, bash_command: 'echo d', teardown: true, setups: [create], dependencies: [query]}\n",
    );
    let out = home.run(&["dags", "test", "failing_setup", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "failed");
    assert_eq!(state_of(&doc, "query"), "upstream_failed");
    assert_eq!(state_of(&doc, "delete"), "upstream_failed");
}

#[test]
fn clearing_a_work_task_clears_its_setup_and_teardown() {
    let home = Home::new();
    home.write_dag("cluster.yaml", &dag("echo query", "echo deleted"));
    let doc = home.json(&["dags", "test", "cluster"]);
    assert_eq!(doc["state"], "success");
    let run_id = doc["run_id"].as_str().unwrap();

    let out = home.ok(&[
        "tasks", "clear", "cluster", "-t", "^query$", "--run-id", run_id,
    ]);
    assert!(out.contains("cleared 3 task instance(s)"), "{out}");
    let states = home.json(&["tasks", "states-for-dag-run", "cluster", run_id]);
    for task in ["create", "query", "delete"] {
        assert_eq!(state_of(&states, task), "none", "{task}: {states:#}");
    }

    home.ok(&["dags", "test", "cluster"]);
    let runs = home.json(&["dags", "list-runs", "cluster"]);
    let latest = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "success")
        .and_then(|r| r["run_id"].as_str())
        .unwrap()
        .to_string();
    // A setup brings its teardown, not its work; a teardown alone is only itself.
    let out = home.ok(&[
        "tasks",
        "clear",
        "cluster",
        "-t",
        "^create$",
        "--run-id",
        &latest,
        "--no-downstream",
    ]);
    assert!(out.contains("cleared 2 task instance(s)"), "{out}");
    let states = home.json(&["tasks", "states-for-dag-run", "cluster", &latest]);
    assert_eq!(state_of(&states, "query"), "success");
    assert_eq!(state_of(&states, "delete"), "none");
}

#[test]
fn python_setup_and_teardown_decorators_run() {
    let home = Home::new();
    let marker = home.path().join("deleted");
    home.write_dag(
        "taskflow.py",
        &format!(
            r#"
from airflow.sdk import DAG, setup, task, teardown

with DAG(dag_id="taskflow_st", schedule=None):
    @setup
    def create():
        return "cluster-1"

    @task
    def query(name):
        raise ValueError("query broke on " + name)

    @teardown
    def delete():
        open({marker:?}, "w").write("done")

    made = create()
    with made >> delete():
        query(made)
"#
        ),
    );
    let out = home.run(&["dags", "test", "taskflow_st", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "failed", "{doc:#}");
    assert_eq!(state_of(&doc, "create"), "success");
    assert_eq!(state_of(&doc, "query"), "failed");
    assert_eq!(state_of(&doc, "delete"), "success");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "done");
}
