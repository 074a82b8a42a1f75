//! Sensors in a cluster. A rescheduled sensor: two schedulers both see it wait, yet each due
//! poke is queued once (a compare-and-set from `up_for_reschedule`), so it is poked once per
//! interval and never twice at the same time, on a remote worker, in one try. An
//! `ExternalTaskSensor`: held by the schedulers themselves, ended once, on PostgreSQL.

use std::time::{Duration, Instant};

use super::{eventually, state_of, Cluster};

#[test]
fn a_rescheduled_sensor_with_two_schedulers_is_poked_once_per_interval() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let landing = cluster.path("landing");
    std::fs::create_dir_all(&landing).unwrap();
    cluster.write_dag(
        "pg_sensor.yaml",
        &format!(
            "dag_id: pg_sensor\ntasks:\n  - task_id: wait\n    operator: file_sensor\n    \
             file_sensor: {{filepath: '{}/*.ready'}}\n    \
             sensor: {{mode: reschedule, poke_interval: 1, timeout: 5m}}\n",
            landing.display()
        ),
    );
    let _first = cluster.scheduler();
    let _second = cluster.scheduler();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();
    cluster.trigger("pg_sensor", "s_1");
    eventually(Duration::from_secs(60), || {
        let states = cluster.states("pg_sensor", "s_1");
        (state_of(&states, "wait") == "up_for_reschedule").then_some(())
    })
    .unwrap_or_else(|| panic!("the sensor never waited\n{}", cluster.logs()));
    let waiting_since = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    std::fs::write(landing.join("go.ready"), "x").unwrap();
    let waited = waiting_since.elapsed().as_secs_f64();
    let states = eventually(Duration::from_secs(60), || {
        let states = cluster.states("pg_sensor", "s_1");
        matches!(states["state"].as_str(), Some("success" | "failed")).then_some(states)
    })
    .unwrap_or_else(|| panic!("the run did not finish\n{}", cluster.logs()));
    assert_eq!(states["state"], "success", "{states:#}\n{}", cluster.logs());
    let ti = states["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ti| ti["task_id"] == "wait")
        .unwrap();
    assert_eq!(ti["try_number"], 1, "{states:#}");

    let log = String::from_utf8(
        cluster
            .cli(&["tasks", "logs", "pg_sensor", "s_1", "wait"])
            .stdout,
    )
    .unwrap();
    let pokes: Vec<chrono::DateTime<chrono::Utc>> = log
        .lines()
        .filter(|line| line.contains("not there yet"))
        .filter_map(|line| line.strip_prefix('[')?.split(']').next())
        .filter_map(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok())
        .map(|ts| ts.with_timezone(&chrono::Utc))
        .collect();
    // About one poke a second while it waited: not one per scheduler.
    assert!(pokes.len() >= 3, "{log}");
    assert!(
        (pokes.len() as f64) <= waited + 3.0,
        "{} pokes in {waited:.1} s:\n{log}",
        pokes.len()
    );
    for pair in pokes.windows(2) {
        let apart = (pair[1] - pair[0]).num_milliseconds();
        assert!(apart >= 900, "two pokes {apart} ms apart:\n{log}");
    }
}

#[test]
fn an_external_task_sensor_waits_in_two_schedulers_and_ends_once() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.write_dag(
        "pg_up.yaml",
        "dag_id: pg_up\ntasks:\n  - {task_id: load, bash_command: 'true'}\n",
    );
    cluster.write_dag(
        "pg_down.yaml",
        "dag_id: pg_down\ntasks:\n  - task_id: wait\n    operator: external_task_sensor\n    \
         external_task_sensor: {external_dag_id: pg_up, external_task_id: load}\n    \
         sensor: {poke_interval: 1, timeout: 5m}\n  \
         - {task_id: after, bash_command: 'true', dependencies: [wait]}\n",
    );
    let _first = cluster.scheduler();
    let _second = cluster.scheduler();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();
    let date = "2026-03-02T00:00:00Z";
    cluster.ok(&[
        "dags",
        "trigger",
        "pg_down",
        "--run-id",
        "d_1",
        "--logical-date",
        date,
    ]);
    eventually(Duration::from_secs(60), || {
        let states = cluster.states("pg_down", "d_1");
        (state_of(&states, "wait") == "deferred").then_some(())
    })
    .unwrap_or_else(|| panic!("the sensor never waited\n{}", cluster.logs()));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        state_of(&cluster.states("pg_down", "d_1"), "wait"),
        "deferred",
        "nothing to find yet"
    );
    cluster.ok(&[
        "dags",
        "trigger",
        "pg_up",
        "--run-id",
        "u_1",
        "--logical-date",
        date,
    ]);
    let states = eventually(Duration::from_secs(60), || {
        let states = cluster.states("pg_down", "d_1");
        matches!(states["state"].as_str(), Some("success" | "failed")).then_some(states)
    })
    .unwrap_or_else(|| panic!("the run did not finish\n{}", cluster.logs()));
    assert_eq!(states["state"], "success", "{states:#}\n{}", cluster.logs());
    let ti = states["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ti| ti["task_id"] == "wait")
        .unwrap();
    assert_eq!(ti["try_number"], 1, "one try, whoever poked: {states:#}");
    assert_eq!(state_of(&states, "after"), "success");
}
