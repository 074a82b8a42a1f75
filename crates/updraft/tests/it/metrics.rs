//! Metrics of `updraft standalone`: `/metrics` on its API port after real runs (tries by
//! DAG and task, failures, run durations, API latency by route template, pool slots), and
//! the same events as StatsD lines on a UDP socket the test binds on loopback.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::fixture::{eventually, http_get, state_of, Home, Standalone};

/// `http://HOST:PORT` of a standalone's API port.
fn base_url(standalone: &Standalone) -> String {
    let health = &standalone.health_url;
    health
        .strip_suffix("/api/v2/monitor/health")
        .unwrap_or_else(|| panic!("unexpected health address {health}"))
        .to_string()
}

/// The value of the series `series` (name and labels exactly as exported), if present.
pub fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[test]
fn standalone_exports_its_runs_tries_and_requests_to_prometheus_and_statsd() {
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let home = Home::new();
    std::fs::write(
        home.path().join("updraft.toml"),
        format!(
            "[metrics]\nstatsd_on = true\nstatsd_host = \"127.0.0.1\"\nstatsd_port = {}\n",
            statsd.local_addr().unwrap().port()
        ),
    )
    .unwrap();
    home.write_dag(
        "etl.yaml",
        "tasks:\n  - task_id: extract\n    bash_command: echo e\n  - task_id: load\n    bash_command: echo l\n    dependencies: [extract]\n  - task_id: check\n    bash_command: exit 1\n",
    );
    home.write_dag("broken.yaml", "tasks: [unclosed\n");
    // Scheduled: its latest interval's run is due at once, and late by up to a day.
    home.write_dag(
        "daily.yaml",
        "schedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\ntasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let standalone = home.standalone();
    let base = base_url(&standalone);

    for _ in 0..2 {
        let run_id = home.trigger("etl");
        let states = home.wait_for_run("etl", &run_id, Duration::from_secs(30));
        assert_eq!(states["state"], "failed");
        assert_eq!(state_of(&states, "load"), "success");
        assert_eq!(state_of(&states, "check"), "failed");
    }
    // A request without a token still counts, under its route's template.
    assert!(http_get(&format!("{base}/api/v2/dags/etl")).is_some());

    let text = http_get(&format!("{base}/metrics")).expect("no /metrics");
    let value = |series: &str| value_of(&text, series);
    for task in ["extract", "load"] {
        let labels = format!("{{dag_id=\"etl\",task_id=\"{task}\"}}");
        assert_eq!(
            value(&format!("updraft_ti_successes_total{labels}")),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            value(&format!("updraft_task_duration_seconds_count{labels}")),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            value(&format!("updraft_ti_started_total{labels}")),
            Some(2.0),
            "{text}"
        );
    }
    assert_eq!(
        value(r#"updraft_ti_failures_total{dag_id="etl",task_id="check"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"updraft_ti_finished_total{dag_id="etl",task_id="check",state="failed"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"updraft_ti_successes_total{dag_id="etl",task_id="check"}"#),
        None,
        "{text}"
    );
    assert_eq!(
        value(r#"updraft_dag_run_duration_seconds_count{dag_id="etl",state="failed"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"updraft_task_queued_duration_seconds_count{dag_id="etl",task_id="load"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value("updraft_dag_processing_import_errors"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value("updraft_dag_bag_size"), Some(2.0), "{text}");
    assert!(
        value("updraft_scheduler_heartbeat_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(value("updraft_scheduler_loop_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    assert!(value("updraft_dag_processing_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    let delayed = eventually(Duration::from_secs(15), || {
        let text = http_get(&format!("{base}/metrics"))?;
        value_of(
            &text,
            r#"updraft_dag_run_schedule_delay_seconds_count{dag_id="daily"}"#,
        )
    });
    assert_eq!(
        delayed,
        Some(1.0),
        "the scheduled run's delay was not recorded"
    );
    assert_eq!(
        value(r#"updraft_dag_run_schedule_delay_seconds_count{dag_id="etl"}"#),
        None,
        "a triggered run has no schedule delay:\n{text}"
    );

    // Pool slots are counted every few seconds: the count after the runs ended frees them all.
    let pool_open = eventually(Duration::from_secs(15), || {
        let text = http_get(&format!("{base}/metrics"))?;
        let open = value_of(&text, r#"updraft_pool_open_slots{pool="default_pool"}"#)?;
        let running = value_of(&text, "updraft_executor_running_tasks")?;
        (open == 128.0 && running == 0.0).then_some(text)
    });
    assert!(
        pool_open.is_some(),
        "the default pool never showed 128 open slots, nor the worker 0 tasks:\n{text}"
    );
    assert_eq!(
        value(
            r#"updraft_api_request_duration_seconds_count{method="GET",route="/api/v2/dags/{dag_id}",status="401"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("/api/v2/dags/etl\""),
        "a raw path became a label:\n{text}"
    );
    assert!(!text.contains("run_id"), "a run id became a label:\n{text}");

    // StatsD: Airflow's names, under the default prefix.
    let expected = [
        "updraft.ti_successes:1|c",
        "updraft.ti_failures:1|c",
        "updraft.scheduler_heartbeat:1|c",
        "updraft.ti.finish.etl.check.failed:1|c",
        "updraft.dag_processing.import_errors:1|g",
    ];
    let prefixes = [
        "updraft.dagrun.duration.failed.etl:",
        "updraft.dag.etl.load.duration:",
        "updraft.dagrun.schedule_delay.daily:",
    ];
    let mut received = BTreeSet::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    let complete = |received: &BTreeSet<String>| {
        expected.iter().all(|e| received.contains(*e))
            && prefixes
                .iter()
                .all(|p| received.iter().any(|line| line.starts_with(p)))
    };
    while !complete(&received) && Instant::now() < deadline {
        if let Ok(n) = statsd.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                received.insert(line.to_string());
            }
        }
    }
    assert!(complete(&received), "StatsD lines received: {received:#?}");
}

#[test]
fn metrics_off_answer_404_and_runs_still_run() {
    let home = Home::new();
    std::fs::write(
        home.path().join("updraft.toml"),
        "[metrics]\nenabled = false\n",
    )
    .unwrap();
    home.write_dag(
        "t.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n",
    );
    let standalone = home.standalone();
    let base = base_url(&standalone);
    let run_id = home.trigger("t");
    let states = home.wait_for_run("t", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success");
    let answer = eventually(Duration::from_secs(5), || {
        http_get(&format!("{base}/metrics"))
    })
    .expect("no answer");
    assert!(answer.contains("metrics.enabled = false"), "{answer}");
}
