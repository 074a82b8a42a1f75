//! Sensors in DAG files: `sensor:` and the sensor operators' own keys.

use std::time::Duration;

use chrono::{NaiveTime, TimeZone, Utc};
use updraft_model::{FileWait, Operator, PythonKind, Sensing, SensorMode};

use crate::parse::{check_err, check_ok};

#[test]
fn a_file_sensor_loads_with_its_sensor_settings() {
    let dag = check_ok(
        "tasks:\n  - task_id: wait\n    operator: file_sensor\n    \
         file_sensor: {filepath: 'in/{{ ds }}/*.csv', fs_conn_id: landing, recursive: true}\n    \
         sensor: {poke_interval: 5s, timeout: 10m, mode: reschedule, soft_fail: true, \
         exponential_backoff: true, max_wait: 1m}\n  \
         - {task_id: plain, operator: file_sensor, file_sensor: {filepath: /tmp/x}}\n",
    );
    assert_eq!(
        dag.tasks[0].operator,
        Operator::FileSensor(FileWait {
            filepath: "in/{{ ds }}/*.csv".into(),
            fs_conn_id: "landing".into(),
            recursive: true,
        })
    );
    assert_eq!(
        dag.tasks[0].sensor,
        Some(Sensing {
            poke_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            mode: SensorMode::Reschedule,
            soft_fail: true,
            exponential_backoff: true,
            max_wait: Some(Duration::from_secs(60)),
        })
    );
    // Airflow's defaults: poke mode, a minute between pokes, seven days.
    assert_eq!(dag.tasks[1].sensor, Some(Sensing::default()));
    assert_eq!(
        dag.tasks[1].operator,
        Operator::FileSensor(FileWait {
            filepath: "/tmp/x".into(),
            fs_conn_id: "fs_default".into(),
            recursive: false,
        })
    );
}

#[test]
fn time_sensors_load_their_instants() {
    let dag = check_ok(
        "tasks:\n  - {task_id: a, operator: time_delta_sensor, time_delta_sensor: {delta: 1h30m}}\n  \
         - {task_id: b, operator: time_sensor, time_sensor: {target_time: '06:30'}}\n  \
         - {task_id: c, operator: date_time_sensor, \
            date_time_sensor: {target_time: '2026-01-31T07:00:00+01:00'}}\n",
    );
    assert_eq!(
        dag.tasks[0].operator,
        Operator::TimeDeltaSensor {
            delta: Duration::from_secs(5400)
        }
    );
    assert_eq!(
        dag.tasks[1].operator,
        Operator::TimeSensor {
            target_time: NaiveTime::from_hms_opt(6, 30, 0).unwrap()
        }
    );
    assert_eq!(
        dag.tasks[2].operator,
        Operator::DateTimeSensor {
            target_time: Utc.with_ymd_and_hms(2026, 1, 31, 6, 0, 0).unwrap()
        }
    );
    assert!(
        dag.tasks.iter().all(|t| t.sensor.is_none()),
        "held by the scheduler"
    );
}

#[test]
fn a_python_sensor_and_an_http_sensor_take_sensor_settings() {
    let dag = check_ok(
        "tasks:\n  - {task_id: p, operator: python, python_callable: ready, python_kind: sensor, \
         sensor: {poke_interval: 1}}\n  \
         - {task_id: h, operator: http, http: {endpoint: health, method: GET}, \
         sensor: {mode: reschedule}}\n  \
         - {task_id: q, operator: python, python_callable: ready, python_kind: sensor}\n",
    );
    assert!(matches!(
        dag.tasks[0].operator,
        Operator::Python {
            python_kind: PythonKind::Sensor,
            ..
        }
    ));
    assert_eq!(
        dag.tasks[0].sensor.as_ref().map(|s| s.poke_interval),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        dag.tasks[1].sensor.as_ref().map(|s| s.mode),
        Some(SensorMode::Reschedule)
    );
    assert_eq!(dag.tasks[2].sensor, Some(Sensing::default()));
}

#[test]
fn sensor_mistakes_are_named() {
    check_err(
        "tasks:\n  - {task_id: a, bash_command: 'true', sensor: {timeout: 5}}\n",
        &["task `a`: `sensor` goes only with a sensor that pokes"],
    );
    check_err(
        "tasks:\n  - {task_id: a, operator: file_sensor}\n",
        &["task `a`: operator `file_sensor` needs `file_sensor:` (with `filepath`)"],
    );
    check_err(
        "tasks:\n  - {task_id: a, operator: file_sensor, file_sensor: {filepath: x}, \
         sensor: {mode: sleepy}}\n",
        &["task `a`: unknown sensor mode `sleepy`; allowed: poke, reschedule"],
    );
    check_err(
        "tasks:\n  - {task_id: a, operator: time_sensor, time_sensor: {target_time: noon}}\n",
        &["task `a`: `time_sensor.target_time` is a time of the day like 14:30"],
    );
    check_err(
        "tasks:\n  - {task_id: a, operator: date_time_sensor, \
         date_time_sensor: {target_time: '{{ data_interval_end }}'}}\n",
        &["(a template is not supported)"],
    );
    check_err(
        "tasks:\n  - {task_id: a, bash_command: 'true', time_sensor: {target_time: '10:00'}}\n",
        &["task `a`: `time_sensor` goes only with `operator: time_sensor`"],
    );
}
