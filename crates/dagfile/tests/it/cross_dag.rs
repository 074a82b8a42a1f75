//! `operator: trigger_dagrun`, `operator: external_task_marker` and
//! `operator: external_task_sensor`: their keys, Airflow's defaults, and the mistakes a file
//! can make with them.

use std::time::Duration;

use updraft_model::{
    DagRunState, ExternalTarget, ExternalTaskMarker, Operator, Sensing, TriggerDagRun,
};

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

#[test]
fn external_task_sensors_load_with_their_target_states_and_delta() {
    let dag = check_ok(
        "tasks:\n  - task_id: one\n    operator: external_task_sensor\n    \
         external_task_sensor: {external_dag_id: up, external_task_id: load}\n  \
         - task_id: group\n    operator: external_task_sensor\n    \
         external_task_sensor: {external_dag_id: up, external_task_group_id: g, \
         failed_states: [failed], execution_delta: -1h, check_existence: true}\n    \
         sensor: {poke_interval: 5s, soft_fail: true}\n  \
         - task_id: run\n    operator: external_task_sensor\n    \
         external_task_sensor: {external_dag_id: up, allowed_states: [success, failed], \
         external_task_ids: [], execution_delta: 6h}\n",
    );
    let sensor = |i: usize| dag.tasks[i].operator.external_wait().unwrap().clone();
    let one = sensor(0);
    assert_eq!(
        one.target,
        ExternalTarget::Tasks {
            task_ids: vec!["load".into()]
        }
    );
    assert_eq!(one.allowed_states, vec!["success"]);
    assert_eq!(one.execution_delta_secs, None);
    assert_eq!(dag.tasks[0].sensor, Some(Sensing::default()));
    let group = sensor(1);
    assert_eq!(
        group.target,
        ExternalTarget::Group {
            group_id: "g".into()
        }
    );
    assert_eq!(group.execution_delta_secs, Some(-3600));
    assert!(group.check_existence);
    let sensing = dag.tasks[1].sensor.clone().unwrap();
    assert_eq!(sensing.poke_interval, std::time::Duration::from_secs(5));
    assert!(sensing.soft_fail);
    let run = sensor(2);
    assert_eq!(run.target, ExternalTarget::Run);
    assert_eq!(run.allowed_states, vec!["success", "failed"]);
    assert_eq!(run.execution_delta_secs, Some(6 * 3600));
}

#[test]
fn bad_external_task_sensors_say_why() {
    let task = |fields: &str| {
        format!(
            "tasks:\n  - task_id: s\n    operator: external_task_sensor\n    \
             external_task_sensor: {{{fields}}}\n"
        )
    };
    check_err(
        "tasks:\n  - task_id: s\n    operator: external_task_sensor\n",
        &["task `s`: operator `external_task_sensor` needs `external_task_sensor:` (with `external_dag_id`)"],
    );
    check_err(
        &task("external_task_id: a"),
        &["`external_task_sensor` needs `external_dag_id`"],
    );
    check_err(
        &task("external_dag_id: up, external_task_group_id: g, external_task_ids: [a]"),
        &["only one of `external_task_group_id` or `external_task_ids` may be given"],
    );
    check_err(
        &task("external_dag_id: up, external_task_id: a, allowed_states: [success], skipped_states: [success]"),
        &["Duplicate values provided across allowed_states, skipped_states and failed_states."],
    );
    check_err(
        &task("external_dag_id: up, external_task_ids: [a, a]"),
        &["Duplicate task_ids passed in external_task_ids parameter"],
    );
    check_err(
        &task("external_dag_id: up, external_task_id: a, failed_states: [broken]"),
        &["\"broken\" is not a task state"],
    );
    check_err(
        &task("external_dag_id: up, execution_delta: -soon"),
        &["`external_task_sensor.execution_delta`"],
    );
    check_err(
        &task("external_dag_id: up, wait: 1"),
        &["unknown key `wait`"],
    );
}
