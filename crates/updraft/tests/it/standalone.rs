//! `updraft standalone` as a user runs it: health, triggers from the CLI, DAG file changes.

use std::process::Stdio;
use std::time::Duration;

use crate::fixture::{eventually, http_get, state_of, unsafe_kill, Home};

#[test]
fn serves_health_and_runs_triggered_dags() {
    let home = Home::new();
    home.write_dag(
        "pipeline.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n  - task_id: b\n    bash_command: echo b\n    dependencies: [a]\n  - task_id: c\n    operator: empty\n    dependencies: [b]\n",
    );
    let mut standalone = home.standalone();
    let health: serde_json::Value =
        serde_json::from_str(&http_get(&standalone.health_url).unwrap()).unwrap();
    assert_eq!(health["metadatabase"]["status"], "healthy");
    assert_eq!(health["scheduler"]["status"], "healthy");
    assert!(health["scheduler"]["latest_scheduler_heartbeat"].is_string());

    let run_id = home.trigger("pipeline");
    let states = home.wait_for_run("pipeline", &run_id, Duration::from_secs(20));
    assert_eq!(states["state"], "success");
    for task in ["a", "b", "c"] {
        assert_eq!(state_of(&states, task), "success");
    }

    // `--wait` returns when the run is over, with its final state.
    let out = home.json(&["dags", "trigger", "pipeline", "--wait"]);
    assert_eq!(out[0]["state"], "success");

    assert!(
        standalone.sigterm().success(),
        "SIGTERM is a clean shutdown"
    );
}

/// A supervisor (or the benchmark harness) stops it as soon as the health endpoint answers,
/// before the banner: the handler is in place by then, so that is a clean shutdown, not death
/// by the signal.
#[test]
fn sigterm_as_soon_as_health_answers_is_a_clean_shutdown() {
    let home = Home::new();
    home.write_dag(
        "one.yaml",
        "tasks:\n  - task_id: t\n    bash_command: \"true\"\n",
    );
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = home
            .command()
            .args([
                "standalone",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let health = format!("http://127.0.0.1:{port}/api/v2/monitor/health");
        let answered = eventually(Duration::from_secs(30), || http_get(&health));
        assert!(answered.is_some(), "the health endpoint never answered");
        unsafe_kill(child.id(), libc::SIGTERM);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "SIGTERM right after health answered: {status}"
        );
    }
}

#[test]
fn picks_up_new_changed_and_broken_dag_files_without_restart() {
    let home = Home::new();
    home.write_dag(
        "one.yaml",
        "tasks:\n  - task_id: t\n    bash_command: echo v1\n",
    );
    let _standalone = home.standalone();

    home.write_dag(
        "two.yaml",
        "tasks:\n  - task_id: t\n    bash_command: echo two\n",
    );
    home.write_dag("broken.yaml", "tasks: [unclosed\n");
    let seen = eventually(Duration::from_secs(10), || {
        let errors = home.json(&["dags", "list-import-errors"]);
        (errors.as_array().unwrap().len() == 1).then_some(errors)
    });
    let errors = seen.expect("the broken file was never reported");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("line"),
        "{errors:#}"
    );

    // The other DAGs keep running.
    let run_id = home.trigger("two");
    assert_eq!(
        home.wait_for_run("two", &run_id, Duration::from_secs(20))["state"],
        "success"
    );

    // A changed file is used by new runs.
    home.write_dag(
        "one.yaml",
        "tasks:\n  - task_id: t\n    bash_command: echo v2\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    let run_id = home.trigger("one");
    assert_eq!(
        home.wait_for_run("one", &run_id, Duration::from_secs(20))["state"],
        "success"
    );
    let log = home.ok(&["tasks", "logs", "one", &run_id, "t"]);
    assert!(log.contains("{stdout} v2"), "{log}");
}

#[test]
fn paused_dags_do_not_run_until_unpaused() {
    let home = Home::new();
    home.write_dag(
        "p.yaml",
        "tasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let _standalone = home.standalone();
    home.ok(&["dags", "pause", "p"]);
    let run_id = home.trigger("p");
    std::thread::sleep(Duration::from_millis(500));
    let states = home.json(&["tasks", "states-for-dag-run", "p", &run_id]);
    assert_eq!(states["state"], "queued");
    home.ok(&["dags", "unpause", "p"]);
    assert_eq!(
        home.wait_for_run("p", &run_id, Duration::from_secs(20))["state"],
        "success"
    );
}

#[test]
fn a_second_standalone_on_the_same_database_is_refused() {
    let home = Home::new();
    let _first = home.standalone();
    let out = home.run(&["standalone", "--port", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
}

#[test]
fn dags_test_runs_its_tasks_itself_while_standalone_runs() {
    let home = Home::new();
    let parents = home.path().join("parents");
    // The test's own worker runs 2 tasks at a time, so queued tasks wait longer than
    // standalone's worker takes to look for queued work (5 s).
    let mut dag = String::from("tasks:\n");
    for i in 0..24 {
        dag.push_str(&format!(
            "  - task_id: t{i}\n    bash_command: echo $PPID >> {}; sleep 0.5\n",
            parents.display()
        ));
    }
    home.write_dag("wide.yaml", &dag);
    let standalone = home.standalone();
    let out = home
        .command()
        .args(["dags", "test", "wide", "--output", "json"])
        .env("UPDRAFT_WORKER__CONCURRENCY", "2")
        .output()
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["state"], "success");
    let parents = std::fs::read_to_string(&parents).unwrap();
    let parents: std::collections::HashSet<&str> = parents.lines().collect();
    assert_eq!(
        parents.len(),
        1,
        "tasks ran in more than one process: {parents:?}"
    );
    assert!(!parents.contains(standalone.child.id().to_string().as_str()));
}
