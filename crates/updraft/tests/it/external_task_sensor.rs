//! `operator: external_task_sensor` through the binary: the scheduler holds the sensor as
//! `deferred` (no process, no claim, no try row) and pokes the other DAG's run of the same
//! logical date (minus `execution_delta`) from the database; what it finds ends the wait as
//! Airflow's `ExternalTaskSensor` would: success, failure, `soft_fail`, skip, timeout, and
//! `check_existence`.

use std::time::Duration;

use serde_json::Value;

use crate::fixture::{eventually, state_of, try_of, Home};

const DATE: &str = "2026-03-02T00:00:00Z";
const DAY_BEFORE: &str = "2026-03-01T00:00:00Z";

const UP: &str = r#"
dag_id: up
tasks:
  - {task_id: load, bash_command: "true"}
  - {task_id: a, bash_command: "true", task_group: section, dependencies: [load]}
  - {task_id: b, bash_command: "true", task_group: section, dependencies: [load]}
"#;

const DOWN: &str = r#"
dag_id: down
tasks:
  - task_id: wait_task
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: up, external_task_id: load}
    sensor: {poke_interval: 1s, timeout: 1h}
  - task_id: wait_group
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: up, external_task_group_id: section}
    sensor: {poke_interval: 1s, timeout: 1h}
  - task_id: wait_yesterday
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: "{{ 'u' ~ 'p' }}", execution_delta: 1d}
    sensor: {poke_interval: 1s, timeout: 1h}
  - task_id: after
    dependencies: [wait_task, wait_group, wait_yesterday]
    bash_command: "true"
"#;

fn trigger_at(home: &Home, dag_id: &str, date: &str) -> String {
    let runs = home.json(&["dags", "trigger", dag_id, "--logical-date", date]);
    runs[0]["run_id"].as_str().unwrap().to_owned()
}

fn states(home: &Home, dag_id: &str, run_id: &str) -> Value {
    home.json(&["tasks", "states-for-dag-run", dag_id, run_id])
}

/// The claims and finished tries `task_id` of `dag_id` ever had: a sensor the scheduler
/// holds has none.
fn claims_and_tries(home: &Home, dag_id: &str, task_id: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    db.query_row(
        "SELECT (SELECT COUNT(*) FROM task_instance WHERE dag_id = ?1 AND task_id = ?2 \
                 AND (claim_id IS NOT NULL OR worker_id IS NOT NULL)), \
                (SELECT COUNT(*) FROM task_try t JOIN task_instance ti ON ti.id = t.ti_id \
                 WHERE ti.dag_id = ?1 AND ti.task_id = ?2)",
        [dag_id, task_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// The reasons the event log gives for sensors that ended other than by success.
fn endings(home: &Home, dag_id: &str) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT task_id, event, extra FROM event_log WHERE dag_id = ?1 \
             AND event LIKE 'external_task_sensor_%' ORDER BY task_id",
        )
        .unwrap();
    stmt.query_map([dag_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn sensors_wait_in_the_scheduler_until_the_other_dags_tasks_group_and_run_are_done() {
    let home = Home::new();
    home.write_dag("up.yaml", UP);
    home.write_dag("down.yaml", DOWN);
    let _standalone = home.standalone();
    let down = trigger_at(&home, "down", DATE);
    let waiting = eventually(Duration::from_secs(20), || {
        let s = states(&home, "down", &down);
        ["wait_task", "wait_group", "wait_yesterday"]
            .iter()
            .all(|t| state_of(&s, t) == "deferred")
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("{:#}", states(&home, "down", &down)));
    assert_eq!(
        try_of(&waiting, "wait_task"),
        1,
        "the wait is the sensor's try"
    );
    assert_eq!(state_of(&waiting, "after"), "none");
    // Poked for a few seconds, still waiting, and never on a worker.
    std::thread::sleep(Duration::from_secs(3));
    let s = states(&home, "down", &down);
    assert_eq!(state_of(&s, "wait_task"), "deferred", "{s:#}");
    assert_eq!(claims_and_tries(&home, "down", "wait_task"), (0, 0));

    // The run of the same date satisfies the task and the group sensors; the run of the day
    // before (execution_delta) the run sensor.
    let up = trigger_at(&home, "up", DATE);
    let up_states = home.wait_for_run("up", &up, Duration::from_secs(30));
    assert_eq!(up_states["state"], "success", "{up_states:#}");
    let s = eventually(Duration::from_secs(20), || {
        let s = states(&home, "down", &down);
        (state_of(&s, "wait_task") == "success" && state_of(&s, "wait_group") == "success")
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("{:#}", states(&home, "down", &down)));
    assert_eq!(
        state_of(&s, "wait_yesterday"),
        "deferred",
        "no run of the day before yet: {s:#}"
    );
    let yesterday = trigger_at(&home, "up", DAY_BEFORE);
    home.wait_for_run("up", &yesterday, Duration::from_secs(30));
    let done = home.wait_for_run("down", &down, Duration::from_secs(30));
    assert_eq!(done["state"], "success", "{done:#}");
    assert_eq!(state_of(&done, "wait_yesterday"), "success");
    assert_eq!(state_of(&done, "after"), "success");
    assert_eq!(try_of(&done, "wait_task"), 1);
    assert_eq!(claims_and_tries(&home, "down", "wait_yesterday"), (0, 0));
    assert!(endings(&home, "down").is_empty());
}

const BROKEN: &str = r#"
dag_id: broken
tasks:
  - {task_id: fails, bash_command: "exit 1"}
"#;

const WATCHERS: &str = r#"
dag_id: watchers
tasks:
  - task_id: fails_too
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, external_task_id: fails, failed_states: [failed]}
    sensor: {poke_interval: 1s}
    on_failure_callback: {kind: webhook, url: "http://127.0.0.1:9/failed"}
  - task_id: soft
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, external_task_id: fails, failed_states: [failed]}
    sensor: {poke_interval: 1s, soft_fail: true}
  - task_id: skips
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, external_task_id: fails, skipped_states: [failed]}
    sensor: {poke_interval: 1s}
  - task_id: run_failed
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, allowed_states: [failed]}
    sensor: {poke_interval: 1s}
    on_success_callback: {kind: webhook, url: "http://127.0.0.1:9/succeeded"}
  - task_id: gives_up
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, external_task_id: fails}
    sensor: {poke_interval: 1s, timeout: 2s}
  - task_id: missing
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: nowhere, check_existence: true}
  - task_id: missing_task
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: broken, external_task_id: nope, check_existence: true}
"#;

