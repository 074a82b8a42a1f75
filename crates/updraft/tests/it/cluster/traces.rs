//! Traces across processes: the scheduler that ends a run and the remote worker that ran its
//! tries, each exporting on its own, put their spans in one trace.

use std::time::Duration;

use updraft_telemetry::testing::Collector;

use super::{state_of, Cluster};

#[test]
fn a_scheduler_and_a_remote_worker_put_their_spans_in_one_trace() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let collector = Collector::start().unwrap();
    let traces = |service: &'static str| {
        [
            ("UPDRAFT_TRACES__ON", "true"),
            ("UPDRAFT_TRACES__OTLP_ENDPOINT", collector.address()),
            ("UPDRAFT_TRACES__SERVICE_NAME", service),
            ("UPDRAFT_TRACES__EXPORT_INTERVAL", "1s"),
        ]
    };
    cluster.write_dag(
        "traced.yaml",
        "tasks:\n  - task_id: a\n    bash_command: echo a\n  - task_id: b\n    bash_command: 'echo \"$TRACEPARENT\"'\n    dependencies: [a]\n",
    );
    let _scheduler = cluster.scheduler_with_env(&traces("sched"));
    let api = cluster.api_server();
    let _worker = cluster.worker_with_env(&[&api], "default", 2, &traces("work"));
    cluster.wait_for_scheduler();
    cluster.trigger("traced", "t_1");
    let runs = cluster.wait_for_runs("traced", &["t_1".to_string()], Duration::from_secs(60));
    assert_eq!(runs["t_1"], "success", "{}", cluster.logs());
    let states = cluster.states("traced", "t_1");
    assert_eq!(state_of(&states, "b"), "success");

    let spans = collector.wait_for(Duration::from_secs(20), |s| s.len() >= 3);
    assert_eq!(spans.len(), 3, "{spans:#?}\n{}", cluster.logs());
    let root = spans
        .iter()
        .find(|s| s.parent_span_id.is_empty())
        .unwrap_or_else(|| panic!("no run span: {spans:#?}"));
    assert_eq!(root.service_name, "sched");
    assert_eq!(root.attributes["run_id"], "t_1");
    assert_eq!(root.attributes["run_type"], "manual");
    for task_id in ["a", "b"] {
        let span = spans
            .iter()
            .find(|s| s.name == task_id)
            .unwrap_or_else(|| panic!("no span of {task_id}: {spans:#?}"));
        assert_eq!(span.service_name, "work");
        assert_eq!(span.trace_id, root.trace_id, "{span:#?}");
        assert_eq!(span.parent_span_id, root.span_id, "{span:#?}");
        assert_eq!(span.attributes["state"], "success");
    }
    // The task's process, on the worker, named its try's span.
    let b = spans.iter().find(|s| s.name == "b").unwrap();
    let log = cluster.ok(&["tasks", "logs", "traced", "t_1", "b"]);
    assert!(
        log.contains(&format!("00-{}-{}-01", root.trace_id, b.span_id)),
        "{log}"
    );
}
