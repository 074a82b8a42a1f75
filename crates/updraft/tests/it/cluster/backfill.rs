//! A backfill on a cluster: two schedulers advance the same backfill at once, yet every date
//! gets exactly one run, which runs once, and the backfill completes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{str_field, Cluster};

#[test]
fn two_schedulers_create_each_backfill_run_exactly_once() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let ran = cluster.path("ran.txt");
    cluster.write_dag(
        "hourly.yaml",
        &format!(
            "schedule: \"@hourly\"\nstart_date: 2024-01-01\ncatchup: false\ntasks:\n  - task_id: t\n    \
             retries: 0\n    bash_command: echo {{{{ ts }}}} >> {ran}\n",
            ran = ran.display()
        ),
    );
    let _schedulers = [cluster.scheduler(), cluster.scheduler()];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 8);
    cluster.wait_for_scheduler();
    let created = cluster.json(&[
        "backfill",
        "create",
        "--dag-id",
        "hourly",
        "--from-date",
        "2024-01-01T00:00:00Z",
        "--to-date",
        "2024-01-01T11:00:00Z",
        "--max-active-runs",
        "3",
    ]);
    let id = created[0]["id"].as_i64().expect("the backfill's id");

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let backfills = cluster.json(&["backfill", "list"]);
        let backfill = backfills
            .as_array()
            .and_then(|all| all.iter().find(|b| b["id"] == id))
            .cloned()
            .expect("the backfill is listed");
        if !backfill["completed_at"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backfill did not complete: {backfill:#}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let runs = cluster.json(&["dags", "list-runs", "hourly"]);
    let mut per_date: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for run in runs.as_array().expect("list-runs prints an array") {
        if str_field(run, "run_type") != "backfill" {
            continue;
        }
        per_date
            .entry(str_field(run, "logical_date").to_string())
            .or_default()
            .push((
                str_field(run, "run_id").to_string(),
                str_field(run, "state").to_string(),
            ));
    }
    assert_eq!(per_date.len(), 12, "one run per hour: {per_date:#?}");
    for (date, runs) in &per_date {
        assert!(date.starts_with("2024-01-01T"), "{date}");
        assert_eq!(runs.len(), 1, "{date} has {runs:?}");
        assert_eq!(runs[0].1, "success", "{date}: {runs:?}\n{}", cluster.logs());
    }
    let lines = std::fs::read_to_string(&ran).expect("the tasks wrote their lines");
    // The DAG's own scheduled run (of today) writes a line too.
    let mut seen: Vec<&str> = lines.lines().filter(|l| l.starts_with("2024-")).collect();
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        (before, seen.len()),
        (12, 12),
        "each run's task ran once: {lines}"
    );
}
