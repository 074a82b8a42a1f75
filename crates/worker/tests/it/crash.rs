//! A worker that is SIGKILLed takes its tasks with it, through the reaper.
//!
//! The test binary plays all three parts, selected with `--exact`: the test, a stand-in worker
//! (`stand_in_worker`) that runs a task with a reaper and waits to be killed, and the reaper
//! itself (`reaper_mode`), which the stand-in starts by re-running this binary the way
//! `updraft standalone` re-runs itself with its hidden `__reaper` argument.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgid, Pid};
use tokio::sync::watch;
use updraft_worker::{reaper_main, run_task_guarded, Reaper, TaskLaunch};

use crate::{alive, gone_within, read_pid};

/// Set in the stand-in worker's environment (and so inherited by its reaper): the folder for
/// the task's log and pid files.
const DIR_ENV: &str = "UPDRAFT_TEST_STAND_IN_DIR";

fn helper_args(test: &str) -> [&str; 4] {
    ["--exact", test, "--nocapture", "--quiet"]
}

/// The reaper process of the stand-in worker; does nothing in a normal test run.
#[test]
fn reaper_mode() {
    if std::env::var_os(DIR_ENV).is_some() {
        reaper_main();
    }
}

/// The stand-in worker: starts a reaper, runs a task under it, and waits to be SIGKILLed.
#[tokio::test]
async fn stand_in_worker() {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    let reaper = Reaper::spawn(&exe, &helper_args("crash::reaper_mode")).unwrap();
    // The leader and a child of it, both in the task's process group.
    let command = format!(
        "sleep 300 & echo $! > {}; echo $$ > {}; wait",
        dir.join("child.pid").display(),
        dir.join("leader.pid").display(),
    );
    let launch = TaskLaunch {
        command,
        env: Vec::new(),
        cwd: None,
        timeout: None,
        skip_exit_codes: Vec::new(),
        log_path: dir.join("task.log"),
        capture_xcom: false,
        kill_grace: Duration::from_secs(5),
        direct_exec: true,
        mask: None,
        fork_server: None,
    };
    run_task_guarded(launch, watch::channel(false).1, Some(&reaper)).await;
}

#[tokio::test]
async fn tasks_die_when_the_worker_is_sigkilled() {
    let dir = tempfile::tempdir().unwrap();
    let mut worker = std::process::Command::new(std::env::current_exe().unwrap())
        .args(helper_args("crash::stand_in_worker"))
        .env(DIR_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let leader = read_pid(&dir.path().join("leader.pid")).await;
    let child = read_pid(&dir.path().join("child.pid")).await;
    assert!(alive(leader) && alive(child));
    // The task can write its pids before the worker has told the reaper of its group; the
    // worker logs the start only after that, so the kill waits for the line.
    wait_for_log_line(dir.path(), "started process").await;
    assert_eq!(
        getpgid(Some(Pid::from_raw(child))),
        Ok(Pid::from_raw(leader))
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
    let survivors: Vec<i32> = [leader, child]
        .into_iter()
        .filter(|&pid| !gone_within(pid, Duration::from_secs(10)))
        .collect();
    // Nothing but the reaper kills them: the task group is not the worker's, and nothing
    // else watches the worker. Clean up before failing.
    if !survivors.is_empty() {
        let _ = killpg(Pid::from_raw(leader), Signal::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "task processes {survivors:?} survived their worker; log:\n{}",
        log(dir.path())
    );
}

async fn wait_for_log_line(dir: &Path, needle: &str) {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !log(dir).contains(needle) {
        assert!(
            std::time::Instant::now() < end,
            "the task log never said {needle:?}; log:\n{}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("task.log")).unwrap_or_default()
}
