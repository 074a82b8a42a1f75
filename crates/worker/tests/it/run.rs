//! `run_task`: outcomes, logs, XCom, timeouts and cancellation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::DateTime;
use tokio::sync::watch;
use updraft_worker::{run_task, FailureReason, TaskLaunch, TaskOutcome};

use crate::{alive, gone_within, read_pid};

fn launch(dir: &Path, command: &str) -> TaskLaunch {
    TaskLaunch {
        command: command.to_owned(),
        env: Vec::new(),
        cwd: None,
        timeout: Some(Duration::from_secs(60)),
        skip_exit_codes: vec![99],
        log_path: dir.join("logs/dag_id=d/run_id=r/task_id=t/attempt=1.log"),
        capture_xcom: true,
        kill_grace: Duration::from_secs(5),
        direct_exec: true,
        mask: None,
        fork_server: None,
    }
}

fn no_cancel() -> watch::Receiver<bool> {
    watch::channel(false).1
}

async fn run(launch: TaskLaunch) -> (TaskOutcome, String) {
    let log = launch.log_path.clone();
    let outcome = run_task(launch, no_cancel()).await;
    (outcome, std::fs::read_to_string(log).unwrap_or_default())
}

fn failed(reason: FailureReason) -> TaskOutcome {
    TaskOutcome::Failed { reason }
}

/// Log lines as (stream, text), checking every timestamp on the way.
fn lines(log: &str) -> Vec<(String, String)> {
    log.lines()
        .map(|line| {
            let (ts, rest) = line[1..].split_once("] {").expect(line);
            assert_eq!(ts.len(), "2026-11-22T10:00:00.123Z".len(), "{line}");
            assert!(ts.ends_with('Z'), "{line}");
            DateTime::parse_from_rfc3339(ts).expect(line);
            let (stream, text) = rest.split_once("} ").expect(line);
            (stream.to_owned(), text.to_owned())
        })
        .collect()
}

fn body(log: &str, stream: &str) -> Vec<String> {
    lines(log)
        .into_iter()
        .filter(|(s, _)| s == stream)
        .map(|(_, text)| text)
        .collect()
}

#[tokio::test]
async fn success_takes_xcom_from_last_non_empty_line() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, log) = run(launch(
        dir.path(),
        "echo first; echo '  last one '; echo; echo",
    ))
    .await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("  last one ".to_owned())
        }
    );
    let bash = started_by(&log);
    assert!(
        bash.starts_with("started process ") && bash.ends_with("bash -c"),
        "{log}"
    );
    assert_eq!(
        lines(&log)
            .into_iter()
            .filter(|(_, text)| *text != bash)
            .collect::<Vec<_>>(),
        [
            (
                "updraft",
                "running: echo first; echo '  last one '; echo; echo"
            ),
            ("stdout", "first"),
            ("stdout", "  last one "),
            ("stdout", ""),
            ("stdout", ""),
            ("updraft", "exited with code 0"),
        ]
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
    );
}

#[tokio::test]
async fn xcom_is_none_without_output_or_when_not_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, _) = run(launch(dir.path(), "true")).await;
    assert_eq!(outcome, TaskOutcome::Success { xcom: None });
    let mut quiet = launch(dir.path(), "echo value");
    quiet.capture_xcom = false;
    assert_eq!(run(quiet).await.0, TaskOutcome::Success { xcom: None });
    // Last line without a trailing newline still counts; stderr never does.
    let (outcome, _) = run(launch(dir.path(), "printf 'a\\nb'; echo err >&2")).await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("b".to_owned())
        }
    );
}

#[tokio::test]
async fn exit_codes_map_to_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let check = |command: &'static str, skip: Vec<i32>, expect: TaskOutcome| {
        let mut l = launch(dir.path(), command);
        l.skip_exit_codes = skip;
        async move {
            let (outcome, log) = run(l).await;
            assert_eq!(outcome, expect, "{command}: {log}");
        }
    };
    check("exit 1", vec![99], failed(FailureReason::ExitCode(1))).await;
    check("exit 99", vec![99], TaskOutcome::Skipped { exit_code: 99 }).await;
    check(
        "exit 42",
        vec![42, 99],
        TaskOutcome::Skipped { exit_code: 42 },
    )
    .await;
    check("exit 99", vec![], failed(FailureReason::ExitCode(99))).await;
    check("kill -KILL $$", vec![], failed(FailureReason::Signal(9))).await;
    let (_, log) = run(launch(dir.path(), "exit 3")).await;
    assert!(log.ends_with("{updraft} exited with code 3\n"), "{log}");
}

