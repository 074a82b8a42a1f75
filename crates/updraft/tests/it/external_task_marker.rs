//! `operator: external_task_marker` through the CLI: `tasks clear` of a task with its
//! downstream also clears the marked task of the other DAG (and its downstream) in the run of
//! the same logical date, recursively; `--dry-run` lists them; a clear deeper than the first
//! marker's `recursion_depth` is refused.

use crate::fixture::{state_of, Home};

const PARENT: &str = r#"
dag_id: parent
tasks:
  - {task_id: start, bash_command: "true"}
  - task_id: mark
    operator: external_task_marker
    dependencies: [start]
    external_task_marker: {external_dag_id: child, external_task_id: load}
"#;

const SHALLOW: &str = r#"
dag_id: shallow
tasks:
  - {task_id: start, bash_command: "true"}
  - task_id: mark
    operator: external_task_marker
    dependencies: [start]
    external_task_marker: {external_dag_id: child, external_task_id: load, recursion_depth: 1}
"#;

const CHILD: &str = r#"
dag_id: child
tasks:
  - {task_id: before, bash_command: "true"}
  - {task_id: load, bash_command: "true", dependencies: [before]}
  - {task_id: report, bash_command: "true", dependencies: [load]}
  - task_id: mark
    operator: external_task_marker
    dependencies: [load]
    external_task_marker: {external_dag_id: grandchild, external_task_id: t, logical_date: "{{ ds }}"}
"#;

const GRANDCHILD: &str = r#"
dag_id: grandchild
tasks:
  - {task_id: t, bash_command: "true"}
  - {task_id: u, bash_command: "true", dependencies: [t]}
"#;

fn run_states(home: &Home, dag_id: &str) -> serde_json::Value {
    let runs = home.json(&["dags", "list-runs", dag_id]);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_owned();
    home.json(&["tasks", "states-for-dag-run", dag_id, &run_id])
}

#[test]
fn clearing_a_marker_clears_the_marked_dags_tasks_recursively() {
    let home = Home::new();
    for (name, text) in [
        ("parent.yaml", PARENT),
        ("shallow.yaml", SHALLOW),
        ("child.yaml", CHILD),
        ("grandchild.yaml", GRANDCHILD),
    ] {
        home.write_dag(name, text);
    }
    for dag_id in ["parent", "shallow", "child", "grandchild"] {
        home.ok(&["dags", "test", dag_id, "2024-03-01"]);
    }
    let states = run_states(&home, "parent");
    assert_eq!(
        state_of(&states, "mark"),
        "success",
        "a marker runs nothing: {states:#}"
    );

    let listed = home.ok(&["tasks", "clear", "parent", "-t", "^start$", "--dry-run"]);
    let mut listed: Vec<String> = listed
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            format!("{}.{}", fields[0], fields[2])
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "child.load",
            "child.mark",
            "child.report",
            "grandchild.t",
            "grandchild.u",
            "parent.mark",
            "parent.start"
        ]
    );
    assert_eq!(
        state_of(&run_states(&home, "child"), "load"),
        "success",
        "a dry run clears nothing"
    );

    let refused = home.run(&["tasks", "clear", "shallow", "-t", "^start$"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Maximum recursion depth 1 reached for ExternalTaskMarker mark"),
        "{stderr}"
    );
    assert_eq!(state_of(&run_states(&home, "shallow"), "start"), "success");

    let cleared = home.ok(&["tasks", "clear", "parent", "-t", "^start$"]);
    assert!(
        cleared.contains("cleared 7 task instance(s) in 3 run(s)"),
        "{cleared}"
    );
    let child = run_states(&home, "child");
    assert_eq!(
        state_of(&child, "before"),
        "success",
        "upstream of the marked task stays"
    );
    for task in ["load", "report", "mark"] {
        assert_eq!(state_of(&child, task), "none", "child.{task}: {child:#}");
    }
    let grandchild = run_states(&home, "grandchild");
    assert_eq!(state_of(&grandchild, "t"), "none");
    assert_eq!(state_of(&grandchild, "u"), "none");
}
