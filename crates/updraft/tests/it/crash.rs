//! `kill -9` of standalone in the middle of a run: nothing keeps running unobserved, and after
//! a restart every interrupted try is resolved and retried per its policy.

use std::time::Duration;

use crate::fixture::{eventually, process_alive, state_of, try_of, Home};

#[test]
fn kill_9_mid_run_loses_nothing() {
    let home = Home::new();
    let pid_file = home.path().join("task.pid");
    let tries = home.path().join("tries.log");
    home.write_dag(
        "long.yaml",
        &format!(
            "tasks:\n  - task_id: long\n    retries: 1\n    retry_delay: 0\n    bash_command: |\n      echo \"$UPDRAFT_TRY_NUMBER\" >> {tries}\n      if [ \"$UPDRAFT_TRY_NUMBER\" = 1 ]; then sleep 300 & echo $! > {pid}; wait; fi\n      echo done\n  - task_id: after\n    bash_command: echo after\n    dependencies: [long]\n",
            tries = tries.display(),
            pid = pid_file.display()
        ),
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("long");
    let child: u32 = eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .expect("the task never started");
    assert!(process_alive(child));

    standalone.sigkill();
    // The task's processes die with the process that ran them.
    assert!(
        eventually(Duration::from_secs(10), || (!process_alive(child))
            .then_some(()))
        .is_some(),
        "task process {child} outlived its worker"
    );

    let _restarted = home.standalone();
    let states = home.wait_for_run("long", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(state_of(&states, "long"), "success");
    assert_eq!(
        try_of(&states, "long"),
        2,
        "the interrupted try counts as a failed try"
    );
    assert_eq!(state_of(&states, "after"), "success");
    let tries = std::fs::read_to_string(&tries).unwrap();
    assert_eq!(
        tries.lines().collect::<Vec<_>>(),
        vec!["1", "2"],
        "each try ran exactly once"
    );
}

#[test]
fn a_crash_does_not_use_up_the_tasks_retries() {
    let home = Home::new();
    let started = home.path().join("started");
    home.write_dag(
        "once.yaml",
        &format!(
            "tasks:\n  - task_id: t\n    retries: 0\n    bash_command: if [ \"$UPDRAFT_TRY_NUMBER\" = 1 ]; then touch {s}; sleep 300; fi\n",
            s = started.display()
        ),
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("once");
    eventually(Duration::from_secs(20), || started.exists().then_some(())).expect("never started");
    standalone.sigkill();
    let _restarted = home.standalone();
    let states = home.wait_for_run("once", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    assert_eq!(try_of(&states, "t"), 2);
}

#[test]
fn sigterm_stops_running_tasks_and_they_run_again_after_restart() {
    let home = Home::new();
    let started = home.path().join("started");
    home.write_dag(
        "slow.yaml",
        &format!(
            "tasks:\n  - task_id: t\n    bash_command: if [ \"$UPDRAFT_TRY_NUMBER\" = 1 ]; then touch {s}; sleep 300; fi\n",
            s = started.display()
        ),
    );
    let mut standalone = home.standalone();
    let run_id = home.trigger("slow");
    eventually(Duration::from_secs(20), || started.exists().then_some(())).expect("never started");
    assert!(standalone.sigterm().success());
    let states = home.json(&["tasks", "states-for-dag-run", "slow", &run_id]);
    assert_eq!(state_of(&states, "t"), "up_for_retry", "{states:#}");
    let _restarted = home.standalone();
    let states = home.wait_for_run("slow", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
}
