//! Runs that depend on other runs through the binary on SQLite: a run past its
//! `dagrun_timeout` under `dags test` ends failed with its tasks skipped and its running
//! task's process killed; `standalone` pauses a DAG after `max_consecutive_failed_dag_runs`
//! failed runs, saying why in the event log; a task that `depends_on_past` waits for its
//! previous instance.

use std::time::Duration;

use crate::fixture::{eventually, process_alive, state_of, Home};

#[test]
fn dags_test_fails_a_run_past_its_dagrun_timeout_and_kills_its_running_task() {
    let home = Home::new();
    let pid_file = home.path().join("work.pid");
    home.write_dag(
        "slow.yaml",
        &format!(
            "dagrun_timeout: 2s\ntasks:\n  - task_id: work\n    bash_command: echo $$ > {pid}; \
             exec sleep 120\n  - task_id: after\n    bash_command: 'true'\n    dependencies: [work]\n",
            pid = pid_file.display()
        ),
    );
    let out = home.run(&["dags", "test", "slow", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "failed");
    assert_eq!(state_of(&doc, "work"), "skipped");
    assert_eq!(state_of(&doc, "after"), "skipped");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the task wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        eventually(Duration::from_secs(30), || (!process_alive(pid))
            .then_some(()))
        .is_some(),
        "the timed-out task's process {pid} still runs"
    );
}

/// `dag_id`'s `is_paused` as `dags list` shows it.
fn is_paused(home: &Home, dag_id: &str) -> bool {
    let dags = home.json(&["dags", "list"]);
    let dag = dags
        .as_array()
        .and_then(|dags| dags.iter().find(|d| d["dag_id"] == dag_id))
        .unwrap_or_else(|| panic!("no DAG {dag_id} in {dags:#}"));
    dag["is_paused"].as_bool().expect("is_paused")
}

#[test]
fn standalone_pauses_a_dag_whose_latest_runs_failed_and_releases_tasks_held_on_their_past() {
    let home = Home::new();
    home.write_dag(
        "fragile.yaml",
        "max_consecutive_failed_dag_runs: 2\ntasks:\n  - task_id: t\n    bash_command: exit 3\n    retries: 0\n",
    );
    // `a` succeeds once the gate file exists.
    let gate = home.path().join("gate");
    home.write_dag(
        "past.yaml",
        &format!(
            "default_args: {{depends_on_past: true, retries: 0}}\ntasks:\n  - task_id: a\n    \
             bash_command: test -e {gate}\n",
            gate = gate.display()
        ),
    );
    let _standalone = home.standalone();
    let first = home.trigger("fragile");
    let state = home.wait_for_run("fragile", &first, Duration::from_secs(60));
    assert_eq!(state["state"], "failed");
    assert!(!is_paused(&home, "fragile"));
    let second = home.trigger("fragile");
    let state = home.wait_for_run("fragile", &second, Duration::from_secs(60));
    assert_eq!(state["state"], "failed");
    assert!(
        eventually(Duration::from_secs(30), || is_paused(&home, "fragile")
            .then_some(()))
        .is_some(),
        "fragile was not paused after two failed runs"
    );

    // The first run's `a` fails (no gate yet): the second run's `a` waits on it...
    let first = home.trigger("past");
    let state = home.wait_for_run("past", &first, Duration::from_secs(60));
    assert_eq!(state["state"], "failed");
    let second = home.trigger("past");
    let states = home.json(&["tasks", "states-for-dag-run", "past", &second]);
    assert_eq!(state_of(&states, "a"), "none", "{states:#}");
    // ...until it succeeds there, run again by a clear.
    std::fs::write(&gate, "").unwrap();
    home.ok(&["tasks", "clear", "past", "-t", "^a$", "--run-id", &first]);
    for run in [&first, &second] {
        let state = home.wait_for_run("past", run, Duration::from_secs(60));
        assert_eq!(state["state"], "success", "{state:#}");
    }
}
