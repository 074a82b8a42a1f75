//! `logging.json_logs`: a process's logs as JSON lines; colours only on a terminal.

use std::time::Duration;

use crate::fixture::Home;

fn standalone_log(home: &Home) -> String {
    std::fs::read_to_string(home.path().join("standalone.log")).unwrap()
}

#[test]
fn with_json_logs_every_line_of_standalone_is_a_json_object() {
    let home = Home::new();
    std::fs::write(
        home.path().join("updraft.toml"),
        "[logging]\njson_logs = true\n",
    )
    .unwrap();
    home.write_dag(
        "p.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n",
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("p");
    let states = home.wait_for_run("p", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success");
    assert!(standalone.sigterm().success());

    let log = standalone_log(&home);
    assert!(!log.contains('\u{1b}'), "no terminal, no colours:\n{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{log}")))
        .collect();
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["target"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    // The structured fields stay fields.
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "dag run finished")
        .unwrap_or_else(|| panic!("no run end logged:\n{log}"));
    assert_eq!(finished["fields"]["dag_id"], "p");
    assert_eq!(finished["fields"]["run_id"], run_id.as_str());
    assert_eq!(finished["fields"]["state"], "success");
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["target"], "updraft_scheduler::evaluation");
}

#[test]
fn text_logs_without_a_terminal_have_no_colours() {
    let home = Home::new();
    home.write_dag(
        "p.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n",
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("p");
    home.wait_for_run("p", &run_id, Duration::from_secs(30));
    assert!(standalone.sigterm().success());
    let log = standalone_log(&home);
    assert!(log.contains("dag run finished"), "{log}");
    assert!(!log.contains('\u{1b}'), "no terminal, no colours:\n{log}");
    assert!(serde_json::from_str::<serde_json::Value>(log.lines().next().unwrap()).is_err());
}
