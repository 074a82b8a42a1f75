//! Notifications in a cluster: three schedulers each run a delivery loop on one PostgreSQL
//! database, a remote worker's finish reports carry the tasks' notifications through the API,
//! and every notification (task callback, DAG callback, deadline alert) arrives exactly once.

use std::net::TcpListener;
use std::time::Duration;

use super::{eventually, Cluster};
use crate::notifications::{http_receiver, posted};

#[test]
fn every_notification_is_delivered_once_by_one_of_several_schedulers() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = http_receiver(listener);
    cluster.write_dag(
        "cl_notify.yaml",
        &format!(
            r#"dag_id: cl_notify
notifiers:
  hook: {{kind: webhook, url: "http://127.0.0.1:{port}/{{{{ event }}}}/{{{{ run_id }}}}"}}
on_failure_callback: hook
deadline: {{reference: dagrun_queued_at, interval: 1s, callback: hook}}
tasks:
  - task_id: t
    bash_command: "sleep 3; exit 1"
    on_failure_callback: hook
"#
        ),
    );
    let _schedulers = [
        cluster.scheduler(),
        cluster.scheduler(),
        cluster.scheduler(),
    ];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();
    let runs: Vec<String> = (1..=4).map(|i| format!("n_{i}")).collect();
    for run in &runs {
        cluster.trigger("cl_notify", run);
    }
    let states = cluster.wait_for_runs("cl_notify", &runs, Duration::from_secs(90));
    assert!(states.values().all(|s| s == "failed"), "{states:?}");
    let expected: Vec<String> = runs
        .iter()
        .flat_map(|run| {
            ["task_failure", "dag_failure", "deadline_missed"].map(|e| format!("/{e}/{run}"))
        })
        .collect();
    eventually(Duration::from_secs(30), || {
        expected
            .iter()
            .all(|path| !posted(&seen, path).is_empty())
            .then_some(())
    })
    .unwrap_or_else(|| {
        let got: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.path.clone())
            .collect();
        panic!("missing deliveries; got {got:?}\n{}", cluster.logs())
    });
    // Sweeps and polls of every scheduler pass: nothing is sent twice.
    std::thread::sleep(Duration::from_secs(4));
    for path in &expected {
        assert_eq!(
            posted(&seen, path).len(),
            1,
            "{path} delivered more than once"
        );
    }
    assert_eq!(seen.lock().unwrap().len(), expected.len());
}
