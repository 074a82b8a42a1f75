//! Spans exported to a collector on loopback, and a collector that is down.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use updraft_telemetry::testing::Collector;
use updraft_telemetry::{RunIdentity, RunSpan, Traces, TracesConfig, TryIdentity, TrySpan};

fn config(endpoint: &str) -> TracesConfig {
    TracesConfig {
        endpoint: Some(endpoint.to_owned()),
        service_name: "updraft-test".into(),
        export_interval: Duration::from_millis(100),
        export_timeout: Duration::from_secs(2),
    }
}

#[test]
fn a_run_and_its_tries_arrive_as_one_trace_with_their_attributes() {
    let collector = Collector::start().unwrap();
    let traces = Traces::start(&config(collector.address())).unwrap();
    let run = RunIdentity {
        dag_id: "etl",
        run_id: "manual__2026-01-01",
        id: 42,
    };
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let at = |s| t0 + chrono::Duration::seconds(s);
    for (ti_id, task_id, state) in [(7, "extract", "success"), (8, "load", "failed")] {
        traces.try_ended(&TrySpan {
            run,
            attempt: TryIdentity {
                ti_id,
                try_number: 1,
            },
            task_id,
            map_index: -1,
            state,
            hostname: "worker-1",
            start: at(1),
            end: at(2),
        });
    }
    traces.run_ended(&RunSpan {
        run,
        run_type: "manual",
        state: "failed",
        start: at(0),
        end: at(3),
    });
    let spans = collector.wait_for(Duration::from_secs(20), |s| s.len() >= 3);
    traces.shutdown(Duration::from_secs(2));
    assert_eq!(
        spans.len(),
        3,
        "{spans:#?} rejected {:?}",
        collector.rejected()
    );
    let trace_id = run.trace_id().to_string();
    assert!(spans.iter().all(|s| s.trace_id == trace_id), "{spans:#?}");
    assert!(spans.iter().all(|s| s.service_name == "updraft-test"));

    let root = spans.iter().find(|s| s.name == "etl").unwrap();
    assert_eq!(root.span_id, run.span_id().to_string());
    assert_eq!(root.parent_span_id, "");
    assert_eq!(root.attributes["dag_id"], "etl");
    assert_eq!(root.attributes["run_id"], "manual__2026-01-01");
    assert_eq!(root.attributes["run_type"], "manual");
    assert_eq!(root.attributes["state"], "failed");
    let nanos = |s: i64| (at(s).timestamp_nanos_opt().unwrap()) as u64;
    assert_eq!(
        (root.start_unix_nano, root.end_unix_nano),
        (nanos(0), nanos(3))
    );

    let load = spans.iter().find(|s| s.name == "load").unwrap();
    let attempt = TryIdentity {
        ti_id: 8,
        try_number: 1,
    };
    assert_eq!(load.span_id, attempt.span_id().to_string());
    assert_eq!(load.parent_span_id, root.span_id);
    assert_eq!(
        (load.start_unix_nano, load.end_unix_nano),
        (nanos(1), nanos(2))
    );
    for (key, value) in [
        ("dag_id", "etl"),
        ("run_id", "manual__2026-01-01"),
        ("task_id", "load"),
        ("try_number", "1"),
        ("map_index", "-1"),
        ("state", "failed"),
        ("hostname", "worker-1"),
    ] {
        assert_eq!(load.attributes[key], value, "{key} of {load:#?}");
    }
}

#[test]
fn a_collector_that_is_down_costs_the_caller_nothing_but_the_spans() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let traces = Traces::start(&config(&format!("http://127.0.0.1:{port}"))).unwrap();
    let run = RunIdentity {
        dag_id: "etl",
        run_id: "r",
        id: 1,
    };
    // Far more than a batch and than the queue holds: the queue drops, the caller goes on.
    for ti_id in 0..5000 {
        traces.try_ended(&TrySpan {
            run,
            attempt: TryIdentity {
                ti_id,
                try_number: 1,
            },
            task_id: "t",
            map_index: -1,
            state: "success",
            hostname: "h",
            start: Utc::now(),
            end: Utc::now(),
        });
    }
    assert_eq!(
        traces.traceparent(
            &run,
            TryIdentity {
                ti_id: 1,
                try_number: 1
            }
        ),
        Some(updraft_telemetry::traceparent(
            &run,
            TryIdentity {
                ti_id: 1,
                try_number: 1
            }
        ))
    );
    traces.shutdown(Duration::from_secs(1));
}

#[test]
fn traces_off_give_no_traceparent() {
    let run = RunIdentity {
        dag_id: "etl",
        run_id: "r",
        id: 1,
    };
    let attempt = TryIdentity {
        ti_id: 1,
        try_number: 1,
    };
    assert_eq!(Traces::off().traceparent(&run, attempt), None);
    assert!(!Traces::off().is_on());
}

#[test]
fn without_an_endpoint_the_standard_environment_variable_names_the_collector() {
    let collector = Collector::start().unwrap();
    // Only this test leaves the endpoint to the environment.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.address());
    let traces = Traces::start(&TracesConfig {
        endpoint: None,
        ..config("unused")
    })
    .unwrap();
    std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    let run = RunIdentity {
        dag_id: "etl",
        run_id: "r",
        id: 1,
    };
    traces.run_ended(&RunSpan {
        run,
        run_type: "scheduled",
        state: "success",
        start: Utc::now(),
        end: Utc::now(),
    });
    let spans = collector.wait_for(Duration::from_secs(20), |s| !s.is_empty());
    traces.shutdown(Duration::from_secs(2));
    assert_eq!(spans.len(), 1, "rejected {:?}", collector.rejected());
    assert_eq!(spans[0].span_id, run.span_id().to_string());
}
