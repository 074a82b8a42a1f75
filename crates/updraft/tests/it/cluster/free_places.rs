//! Places across schedulers: a try's end is its run's owner's to answer. When the owner has
//! nothing of its own to put in the place the try freed, it tells the other schedulers, and
//! one of them fills it at once, not at its next sweep.

use std::time::{Duration, Instant};

use super::Cluster;

/// The state of task `task_id` in run `run_id` of `dag_id`.
fn task_state(cluster: &Cluster, dag_id: &str, run_id: &str, task_id: &str) -> String {
    let doc = cluster.states(dag_id, run_id);
    doc["task_instances"]
        .as_array()
        .and_then(|tis| tis.iter().find(|ti| ti["task_id"] == task_id))
        .and_then(|ti| ti["state"].as_str())
        .unwrap_or("none")
        .to_string()
}

#[test]
fn a_place_its_owner_cannot_fill_goes_to_another_scheduler_at_once() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.ok(&["pools", "set", "one", "1"]);
    // `slot` takes the pool's one slot; `hold` keeps each run running long after, so that the
    // end of a run (which every scheduler hears of) cannot be what hands the slot over.
    cluster.write_dag(
        "one_slot.yaml",
        "tasks:\n  - task_id: slot\n    pool: one\n    bash_command: sleep 0.5\n  \
         - task_id: hold\n    bash_command: sleep 60\n",
    );
    // Sweeps far apart (a lease is renewed by them): only the owner's word can hand the
    // place over in time.
    let sweep = [
        ("UPDRAFT_SCHEDULER__SWEEP_INTERVAL", "60s"),
        ("UPDRAFT_SCHEDULER__LEASE", "130s"),
    ];
    let schedulers = [
        cluster.scheduler_with_env(&sweep),
        cluster.scheduler_with_env(&sweep),
    ];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    // Both alive before the runs exist, so that each takes one of the two.
    cluster.wait_for_schedulers(2);
    let runs = ["first", "second"];
    for run_id in runs {
        cluster.trigger("one_slot", run_id);
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let slots: Vec<String> = runs
            .iter()
            .map(|run| task_state(&cluster, "one_slot", run, "slot"))
            .collect();
        if slots.iter().all(|s| s == "success") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot was not handed over within 20 s: {slots:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for run_id in runs {
        assert_eq!(
            task_state(&cluster, "one_slot", run_id, "hold"),
            "running",
            "{run_id} still runs: its end did not hand the slot over"
        );
    }
    // The runs had different owners: the second `slot` was not its first's owner's to queue.
    let starter = |run_id: &str| {
        schedulers
            .iter()
            .position(|s| {
                s.log_text().lines().any(|line| {
                    line.contains("dag run started") && line.contains(&format!("run_id={run_id}"))
                })
            })
            .unwrap_or_else(|| panic!("no scheduler started {run_id}\n{}", cluster.logs()))
    };
    assert_ne!(
        starter("first"),
        starter("second"),
        "each scheduler owns one run\n{}",
        cluster.logs()
    );
}
