//! Sensors through the binary: real files, a real HTTP server on loopback, real processes. A
//! rescheduled sensor waits between pokes without a worker slot in the same try, a timeout
//! ends it without its retries, a time sensor waits in the scheduler without any process, and
//! a rescheduled sensor survives a crash of `standalone`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{eventually, state_of, try_of, Home};

/// The rows of `task_try` (finished tries) of `task_id`, as (try number, state).
fn finished_tries(home: &Home, task_id: &str) -> Vec<(i64, String)> {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT t.try_number, t.state FROM task_try t JOIN task_instance ti ON ti.id = t.ti_id \
             WHERE ti.task_id = ?1 ORDER BY t.try_number",
        )
        .unwrap();
    stmt.query_map([task_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Runs `dags test DAG_ID` (which fails when the run fails) and answers the states of its run.
fn dags_test(home: &Home, dag_id: &str) -> Value {
    let out = home.run(&["dags", "test", dag_id, "--output", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let run_id = doc["run_id"].as_str().unwrap().to_owned();
    home.json(&["tasks", "states-for-dag-run", dag_id, &run_id])
}

fn waiting_states(home: &Home, dag_id: &str, run_id: &str, task_id: &str, state: &str) -> Value {
    eventually(Duration::from_secs(30), || {
        let states = home.json(&["tasks", "states-for-dag-run", dag_id, run_id]);
        (state_of(&states, task_id) == state).then_some(states)
    })
    .unwrap_or_else(|| {
        let states = home.json(&["tasks", "states-for-dag-run", dag_id, run_id]);
        let log = std::fs::read_to_string(home.path().join("standalone.log")).unwrap_or_default();
        panic!("{task_id} never became {state}: {states:#}\n{log}")
    })
}

fn file_sensor_dag(dag_id: &str, path: &std::path::Path, sensor: &str) -> String {
    format!(
        "dag_id: {dag_id}\ntasks:\n  - task_id: wait\n    operator: file_sensor\n    \
         file_sensor: {{filepath: '{dir}/*.ready'}}\n    retries: 3\n    sensor: {sensor}\n  \
         - task_id: after\n    dependencies: [wait]\n    bash_command: echo after\n",
        dir = path.display()
    )
}

#[test]
fn a_rescheduled_file_sensor_frees_its_slot_and_keeps_its_try_until_the_file_appears() {
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    home.write_dag(
        "wait_file.yaml",
        &file_sensor_dag(
            "wait_file",
            &landing,
            "{mode: reschedule, poke_interval: 1s, timeout: 1h}",
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("wait_file");
    let states = waiting_states(&home, "wait_file", &run_id, "wait", "up_for_reschedule");
    assert_eq!(
        states["state"], "running",
        "a run waits with its sensor: {states:#}"
    );
    assert_eq!(state_of(&states, "after"), "none");
    assert_eq!(try_of(&states, "wait"), 1);
    // Poked again (still nothing), in the same try, without holding a slot in between.
    let log = || home.ok(&["tasks", "logs", "wait_file", &run_id, "wait"]);
    eventually(Duration::from_secs(20), || {
        (log().matches("not there yet").count() >= 3).then_some(())
    })
    .expect("the sensor pokes every second");
    // Between pokes: no claim, no lease, the first poke's start kept.
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let between = eventually(Duration::from_secs(20), || {
        db.query_row(
            "SELECT try_number, lease_until IS NULL, start_date, next_retry_at FROM task_instance \
             WHERE task_id = 'wait' AND state = 'up_for_reschedule'",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )
        .ok()
    })
    .expect("the sensor waits up_for_reschedule");
    assert_eq!((between.0, between.1), (1, true), "{between:?}");
    assert!(between.3 > between.2, "{between:?}");
    assert!(finished_tries(&home, "wait").is_empty(), "no try ended yet");

    std::fs::write(landing.join("2026-01-31.ready"), "x").unwrap();
    let states = home.wait_for_run("wait_file", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "wait"), "success");
    assert_eq!(try_of(&states, "wait"), 1, "a reschedule is no new try");
    assert_eq!(finished_tries(&home, "wait"), vec![(1, "success".into())]);
    let log = log();
    assert!(log.contains("Rescheduling: the next poke is at"), "{log}");
    assert!(log.contains("2026-01-31.ready"), "{log}");
    let started: i64 = db
        .query_row(
            "SELECT start_date FROM task_instance WHERE task_id = 'wait'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(started, between.2, "the try started at its first poke");
}

#[test]
fn a_sensor_timeout_fails_it_without_retries_and_soft_fail_skips_it() {
    let home = Home::new();
    let nowhere = home.path().join("nowhere");
    home.write_dag(
        "times_out.yaml",
        &file_sensor_dag(
            "times_out",
            &nowhere,
            "{mode: reschedule, poke_interval: 0.5, timeout: 2s}",
        ),
    );
    home.write_dag(
        "soft.yaml",
        &file_sensor_dag(
            "soft",
            &nowhere,
            "{poke_interval: 0.5, timeout: 2s, soft_fail: true}",
        ),
    );
    let states = dags_test(&home, "times_out");
    assert_eq!(states["state"], "failed", "{states:#}");
    assert_eq!(state_of(&states, "wait"), "failed");
    assert_eq!(
        try_of(&states, "wait"),
        1,
        "a timeout uses none of the 3 retries"
    );
    assert_eq!(state_of(&states, "after"), "upstream_failed");
    let run_id = states["run_id"].as_str().unwrap().to_owned();
    let log = home.ok(&["tasks", "logs", "times_out", &run_id, "wait"]);
    assert!(log.contains("Sensor has timed out"), "{log}");

    let states = dags_test(&home, "soft");
    assert_eq!(state_of(&states, "wait"), "skipped", "{states:#}");
    assert_eq!(state_of(&states, "after"), "skipped");
    assert_eq!(try_of(&states, "wait"), 1);
}

#[test]
fn a_poking_sensor_keeps_its_slot_and_sees_a_file_written_beside_it() {
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    home.write_dag(
        "beside.yaml",
        &format!(
            "dag_id: beside\ntasks:\n  - task_id: wait\n    operator: file_sensor\n    \
             file_sensor: {{filepath: '{dir}/**/*.csv', recursive: true}}\n    \
             sensor: {{poke_interval: 0.3, timeout: 1m}}\n  \
             - task_id: write\n    bash_command: sleep 1.5; mkdir -p {dir}/a/b; echo x > {dir}/a/b/f.csv\n",
            dir = landing.display()
        ),
    );
    let states = dags_test(&home, "beside");
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "wait"), "success");
    assert_eq!(try_of(&states, "wait"), 1);
    let run_id = states["run_id"].as_str().unwrap().to_owned();
    let log = home.ok(&["tasks", "logs", "beside", &run_id, "wait"]);
    assert!(log.contains("found ") && log.contains("a/b/f.csv"), "{log}");
    assert!(
        !log.contains("Rescheduling"),
        "poke mode sleeps in its try: {log}"
    );
}

#[test]
fn time_sensors_wait_deferred_in_the_scheduler_without_a_process() {
    let home = Home::new();
    home.write_dag(
        "timed.yaml",
        "dag_id: timed\ntasks:\n  - task_id: later\n    operator: time_delta_sensor\n    \
         time_delta_sensor: {delta: 3s}\n  \
         - task_id: past\n    operator: date_time_sensor\n    \
         date_time_sensor: {target_time: '2020-01-01T00:00:00Z'}\n  \
         - task_id: after\n    dependencies: [later, past]\n    bash_command: echo after\n",
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("timed");
    let states = waiting_states(&home, "timed", &run_id, "later", "deferred");
    assert_eq!(states["state"], "running");
    assert_eq!(state_of(&states, "after"), "none");
    let states = home.wait_for_run("timed", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "later"), "success");
    assert_eq!(state_of(&states, "past"), "success");
    // No try, no worker, no log: nothing ran for them.
    assert_eq!(try_of(&states, "later"), 0);
    assert_eq!(try_of(&states, "past"), 0);
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let claimed: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM task_instance WHERE task_id IN ('later', 'past') \
             AND worker_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(claimed, 0, "no worker claimed a time sensor");
    assert!(finished_tries(&home, "later").is_empty());
    // The wait lasted its delta after the run's data interval end.
    let (start, end): (i64, i64) = db
        .query_row(
            "SELECT r.data_interval_end, ti.end_date FROM task_instance ti \
             JOIN dag_run r ON r.id = ti.dag_run_id WHERE ti.task_id = 'later'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(end - start >= 3_000_000, "{start} {end}");
}

#[test]
fn a_rescheduled_sensor_survives_a_crash_of_standalone() {
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    home.write_dag(
        "survives.yaml",
        &file_sensor_dag(
            "survives",
            &landing,
            "{mode: reschedule, poke_interval: 1s, timeout: 1h}",
        ),
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("survives");
    waiting_states(&home, "survives", &run_id, "wait", "up_for_reschedule");
    standalone.sigkill();
    std::fs::write(landing.join("x.ready"), "x").unwrap();
    let _restarted = home.standalone();
    let states = home.wait_for_run("survives", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "wait"), "success");
    assert_eq!(state_of(&states, "after"), "success");
    // A crash between pokes costs the sensor nothing: it was not running.
    assert_eq!(try_of(&states, "wait"), 1, "{states:#}");
}

/// Answers `/health` with 404 until `ready_after` requests were made, then 200 with
/// `{"status": …}`: empty once, then `"up"`.
fn health_server(ready_after: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/health",
                axum::routing::get(move || {
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        use axum::http::StatusCode;
                        if n < ready_after {
                            (StatusCode::NOT_FOUND, "not yet".to_owned())
                        } else if n == ready_after {
                            (StatusCode::OK, r#"{"status": ""}"#.to_owned())
                        } else {
                            (StatusCode::OK, r#"{"status": "up"}"#.to_owned())
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, count)
}

#[test]
fn an_http_sensor_pokes_past_404s_and_empty_answers_until_its_filter_finds_something() {
    let (port, count) = health_server(3);
    let home = Home::new();
    home.write_dag(
        "http_wait.yaml",
        "dag_id: http_wait\ntasks:\n  - task_id: up\n    operator: http\n    \
         http: {http_conn_id: service, method: GET, endpoint: health, response_filter: /status}\n    \
         sensor: {mode: reschedule, poke_interval: 0.3, timeout: 1m}\n",
    );
    let out = home
        .command()
        .args(["dags", "test", "http_wait", "--output", "json"])
        .env("AIRFLOW_CONN_SERVICE", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["state"], "success", "{doc:#}");
    // Two 404s, one empty status, then "up".
    assert_eq!(count.load(Ordering::SeqCst), 4);
    let run_id = doc["run_id"].as_str().unwrap().to_owned();
    let states = home.json(&["tasks", "states-for-dag-run", "http_wait", &run_id]);
    assert_eq!(try_of(&states, "up"), 1);
    let log = home.ok(&["tasks", "logs", "http_wait", &run_id, "up"]);
    assert!(log.contains("HTTP error: 404"), "{log}");
}

#[test]
fn python_sensors_poke_in_their_own_processes_and_push_what_the_last_poke_returned() {
    let home = Home::new();
    let flag = home.path().join("flag");
    home.write_dag(
        "py_sensors.py",
        &format!(
            r#"
import os
from datetime import datetime
from airflow.decorators import dag, task
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.providers.standard.sensors.python import PythonSensor

FLAG = {flag:?}


class FlagSensor(BaseSensorOperator):
    def poke(self, context):
        print("poking for", FLAG)
        return os.path.exists(FLAG)


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def py_sensors():
    @task.sensor(poke_interval=0.5, timeout=60, mode="reschedule")
    def flag_written():
        return PokeReturnValue(is_done=os.path.exists(FLAG), xcom_value="seen")

    @task
    def after(value):
        print("after got", value)
        return value

    FlagSensor(task_id="poking", poke_interval=0.5, timeout=60)
    PythonSensor(task_id="never", python_callable=lambda: False, poke_interval=0.5,
                 timeout=1, soft_fail=True)
    after(flag_written())

    @task.bash
    def write_flag():
        return f"sleep 2; touch {{FLAG}}"

    write_flag()


py_sensors()
"#
        ),
    );
    let states = dags_test(&home, "py_sensors");
    assert_eq!(states["state"], "success", "{states:#}");
    for task in ["flag_written", "poking", "after", "write_flag"] {
        assert_eq!(state_of(&states, task), "success", "{task}: {states:#}");
    }
    assert_eq!(
        state_of(&states, "never"),
        "skipped",
        "soft_fail on timeout"
    );
    assert_eq!(try_of(&states, "flag_written"), 1);
    assert_eq!(try_of(&states, "poking"), 1);
    let run_id = states["run_id"].as_str().unwrap().to_owned();
    let log = home.ok(&["tasks", "logs", "py_sensors", &run_id, "after"]);
    assert!(log.contains("after got seen"), "{log}");
    let log = home.ok(&["tasks", "logs", "py_sensors", &run_id, "poking"]);
    assert!(log.matches("poking for").count() >= 2, "{log}");
    let log = home.ok(&["tasks", "logs", "py_sensors", &run_id, "flag_written"]);
    assert!(log.contains("Rescheduling"), "{log}");
}
