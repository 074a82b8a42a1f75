//! What `/metrics` shows after one of every event: each family of `METRIC_NAMES`, nothing
//! else, with the labels of the event.

use std::collections::BTreeSet;
use std::time::Duration;

use updraft_metrics::{Metrics, MetricsConfig, TryEnd, METRIC_NAMES};

/// Records one of each event, as a scheduler, a worker, a DAG processor and an API do.
pub fn record_everything(m: &Metrics) {
    m.scheduler_loop(Duration::from_millis(3));
    m.scheduler_heartbeat();
    m.task_instances(&[("queued", 2), ("running", 1)]);
    m.executor_slots(4);
    m.try_started("etl", "extract", Some(Duration::from_millis(40)));
    m.try_ended(
        "etl",
        "extract",
        "success",
        TryEnd::Success,
        Duration::from_millis(250),
    );
    m.try_started("etl", "load", None);
    m.try_ended(
        "etl",
        "load",
        "failed",
        TryEnd::Failure,
        Duration::from_secs(2),
    );
    m.dag_run_started("etl", Some(Duration::from_secs(1)));
    m.dag_run_ended("etl", "success", Duration::from_secs(12));
    m.pools(&[("default_pool", 126, 1, 1)]);
    m.dag_processing(Duration::from_millis(20), 3, 1);
    m.api_request(
        "GET",
        "/api/v2/dags/{dag_id}",
        200,
        Duration::from_millis(2),
    );
}

fn type_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_event_shows_under_the_documented_names_with_its_labels() {
    let m = Metrics::new(&MetricsConfig::default()).unwrap();
    record_everything(&m);
    let text = m.encode().unwrap();
    let expected: BTreeSet<String> = METRIC_NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(type_names(&text), expected, "{text}");
    for line in [
        r#"updraft_ti_successes_total{dag_id="etl",task_id="extract"} 1"#,
        r#"updraft_ti_failures_total{dag_id="etl",task_id="load"} 1"#,
        r#"updraft_ti_finished_total{dag_id="etl",task_id="load",state="failed"} 1"#,
        r#"updraft_task_duration_seconds_count{dag_id="etl",task_id="load"} 1"#,
        r#"updraft_task_queued_duration_seconds_bucket{dag_id="etl",task_id="extract",le="0.05"} 1"#,
        r#"updraft_dag_run_duration_seconds_sum{dag_id="etl",state="success"} 12.0"#,
        r#"updraft_pool_open_slots{pool="default_pool"} 126"#,
        r#"updraft_task_instances{state="queued"} 2"#,
        r#"updraft_executor_open_slots 4"#,
        r#"updraft_executor_running_tasks 0"#,
        r#"updraft_dag_processing_import_errors 1"#,
        r#"updraft_scheduler_heartbeat_total 1"#,
        r#"updraft_api_request_duration_seconds_count{method="GET",route="/api/v2/dags/{dag_id}",status="200"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
}

#[test]
fn pools_that_are_gone_leave_the_export() {
    let m = Metrics::new(&MetricsConfig::default()).unwrap();
    m.pools(&[("a", 1, 0, 0), ("b", 2, 0, 0)]);
    m.pools(&[("b", 3, 0, 0)]);
    let text = m.encode().unwrap();
    assert!(!text.contains(r#"pool="a""#), "{text}");
    assert!(
        text.contains(r#"updraft_pool_open_slots{pool="b"} 3"#),
        "{text}"
    );
}
