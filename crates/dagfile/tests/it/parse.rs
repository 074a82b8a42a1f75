//! Parsing single DAG files: every error case with its message, and valid files in full.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use updraft_dagfile::{parse_dag, parse_dag_source, Format, Pos};
use updraft_model::{Dag, Operator, Schedule, Task, TriggerRule};

/// Parses YAML that must fail and checks that the error text contains every expected piece.
#[track_caller]
pub(crate) fn check_err(source: &str, expected: &[&str]) {
    check_err_as(source, Format::Yaml, expected);
}

#[track_caller]
pub(crate) fn check_err_as(source: &str, format: Format, expected: &[&str]) {
    let error = match parse_dag_source(source, "from_file", format) {
        Ok(dag) => panic!("expected an error, got {dag:#?}"),
        Err(error) => error,
    };
    for piece in expected {
        assert!(
            error.contains(piece),
            "error text lacks {piece:?}; full text:\n{error}"
        );
    }
}

#[track_caller]
pub(crate) fn check_ok(source: &str) -> Dag {
    match parse_dag_source(source, "from_file", Format::Yaml) {
        Ok(dag) => dag,
        Err(error) => panic!("expected a DAG, got:\n{error}"),
    }
}

pub(crate) const MINIMAL: &str = "tasks:\n  - task_id: a\n    bash_command: echo a\n";

#[test]
fn minimal_file_takes_defaults() {
    let dag = check_ok(MINIMAL);
    let expected = Dag {
        dag_id: "from_file".into(),
        description: None,
        schedule: Schedule::None,
        timezone: chrono_tz::UTC,
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: 16,
        max_active_tasks: 16,
        dagrun_timeout: None,
        max_consecutive_failed_dag_runs: 0,
        callbacks: Default::default(),
        tags: vec![],
        params: serde_json::Map::new(),
        default_args: serde_json::Map::new(),
        asset_schedule: None,
        tasks: vec![Task::new(
            "a",
            Operator::Bash {
                bash_command: "echo a".into(),
            },
        )],
    };
    assert_eq!(dag, expected);
}

const FULL: &str = r#"dag_id: users_etl            # optional: defaults to the file name
description: Load users
schedule: "0 6 * * *"
timezone: Europe/Amsterdam
start_date: 2026-01-01
end_date: 2026-12-31T18:30:00Z
catchup: true
max_active_runs: 2
max_active_tasks: 8
tags: [etl, users]
params: {table: users, limit: 10, ratio: 0.5, nested: {on: true, list: [1, "two", null]}}
default_args:
  retries: 2
  retry_delay: 30s
  retry_exponential_backoff: true
  max_retry_delay: 10m
  execution_timeout: 1h
  env: {STAGE: prod}
  pool: etl
  queue: etl_queue
tasks:
  - task_id: extract
    bash_command: "echo extracting {{ params.table }} for {{ ds }}"
  - task_id: load
    bash_command: ./load.sh {{ ds }}
    dependencies: [extract]
    trigger_rule: all_success
    retries: 5
    retry_delay: 90
    retry_exponential_backoff: false
    max_retry_delay: null
    execution_timeout: 1h30m
    env: {DEBUG: 1, VERBOSE: true, NAME: loader}
    cwd: /srv/etl
    pool: default_pool
    queue: default
    priority_weight: 10
    skip_on_exit_code: [99, 100]
    do_xcom_push: false
  - task_id: notify
    operator: empty
    dependencies: load
    trigger_rule: none_failed_min_one_success
    skip_on_exit_code: 3
"#;

