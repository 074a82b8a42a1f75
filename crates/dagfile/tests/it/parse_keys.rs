//! Single keys of a DAG file, each across its forms: start dates, schedules, the DAG id,
//! trigger rules, every operator kind, Python tasks, setups and teardowns.

use chrono::{TimeZone, Utc};
use updraft_dagfile::{parse_dag_source, Format};
use updraft_model::{Dag, Operator, Schedule, TriggerRule};

use crate::parse::{check_err, check_ok, MINIMAL};

#[test]
fn start_dates_accept_dates_and_times() {
    let cases = [
        ("2026-01-01", "UTC", (2026, 1, 1, 0, 0)),
        ("2026-01-01T06:00:00", "UTC", (2026, 1, 1, 6, 0)),
        ("2026-01-01 06:00", "UTC", (2026, 1, 1, 6, 0)),
        ("2026-07-01", "Europe/Amsterdam", (2026, 6, 30, 22, 0)),
        (
            "2026-01-01T06:00:00+02:00",
            "Europe/Amsterdam",
            (2026, 1, 1, 4, 0),
        ),
        (
            "2026-01-01T06:00:00Z",
            "America/New_York",
            (2026, 1, 1, 6, 0),
        ),
        // Ambiguous (clocks go back): the first of the two.
        (
            "2026-10-25T02:30:00",
            "Europe/Amsterdam",
            (2026, 10, 25, 0, 30),
        ),
    ];
    for (text, zone, (y, m, d, h, min)) in cases {
        let source = format!(
            "schedule: '@daily'\ntimezone: {zone}\nstart_date: '{text}'\ntasks:\n  - {{task_id: a, operator: empty}}\n"
        );
        let dag = check_ok(&source);
        let expected = Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
        assert_eq!(dag.start_date, Some(expected), "{text} in {zone}");
    }
}

#[test]
fn schedules_of_every_kind() {
    for (text, expected) in [
        ("'@daily'", Schedule::parse("@daily").unwrap()),
        ("'@once'", Schedule::Once),
        ("1h", Schedule::Every(3600)),
        ("3600", Schedule::Every(3600)),
        ("null", Schedule::None),
    ] {
        let source = format!(
            "schedule: {text}\nstart_date: 2026-01-01\ntasks:\n  - {{task_id: a, operator: empty}}\n"
        );
        assert_eq!(check_ok(&source).schedule, expected, "{text}");
    }
}

#[test]
fn dag_id_defaults_to_the_file_name_and_must_be_valid() {
    let error = parse_dag_source(MINIMAL, "my dag", Format::Yaml).unwrap_err();
    assert!(
        error.contains("named after its file, and \"my dag\" contains ' '"),
        "{error}"
    );
    assert!(error.ends_with("; set `dag_id`"), "{error}");
    let dag = parse_dag_source(
        &format!("dag_id: explicit\n{MINIMAL}"),
        "my dag",
        Format::Yaml,
    )
    .unwrap();
    assert_eq!(dag.dag_id, "explicit");
}

#[test]
fn every_trigger_rule_name_parses() {
    for name in updraft_dagfile::TRIGGER_RULES {
        let source = format!("tasks:\n  - {{task_id: a, operator: empty, trigger_rule: {name}}}\n");
        let dag = check_ok(&source);
        let written = serde_json::to_value(dag.tasks[0].trigger_rule).unwrap();
        assert_eq!(written, serde_json::json!(name));
    }
}

#[test]
fn byte_order_mark_is_ignored() {
    let dag = check_ok(&format!("\u{feff}{MINIMAL}"));
    assert_eq!(dag.tasks.len(), 1);
}

