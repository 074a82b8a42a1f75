//! Metrics of a cluster: the `scheduler` and the `worker` each answer `/metrics` on their own
//! `metrics.port`, the scheduler also `/health`; the api-server on its API port.

use std::time::Duration;

use super::Cluster;
use crate::fixture::http_get;
use crate::metrics::value_of;

#[test]
fn scheduler_and_worker_answer_metrics_on_their_own_port() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.write_dag(
        "etl.yaml",
        "tasks:\n  - task_id: extract\n    bash_command: echo e\n  - task_id: check\n    bash_command: exit 3\n    dependencies: [extract]\n",
    );
    let port = [("UPDRAFT_METRICS__PORT", "0")];
    let scheduler = cluster.scheduler_with_env(&port);
    let api = cluster.api_server();
    let worker = cluster.worker_with_env(&[&api], "default", 2, &port);
    cluster.wait_for_scheduler();
    let runs: Vec<String> = ["m_1", "m_2"].map(String::from).to_vec();
    for run in &runs {
        cluster.trigger("etl", run);
    }
    let states = cluster.wait_for_runs("etl", &runs, Duration::from_secs(60));
    assert!(states.values().all(|s| s == "failed"), "{states:?}");

    let scheduler_metrics = scheduler.printed("metrics:").unwrap_or_else(|| {
        panic!(
            "the scheduler printed no metrics address\n{}",
            cluster.logs()
        )
    });
    let worker_metrics = worker
        .printed("metrics:")
        .unwrap_or_else(|| panic!("the worker printed no metrics address\n{}", cluster.logs()));
    assert_ne!(scheduler_metrics, worker_metrics);

    // The worker ran the tries: their counters are its own.
    let text = http_get(&worker_metrics).expect("the worker's /metrics did not answer");
    assert_eq!(
        value_of(
            &text,
            r#"updraft_ti_successes_total{dag_id="etl",task_id="extract"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value_of(
            &text,
            r#"updraft_ti_failures_total{dag_id="etl",task_id="check"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value_of(&text, "updraft_executor_open_slots"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value_of(&text, "updraft_scheduler_heartbeat_total"),
        Some(0.0),
        "{text}"
    );

    // The scheduler ended the runs and beats.
    let text = http_get(&scheduler_metrics).expect("the scheduler's /metrics did not answer");
    assert_eq!(
        value_of(
            &text,
            r#"updraft_dag_run_duration_seconds_count{dag_id="etl",state="failed"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        value_of(&text, "updraft_scheduler_heartbeat_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        value_of(&text, "updraft_dag_bag_size") == Some(1.0),
        "{text}"
    );
    assert_eq!(
        value_of(
            &text,
            r#"updraft_ti_successes_total{dag_id="etl",task_id="extract"}"#
        ),
        None,
        "the scheduler runs no tries:\n{text}"
    );

    let health_url = scheduler_metrics.replace("/metrics", "/health");
    let health: serde_json::Value =
        serde_json::from_str(&http_get(&health_url).expect("no /health")).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(health["latest_scheduler_heartbeat"].is_string(), "{health}");

    // The api-server serves /metrics on its API port, its routes timed.
    let api_url = api.url.clone().unwrap();
    assert!(http_get(&format!("{api_url}/api/v2/version")).is_some());
    let text = http_get(&format!("{api_url}/metrics")).expect("the api-server's /metrics");
    assert!(
        text.contains(r#"updraft_api_request_duration_seconds_count{method="GET",route="/api/v2/version",status="#),
        "{text}"
    );
    // The workers' calls are timed as well, by their route.
    assert!(
        text.contains(r#"updraft_api_request_duration_seconds_count{method="POST",route="/execution/v1/finish",status="200"}"#),
        "{text}"
    );
}
