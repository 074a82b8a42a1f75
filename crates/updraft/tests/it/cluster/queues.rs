//! Queues: a task on queue `gpu` waits, `queued` and not failed, while only a `default`
//! worker runs; a worker serving `gpu` then runs it, and nothing else does.

use std::time::{Duration, Instant};

use super::{eventually, state_of, task, Cluster};

/// The pid of the worker that ran a task: the tasks write their parent's pid.
fn parent_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn a_task_waits_for_a_worker_of_its_queue() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let cpu_parent = cluster.path("cpu.parent");
    let gpu_parent = cluster.path("gpu.parent");
    cluster.write_dag(
        "queues.yaml",
        &format!(
            "tasks:\n  - task_id: cpu\n    bash_command: echo $PPID > {}\n  - task_id: gpu\n    queue: gpu\n    bash_command: echo $PPID > {}\n",
            cpu_parent.display(),
            gpu_parent.display()
        ),
    );
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let default_worker = cluster.worker(&[&api], "default", 2);
    cluster.wait_for_scheduler();
    cluster.trigger("queues", "q_1");

    eventually(Duration::from_secs(30), || {
        let states = cluster.states("queues", "q_1");
        (state_of(&states, "cpu") == "success").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the default task did not succeed: {:#}\n{}",
            cluster.states("queues", "q_1"),
            cluster.logs()
        )
    });
    assert_eq!(parent_pid(&cpu_parent), Some(default_worker.pid()));

    // The gpu task is queued and stays so while nobody serves its queue.
    eventually(Duration::from_secs(10), || {
        let states = cluster.states("queues", "q_1");
        (state_of(&states, "gpu") == "queued").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the gpu task never became queued: {:#}",
            cluster.states("queues", "q_1")
        )
    });
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        let states = cluster.states("queues", "q_1");
        assert_eq!(
            state_of(&states, "gpu"),
            "queued",
            "the gpu task left `queued` without a gpu worker: {states:#}\n{}",
            cluster.logs()
        );
        assert_eq!(states["state"], "running", "{states:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(!gpu_parent.exists(), "the default worker ran the gpu task");

    // Its own log folder: the log `tasks logs` shows below can only come from the database,
    // where a short task's log arrives with its finish report.
    let gpu_logs = cluster.path("gpu-worker-logs");
    let gpu_worker = cluster.worker_with_env(
        &[&api],
        "gpu",
        1,
        &[(
            "UPDRAFT_LOGGING__BASE_LOG_FOLDER",
            &gpu_logs.to_string_lossy(),
        )],
    );
    let runs = cluster.wait_for_runs("queues", &["q_1".into()], Duration::from_secs(30));
    let states = cluster.states("queues", "q_1");
    assert_eq!(runs["q_1"], "success", "{states:#}");
    assert_eq!(state_of(&states, "gpu"), "success");
    assert_eq!(
        task(&states, "gpu")["try_number"],
        1,
        "waiting does not use up tries: {states:#}"
    );
    assert_eq!(
        parent_pid(&gpu_parent),
        Some(gpu_worker.pid()),
        "the gpu task ran on another process than the gpu worker (default worker: {})",
        default_worker.pid()
    );
    let log = cluster.ok(&["tasks", "logs", "queues", "q_1", "gpu"]);
    assert!(
        log.contains("running: echo $PPID") && log.ends_with("{updraft} exited with code 0\n"),
        "the gpu task's log is not in the database: {log}"
    );
    assert!(gpu_logs.is_dir(), "the gpu worker wrote its log elsewhere");
    // `worker list` shows which queues each worker serves.
    let workers = cluster.workers();
    let queues_of = |pid: u32| {
        let needle = format!(":{pid}:");
        workers
            .iter()
            .find(|w| {
                w["worker_id"]
                    .as_str()
                    .is_some_and(|id| id.contains(&needle))
            })
            .map(|w| w["queues"].clone())
            .unwrap_or_else(|| panic!("worker {pid} is not in {workers:#?}"))
    };
    assert_eq!(queues_of(gpu_worker.pid()), serde_json::json!(["gpu"]));
    assert_eq!(
        queues_of(default_worker.pid()),
        serde_json::json!(["default"])
    );
}
