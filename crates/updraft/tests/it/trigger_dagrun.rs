//! `operator: trigger_dagrun` (Airflow's `TriggerDagRunOperator`) through `standalone`: a parent
//! triggers a child with conf and waits for it; a child ending in a failed state fails the
//! parent; an existing run id fails the task unless `reset_dag_run` (cleared and run again) or
//! `skip_when_already_exists` (skipped); a missing DAG fails it with a clear message.

use std::time::Duration;

use serde_json::Value;

use crate::fixture::{state_of, try_of, Home};

const CHILD: &str = r#"
dag_id: child
tasks:
  - task_id: echo
    bash_command: "echo got {{ dag_run.conf.day }} in {{ run_id }}"
"#;

const FAILING_CHILD: &str = r#"
dag_id: failing_child
tasks:
  - {task_id: boom, bash_command: "exit 3", retries: 0}
"#;

/// A parent whose one task `go` triggers `child` with the given `trigger_dagrun:` keys.
fn parent(dag_id: &str, trigger: &str) -> String {
    format!(
        "dag_id: {dag_id}\ntasks:\n  - task_id: go\n    operator: trigger_dagrun\n    retries: 0\n    \
         trigger_dagrun: {trigger}\n"
    )
}

fn xcom(home: &Home, dag_id: &str, task_id: &str, key: &str) -> Vec<Value> {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let mut query = db
        .prepare(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id \
             WHERE r.dag_id = ?1 AND x.task_id = ?2 AND x.key = ?3 ORDER BY r.id",
        )
        .unwrap();
    query
        .query_map([dag_id, task_id, key], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|text| serde_json::from_str(&text.unwrap()).unwrap())
        .collect()
}

fn run_of<'a>(runs: &'a Value, run_id: &str) -> &'a Value {
    runs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run_id)
        .unwrap_or_else(|| panic!("no run {run_id} in {runs:#}"))
}

#[test]
fn a_parent_triggers_a_child_with_conf_and_waits_for_its_outcome() {
    let home = Home::new();
    home.write_dag("child.yaml", CHILD);
    home.write_dag("failing_child.yaml", FAILING_CHILD);
    home.write_dag(
        "waits.yaml",
        &parent(
            "waits",
            "{trigger_dag_id: child, trigger_run_id: 'from_{{ ds_nodash }}', conf: {day: '{{ ds }}'}, \
             logical_date: '2024-05-06T07:08:09+00:00', wait_for_completion: true, poke_interval: 0.2}",
        ),
    );
    home.write_dag(
        "waits_in_vain.yaml",
        &parent(
            "waits_in_vain",
            "{trigger_dag_id: failing_child, wait_for_completion: true, poke_interval: 0.2}",
        ),
    );
    home.write_dag(
        "nowhere.yaml",
        &parent("nowhere", "{trigger_dag_id: no_such_dag}"),
    );
    let _standalone = home.standalone();
    let waits = home.trigger("waits");
    let in_vain = home.trigger("waits_in_vain");
    let nowhere = home.trigger("nowhere");

    let states = home.wait_for_run("waits", &waits, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
    let runs = home.json(&["dags", "list-runs", "child"]);
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    let child_run = format!("from_{day}");
    let child = run_of(&runs, &child_run);
    assert_eq!(
        child["state"], "success",
        "the parent waited for it: {runs:#}"
    );
    assert_eq!(
        child["run_type"], "manual",
        "Airflow's run type of a triggered run"
    );
    assert!(
        child["logical_date"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-06T07:08:09"),
        "{child:#}"
    );
    let ds = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        xcom(&home, "child", "echo", "return_value"),
        [Value::from(format!("got {ds} in {child_run}"))],
        "the conf reached the child's templates"
    );
    assert_eq!(
        xcom(&home, "waits", "go", "trigger_run_id"),
        [Value::from(child_run.clone())]
    );
    let log = home.ok(&["tasks", "logs", "waits", &waits, "go"]);
    assert!(
        log.contains(&format!("Triggered DAG child: run {child_run}")),
        "{log}"
    );
    assert!(log.contains("ended in allowed state success"), "{log}");

    let states = home.wait_for_run("waits_in_vain", &in_vain, Duration::from_secs(60));
    assert_eq!(states["state"], "failed", "{states:#}");
    assert_eq!(state_of(&states, "go"), "failed");
    let log = home.ok(&["tasks", "logs", "waits_in_vain", &in_vain, "go"]);
    assert!(log.contains("ended in failed state failed"), "{log}");
    let failing_runs = home.json(&["dags", "list-runs", "failing_child"]);
    assert_eq!(failing_runs[0]["state"], "failed", "{failing_runs:#}");
    let triggered = xcom(&home, "waits_in_vain", "go", "trigger_run_id");
    assert_eq!(
        triggered,
        [failing_runs[0]["run_id"].clone()],
        "pushed before the wait, kept though the task failed"
    );

    let states = home.wait_for_run("nowhere", &nowhere, Duration::from_secs(60));
    assert_eq!(state_of(&states, "go"), "failed");
    let log = home.ok(&["tasks", "logs", "nowhere", &nowhere, "go"]);
    assert!(
        log.contains("cannot trigger DAG no_such_dag: no such DAG"),
        "{log}"
    );
}

#[test]
fn an_existing_run_fails_the_trigger_unless_it_is_reset_or_skipped() {
    let home = Home::new();
    home.write_dag("child.yaml", CHILD);
    let fixed = "{trigger_dag_id: child, trigger_run_id: fixed, conf: {day: one}, \
                 wait_for_completion: true, poke_interval: 0.2";
    home.write_dag("once.yaml", &parent("once", &format!("{fixed}}}")));
    home.write_dag(
        "again.yaml",
        &parent("again", &format!("{fixed}, reset_dag_run: true}}")),
    );
    home.write_dag(
        "skips.yaml",
        &parent(
            "skips",
            &format!("{fixed}, skip_when_already_exists: true}}"),
        ),
    );
    let _standalone = home.standalone();

    let first = home.trigger("once");
    let states = home.wait_for_run("once", &first, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
    let child = home.json(&["tasks", "states-for-dag-run", "child", "fixed"]);
    assert_eq!(child["state"], "success");
    assert_eq!(try_of(&child, "echo"), 1);

    let second = home.trigger("once");
    let states = home.wait_for_run("once", &second, Duration::from_secs(60));
    assert_eq!(
        state_of(&states, "go"),
        "failed",
        "the run exists: {states:#}"
    );
    let log = home.ok(&["tasks", "logs", "once", &second, "go"]);
    assert!(log.contains("DAG child already has a run fixed"), "{log}");

    let skipped = home.trigger("skips");
    let states = home.wait_for_run("skips", &skipped, Duration::from_secs(60));
    assert_eq!(state_of(&states, "go"), "skipped", "{states:#}");

    let reset = home.trigger("again");
    let states = home.wait_for_run("again", &reset, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
    let child = home.json(&["tasks", "states-for-dag-run", "child", "fixed"]);
    assert_eq!(child["state"], "success");
    assert_eq!(
        try_of(&child, "echo"),
        2,
        "cleared and run again: {child:#}"
    );
    let runs = home.json(&["dags", "list-runs", "child"]);
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "never a second run: {runs:#}"
    );
}