#[tokio::test]
async fn stdout_and_stderr_interleave_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let command =
        "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 0.1; printf 'four' >&2";
    let (outcome, log) = run(launch(dir.path(), command)).await;
    assert!(matches!(outcome, TaskOutcome::Success { .. }));
    let got: Vec<_> = lines(&log)
        .into_iter()
        .filter(|(s, _)| s != "updraft")
        .collect();
    assert_eq!(
        got,
        [
            ("stdout", "one"),
            ("stderr", "two"),
            ("stdout", "three"),
            ("stderr", "four")
        ]
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
    );
}

#[tokio::test]
async fn log_is_appended_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    run(launch(dir.path(), "echo a")).await;
    let (_, log) = run(launch(dir.path(), "echo b")).await;
    assert_eq!(body(&log, "stdout"), ["a", "b"]);
}

#[tokio::test]
async fn long_lines_and_binary_output_are_logged_safely() {
    let dir = tempfile::tempdir().unwrap();
    let command =
        "head -c 200000 /dev/zero | tr '\\0' 'a'; echo; printf 'bin\\xff\\x00\\xfe\\n'; echo done";
    let (outcome, log) = run(launch(dir.path(), command)).await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("done".to_owned())
        }
    );
    let out = body(&log, "stdout");
    let lens: Vec<usize> = out.iter().map(String::len).collect();
    assert_eq!(lens[..4], [65536, 65536, 65536, 200000 - 3 * 65536]);
    assert!(out[4].starts_with("bin\u{fffd}"), "{:?}", out[4]);
    assert_eq!(out[5], "done");
}

#[tokio::test]
async fn env_and_cwd_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut l = launch(dir.path(), "echo \"$GREETING $HOME\" > out.txt; pwd");
    l.env = vec![("GREETING".to_owned(), "hello".to_owned())];
    l.cwd = Some(work.clone());
    let (outcome, _) = run(l).await;
    let cwd = work.canonicalize().unwrap();
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some(cwd.to_string_lossy().into_owned())
        }
    );
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        std::fs::read_to_string(work.join("out.txt")).unwrap(),
        format!("hello {home}\n"),
        "added variables come on top of the inherited environment"
    );
}

#[tokio::test]
async fn stdin_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (outcome, _) = run(launch(dir.path(), "wc -c")).await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("0".to_owned())
        }
    );
}

#[tokio::test]
async fn nonexistent_cwd_is_a_spawn_error_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = launch(dir.path(), "true");
    l.cwd = Some(PathBuf::from("/nonexistent/updraft-test"));
    let (outcome, log) = run(l).await;
    let TaskOutcome::Failed {
        reason: FailureReason::SpawnError(message),
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(
        message.starts_with("working directory /nonexistent/updraft-test does not exist"),
        "{message}"
    );
    assert!(log.contains(&message), "{log}");
}

#[tokio::test]
async fn unwritable_log_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let mut l = launch(dir.path(), "true");
    l.log_path = dir.path().join("file/attempt=1.log");
    let outcome = run_task(l, no_cancel()).await;
    assert!(
        matches!(&outcome, TaskOutcome::Failed { reason: FailureReason::SpawnError(m) } if m.starts_with("cannot open log file")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn timeout_kills_bash_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let command = format!("sleep 300 & echo $! > {}; sleep 300", pid_file.display());
    let mut l = launch(dir.path(), &command);
    l.timeout = Some(Duration::from_millis(500));
    let (outcome, log) = run(l).await;
    assert_eq!(
        outcome,
        failed(FailureReason::TimedOut(Duration::from_millis(500)))
    );
    let child = read_pid(&pid_file).await;
    assert!(
        gone_within(child, Duration::from_secs(5)),
        "child {child} survived"
    );
    let updraft = body(&log, "updraft");
    assert!(
        updraft[2].starts_with("timed out after 500ms, sending SIGTERM to process group"),
        "{log}"
    );
    assert_eq!(
        updraft.last().unwrap(),
        "timed out after 500ms, killed process group"
    );
}

#[tokio::test]
async fn processes_ignoring_sigterm_get_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    // Ignored signals stay ignored across fork and exec, so nothing in the group obeys SIGTERM.
    let command = format!(
        "trap '' TERM; sleep 300 & echo $! > {}; sleep 300",
        pid_file.display()
    );
    let mut l = launch(dir.path(), &command);
    l.timeout = Some(Duration::from_millis(300));
    l.kill_grace = Duration::from_millis(300);
    let (outcome, log) = run(l).await;
    assert_eq!(
        outcome,
        failed(FailureReason::TimedOut(Duration::from_millis(300)))
    );
    assert!(log.contains("after SIGTERM, sending SIGKILL"), "{log}");
    let child = read_pid(&pid_file).await;
    assert!(
        gone_within(child, Duration::from_secs(5)),
        "child {child} survived"
    );
}