fn full_expected() -> Dag {
    let mut extract = Task::new(
        "extract",
        Operator::Bash {
            bash_command: "echo extracting {{ params.table }} for {{ ds }}".into(),
        },
    );
    extract.retries = 2;
    extract.retry_delay = Duration::from_secs(30);
    extract.retry_exponential_backoff = true;
    extract.max_retry_delay = Some(Duration::from_secs(600));
    extract.execution_timeout = Some(Duration::from_secs(3600));
    extract.env = BTreeMap::from([("STAGE".into(), "prod".into())]);
    extract.pool = "etl".into();
    extract.queue = "etl_queue".into();

    let mut load = Task::new(
        "load",
        Operator::Bash {
            bash_command: "./load.sh {{ ds }}".into(),
        },
    );
    load.dependencies = vec!["extract".into()];
    load.trigger_rule = TriggerRule::AllSuccess;
    load.retries = 5;
    load.retry_delay = Duration::from_secs(90);
    load.retry_exponential_backoff = false;
    load.max_retry_delay = None;
    load.execution_timeout = Some(Duration::from_secs(5400));
    load.env = BTreeMap::from([
        ("DEBUG".into(), "1".into()),
        ("VERBOSE".into(), "true".into()),
        ("NAME".into(), "loader".into()),
    ]);
    load.cwd = Some("/srv/etl".into());
    load.pool = "default_pool".into();
    load.queue = "default".into();
    load.priority_weight = 10;
    load.skip_on_exit_code = vec![99, 100];
    load.do_xcom_push = false;

    let mut notify = Task::new("notify", Operator::Empty);
    notify.dependencies = vec!["load".into()];
    notify.trigger_rule = TriggerRule::NoneFailedMinOneSuccess;
    notify.skip_on_exit_code = vec![3];
    // default_args reach every task, `empty` ones too.
    notify.retries = 2;
    notify.retry_delay = Duration::from_secs(30);
    notify.retry_exponential_backoff = true;
    notify.max_retry_delay = Some(Duration::from_secs(600));
    notify.execution_timeout = Some(Duration::from_secs(3600));
    notify.env = BTreeMap::from([("STAGE".into(), "prod".into())]);
    notify.pool = "etl".into();
    notify.queue = "etl_queue".into();

    let params = serde_json::json!({
        "table": "users", "limit": 10, "ratio": 0.5,
        "nested": {"on": true, "list": [1, "two", null]}
    });
    Dag {
        dag_id: "users_etl".into(),
        description: Some("Load users".into()),
        schedule: Schedule::parse("0 6 * * *").unwrap(),
        timezone: chrono_tz::Europe::Amsterdam,
        // Midnight in Amsterdam (UTC+1 in winter).
        start_date: Some(Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()),
        end_date: Some(Utc.with_ymd_and_hms(2026, 12, 31, 18, 30, 0).unwrap()),
        catchup: true,
        max_active_runs: 2,
        max_active_tasks: 8,
        dagrun_timeout: None,
        max_consecutive_failed_dag_runs: 0,
        callbacks: Default::default(),
        tags: vec!["etl".into(), "users".into()],
        params: params.as_object().unwrap().clone(),
        default_args: serde_json::json!({
            "env": {"STAGE": "prod"}, "execution_timeout": "1h", "max_retry_delay": "10m",
            "pool": "etl", "queue": "etl_queue", "retries": 2, "retry_delay": "30s",
            "retry_exponential_backoff": true,
        })
        .as_object()
        .unwrap()
        .clone(),
        asset_schedule: None,
        tasks: vec![extract, load, notify],
    }
}

#[test]
fn full_example_round_trips_every_key() {
    assert_eq!(check_ok(FULL), full_expected());
}

#[test]
fn json_reads_the_same_schema() {
    let json = serde_json::json!({
        "dag_id": "users_etl",
        "description": "Load users",
        "schedule": "0 6 * * *",
        "timezone": "Europe/Amsterdam",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31T18:30:00Z",
        "catchup": true,
        "max_active_runs": 2,
        "max_active_tasks": 8,
        "tags": ["etl", "users"],
        "params": {"table": "users", "limit": 10, "ratio": 0.5,
                   "nested": {"on": true, "list": [1, "two", null]}},
        "default_args": {"retries": 2, "retry_delay": "30s", "retry_exponential_backoff": true,
                         "max_retry_delay": "10m", "execution_timeout": "1h",
                         "env": {"STAGE": "prod"}, "pool": "etl", "queue": "etl_queue"},
        "tasks": [
            {"task_id": "extract", "bash_command": "echo extracting {{ params.table }} for {{ ds }}"},
            {"task_id": "load", "bash_command": "./load.sh {{ ds }}", "dependencies": ["extract"],
             "trigger_rule": "all_success", "retries": 5, "retry_delay": 90,
             "retry_exponential_backoff": false, "max_retry_delay": null,
             "execution_timeout": "1h30m", "env": {"DEBUG": 1, "VERBOSE": true, "NAME": "loader"},
             "cwd": "/srv/etl", "pool": "default_pool", "queue": "default", "priority_weight": 10,
             "skip_on_exit_code": [99, 100], "do_xcom_push": false},
            {"task_id": "notify", "operator": "empty", "dependencies": "load",
             "trigger_rule": "none_failed_min_one_success", "skip_on_exit_code": 3}
        ]
    });
    let pretty = serde_json::to_string_pretty(&json).unwrap();
    let dag = parse_dag_source(&pretty, "x", Format::Json).unwrap();
    assert_eq!(dag, full_expected());
}