#[test]
fn failed_skipped_timed_out_and_missing_targets_end_the_sensors_as_airflow_does() {
    let home = Home::new();
    home.write_dag("broken.yaml", BROKEN);
    home.write_dag("watchers.yaml", WATCHERS);
    let _standalone = home.standalone();
    let broken = trigger_at(&home, "broken", DATE);
    let failed = home.wait_for_run("broken", &broken, Duration::from_secs(30));
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let watchers = trigger_at(&home, "watchers", DATE);
    let done = home.wait_for_run("watchers", &watchers, Duration::from_secs(30));
    let got: Vec<(&str, &str)> = [
        "fails_too",
        "soft",
        "skips",
        "run_failed",
        "gives_up",
        "missing",
        "missing_task",
    ]
    .into_iter()
    .map(|t| (t, state_of(&done, t)))
    .collect();
    assert_eq!(
        got,
        vec![
            ("fails_too", "failed"),
            ("soft", "skipped"),
            ("skips", "skipped"),
            ("run_failed", "success"),
            ("gives_up", "failed"),
            ("missing", "failed"),
            ("missing_task", "failed"),
        ],
        "{done:#}"
    );
    let endings = endings(&home, "watchers");
    let reason = |task: &str| {
        endings
            .iter()
            .find(|(t, _, _)| t == task)
            .map(|(_, event, extra)| format!("{event} {extra}"))
            .unwrap_or_else(|| panic!("no event for {task}: {endings:?}"))
    };
    assert!(
        reason("fails_too").contains("external_task_sensor_failed")
            && reason("fails_too")
                .contains("Some of the external tasks [\\\"fails\\\"] in DAG broken failed."),
        "{}",
        reason("fails_too")
    );
    assert!(reason("soft").starts_with("external_task_sensor_skipped"));
    assert!(reason("skips").contains("states-to-skip-on"));
    assert!(reason("gives_up").contains("Sensor has timed out"));
    assert!(reason("missing").contains("The external DAG nowhere does not exist."));
    assert!(reason("missing_task").contains("The external task nope in DAG broken does not exist."));

    // The sensors' callbacks, as for any try: stored with the transition that ended them.
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT task_id, event, try_number, context FROM notification \
             WHERE dag_id = 'watchers' ORDER BY task_id, event",
        )
        .unwrap();
    let notifications: Vec<(String, String, i64, Value)> = stmt
        .query_map([], |r| {
            let context: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&context).unwrap(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let events: Vec<(&str, &str, i64)> = notifications
        .iter()
        .map(|(t, e, n, _)| (t.as_str(), e.as_str(), *n))
        .collect();
    assert_eq!(
        events,
        vec![
            ("fails_too", "task_failure", 1),
            ("run_failed", "task_success", 1)
        ]
    );
    assert_eq!(
        notifications[0].3["exception"],
        "Some of the external tasks [\"fails\"] in DAG broken failed."
    );
}

#[test]
fn a_bad_external_task_sensor_is_an_import_error_that_says_why() {
    let home = Home::new();
    home.write_dag(
        "bad.yaml",
        r#"
dag_id: bad
tasks:
  - task_id: s
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: up, external_task_id: a, external_task_ids: [b], allowed_states: [success]}
"#,
    );
    home.write_dag(
        "states.yaml",
        r#"
dag_id: states
tasks:
  - task_id: s
    operator: external_task_sensor
    external_task_sensor: {external_dag_id: up, allowed_states: [upstream_failed]}
"#,
    );
    let errors = home.ok(&["dags", "list-import-errors", "-o", "json"]);
    assert!(
        errors.contains("only one of `external_task_id` or `external_task_ids` may be given"),
        "{errors}"
    );
    assert!(
        errors.contains("\\\"upstream_failed\\\" is not a DAG run state"),
        "{errors}"
    );
}