#[test]
fn every_operator_kind_of_the_model_loads_from_a_file() {
    // The loader's list of operators is the model's: each name loads into the variant of
    // that kind, so neither can gain a kind the other does not know.
    assert_eq!(updraft_dagfile::OPERATORS, Operator::KINDS);
    for kind in Operator::KINDS {
        let command = match kind {
            "empty" => "",
            "python" => ", python_callable: f",
            "http" => ", http: {endpoint: items}",
            "docker" => ", docker: {image: busybox}",
            "file_sensor" => ", file_sensor: {filepath: /tmp/x}",
            "time_delta_sensor" => ", time_delta_sensor: {delta: 5m}",
            "time_sensor" => ", time_sensor: {target_time: '14:30'}",
            "date_time_sensor" => ", date_time_sensor: {target_time: '2026-01-31T06:00:00Z'}",
            "trigger_dagrun" => ", trigger_dagrun: {trigger_dag_id: other}",
            "external_task_marker" => {
                ", external_task_marker: {external_dag_id: other, external_task_id: t}"
            }
            "external_task_sensor" => ", external_task_sensor: {external_dag_id: other}",
            _ => ", bash_command: 'true'",
        };
        let dag = check_ok(&format!(
            "tasks:\n  - {{task_id: a, operator: {kind}{command}}}\n"
        ));
        assert_eq!(dag.tasks[0].operator.kind(), kind);
    }
    for (rule, name) in updraft_model::trigger_rule::TRIGGER_RULES {
        let dag = check_ok(&format!(
            "tasks:\n  - {{task_id: a, operator: empty, trigger_rule: {name}}}\n"
        ));
        assert_eq!(dag.tasks[0].trigger_rule, rule, "{name}");
    }
}

#[test]
fn python_tasks_load_with_their_keys_and_task_group() {
    let dag = check_ok(
        "tasks:\n  - task_id: grp.a\n    operator: python\n    python_callable: extract\n    \
         python_executable: /venv/bin/python\n    python_kind: branch\n    source_line: 12\n    \
         task_group: grp\n  - {task_id: b, operator: python, python_callable: '<lambda>', dependencies: [grp.a]}\n",
    );
    assert_eq!(
        dag.tasks[0].operator,
        Operator::Python {
            python_callable: "extract".into(),
            python_executable: Some("/venv/bin/python".into()),
            python_kind: updraft_model::PythonKind::Branch,
            source_line: Some(12),
        }
    );
    assert_eq!(dag.tasks[0].task_group.as_deref(), Some("grp"));
    assert_eq!(
        dag.tasks[1].operator,
        Operator::Python {
            python_callable: "<lambda>".into(),
            python_executable: None,
            python_kind: updraft_model::PythonKind::Task,
            source_line: None,
        }
    );
    assert_eq!(dag.tasks[1].task_group, None);
    // The serialized definition keeps them (the store holds it as JSON).
    let json = serde_json::to_value(&dag).unwrap();
    let back: Dag = serde_json::from_value(json).unwrap();
    assert_eq!(back, dag);
}

/// `teardown: true` with `setups:` is Airflow's `as_teardown(setups=…)`: the named tasks
/// become setups upstream of it, and its trigger rule is `all_done_setup_success`.
#[test]
fn setup_and_teardown_tasks_load() {
    let dag = check_ok(
        "tasks:\n  - {task_id: create, bash_command: echo create}\n  - {task_id: query, bash_command: echo query, dependencies: [create]}\n  - {task_id: delete, bash_command: echo delete, dependencies: [query], teardown: true, setups: [create], on_failure_fail_dagrun: true}\n  - {task_id: own, operator: empty, setup: true}\n",
    );
    let role = |id: &str| dag.task(id).unwrap().role;
    assert!(role("create").is_setup && !role("create").is_teardown);
    assert!(role("query").is_work());
    assert!(role("delete").is_teardown && role("delete").on_failure_fail_dagrun);
    assert!(role("own").is_setup);
    let delete = dag.task("delete").unwrap();
    assert_eq!(delete.dependencies, ["query", "create"]);
    assert_eq!(delete.trigger_rule, TriggerRule::AllDoneSetupSuccess);
    // The stored definition keeps the roles.
    let json = serde_json::to_value(&dag).unwrap();
    let back: updraft_model::Dag = serde_json::from_value(json).unwrap();
    assert_eq!(back, dag);

    let cases: &[(&str, &[&str])] = &[
        (
            "tasks:\n  - {task_id: a, operator: empty, setup: true, teardown: true}\n",
            &["task `a`: a task is a setup or a teardown, not both"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: empty, on_failure_fail_dagrun: true}\n",
            &["`on_failure_fail_dagrun` goes only with `teardown: true`"],
        ),
        (
            "tasks:\n  - {task_id: s, operator: empty}\n  - {task_id: a, operator: empty, setups: [s]}\n",
            &["task `a`: `setups` goes only with `teardown: true`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: empty, teardown: true, trigger_rule: all_success}\n",
            &["a teardown's trigger_rule is all_done_setup_success"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: empty, teardown: true, setups: [nope]}\n",
            &["task `a`: depends on unknown task `nope`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: empty, setup: yes please}\n",
            &["setup"],
        ),
    ];
    for (source, expected) in cases {
        check_err(source, expected);
    }
}