#[tokio::test]
async fn cancel_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let command = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let l = launch(dir.path(), &command);
    let log_path = l.log_path.clone();
    let (cancel, cancelled) = watch::channel(false);
    let task = tokio::spawn(run_task(l, cancelled));
    let child = read_pid(&pid_file).await;
    assert!(alive(child));
    cancel.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, failed(FailureReason::Killed));
    assert!(
        gone_within(child, Duration::from_secs(5)),
        "child {child} survived"
    );
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(
        log.ends_with("{updraft} cancelled, killed process group\n"),
        "{log}"
    );
}

#[tokio::test]
async fn cancel_before_start_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (_cancel, cancelled) = watch::channel(true);
    let l = launch(dir.path(), &format!("touch {}", marker.display()));
    let outcome = run_task(l, cancelled).await;
    assert_eq!(outcome, failed(FailureReason::Killed));
    assert!(!marker.exists());
}

#[tokio::test]
async fn dropping_the_future_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let command = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let task = tokio::spawn(run_task(launch(dir.path(), &command), no_cancel()));
    let child = read_pid(&pid_file).await;
    task.abort();
    let _ = task.await;
    assert!(
        gone_within(child, Duration::from_secs(5)),
        "child {child} survived"
    );
}

#[tokio::test]
async fn a_daemon_holding_the_pipes_does_not_hang_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("daemon.pid");
    let command = format!("sleep 300 & echo $! > {}; echo started", pid_file.display());
    let (outcome, log) =
        tokio::time::timeout(Duration::from_secs(30), run(launch(dir.path(), &command)))
            .await
            .unwrap();
    let daemon = read_pid(&pid_file).await;
    let still_running = alive(daemon);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("started".to_owned())
        }
    );
    assert!(still_running, "a daemon started on purpose is left alone");
    assert!(log.contains("no longer captured"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let mut l = launch(dir.path(), &format!("echo {i}"));
            l.log_path = dir.path().join(format!("{i}.log"));
            tokio::spawn(run_task(l, no_cancel()))
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap(),
            TaskOutcome::Success {
                xcom: Some(i.to_string())
            }
        );
    }
}

/// Spawning must not fork the worker (see `process/spawner.rs`): a fork write-protects all of
/// the worker's memory, so rewriting it after a spawn takes a page fault per page, on top of
/// copying the page tables. `posix_spawn` (`CLONE_VM | CLONE_VFORK`) leaves it alone.
#[tokio::test(flavor = "current_thread")]
async fn spawning_does_not_fork_the_worker() {
    const PAGE: usize = 4096;
    const PAGES: usize = 16 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut buffer = vec![0u8; (PAGES + 1) * PAGE];
    let start = buffer.as_ptr().align_offset(PAGE);
    let memory = &mut buffer[start..start + PAGES * PAGE];
    // Small pages, so that a fork costs a fault per 4 KiB even where huge pages are on.
    // SAFETY: a page-aligned range inside `buffer`; the advice does not change its contents.
    let advised = unsafe {
        libc::madvise(
            memory.as_mut_ptr().cast(),
            memory.len(),
            libc::MADV_NOHUGEPAGE,
        )
    };
    assert_eq!(advised, 0, "{}", std::io::Error::last_os_error());
    let touch = |memory: &mut [u8], value: u8| {
        for page in memory.chunks_mut(PAGE) {
            page[0] = value;
        }
    };
    touch(memory, 1);
    let (outcome, _) = run(launch(dir.path(), "true")).await;
    assert_eq!(outcome, TaskOutcome::Success { xcom: None });
    let before = minor_faults();
    touch(memory, 2);
    let faults = minor_faults() - before;
    assert!(
        faults < (PAGES / 16) as u64,
        "{faults} page faults rewriting {PAGES} pages after a spawn: the spawn forked the worker"
    );
}

