//! `max_active_runs` across schedulers: three schedulers own shares of a DAG's queued runs and
//! each starts its own when a place frees up, yet no two runs of a DAG limited to one ever run
//! at the same time.

use std::time::Duration;

use super::{str_field, Cluster};

#[test]
fn schedulers_together_keep_a_dags_max_active_runs() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    const RUNS: usize = 12;
    // The task holds a lock folder while it runs: a second run's task starting meanwhile finds
    // it taken and fails its run.
    let lock = cluster.path("one_at_a_time.lock");
    cluster.write_dag(
        "one_at_a_time.yaml",
        &format!(
            "max_active_runs: 1\ntasks:\n  - task_id: hold\n    retries: 0\n    bash_command: \
             mkdir {lock} || exit 3; sleep 0.2; rmdir {lock}\n",
            lock = lock.display()
        ),
    );
    let _schedulers = [
        cluster.scheduler(),
        cluster.scheduler(),
        cluster.scheduler(),
    ];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 8);
    cluster.wait_for_scheduler();
    let run_ids: Vec<String> = (0..RUNS).map(|i| format!("run_{i:02}")).collect();
    for run_id in &run_ids {
        cluster.trigger("one_at_a_time", run_id);
    }

    let states = cluster.wait_for_runs("one_at_a_time", &run_ids, Duration::from_secs(90));
    let failed: Vec<_> = states.iter().filter(|(_, s)| *s != "success").collect();
    assert!(
        failed.is_empty(),
        "runs overlapped (their task found the lock taken): {failed:?}\n{}",
        cluster.logs()
    );
    // The runs' own times say the same: each started after the one before it ended.
    let runs = cluster.json(&["dags", "list-runs", "one_at_a_time"]);
    let instant = |run: &serde_json::Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(str_field(run, key))
            .unwrap_or_else(|e| panic!("{key} of {run}: {e}"))
    };
    let mut spans: Vec<_> = runs
        .as_array()
        .expect("list-runs prints an array")
        .iter()
        .map(|run| (instant(run, "start_date"), instant(run, "end_date")))
        .collect();
    spans.sort();
    // Each scheduler reads its clock before its transaction, so a run's stored start can
    // precede by a moment the stored end of the run whose slot it took (read by the other
    // scheduler just before that one committed). The task's lock above is the real check.
    let clock_reads_apart = chrono::Duration::milliseconds(100);
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 + clock_reads_apart >= pair[0].1,
            "a run started at {} while another ran until {}: {runs:#}",
            pair[1].0,
            pair[0].1
        );
    }
}
