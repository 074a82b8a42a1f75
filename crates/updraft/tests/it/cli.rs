//! The CLI without a running standalone: listings, errors, `dags test`, variables, config.

use crate::fixture::{state_of, try_of, Home};

const CHAIN: &str = r#"
dag_id: chain
tags: [t]
params: {who: world}
tasks:
  - task_id: first
    bash_command: echo "hello {{ params.who }} on {{ ds }}"
  - task_id: second
    bash_command: echo "got {{ ti.xcom_pull(task_ids='first') }}"
    dependencies: [first]
"#;

#[test]
fn dags_list_shows_dags_and_import_errors_separately() {
    let home = Home::new();
    home.write_dag("chain.yaml", CHAIN);
    home.write_dag(
        "broken.yaml",
        "dag_id: broken\ntasks:\n  - task_id: a\n    bash_command: true\n    dependecies: [b]\n",
    );
    let dags = home.json(&["dags", "list"]);
    assert_eq!(dags.as_array().unwrap().len(), 1);
    assert_eq!(dags[0]["dag_id"], "chain");
    assert_eq!(dags[0]["is_paused"], false);
    assert_eq!(dags[0]["tags"][0], "t");
    let errors = home.json(&["dags", "list-import-errors"]);
    assert_eq!(errors.as_array().unwrap().len(), 1);
    assert!(errors[0]["filename"]
        .as_str()
        .unwrap()
        .ends_with("broken.yaml"));
    assert!(
        errors[0]["error"].as_str().unwrap().contains("dependecies"),
        "{errors:#}"
    );

    // Fixing the file clears the error and the DAG appears.
    home.write_dag(
        "broken.yaml",
        "dag_id: broken\ntasks:\n  - task_id: a\n    bash_command: 'true'\n",
    );
    assert_eq!(
        home.json(&["dags", "list-import-errors"]),
        serde_json::json!([])
    );
    assert_eq!(home.json(&["dags", "list"]).as_array().unwrap().len(), 2);

    // Deleting a file removes its DAG.
    std::fs::remove_file(home.dags().join("broken.yaml")).unwrap();
    assert_eq!(home.json(&["dags", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn dags_test_runs_the_dag_and_templates_see_params_and_xcom() {
    let home = Home::new();
    home.write_dag("chain.yaml", CHAIN);
    let out = home.json(&[
        "dags",
        "test",
        "chain",
        "2026-03-04",
        "--conf",
        r#"{"who": "updraft"}"#,
    ]);
    assert_eq!(out["dag_id"], "chain");
    assert_eq!(out["state"], "success");
    assert_eq!(state_of(&out, "first"), "success");
    assert_eq!(state_of(&out, "second"), "success");
    let run_id = out["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "chain", run_id, "second"]);
    assert!(
        log.contains("{stdout} got hello updraft on 2026-03-04"),
        "{log}"
    );
}

#[test]
fn dags_test_exits_1_when_the_run_fails_and_an_undefined_variable_is_logged() {
    let home = Home::new();
    home.write_dag(
        "bad.yaml",
        "tasks:\n  - task_id: t\n    bash_command: echo {{ params.nope }}\n  - task_id: after\n    bash_command: 'true'\n    dependencies: [t]\n",
    );
    let out = home.run(&["dags", "test", "bad", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "failed");
    assert_eq!(state_of(&doc, "t"), "failed");
    assert_eq!(state_of(&doc, "after"), "upstream_failed");
    let log = home.ok(&["tasks", "logs", "bad", doc["run_id"].as_str().unwrap(), "t"]);
    assert!(log.contains("params.nope"), "{log}");
}

#[test]
fn retries_run_again_and_each_try_has_its_log() {
    let home = Home::new();
    let marker = home.path().join("tried-once");
    home.write_dag(
        "flaky.yaml",
        &format!(
            "tasks:\n  - task_id: flaky\n    retries: 2\n    retry_delay: 0\n    bash_command: 'if [ -e {m} ]; then echo second; else touch {m}; echo first; exit 3; fi'\n",
            m = marker.display()
        ),
    );
    let out = home.json(&["dags", "test", "flaky"]);
    assert_eq!(out["state"], "success");
    assert_eq!(try_of(&out, "flaky"), 2);
    let run_id = out["run_id"].as_str().unwrap();
    let first = home.ok(&["tasks", "logs", "flaky", run_id, "flaky", "--try", "1"]);
    assert!(
        first.contains("{stdout} first") && first.contains("exited with code 3"),
        "{first}"
    );
    let second = home.ok(&["tasks", "logs", "flaky", run_id, "flaky"]);
    assert!(second.contains("{stdout} second"), "{second}");
}

#[test]
fn skip_exit_code_and_timeout() {
    let home = Home::new();
    home.write_dag(
        "mixed.yaml",
        "tasks:\n  - task_id: skip\n    bash_command: exit 99\n  - task_id: custom_skip\n    bash_command: exit 7\n    skip_on_exit_code: [7]\n  - task_id: slow\n    bash_command: sleep 30\n    execution_timeout: 1s\n",
    );
    let out = home.run(&["dags", "test", "mixed", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&doc, "skip"), "skipped");
    assert_eq!(state_of(&doc, "custom_skip"), "skipped");
    assert_eq!(state_of(&doc, "slow"), "failed");
    assert_eq!(out.status.code(), Some(1));
    let log = home.ok(&[
        "tasks",
        "logs",
        "mixed",
        doc["run_id"].as_str().unwrap(),
        "slow",
    ]);
    assert!(log.contains("timed out"), "{log}");
}

#[test]
fn unknown_ids_and_bad_arguments_fail_with_one_line() {
    let home = Home::new();
    home.write_dag("chain.yaml", CHAIN);
    for args in [
        vec!["dags", "trigger", "nope"],
        vec!["dags", "pause", "nope"],
        vec!["dags", "list-runs", "nope"],
        vec!["tasks", "states-for-dag-run", "chain", "no-such-run"],
        vec!["dags", "trigger", "chain", "--conf", "{not json"],
        vec!["dags", "trigger", "chain", "--logical-date", "yesterday"],
        vec!["variables", "get", "missing"],
        vec!["tasks", "clear", "chain", "--task-regex", "("],
    ] {
        let out = home.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let out = home.run(&["dags", "frobnicate"]);
    assert!(!out.status.success());
}

#[test]
fn trigger_twice_with_the_same_run_id_is_refused() {
    let home = Home::new();
    home.write_dag("chain.yaml", CHAIN);
    home.ok(&["dags", "trigger", "chain", "--run-id", "r1"]);
    let out = home.run(&["dags", "trigger", "chain", "--run-id", "r1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let runs = home.json(&["dags", "list-runs", "chain"]);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["state"], "queued");
    assert_eq!(runs[0]["run_type"], "manual");
}

#[test]
fn trigger_checks_the_conf_against_the_params() {
    let home = Home::new();
    home.write_dag(
        "p.yaml",
        "params:\n  count: {type: integer, default: 2, minimum: 1}\ntasks:\n  - task_id: t\n    bash_command: echo {{ params.count }}\n",
    );
    let out = home.run(&["dags", "trigger", "p", "--conf", r#"{"count": 0}"#]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Invalid input for param count: 0 is less than the minimum of 1"),
        "{stderr}"
    );
    assert_eq!(
        home.json(&["dags", "list-runs", "p"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    home.ok(&["dags", "trigger", "p", "--conf", r#"{"count": 3}"#]);
    assert_eq!(
        home.json(&["dags", "list-runs", "p"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn variables_round_trip_and_reach_templates() {
    let home = Home::new();
    home.ok(&["variables", "set", "greeting", "bonjour"]);
    home.ok(&["variables", "set", "cfg", r#"{"n": 3}"#]);
    assert_eq!(home.ok(&["variables", "get", "greeting"]).trim(), "bonjour");
    let list = home.json(&["variables", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    home.write_dag(
        "v.yaml",
        "tasks:\n  - task_id: t\n    bash_command: echo {{ var.value.greeting }} {{ var.json.cfg.n }}\n",
    );
    let out = home.json(&["dags", "test", "v"]);
    let log = home.ok(&["tasks", "logs", "v", out["run_id"].as_str().unwrap(), "t"]);
    assert!(log.contains("{stdout} bonjour 3"), "{log}");
    home.ok(&["variables", "delete", "greeting"]);
    assert!(!home.run(&["variables", "get", "greeting"]).status.success());
}

#[test]
fn next_execution_lists_fire_times_in_utc() {
    let home = Home::new();
    home.write_dag(
        "daily.yaml",
        "schedule: '0 6 * * *'\ntimezone: Europe/Amsterdam\nstart_date: 2026-01-01\ntasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let times = home.json(&["dags", "next-execution", "daily", "-n", "3"]);
    let times: Vec<&str> = times
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    for t in &times {
        let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
        // 06:00 in Amsterdam is 04:00 or 05:00 UTC depending on the season.
        assert!(
            [4, 5].contains(&chrono::Timelike::hour(&t.naive_utc())),
            "{t}"
        );
    }
}

#[test]
fn config_list_shows_environment_overrides() {
    let home = Home::new();
    let out = home
        .command()
        .args(["config", "list", "--output", "json"])
        .env("UPDRAFT_CORE__PARALLELISM", "7")
        .output()
        .unwrap();
    assert!(out.status.success());
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["core"]["parallelism"], 7);
    std::fs::write(home.path().join("updraft.toml"), "[api]\nport = 9999\n").unwrap();
    let config = home.json(&["config", "list"]);
    assert_eq!(config["api"]["port"], 9999);
    std::fs::write(home.path().join("updraft.toml"), "[api]\nport = 'many'\n").unwrap();
    let out = home.run(&["config", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
}

#[test]
fn clear_reruns_a_task_and_its_downstream() {
    let home = Home::new();
    home.write_dag("chain.yaml", CHAIN);
    let out = home.json(&["dags", "test", "chain"]);
    let run_id = out["run_id"].as_str().unwrap().to_string();
    home.ok(&[
        "tasks",
        "clear",
        "chain",
        "--task-regex",
        "^first$",
        "--run-id",
        &run_id,
    ]);
    let states = home.json(&["tasks", "states-for-dag-run", "chain", &run_id]);
    assert_eq!(states["state"], "queued");
    assert_eq!(state_of(&states, "first"), "none");
    assert_eq!(state_of(&states, "second"), "none");
}

#[test]
fn every_operator_kind_runs_to_its_end() {
    // One task of each kind the model has: a new kind must be given a way to run (the
    // worker's exhaustive match) and a form in DAG files before this passes again.
    let home = Home::new();
    let mut dag = String::from("tasks:\n");
    // Docker tasks need an engine; without one (the reason printed) they are left out.
    let docker_image = crate::docker_tasks::image();
    let mut kinds: Vec<&str> = updraft_model::Operator::KINDS.to_vec();
    kinds.retain(|k| *k != "docker" || docker_image.is_some());
    for kind in updraft_model::Operator::KINDS {
        match kind {
            "docker" => {
                if let Some(image) = docker_image {
                    dag.push_str(&format!(
                        "  - task_id: t_docker\n    operator: docker\n    docker: {{image: {image}, command: 'echo ran-in-a-container', auto_remove: force}}\n"
                    ));
                }
            }
            "bash" => {
                dag.push_str("  - task_id: t_bash\n    bash_command: echo ran-as-a-process\n")
            }
            "empty" => dag.push_str("  - task_id: t_empty\n    operator: empty\n"),
            "http" => dag.push_str(
                "  - task_id: t_http\n    operator: http\n    http: {method: GET, endpoint: items}\n",
            ),
            // Without waiting: the triggered run is created, nothing runs it in `dags test`.
            "trigger_dagrun" => dag.push_str(
                "  - task_id: t_trigger_dagrun\n    operator: trigger_dagrun\n    trigger_dagrun: {trigger_dag_id: kinds_py, trigger_run_id: from_kinds}\n",
            ),
            "external_task_marker" => dag.push_str(
                "  - task_id: t_external_task_marker\n    operator: external_task_marker\n    external_task_marker: {external_dag_id: kinds_py, external_task_id: t_python}\n",
            ),
            // Waits for a run of the same logical date: this one, which is running.
            "external_task_sensor" => dag.push_str(
                "  - task_id: t_external_task_sensor\n    operator: external_task_sensor\n    external_task_sensor: {external_dag_id: kinds, allowed_states: [running]}\n",
            ),
            // A Python task's body lives in a Python DAG file (the SDK runs it from there).
            "python" => home.write_dag(
                "kinds_py.py",
                "from datetime import datetime\nfrom airflow.decorators import dag, task\n\n\
                 @dag(schedule=None, start_date=datetime(2024, 1, 1))\ndef kinds_py():\n\
                 \x20   @task\n    def t_python():\n        print('ran-in-python')\n\n\
                 \x20   t_python()\n\n\nkinds_py()\n",
            ),
            // A sensor finds what it waits for at its first poke, or its instant passed.
            "file_sensor" => dag.push_str(&format!(
                "  - task_id: t_file_sensor\n    operator: file_sensor\n    file_sensor: {{filepath: '{}'}}\n",
                home.path().join("dags").display()
            )),
            "time_delta_sensor" => dag.push_str(
                "  - task_id: t_time_delta_sensor\n    operator: time_delta_sensor\n    time_delta_sensor: {delta: 0}\n",
            ),
            "time_sensor" => dag.push_str(
                "  - task_id: t_time_sensor\n    operator: time_sensor\n    time_sensor: {target_time: '00:00'}\n",
            ),
            "date_time_sensor" => dag.push_str(
                "  - task_id: t_date_time_sensor\n    operator: date_time_sensor\n    date_time_sensor: {target_time: '2020-01-01T00:00:00Z'}\n",
            ),
            other => panic!("operator kind {other:?} has no case in this test"),
        }
    }
    home.write_dag("kinds.yaml", &dag);
    let (port, _) = crate::http_tasks::serve();
    let out = home
        .command()
        .args(["dags", "test", "kinds", "--output", "json"])
        .env(
            "AIRFLOW_CONN_HTTP_DEFAULT",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["state"], "success", "{doc}");
    let py_doc = home.json(&["dags", "test", "kinds_py"]);
    assert_eq!(py_doc["state"], "success", "{py_doc}");
    for kind in kinds {
        let doc = if kind == "python" { &py_doc } else { &doc };
        assert_eq!(state_of(doc, &format!("t_{kind}")), "success", "{kind}");
    }
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "kinds", run_id, "t_bash"]);
    assert!(log.contains("ran-as-a-process"), "{log}");
    let run_id = py_doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "kinds_py", run_id, "t_python"]);
    assert!(log.contains("ran-in-python"), "{log}");
}