#[test]
fn json_errors_have_positions() {
    check_err_as(
        "{\n  \"tasks\": [\n",
        Format::Json,
        &["JSON syntax error", "line 3"],
    );
    let source = "{\n  \"tasks\": [\n    {\"task_id\": \"a\", \"operator\": \"empty\", \"retires\": 1}\n  ]\n}\n";
    check_err_as(
        source,
        Format::Json,
        &["line 3, column 43: task `a`: unknown key `retires` (did you mean `retries`?)"],
    );
    // Tabs are fine in JSON (YAML is stricter about them).
    let tabs = "{\n\t\"tasks\": [\n\t\t{\"task_id\": \"a\", \"operator\": \"empty\"}\n\t]\n}\n";
    assert!(parse_dag_source(tabs, "x", Format::Json).is_ok());
    // JSON that YAML reads differently still loads (without positions).
    let surrogate =
        r#"{"description": "\ud83d\ude00", "tasks": [{"task_id": "a", "operator": "empty"}]}"#;
    let dag = parse_dag_source(surrogate, "x", Format::Json).unwrap();
    assert_eq!(dag.description.as_deref(), Some("😀"));
}

#[test]
fn default_args_apply_and_task_keys_override() {
    let dag = check_ok(
        "default_args: {retries: 3, queue: gpu, execution_timeout: 10m}\n\
         tasks:\n\
         \x20 - {task_id: a, bash_command: x}\n\
         \x20 - {task_id: b, bash_command: x, retries: 0, queue: cpu, execution_timeout: null}\n",
    );
    let (a, b) = (&dag.tasks[0], &dag.tasks[1]);
    assert_eq!((a.retries, a.queue.as_str()), (3, "gpu"));
    assert_eq!(a.execution_timeout, Some(Duration::from_secs(600)));
    assert_eq!((b.retries, b.queue.as_str()), (0, "cpu"));
    assert_eq!(b.execution_timeout, None);
    assert_eq!(
        serde_json::Value::Object(dag.default_args),
        serde_json::json!({"retries": 3, "queue": "gpu", "execution_timeout": "10m"}),
        "kept as written, for the UI"
    );
}

#[test]
fn anchors_aliases_and_merges() {
    let dag = check_ok(
        "default_args: &d {retries: 4, pool: p}\n\
         tasks:\n\
         \x20 - {<<: *d, task_id: a, bash_command: x}\n\
         \x20 - {<<: *d, task_id: b, bash_command: x, retries: 1}\n\
         \x20 - {task_id: c, bash_command: &cmd echo hi, dependencies: [a, b], env: {&name NAME: x}}\n\
         \x20 - {task_id: d, bash_command: *cmd, env: {*name : y}}\n",
    );
    assert_eq!(dag.tasks[0].retries, 4);
    assert_eq!(dag.tasks[1].retries, 1);
    assert_eq!(dag.tasks[1].pool, "p");
    assert_eq!(dag.tasks[3].env["NAME"], "y");
    assert_eq!(
        dag.tasks[3].operator,
        Operator::Bash {
            bash_command: "echo hi".into()
        }
    );
}

