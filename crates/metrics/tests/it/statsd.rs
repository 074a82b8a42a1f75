//! StatsD lines under Airflow's names, received on a UDP socket bound on loopback.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use updraft_metrics::{Metrics, MetricsConfig, StatsdConfig};

#[test]
fn events_are_sent_to_statsd_under_airflows_names() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = server.local_addr().unwrap().port();
    let m = Metrics::new(&MetricsConfig {
        statsd: Some(StatsdConfig {
            host: "127.0.0.1".into(),
            port,
            prefix: "updraft".into(),
        }),
    })
    .unwrap();
    super::exposition::record_everything(&m);

    let expected = [
        "updraft.scheduler_heartbeat:1|c",
        "updraft.ti_successes:1|c",
        "updraft.ti_failures:1|c",
        "updraft.ti.start.etl.extract:1|c",
        "updraft.ti.finish.etl.load.failed:1|c",
        "updraft.dag.etl.extract.duration:250|ms",
        "updraft.dag.etl.extract.queued_duration:40|ms",
        "updraft.dagrun.duration.success.etl:12000|ms",
        "updraft.dagrun.schedule_delay.etl:1000|ms",
        "updraft.scheduler.scheduler_loop_duration:3|ms",
        "updraft.pool.open_slots.default_pool:126|g",
        "updraft.pool.running_slots.default_pool:1|g",
        "updraft.executor.open_slots:4|g",
        "updraft.dag_processing.import_errors:1|g",
        "updraft.dagbag_size:3|g",
        "updraft.task_instances.queued:2|g",
    ];
    let mut received = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while !expected.iter().all(|e| received.contains(*e)) && Instant::now() < deadline {
        if let Ok(n) = server.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                received.insert(line.to_string());
            }
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !received.contains(**e))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}; received {received:?}"
    );
}

#[test]
fn an_unresolvable_statsd_host_is_a_clear_error() {
    let err = Metrics::new(&MetricsConfig {
        statsd: Some(StatsdConfig {
            host: "no-such-host.invalid".into(),
            port: 8125,
            prefix: "updraft".into(),
        }),
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot send StatsD metrics to no-such-host.invalid:8125"),
        "{err}"
    );
}
