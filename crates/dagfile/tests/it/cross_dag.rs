//! `operator: trigger_dagrun` and `operator: external_task_marker`: their keys, Airflow's
//! defaults, and the mistakes a file can make with them.

use std::time::Duration;

use updraft_model::{DagRunState, ExternalTaskMarker, Operator, TriggerDagRun};

use crate::parse::{check_err, check_ok};

#[test]
fn a_trigger_loads_every_key_and_takes_airflows_defaults() {
    let dag = check_ok(
        "tasks:\n  - task_id: go\n    operator: trigger_dagrun\n    trigger_dagrun:\n      \
         trigger_dag_id: child\n      trigger_run_id: 'child_{{ ds }}'\n      \
         conf: {day: '{{ ds }}', n: 3, nested: {list: [1, x]}}\n      \
         logical_date: '{{ logical_date }}'\n      reset_dag_run: true\n      \
         wait_for_completion: true\n      poke_interval: 2s\n      \
         allowed_states: [success, failed]\n      failed_states: []\n      \
         skip_when_already_exists: true\n  - {task_id: plain, operator: trigger_dagrun, \
         trigger_dagrun: {trigger_dag_id: other}}\n",
    );
    let Operator::TriggerDagRun(trigger) = &dag.tasks[0].operator else {
        panic!("not a trigger: {:?}", dag.tasks[0].operator)
    };
    assert_eq!(trigger.trigger_dag_id, "child");
    assert_eq!(trigger.trigger_run_id.as_deref(), Some("child_{{ ds }}"));
    assert_eq!(
        serde_json::Value::Object(trigger.conf.clone()),
        serde_json::json!({"day": "{{ ds }}", "n": 3, "nested": {"list": [1, "x"]}})
    );
    assert_eq!(trigger.logical_date.as_deref(), Some("{{ logical_date }}"));
    assert!(trigger.reset_dag_run && trigger.wait_for_completion);
    assert!(trigger.skip_when_already_exists);
    assert_eq!(trigger.poke_interval, Duration::from_secs(2));
    assert_eq!(
        trigger.allowed_states,
        [DagRunState::Success, DagRunState::Failed]
    );
    assert!(trigger.failed_states.is_empty());
    assert_eq!(
        dag.tasks[1].operator,
        Operator::TriggerDagRun(Box::new(TriggerDagRun::new("other")))
    );
}

#[test]
fn a_marker_loads_with_airflows_defaults() {
    let dag = check_ok(
        "tasks:\n  - {task_id: m, operator: external_task_marker, external_task_marker: \
         {external_dag_id: child, external_task_id: load}}\n  - {task_id: n, operator: \
         external_task_marker, external_task_marker: {external_dag_id: c, external_task_id: t, \
         logical_date: '{{ ds }}', recursion_depth: 2}}\n",
    );
    assert_eq!(
        dag.tasks[0].operator,
        Operator::ExternalTaskMarker(ExternalTaskMarker {
            external_dag_id: "child".into(),
            external_task_id: "load".into(),
            logical_date: "{{ logical_date.isoformat() }}".into(),
            recursion_depth: 10,
        })
    );
    let Operator::ExternalTaskMarker(marker) = &dag.tasks[1].operator else {
        panic!("not a marker")
    };
    assert_eq!(
        (marker.logical_date.as_str(), marker.recursion_depth),
        ("{{ ds }}", 2)
    );
}

#[test]
fn mistakes_are_import_errors_that_name_them() {
    let cases: &[(&str, &[&str])] = &[
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun}\n",
            &["task `a`: operator `trigger_dagrun` needs `trigger_dagrun:`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun, trigger_dagrun: {conf: {}}}\n",
            &["task `a`: `trigger_dagrun` needs `trigger_dag_id`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun, trigger_dagrun: {trigger_dag_id: c, wait: true}}\n",
            &["task `a`: trigger_dagrun: unknown key `wait`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun, trigger_dagrun: {trigger_dag_id: c, allowed_states: [done]}}\n",
            &["unknown DAG run state `done`; allowed: queued, running, success, failed"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun, trigger_dagrun: {trigger_dag_id: c, conf: [1]}}\n",
            &["`trigger_dagrun.conf` must be a mapping"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: trigger_dagrun, trigger_dagrun: {trigger_dag_id: c, poke_interval: soon}}\n",
            &["`trigger_dagrun.poke_interval`"],
        ),
        (
            "tasks:\n  - {task_id: a, bash_command: x, trigger_dagrun: {trigger_dag_id: c}}\n",
            &["`trigger_dagrun` goes only with `operator: trigger_dagrun`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: external_task_marker, external_task_marker: {external_dag_id: c}}\n",
            &["`external_task_marker` needs `external_task_id`"],
        ),
        (
            "tasks:\n  - {task_id: a, operator: external_task_marker, external_task_marker: {external_dag_id: c, external_task_id: t, recursion_depth: 0}}\n",
            &["`external_task_marker.recursion_depth` must be a whole number of at least 1"],
        ),
    ];
    for (source, expected) in cases {
        check_err(source, expected);
    }
}