/// Every error case: (file, pieces the error text must contain).
#[test]
fn error_cases() {
    let cases: &[(&str, &[&str])] = &[
        // YAML syntax, with line and column.
        (
            "tasks:\n  - task_id: a\n    bash_command: \"unterminated\n",
            &["line 3, column 19: YAML syntax error: while scanning a quoted scalar"],
        ),
        ("tasks: [a, b\n", &["YAML syntax error", "line 2, column 1"]),
        ("dag_id: x\n  bad: indent\ntasks: []\n", &["line 2", "YAML syntax error"]),
        // Unknown keys at every level, with position, suggestion and the allowed keys.
        (
            "shedule: '@daily'\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 1: unknown key `shedule` (did you mean `schedule`?); allowed keys: dag_id, description, schedule,"],
        ),
        (
            "tasks:\n  - task_id: a\n    bash_command: x\n    retires: 3\n",
            &["line 4, column 5: task `a`: unknown key `retires` (did you mean `retries`?); allowed keys: task_id, operator, bash_command, dependencies, setup, teardown, setups, on_failure_fail_dagrun, expand, expand_kwargs, trigger_rule"],
        ),
        (
            "default_args:\n  owner: me\n  task_id: x\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &[
                "line 2, column 3: default_args: unknown key `owner`; allowed keys: trigger_rule,",
                "line 3, column 3: default_args: unknown key `task_id`",
            ],
        ),
        // Param specs: every mistake, at the param's key.
        (
            "params:\n  n: {type: integr}\n  m: {type: integer, default: x}\n  plain: {a: 1}\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &[
                "line 3, column 3: `params.m`: the default does not fit the spec: \"x\" is not of type integer",
                "line 2, column 3: `params.n`: `type` must be string, integer,",
            ],
        ),
        // Cycles name the cycle in flow order.
        (
            "tasks:\n  - {task_id: a, bash_command: x, dependencies: [c]}\n  - {task_id: b, bash_command: x, dependencies: [a]}\n  - {task_id: c, bash_command: x, dependencies: [b]}\n  - {task_id: d, bash_command: x, dependencies: [c]}\n",
            &["line 2, column 15: cycle: a -> b -> c -> a"],
        ),
        (
            "tasks:\n  - {task_id: self, bash_command: x, dependencies: [self]}\n",
            &["cycle: self -> self"],
        ),
        // Unknown dependency, with a suggestion.
        (
            "tasks:\n  - {task_id: extract, bash_command: x}\n  - {task_id: load, bash_command: x, dependencies: [extrct]}\n",
            &["line 3, column 53: task `load`: depends on unknown task `extrct` (did you mean `extract`?)"],
        ),
        // Duplicate task ids.
        (
            "tasks:\n  - {task_id: a, bash_command: x}\n  - {task_id: a, bash_command: y}\n",
            &["line 3, column 15: duplicate task_id `a` (first defined at line 2)"],
        ),
        // Invalid schedule, zone, durations, dates.
        (
            "schedule: '61 * * * *'\nstart_date: 2026-01-01\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 11: `schedule`: invalid schedule \"61 * * * *\""],
        ),
        (
            "schedule: '@sometimes'\nstart_date: 2026-01-01\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["`schedule`: invalid schedule \"@sometimes\""],
        ),
        (
            "timezone: Mars/Olympus\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 11: unknown time zone `Mars/Olympus`"],
        ),
        (
            "tasks:\n  - {task_id: a, bash_command: x, retry_delay: 5 minutes}\n",
            &["line 2, column 48: task `a`: `retry_delay`: invalid duration \"5 minutes\""],
        ),
        (
            "default_args: {execution_timeout: -3}\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["default_args: `execution_timeout` must be a duration"],
        ),
        (
            "start_date: 2026-13-01\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 13: `start_date` \"2026-13-01\" is not a date"],
        ),
        (
            "timezone: Europe/Amsterdam\nstart_date: 2026-03-29T02:30:00\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["does not exist in Europe/Amsterdam"],
        ),
        (
            "start_date: 2026-02-01\nend_date: 2026-01-01\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["`end_date` 2026-01-01 00:00:00 UTC is before `start_date`"],
        ),
        // Missing required keys.
        ("dag_id: x\n", &["missing required key `tasks`"]),
        (
            "tasks:\n  - bash_command: x\n",
            &["line 2, column 5: task #1: missing required key `task_id`"],
        ),
        (
            "schedule: '@daily'\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 1: `start_date` is required when `schedule` is set"],
        ),
        ("tasks: []\n", &["line 1, column 1: `tasks` is empty"]),
        ("", &["the file is empty"]),
        ("- a\n- b\n", &["a DAG file is a mapping", "found a list"]),
        // Types, with a hint for YAML 1.1 booleans.
        (
            "catchup: yes\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 10: `catchup` must be true or false, found string \"yes\" (YAML 1.2 reads"],
        ),
        (
            "max_active_runs: 0\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["`max_active_runs` must be a whole number of at least 1, found number 0"],
        ),
        (
            "tasks:\n  - {task_id: a, bash_command: x, skip_on_exit_code: [1, 300]}\n",
            &["task `a`: `skip_on_exit_code` must be a whole number from 0 to 255, found number 300"],
        ),
        (
            "tasks: {a: 1}\n",
            &["`tasks` must be a list of tasks, found a mapping"],
        ),
        (
            "params: [1]\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["`params` must be a mapping"],
        ),
        (
            "params: {x: .nan}\ntasks:\n  - {task_id: a, bash_command: x}\n",
            &["line 1, column 13: `params` holds NaN, which JSON cannot store"],
        ),
        // Operators.
        ("tasks:\n  - {task_id: a}\n", &["task `a`: missing required key `bash_command` (or set `operator: empty`)"]),
        (
            "tasks:\n  - {task_id: a, operator: dockers}\n",
            &["task `a`: unknown operator `dockers`; allowed: bash, date_time_sensor, docker, empty, external_task_marker, external_task_sensor, file_sensor, http, python, time_delta_sensor, time_sensor, trigger_dagrun"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: python}\n",
            &["task `a`: operator `python` needs `python_callable`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: python, python_callable: f, python_kind: map}\n",
            &["task `a`: unknown python_kind `map`; allowed: task, branch, short_circuit, bash, latest_only"],
        ),
        (
            "tasks:\n  - {task_id: a, bash_command: 'true', python_callable: f}\n",
            &["task `a`: `python_callable` goes only with `operator: python`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: python, python_callable: f, bash_command: x}\n",
            &["task `a`: `bash_command` does not go with `operator: python`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: bash}\n",
            &["task `a`: operator `bash` needs `bash_command`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: empty, bash_command: x}\n",
            &["task `a`: `bash_command` does not go with `operator: empty`"],
        ),
        ("tasks:\n  - {task_id: a, bash_command: '  '}\n", &["task `a`: `bash_command` must not be empty"]),
        (
            "tasks:\n  - {task_id: a, operator: empty, trigger_rule: all_good}\n",
            &["task `a`: unknown trigger_rule `all_good`; allowed: all_success, all_failed,"],
        ),
        // Ids.
        (
            "dag_id: my dag\ntasks:\n  - {task_id: 'a/b', operator: empty}\n",
            &[
                "line 1, column 9: dag_id \"my dag\" contains ' '",
                "line 3, column 15: task #1: task_id \"a/b\" contains '/'",
            ],
        ),
        // YAML-level problems.
        (
            "tasks:\n  - {task_id: a, operator: empty}\ntasks: []\n",
            &["line 3, column 1: duplicate key `tasks` (first at line 1)"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: !python empty}\n",
            &["unsupported YAML tag `!python`"],
        ),
        (
            "tasks: []\n---\ntasks: []\n",
            &["line 2, column 1: a DAG file holds one YAML document"],
        ),
    ];
    for (source, expected) in cases {
        check_err(source, expected);
    }
}

#[test]
fn all_problems_of_a_file_are_reported_in_source_order() {
    let source = "\
dag_id: ok
shedule: '@daily'
timezone: Nowhere/Land
tasks:
  - task_id: a
    bash_command: x
    retires: 1
  - task_id: b
    bash_command: x
    dependencies: [zzz, a, c]
    retry_delay: forever
  - task_id: c
    operator: empty
    dependencies: [b]
";
    let diags = parse_dag(source, "x", Format::Yaml).unwrap_err();
    let error = updraft_dagfile::render(&diags);
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 6, "{error}");
    assert!(
        lines[0].starts_with("line 2, column 1: unknown key `shedule`"),
        "{error}"
    );
    assert!(
        lines[1].starts_with("line 3, column 11: unknown time zone"),
        "{error}"
    );
    assert!(
        lines[2].starts_with("line 7, column 5: task `a`: unknown key `retires`"),
        "{error}"
    );
    assert!(
        lines[3].starts_with("line 8, column 14: cycle: b -> c -> b"),
        "{error}"
    );
    assert!(
        lines[4].starts_with("line 10, column 20: task `b`: depends on unknown task `zzz`"),
        "{error}"
    );
    assert!(
        lines[5].starts_with("line 11, column 18: task `b`: `retry_delay`"),
        "{error}"
    );
    assert!(diags[0].pos.is_some());
    assert!(diags
        .iter()
        .any(|d| d.pos == Some(Pos { line: 2, column: 1 })));
}

#[test]
fn many_problems_are_capped() {
    let mut source = String::from("tasks:\n  - task_id: a\n    operator: empty\n");
    for i in 0..200 {
        source.push_str(&format!("    bogus{i}: 1\n"));
    }
    let error = parse_dag_source(&source, "x", Format::Yaml).unwrap_err();
    assert_eq!(error.lines().count(), 51);
    assert!(error.ends_with("… and 150 more problems"), "{error}");
}
