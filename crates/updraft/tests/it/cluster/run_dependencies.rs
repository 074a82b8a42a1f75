//! Runs that depend on other runs across two schedulers on PostgreSQL: a run past its
//! `dagrun_timeout` is failed, its unfinished tasks skipped and its running task killed on its
//! remote worker; a task that `depends_on_past` never runs beside its previous instance, with
//! the two runs owned by whichever schedulers adopt them.

use std::time::Duration;

use super::{eventually, process_alive, state_of, Cluster};

#[test]
fn dagrun_timeout_and_depends_on_past_hold_across_two_schedulers() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let pid_file = cluster.path("work.pid");
    cluster.write_dag(
        "slow.yaml",
        &format!(
            "dagrun_timeout: 3s\ntasks:\n  - task_id: work\n    bash_command: \
             echo $$ > {pid}; exec sleep 120\n  - task_id: after\n    bash_command: 'true'\n    \
             dependencies: [work]\n",
            pid = pid_file.display()
        ),
    );
    // `a` holds a lock folder while it runs: an instance starting beside its previous one
    // finds it taken and fails its run.
    let lock = cluster.path("past.lock");
    cluster.write_dag(
        "past.yaml",
        &format!(
            "default_args: {{depends_on_past: true, retries: 0}}\ntasks:\n  - task_id: a\n    \
             bash_command: mkdir {lock} || exit 3; sleep 0.5; rmdir {lock}\n  - task_id: b\n    \
             bash_command: 'true'\n    dependencies: [a]\n",
            lock = lock.display()
        ),
    );
    let _schedulers = [cluster.scheduler(), cluster.scheduler()];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();

    cluster.trigger("slow", "slow_run");
    let runs: Vec<String> = (0..3).map(|i| format!("past_{i}")).collect();
    for run in &runs {
        cluster.trigger("past", run);
    }

    let slow = cluster.wait_for_runs("slow", &["slow_run".to_string()], Duration::from_secs(60));
    assert_eq!(slow["slow_run"], "failed", "{}", cluster.logs());
    let states = cluster.states("slow", "slow_run");
    assert_eq!(state_of(&states, "work"), "skipped", "{states:#}");
    assert_eq!(state_of(&states, "after"), "skipped", "{states:#}");
    // The task that was running when the run timed out is killed on its worker.
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the task wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        eventually(Duration::from_secs(30), || (!process_alive(pid))
            .then_some(()))
        .is_some(),
        "the timed-out task's process {pid} still runs\n{}",
        cluster.logs()
    );

    let past = cluster.wait_for_runs("past", &runs, Duration::from_secs(90));
    assert!(
        past.values().all(|s| s == "success"),
        "an instance of `a` ran beside its previous one: {past:?}\n{}",
        cluster.logs()
    );
}
