//! Deleting old history while the cluster runs: `db clean` from the CLI and the schedulers'
//! automatic retention (`database.retention`) delete runs as soon as they are finished, while
//! a scheduler and a worker run others. Every run still runs to its end, and no run is
//! deleted (or loses a task instance) before it finished.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Cluster;

const RUNS: usize = 16;

#[test]
fn db_clean_and_retention_never_touch_unfinished_runs() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let marks = cluster.path("marks");
    std::fs::create_dir_all(&marks).unwrap();
    // Each task leaves a mark; `last` runs only after `first` succeeded, so a run whose
    // `last` left its mark ran to its end.
    cluster.write_dag(
        "churn.yaml",
        &format!(
            "tasks:\n  - task_id: first\n    bash_command: sleep 0.3; touch {m}/{{{{ run_id }}}}.first\n  - task_id: last\n    bash_command: sleep 0.3; touch {m}/{{{{ run_id }}}}.last\n    dependencies: [first]\n",
            m = marks.display()
        ),
    );
    // Runs older than a second go every second, and the CLI cleans on top of that.
    let retention = [
        ("UPDRAFT_DATABASE__RETENTION", "1s"),
        ("UPDRAFT_DATABASE__RETENTION_INTERVAL", "1s"),
    ];
    let _first = cluster.scheduler_with_env(&retention);
    let _second = cluster.scheduler_with_env(&retention);
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 3);
    cluster.wait_for_scheduler();

    let runs: Vec<String> = (1..=RUNS).map(|i| format!("churn_{i}")).collect();
    for run in &runs {
        cluster.trigger("churn", run);
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    // The last state each run was seen in while it still existed.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut cleans = 0;
    loop {
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let out = cluster.json(&[
            "db",
            "clean",
            "--clean-before-timestamp",
            &tomorrow,
            "--skip-archive",
            "--yes",
            "--batch-size",
            "2",
        ]);
        cleans += 1;
        assert_eq!(out["dry_run"], false, "{out:#}");
        let states = cluster.run_states("churn");
        for (run, state) in &states {
            assert_ne!(state, "failed", "{run} failed\n{}", cluster.logs());
            seen.insert(run.clone(), state.clone());
        }
        for run in &runs {
            if states.contains_key(run) {
                continue;
            }
            // Gone: it must have finished, so its last task ran.
            if seen.contains_key(run) {
                assert!(
                    marks.join(format!("{run}.last")).exists(),
                    "{run} was deleted before it finished (last seen {:?})\n{}",
                    seen.get(run),
                    cluster.logs()
                );
            }
        }
        let done = runs
            .iter()
            .all(|run| marks.join(format!("{run}.last")).exists() && !states.contains_key(run));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runs did not all finish and go within 120 s: {states:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cleans > 1, "the CLI cleaned while runs were in flight");
    for run in &runs {
        for task in ["first", "last"] {
            assert!(
                marks.join(format!("{run}.{task}")).exists(),
                "{run}: {task} never ran"
            );
        }
    }
}