/// Minor page faults of the calling thread so far.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let (_, fields) = stat.rsplit_once(") ").unwrap();
    // After the command: state ppid pgrp session tty_nr tpgid flags minflt …
    fields.split(' ').nth(7).unwrap().parse().unwrap()
}

fn started_by(log: &str) -> String {
    body(log, "updraft")
        .into_iter()
        .find(|line| line.starts_with("started process "))
        .unwrap_or_else(|| panic!("no start line in {log}"))
}

/// A command of plain words is started without bash, and the program cannot tell: the same
/// `argv`, environment and working directory as under `bash -c`. Quoting the program's name
/// is enough to send the same command through bash.
#[tokio::test]
async fn plain_commands_start_without_bash_and_see_what_bash_would_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let logs = std::sync::atomic::AtomicUsize::new(0);
    let stdout_of = |command: &'static str, oldpwd: &'static str| {
        let mut l = launch(dir.path(), command);
        let n = logs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        l.log_path = dir.path().join(format!("logs/{n}.log"));
        l.env = vec![
            ("GREETING".to_owned(), "hello".to_owned()),
            ("SHLVL".to_owned(), "4".to_owned()),
            ("OLDPWD".to_owned(), oldpwd.to_owned()),
        ];
        l.cwd = Some(work.clone());
        async move {
            let (outcome, log) = run(l).await;
            assert!(matches!(outcome, TaskOutcome::Success { .. }), "{log}");
            let without_shell = started_by(&log).ends_with(", without a shell");
            assert_eq!(without_shell, !command.contains('"'), "{command}: {log}");
            let mut stdout = body(&log, "stdout");
            stdout.sort();
            stdout
        }
    };
    let has = |lines: &[String], line: &str| lines.iter().any(|l| l == line);
    let pwd = format!("PWD={}", work.canonicalize().unwrap().display());

    let direct = stdout_of("env", "/nonexistent/updraft-test").await;
    let bash = stdout_of("\"env\"", "/nonexistent/updraft-test").await;
    assert_eq!(direct, bash, "the environment differs");
    assert!(has(&direct, "GREETING=hello") && has(&direct, "SHLVL=4"));
    assert!(has(&direct, &pwd), "{direct:?}");
    assert!(!direct.iter().any(|line| line.starts_with("OLDPWD=")));

    let direct = stdout_of("env", "/").await;
    assert_eq!(direct, stdout_of("\"env\"", "/").await);
    assert!(
        has(&direct, "OLDPWD=/"),
        "an OLDPWD naming a directory is kept"
    );

    let direct = stdout_of("cat /proc/self/cmdline", "/").await;
    let bash = stdout_of("\"cat\" /proc/self/cmdline", "/").await;
    assert_eq!(direct, bash, "argv differs");

    // A script named by a relative path sees the same `$0` and `_`.
    let script = work.join("show");
    std::fs::write(&script, "#!/bin/sh\necho \"$0 $_\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let direct = stdout_of("./show", "/").await;
    assert_eq!(direct, stdout_of("\"./show\"", "/").await);
    assert_eq!(direct, ["./show ./show"]);

    let mut l = launch(dir.path(), "env");
    l.log_path = dir.path().join("logs/always_bash.log");
    l.direct_exec = false;
    let (_, log) = run(l).await;
    assert!(started_by(&log).ends_with("bash -c"), "{log}");
}

/// What only bash can run still goes to bash: an executable without `#!` (bash runs it as a
/// script) and any command when `BASH_ENV` names a file for bash to read first.
#[tokio::test]
async fn programs_and_environments_only_bash_can_run_go_to_bash() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script");
    std::fs::write(&script, "echo from the script\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (outcome, log) = run(launch(dir.path(), &script.display().to_string())).await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("from the script".to_owned())
        },
        "{log}"
    );
    assert!(started_by(&log).ends_with(" -c"), "{log}");

    let startup = dir.path().join("startup.sh");
    std::fs::write(&startup, "echo read the startup file\n").unwrap();
    let mut l = launch(dir.path(), "true");
    l.log_path = dir.path().join("logs/bash_env.log");
    l.env = vec![("BASH_ENV".to_owned(), startup.display().to_string())];
    let (outcome, log) = run(l).await;
    assert_eq!(
        outcome,
        TaskOutcome::Success {
            xcom: Some("read the startup file".to_owned())
        },
        "{log}"
    );
}
