//! A rolling restart: each of three workers in turn gets SIGTERM while it runs tasks, drains
//! (claims nothing more, lets its running tasks finish), exits 0 and is replaced. No task
//! fails or is retried because of it.

use std::time::Duration;

use super::{chains_dag, eventually, str_field, try_line_command, Cluster, Proc, TryLines};

const RUNS: usize = 10;

/// Whether `worker list` shows `worker` running at least one try.
fn is_running_something(cluster: &Cluster, worker: &Proc) -> bool {
    let pid = format!(":{}:", worker.pid());
    cluster.workers().iter().any(|w| {
        w["worker_id"].as_str().is_some_and(|id| id.contains(&pid))
            && w["running"].as_array().is_some_and(|r| !r.is_empty())
    })
}

#[test]
fn workers_restarted_one_by_one_with_sigterm_fail_no_task() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let lines = cluster.path("tries.log");
    let (dag, tasks) = chains_dag(
        4,
        3,
        &try_line_command(&lines, "; sleep 1"),
        "max_active_runs: 16\nmax_active_tasks: 16\n",
    );
    cluster.write_dag("rolling.yaml", &dag);
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let grace = [("UPDRAFT_WORKER__SHUTDOWN_GRACE", "60s")];
    let mut workers: Vec<Proc> = (0..3)
        .map(|_| cluster.worker_with_env(&[&api], "default", 4, &grace))
        .collect();
    cluster.wait_for_scheduler();

    let run_ids: Vec<String> = (0..RUNS).map(|i| format!("rolling_{i}")).collect();
    for run_id in &run_ids {
        cluster.trigger("rolling", run_id);
    }

    for worker in workers.iter_mut() {
        eventually(Duration::from_secs(20), || {
            is_running_something(&cluster, worker).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{} never ran a task before its restart: {:#?}\n{}",
                worker.name(),
                cluster.workers(),
                cluster.logs()
            )
        });
        let name = worker.name().to_string();
        let status = worker.sigterm(Duration::from_secs(60)).unwrap_or_else(|| {
            panic!(
                "{name} did not exit within 60 s of SIGTERM\n{}",
                cluster.logs()
            )
        });
        assert!(
            status.success(),
            "{name} exited with {status} after SIGTERM\n{}",
            worker.log_tail()
        );
        *worker = cluster.worker_with_env(&[&api], "default", 4, &grace);
    }

    let runs = cluster.wait_for_runs("rolling", &run_ids, Duration::from_secs(60));
    let mut problems = Vec::new();
    for run_id in &run_ids {
        let states = cluster.states("rolling", run_id);
        if runs[run_id] != "success" {
            problems.push(format!("run {run_id} is {}", runs[run_id]));
        }
        for ti in states["task_instances"].as_array().into_iter().flatten() {
            let (state, try_number) = (str_field(ti, "state"), &ti["try_number"]);
            if state != "success" || *try_number != 1 {
                problems.push(format!(
                    "{run_id}/{}: {state}, try {try_number}",
                    str_field(ti, "task_id")
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the restarts disturbed tasks:\n{}\n{}",
        problems.join("\n"),
        cluster.logs()
    );
    let tries = TryLines::read(&lines);
    for run_id in &run_ids {
        for task_id in &tasks {
            assert_eq!(
                tries.tries_of(run_id, task_id),
                vec![1],
                "{run_id}/{task_id} should have run once, as try 1"
            );
        }
    }
    assert!(tries.duplicates().is_empty(), "{:?}", tries.duplicates());
}
