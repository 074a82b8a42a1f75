//! A worker dies (SIGKILL) in the middle of a long task: its task process dies with it, the
//! try is retried on the other worker once the lease runs out (without using up the task's
//! retries), and the retry's log, shipped to the API server, is readable from the CLI.

use std::time::Duration;

use super::{eventually, process_alive, state_of, task, Cluster};

/// `worker.lease` (3 s) plus a generous margin for the scheduler to notice and requeue.
const RETRY_WITHIN: Duration = Duration::from_secs(20);

/// `(try, worker pid, task shell pid)` lines the task writes when it starts.
fn tries(path: &std::path::Path) -> Vec<(u32, u32, u32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let fields: Vec<u32> = line
                .split_whitespace()
                .map(|f| {
                    f.parse()
                        .unwrap_or_else(|_| panic!("bad line {line:?} in tries file"))
                })
                .collect();
            let [try_number, worker, shell] = fields[..] else {
                panic!("bad line {line:?} in tries file");
            };
            (try_number, worker, shell)
        })
        .collect()
}

#[test]
fn a_killed_workers_task_is_retried_on_another_worker() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let tries_file = cluster.path("tries");
    cluster.write_dag(
        "loss.yaml",
        &format!(
            "tasks:\n  - task_id: long\n    retries: 0\n    bash_command: |\n      echo \"started try $UPDRAFT_TRY_NUMBER\"\n      echo \"$UPDRAFT_TRY_NUMBER $PPID $$\" >> {}\n      if [ \"$UPDRAFT_TRY_NUMBER\" = 1 ]; then sleep 30; fi\n      echo \"finished try $UPDRAFT_TRY_NUMBER\"\n",
            tries_file.display()
        ),
    );
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let mut workers = [
        cluster.worker(&[&api], "default", 2),
        cluster.worker(&[&api], "default", 2),
    ];
    cluster.wait_for_scheduler();
    cluster.trigger("loss", "loss_1");

    let (_, worker_pid, shell_pid) = eventually(Duration::from_secs(30), || {
        tries(&tries_file).into_iter().find(|(t, ..)| *t == 1)
    })
    .unwrap_or_else(|| panic!("the task never started\n{}", cluster.logs()));
    let states = eventually(Duration::from_secs(10), || {
        let states = cluster.states("loss", "loss_1");
        (state_of(&states, "long") == "running").then_some(states)
    })
    .unwrap_or_else(|| {
        panic!(
            "the started task is not `running`: {:#}",
            cluster.states("loss", "loss_1")
        )
    });
    let victim = workers
        .iter()
        .position(|w| w.pid() == worker_pid)
        .unwrap_or_else(|| {
            panic!(
                "the task's parent process {worker_pid} is neither worker ({}, {})",
                workers[0].pid(),
                workers[1].pid()
            )
        });
    let survivor = 1 - victim;
    // `worker list` shows the try on the worker that runs it.
    let listed = eventually(Duration::from_secs(10), || {
        let list = cluster.workers();
        list.iter()
            .find(|w| {
                w["running"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|t| t == "loss/loss_1/long#1"))
            })
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "worker list never showed the running try: {:#?}",
            cluster.workers()
        )
    });
    let listed_id = listed["worker_id"].as_str().unwrap_or_default();
    assert!(
        listed_id.contains(&format!(":{worker_pid}:")),
        "worker list names {listed_id} for the try, but it runs under pid {worker_pid}"
    );
    if let Some(worker_id) = task(&states, "long")["worker_id"].as_str() {
        assert_eq!(worker_id, listed_id, "{states:#}");
    }

    // The running try's log reaches the database while it runs (the worker streams it), and
    // outlives the worker.
    let live_log = |cluster: &Cluster| {
        let out = cluster.cli(&["tasks", "logs", "loss", "loss_1", "long", "--try", "1"]);
        String::from_utf8_lossy(&out.stdout).contains("started try 1")
    };
    assert!(
        eventually(Duration::from_secs(10), || live_log(&cluster).then_some(())).is_some(),
        "`tasks logs --try 1` does not show the running try's output: {:?}\n{}",
        cluster.cli(&["tasks", "logs", "loss", "loss_1", "long", "--try", "1"]),
        cluster.logs()
    );

    workers[victim].sigkill();
    assert!(
        eventually(Duration::from_secs(10), || (!process_alive(shell_pid))
            .then_some(()))
        .is_some(),
        "the task process {shell_pid} outlived its worker"
    );

    let (_, retry_worker, _) = eventually(RETRY_WITHIN, || {
        tries(&tries_file).into_iter().find(|(t, ..)| *t == 2)
    })
    .unwrap_or_else(|| {
        panic!(
            "the task was not retried within {RETRY_WITHIN:?} of the worker's death: {:#}\n{}",
            cluster.states("loss", "loss_1"),
            cluster.logs()
        )
    });
    assert_eq!(
        retry_worker,
        workers[survivor].pid(),
        "the retry ran under another process than the surviving worker"
    );

    let runs = cluster.wait_for_runs("loss", &["loss_1".into()], Duration::from_secs(30));
    let states = cluster.states("loss", "loss_1");
    assert_eq!(runs["loss_1"], "success", "{states:#}");
    assert_eq!(state_of(&states, "long"), "success");
    assert_eq!(
        task(&states, "long")["try_number"],
        2,
        "the lost try counts as one try: {states:#}"
    );
    let attempts: Vec<u32> = tries(&tries_file).iter().map(|(t, ..)| *t).collect();
    assert_eq!(attempts, vec![1, 2], "each try ran exactly once");

    // The retry ran on a worker without database access; its log reached the cluster.
    let log = eventually(Duration::from_secs(10), || {
        let out = cluster.cli(&["tasks", "logs", "loss", "loss_1", "long", "--try", "2"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.contains("finished try 2")).then_some(text)
    });
    assert!(
        log.is_some(),
        "`tasks logs --try 2` does not show the retry's output: {:?}\n{}",
        cluster.cli(&["tasks", "logs", "loss", "loss_1", "long", "--try", "2"]),
        cluster.logs()
    );
}
