//! The database goes away for a few seconds (every connection cut, new ones refused) while
//! runs are in flight: no process exits, and afterwards every run succeeds with no try run
//! twice.

use std::time::{Duration, Instant};

use super::{chains_dag, eventually, try_line_command, Cluster, TryLines};

const OUTAGE: Duration = Duration::from_secs(5);

#[test]
fn every_process_survives_a_database_outage_and_the_runs_finish() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.use_proxy();
    let lines = cluster.path("tries.log");
    let (dag, tasks) = chains_dag(
        3,
        4,
        &try_line_command(&lines, "; sleep 0.3"),
        "max_active_runs: 16\n",
    );
    cluster.write_dag("outage.yaml", &dag);
    let mut procs = vec![cluster.scheduler(), cluster.api_server()];
    let worker = cluster.worker(&[&procs[1]], "default", 4);
    procs.push(worker);
    cluster.wait_for_scheduler();
    assert!(
        cluster.proxy().connections() > 0,
        "the processes do not connect through the proxy"
    );

    let run_ids: Vec<String> = (0..6).map(|i| format!("outage_{i}")).collect();
    for run_id in &run_ids {
        cluster.trigger("outage", run_id);
    }
    // In flight: some tasks have run, most have not.
    eventually(Duration::from_secs(30), || {
        (TryLines::read(&lines).counts.len() >= 3).then_some(())
    })
    .unwrap_or_else(|| panic!("no task ran before the outage\n{}", cluster.logs()));

    let cut_at = Instant::now();
    cluster.proxy().cut();
    while cut_at.elapsed() < OUTAGE {
        for proc in procs.iter_mut() {
            if let Some(status) = proc.exited() {
                panic!(
                    "{} exited ({status}) during the database outage:\n{}",
                    proc.name(),
                    cluster.logs()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let before_restore = TryLines::read(&lines).counts.len();
    cluster.proxy().restore();
    eprintln!(
        "{before_restore} tries had started when the database came back after {:?}",
        cut_at.elapsed()
    );

    eventually(Duration::from_secs(30), || {
        (cluster.proxy().connections() > 0).then_some(())
    })
    .unwrap_or_else(|| panic!("no process reconnected to the database\n{}", cluster.logs()));

    let states = cluster.wait_for_runs("outage", &run_ids, Duration::from_secs(60));
    for proc in procs.iter_mut() {
        if let Some(status) = proc.exited() {
            panic!(
                "{} exited ({status}) after the database outage:\n{}",
                proc.name(),
                cluster.logs()
            );
        }
    }
    let failed: Vec<_> = states
        .iter()
        .filter(|(run, state)| run_ids.contains(run) && *state != "success")
        .collect();
    assert!(
        failed.is_empty(),
        "runs that did not succeed: {failed:?}\n{:#}\n{}",
        cluster.states("outage", failed[0].0),
        cluster.logs()
    );
    let tries = TryLines::read(&lines);
    let duplicates = tries.duplicates();
    assert!(
        duplicates.is_empty(),
        "tries that ran more than once:\n{}\n{}",
        duplicates.join("\n"),
        cluster.logs()
    );
    let missing = tries.missing("outage", &run_ids, &tasks);
    assert!(missing.is_empty(), "tasks that never ran: {missing:?}");
}
